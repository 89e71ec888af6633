"""The gated cells against the floor set by their own matrix products, measured side by side in one run.

For each cell (rnn, gru, lstm), element type (float32, float64) and batch (B = 32 and B = 1), at the
shapes of issue 18 (m = 256, T = 64, Adam, the loss normalised):

    NumPy floor  the matrix products of one update alone, as NumPy's BLAS computes them, with the shapes
                 and layouts lib/ uses: for each step W h_{t-1} forwards and the product with W backwards (for
                 the GRU also those with Wg), the output layer's three products and the weight gradients' (one
                 product over all T B rows each). Nothing else: no gates, no softmax, no optimiser.
    lib floor    the same products as lib.train computes them: for the gated cells at a batch (B > 4,
                 compiled), every product compiled (lib/model/_packed.h), each recurrent weight packed once
                 per chunk and direction; elsewhere NumPy's, as the NumPy floor.
    lib.train    a whole update of the training loop (lib.training.loop.train: gather, gates, softmax, gradients,
                 clipping, Adam, bookkeeping), with the compiled kernels (lib/model/_kernels.c, _typed.h,
                 _packed.h)
    NumPy only   the same with the compiled kernels switched off (as on a machine without a C compiler)

Runs alternate (floor, lib.train, NumPy only, next set-up, ...), each after a pause of a quarter second
(settle), and the median of the repeats is reported, so that a busy machine slows all alike. "x floor" is lib.train's time over the lib floor's,
"x NumPy fl." NumPy only's over the NumPy floor's.
With --layers 2 a second table does the same for two stacked layers (the floor then holds both layers'
products, the second layer's input products among them).

When PyTorch can be imported (it is not a dependency: docs/speed.md says how to install it beside the
project), each single-layer set-up of the GRU and the LSTM is also run with PyTorch's CPU build at the same
shapes, alternating with the others: nn.GRU / nn.LSTM on one-hot inputs, a linear output layer, the loss
normalised, Adam, one update per chunk with the state carried (detached), as many threads as lib/ uses. The
table then gives its characters a second and lib.train's ratio to it, measured on this machine in this run.

    python benchmarks/gated.py [--repeats 3] [--updates 30] [--layers 2]
"""
import argparse
import statistics
import time

import numpy as np

from lib.model import cells, kernels
from lib.config import Config
from lib.data import load_corpus
from lib.training.loop import train



def pytorch():
    """The torch module, or None where it is not installed (it is no dependency of the project)."""
    try:
        import torch
    except ImportError:
        return None
    return torch


def pytorch_seconds(torch, cell, K, m, T, B, dtype, updates, data):
    """Seconds per update of PyTorch's nn.GRU / nn.LSTM at the shapes lib.train uses: one-hot inputs (T, B, K),
    a linear output layer, cross-entropy averaged over T B, Adam (eta 1e-3), the state carried from chunk to
    chunk (detached), B streams through data as lib.train's "sequential" chunks read it."""
    torch.manual_seed(0)
    kind = {"gru": torch.nn.GRU, "lstm": torch.nn.LSTM}[cell]
    tdtype = {np.dtype("float32"): torch.float32, np.dtype("float64"): torch.float64}[np.dtype(dtype)]
    net, out = kind(K, m).to(tdtype), torch.nn.Linear(m, K).to(tdtype)
    params = list(net.parameters()) + list(out.parameters())
    opt = torch.optim.Adam(params, lr=1e-3)
    L = len(data) // B
    streams = torch.from_numpy(data[:B * L].astype(np.int64).reshape(B, L).T.copy())     # (L, B)
    eye = torch.eye(K, dtype=tdtype)
    h = None

    def step(e):
        nonlocal h
        X, Y = streams[e:e + T], streams[e + 1:e + T + 1]
        O, h = net(eye[X], h)
        h = tuple(s.detach() for s in h) if isinstance(h, tuple) else h.detach()
        loss = torch.nn.functional.cross_entropy(out(O).reshape(-1, K), Y.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    step(0)                                     # warm up
    settle()
    t0 = time.perf_counter()
    for i in range(updates):
        step((i + 1) * T % (L - T - 1))
    return (time.perf_counter() - t0) / updates


def settle(seconds=0.25):
    """A pause before a timed run: the worker threads of the run before (OpenBLAS's, PyTorch's) busy-wait
    for a while after their last call, and would take the cores from the next run's first updates; a
    training run of minutes meets that once, a timed run of a fraction of a second would at every turn."""
    time.sleep(seconds)


def floor_seconds(cell, K, m, T, B, dtype, layers=1, n=5, packed=False):
    """Seconds of the matrix products of one update (the median of n), arrays of the given shapes: NumPy's
    products (packed=False), or the products as lib.train computes them (packed=True): each recurrent weight
    packed once per chunk and direction, every product compiled (lib/model/_packed.h)."""
    rng = np.random.default_rng(0)
    shapes = dict(zip(cell.names, cell.shapes(K, m)))
    recurrent = [shapes[name] for name in cell.module.NAMES if name not in ("U", "b")]   # W (rows, m), Wg ...
    G = cell.module.GATES

    def a(*s):
        return rng.standard_normal(s).astype(dtype)

    Ms = [a(*s) for s in recurrent]
    h, Hs, V, dO = a(B, m), a(T * B, m), a(K, m), a(T * B, K)
    outs = [a(B, s[0]) for s in recurrent]
    grads = [a(B, s[0]) for s in recurrent]
    dh = a(B, m)
    Ds = [a(T * B, s[0]) for s in recurrent]
    dWs = [a(*s) for s in recurrent]
    if layers > 1:                          # a deeper layer reads h of the layer below through its own U
        U2, dA2 = a(G * m, m), a(T * B, G * m)

    def recurrences():
        if packed:
            forwards = [kernels.Packed(M, transpose=True) for M in Ms]
            for _ in range(T):
                for M, out in zip(forwards, outs):
                    M.product(h, out)
            backwards = [kernels.Packed(M, transpose=False) for M in Ms]
            for _ in range(T):
                for M, g in zip(backwards, grads):
                    M.product(g, dh)
            for D, dW in zip(Ds, dWs):
                kernels.weight_gradient(D, Hs, dW, compiled=True)
            return
        for _ in range(T):
            for M, out in zip(Ms, outs):
                np.matmul(h, M.T, out=out)
        for _ in range(T):
            for M, g in zip(Ms, grads):
                np.matmul(g, M, out=dh)
        for D, dW in zip(Ds, dWs):
            np.matmul(D.T, Hs, out=dW)

    def product(A, W, transpose=False):     # A W^T or A W
        if packed:
            return kernels.product(A, W, transpose)
        return A @ W.T if transpose else A @ W

    def gradient(D, X, out):                # D^T X
        kernels.weight_gradient(D, X, out, compiled=packed)

    dU2, dV = (a(G * m, m) if layers > 1 else None), a(K, m)

    def once():
        for _ in range(layers):
            recurrences()
        for _ in range(layers - 1):
            product(Hs, U2, transpose=True)     # its input's part, forwards
            gradient(dA2, Hs, dU2)          # dU
            product(dA2, U2)                # dL/dh of the layer below
        product(Hs, V, transpose=True)      # the output layer
        gradient(dO, Hs, dV)
        product(dO, V)

    with kernels.blas_on_one_thread(when=packed):
        settle()
        once()
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            once()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def train_seconds(cfg, corpus, compiled):
    """Seconds per update of lib.training.loop.train with cfg: its own clock of training time (state.seconds,
    every update; not the run's set-up before the first, as PyTorch's time leaves out its own), divided by
    its updates."""
    saved = kernels.USE_COMPILED
    kernels.USE_COMPILED = saved and compiled
    try:
        settle()
        return train(cfg, corpus.data, corpus.vocab).seconds / cfg.steps
    finally:
        kernels.USE_COMPILED = saved


def table(corpus, repeats, updates, layers):
    setups = {}
    for B in (32, 1):
        for dtype in ("float32", "float64"):
            for cell in ("rnn", "gru", "lstm"):
                steps = updates if B == 32 else updates * 4
                setups[(cell, dtype, B)] = Config(cell=cell, m=256, seq_length=64, batch_size=B, steps=steps,
                                                  optimizer="adam", eta=1e-3, normalize_loss=True, dtype=dtype,
                                                  sample_every=10**9, checkpoint_every=10**9, sig=0.05,
                                                  layers=layers)
    torch = pytorch() if layers == 1 else None
    seconds = {key: ([], [], [], [], []) for key in setups}
    for _ in range(repeats):
        for (cell, dtype, B), cfg in setups.items():
            blas_floor, floor, ours, numpy_only, peer = seconds[(cell, dtype, B)]
            packs = cell != "rnn" and kernels.packs(B, np.dtype(dtype))
            for times, packed in ((blas_floor, False), (floor, packs)):
                times.append(floor_seconds(cells.get(cell), corpus.vocab.K, cfg.m, cfg.seq_length, B,
                                           np.dtype(dtype), layers, packed=packed))
            ours.append(train_seconds(cfg, corpus, compiled=True))
            numpy_only.append(train_seconds(cfg, corpus, compiled=False))
            if torch is not None and cell != "rnn":
                peer.append(pytorch_seconds(torch, cell, corpus.vocab.K, cfg.m, cfg.seq_length, B, dtype,
                                            cfg.steps, corpus.data))
    print(f"\n{layers} layer{'s' if layers > 1 else ''}; m = 256, T = 64, Adam; ms per update, the median of "
          f"{repeats} alternating runs")
    if layers == 1:
        print(f"PyTorch: {f'{torch.__version__}, {torch.get_num_threads()} threads' if torch else 'not installed'}")
    print(f"{'cell':<5} {'dtype':<8} {'B':>3} {'NumPy floor':>12} {'lib floor':>10} {'lib.train':>10} {'x floor':>8} "
          f"{'NumPy only':>11} {'x NumPy fl.':>12} {'chars/s':>9} {'PyTorch chars/s':>16} {'x PyTorch':>10}")
    for (cell, dtype, B), (blas_floor, floor, ours, numpy_only, peer) in seconds.items():
        b, f, o, n = (statistics.median(t) for t in (blas_floor, floor, ours, numpy_only))
        rate = B * 64 / o
        theirs = B * 64 / statistics.median(peer) if peer else None
        print(f"{cell:<5} {dtype:<8} {B:>3} {b * 1e3:>12.2f} {f * 1e3:>10.2f} {o * 1e3:>10.2f} {o / f:>7.2f}x "
              f"{n * 1e3:>11.2f} {n / b:>11.2f}x {rate:>9,.0f} {f'{theirs:,.0f}' if theirs else '':>16} "
              f"{f'{rate / theirs:.2f}x' if theirs else '':>10}")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--updates", type=int, default=30, help="updates per timed run at B = 32 (4x at B = 1)")
    p.add_argument("--layers", type=int, default=2, help="also a table for this many layers (1: only one)")
    p.add_argument("--data", default=None)
    args = p.parse_args()
    corpus = load_corpus(args.data)
    print(f"corpus: {corpus.path.name} (K = {corpus.vocab.K}); compiled kernels: "
          f"{'built' if kernels.BUILT else 'NOT BUILT'}")
    table(corpus, args.repeats, args.updates, 1)
    if args.layers > 1:
        table(corpus, args.repeats, args.updates, args.layers)


if __name__ == "__main__":
    main()
