"""The cost of the live view: training in a Jupyter kernel with the progress line, the samples and the plot
redrawn every 1.5 s, against the same training with no view at all, alternating, in one run.

    python benchmarks/live.py [--steps 100000] [--repeats 2]
"""
import argparse
import statistics

from jupyter_client.manager import KernelManager

CODE = """
import time
from lib.config import Config
from lib.data import load_corpus
from lib.training.loop import View, train
from lib.training.progress import Progress
corpus = load_corpus()
t0 = time.perf_counter()
cfg = Config(steps={steps})
view = Progress(cfg.steps, seq_length=cfg.seq_length) if {live} else View()
state = train(cfg, corpus.data, corpus.vocab, view=view)
print("SECONDS", time.perf_counter() - t0)
"""


def timed(kc, steps, live):
    msg_id = kc.execute(CODE.format(steps=steps, live=live))
    seconds = None
    while True:
        msg = kc.get_iopub_msg(timeout=600)
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "stream" and "SECONDS" in msg["content"]["text"]:
            seconds = float(msg["content"]["text"].split()[-1])
        if msg["msg_type"] == "error":
            raise SystemExit("error: " + msg["content"]["evalue"])
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return seconds


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--steps", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()
    km = KernelManager(kernel_name="python3", transport="ipc")     # private sockets, as lib/report/pdf.py uses
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)
        times = {True: [], False: []}
        for _ in range(args.repeats):
            for live in (False, True):
                times[live].append(timed(kc, args.steps, live))
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)
    off, on = statistics.median(times[False]), statistics.median(times[True])
    print(f"training {args.steps:,} updates in a Jupyter kernel, median of {args.repeats} alternating runs")
    print(f"{'view':<44} {'seconds':>8} {'us/update':>10}")
    print(f"{'none':<44} {off:>8.2f} {off / args.steps * 1e6:>10.0f}")
    print(f"{'live (line, samples, plot every 1.5 s)':<44} {on:>8.2f} {on / args.steps * 1e6:>10.0f}")
    print(f"goal, the live view within 5% of none: {'met' if on <= 1.05 * off else 'NOT met'} ({on / off - 1:+.1%})")


if __name__ == "__main__":
    main()
