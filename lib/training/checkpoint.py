"""One checkpoint file holds a whole run, and is verified before anything in it is used.

The file is a zip of .npy arrays stored without compression, so numpy.load reads it as an .npz:
    meta.npy        (L,) uint8   a JSON record, UTF-8 (below)
    digest.npy      (32,) uint8  the sha256 of meta
    U.npy .. c.npy               the parameters (names from lib/model/cells.py); best_U .. best_c the best
                                 model's; avg_U .. with ema; held_U .. when the last validation held a
                                 best (see State); opt_mem_U .. (AdaGrad) or opt_m_U .., opt_v_U .. (Adam)
    hprev.npy       (B, S)       the hidden state of each stream
    losses.npy, smooth_losses.npy (step,); epoch_starts.npy (n_epochs,) int64
    sample_steps.npy (n,) int64, sample_smooth.npy (n,) (NaN before the first update),
    sample_text.npy (n, sample_length) uint16 character indices
    val_steps.npy (v,) int64, val_seconds.npy (v,), val_loss.npy (v,)
meta: format, version, config, vocabulary, corpus (sha256, characters), position in the text, step,
losses, best step (and held step), seconds, status, history lengths, and the sha256 of every array.

Loading checks before it unpacks anything: a regular file; meta no larger than MAX_META and equal to
its digest; meta's fields of the right types and ranges, with a sorted, distinct vocabulary; the members
exactly those meta implies, stored uncompressed, no larger than their arrays. Then each array's header
must give the dtype and shape derived from meta, its bytes its sha256, and the parameters must be
finite. So any changed byte is refused, or lies in a zip field that nothing reads and changes nothing.
"""
import hashlib
import json
import math
import zipfile
from pathlib import Path

import numpy as np

from lib.model import cells
from lib.util import files
from lib.config import Config
from lib.data import CorpusError, Vocab
from lib.training.state import MAX_COUNT, OPTIMIZER_STATE, SCALARS, State

CKPT, SUMMARY = "checkpoint.npz", "summary.json"    # a run's two files, in its folder
FORMAT = "dd2424-char-rnn-checkpoint"
VERSION = 3         # 3: digests, verified layout, samples and validation history as arrays
MAX_META = 1 << 20  # bytes of the JSON record
MAX_PARAM = 1e6     # upper bound for any parameter (trained networks keep theirs within a few tens)


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message that says why and what to do."""


# --- the state's layout -----------------------------------------------------------------------

def layout(cfg, K, meta):
    """{array name: (dtype, shape)} of a checkpoint of a run with cfg, vocabulary size K and meta."""
    cell = cells.of(cfg)
    B, S, f8, i8 = cfg.batch_size, cell.state_size(cfg.m), np.dtype("<f8"), np.dtype("<i8")
    out = {}
    held = ["held_"] * (meta.get("held_step") is not None)
    opt = [f"opt_{o}_" for o in OPTIMIZER_STATE[cfg.optimizer]]
    for prefix in ["", "best_"] + ["avg_"] * bool(cfg.ema) + held + opt:
        out.update({prefix + name: (f8, shape) for name, shape in zip(cell.names, cell.shapes(K, cfg.m))})
    step, n_s, n_v = meta["step"], meta["n_samples"], meta["n_val"]
    out.update({"hprev": (f8, (B, S)), "losses": (f8, (step,)), "smooth_losses": (f8, (step,)),
                "epoch_starts": (i8, (meta["n_epochs"],)), "sample_steps": (i8, (n_s,)),
                "sample_smooth": (f8, (n_s,)), "sample_text": (np.dtype("<u2"), (n_s, cfg.sample_length)),
                "val_steps": (i8, (n_v,)), "val_seconds": (f8, (n_v,)), "val_loss": (f8, (n_v,))})
    return out


def _arrays_of(cfg, vocab, state):
    K, m, cell = vocab.K, cfg.m, cells.of(cfg)
    arrays = {}
    vectors = [("", state.theta), ("best_", state.best_theta)] + [("avg_", state.avg_theta)] * bool(cfg.ema)
    vectors += [("held_", state.held_best)] * (state.held_best is not None)
    for prefix, theta in vectors + [(f"opt_{o}_", a) for o, a in state.opt.items()]:
        arrays.update({prefix + name: a for name, a in zip(cell.names, cell.views(theta, K, m))})
    s = state.samples
    arrays.update({
        "hprev": state.hprev, "losses": state.losses[:state.step], "smooth_losses": state.smooth_losses[:state.step],
        "epoch_starts": np.array(state.epoch_starts, dtype=np.int64),
        "sample_steps": np.array([x["step"] for x in s], dtype=np.int64),
        "sample_smooth": np.array([np.nan if x["smooth_loss"] is None else x["smooth_loss"] for x in s]),
        "sample_text": np.array([vocab.encode(x["text"]) for x in s], dtype=np.uint16).reshape(
            len(s), cfg.sample_length),
        "val_steps": np.array([v["step"] for v in state.val], dtype=np.int64),
        "val_seconds": np.array([v["seconds"] for v in state.val], dtype=np.float64),
        "val_loss": np.array([v["loss"] for v in state.val], dtype=np.float64)})
    return {k: np.ascontiguousarray(a, dtype=np.float64 if a.dtype.kind == "f" else a.dtype)
            for k, a in arrays.items()}


def save_state(path, cfg, vocab, state, corpus_sha256, n_chars):
    """Write the whole run to path, atomically (see lib/util/files.py)."""
    arrays = _arrays_of(cfg, vocab, state)
    meta = {"format": FORMAT, "version": VERSION, "config": cfg.to_dict(), "vocab": vocab.chars,
            "corpus": {"sha256": corpus_sha256, "n_chars": int(n_chars)},
            **{f.name: _json(getattr(state, f.name)) for f in SCALARS},
            "n_epochs": len(state.epoch_starts),
            "n_samples": len(state.samples), "n_val": len(state.val),
            "arrays": {k: hashlib.sha256(a.tobytes()).hexdigest() for k, a in arrays.items()}}
    record = np.frombuffer(json.dumps(meta, allow_nan=False).encode("utf-8"), dtype=np.uint8)
    arrays = {"meta": record, "digest": np.frombuffer(hashlib.sha256(record).digest(), dtype=np.uint8),
              **arrays}
    with files.atomic_path(path) as tmp, zipfile.ZipFile(tmp, "w", zipfile.ZIP_STORED) as zf:
        for name, a in arrays.items():
            with zf.open(name + ".npy", "w", force_zip64=True) as f:
                np.lib.format.write_array(f, a, allow_pickle=False)


def save_summary(path, info):
    """Write a run's summary (the dict of lib/training/state.py's summary()) to path as JSON, atomically."""
    files.write_text(path, json.dumps(info, indent=2) + "\n")


def _json(value):
    """A scalar of State as JSON holds it: None for None and for a number that is not finite."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    return float(value) if math.isfinite(value) else None


def in_folder(path):
    """path, or path/checkpoint.npz when path is a run's folder."""
    path = Path(path)
    return path / CKPT if path.is_dir() else path


def load_state(path):
    """(cfg, vocab, state, meta) from a checkpoint (or a run's folder), verified; CheckpointError saying
    why otherwise."""
    path = in_folder(path)
    try:
        st = files.regular_file(path, "checkpoint")
    except files.FolderError as err:
        raise CheckpointError(f"{err} Give the checkpoint.npz of a run.") from None
    if st is None:
        raise CheckpointError(f"Checkpoint not found: {path}. Train first (notebook 3 or python -m lib.train).")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise CheckpointError(f"{path} is not a checkpoint of this project (not a .npz file"
                              f"{', but empty' if not magic else ''}).")
    try:
        with zipfile.ZipFile(path) as zf:
            cfg, vocab, meta, arrays = _read(zf, path)
    except CheckpointError:
        raise
    except Exception as err:                # any other fault in parsing an untrusted file is damage
        raise CheckpointError(f"{path} is truncated or corrupted ({type(err).__name__}: "
                              f"{str(err)[:120]}); use an earlier copy or train again.") from None
    return cfg, vocab, _state(cfg, vocab, meta, arrays, path), meta


def _read(zf, path):
    infos = {info.filename: info for info in zf.infolist()}
    if "meta.npy" not in infos:
        raise CheckpointError(f"{path} is a .npz file but not a checkpoint of this project (no meta).")
    if "digest.npy" not in infos:
        with zf.open(infos["meta.npy"]) as f:
            _header(f, path)                # refuses pickled objects by name
        raise CheckpointError(f"{path} has no digest: it was written by an earlier version of this project "
                              f"or is not a checkpoint of it; this code reads format {VERSION}. Train again.")
    record = _member(zf, infos, "meta", np.dtype("u1"), None, path)
    digest = _member(zf, infos, "digest", np.dtype("u1"), (32,), path)
    if hashlib.sha256(record.tobytes()).digest() != digest.tobytes():
        raise CheckpointError(f"{path} is damaged (its meta record does not match its digest); "
                              "use an earlier copy or train again.")
    meta = json.loads(record.tobytes().decode("utf-8"), parse_constant=_no_constant)
    cfg, vocab = _validate(meta, path)
    expected = layout(cfg, vocab.K, meta)
    if set(infos) != {name + ".npy" for name in [*expected, "meta", "digest"]} or \
            set(meta["arrays"]) != set(expected):
        raise CheckpointError(f"{path} is damaged: its arrays are not the ones its meta record implies.")
    arrays = {}
    for name, (dtype, shape) in expected.items():
        arrays[name] = a = _member(zf, infos, name, dtype, shape, path)
        if hashlib.sha256(a.tobytes()).hexdigest() != meta["arrays"][name]:
            raise CheckpointError(f"{path} is damaged (array {name} does not match its digest); "
                                  "use an earlier copy or train again.")
    return cfg, vocab, meta, arrays


def _member(zf, infos, name, dtype, shape, path):
    """The array in member name.npy, read only if it is stored, no larger than expected, and its header
    gives dtype and shape (shape None: 1-D of at most MAX_META entries)."""
    info = infos[name + ".npy"]
    limit = MAX_META if shape is None else dtype.itemsize * math.prod(shape)
    if info.compress_type != zipfile.ZIP_STORED or info.file_size > limit + 4096:
        raise CheckpointError(f"{path} is damaged or forged: member {name} is compressed or larger than "
                              "its array can be.")
    with zf.open(info) as f:
        found_shape, fortran, found_dtype = _header(f, path)
        ok = found_dtype == dtype and not fortran and (
            found_shape == tuple(shape) if shape is not None else len(found_shape) == 1 and found_shape[0] <= limit)
        if not ok:
            raise CheckpointError(f"{path} is damaged: array {name} is {found_dtype} {found_shape}, "
                                  f"expected {dtype} {shape}.")
        n = dtype.itemsize * math.prod(found_shape)
        data = f.read(n)
        if len(data) != n or f.read(1):
            raise CheckpointError(f"{path} is damaged: array {name} has the wrong length.")
    return np.frombuffer(data, dtype=dtype).reshape(found_shape).copy()


def _header(f, path):
    """(shape, fortran_order, dtype) from the .npy header at f; pickled objects are refused."""
    version = np.lib.format.read_magic(f)
    read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    shape, fortran, dtype = read(f, max_header_size=4096)
    if dtype.hasobject:
        raise CheckpointError(f"{path} holds Python objects that only pickle could load; refused (loading "
                              "pickle can run arbitrary code). It is not a checkpoint of this project.")
    return shape, fortran, dtype


def _no_constant(name):
    raise ValueError(f"{name} in meta")


def _validate(meta, path):
    """(cfg, vocab) from a meta record whose every field has the right type and range."""
    def bad(what):
        return CheckpointError(f"{path} is damaged or forged ({what}); use an earlier copy or train again.")

    def count(key, hi=MAX_COUNT, lo=0):
        v = meta.get(key)
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise bad(f"{key} = {v!r}")
        return v

    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a .npz file but not a checkpoint of this project.")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"{path} has checkpoint format version {meta.get('version')!r}; this code reads "
                              f"version {VERSION}. Train again.")
    try:
        cfg = Config.from_dict(meta.get("config"))
        vocab = Vocab(meta.get("vocab")) if isinstance(meta.get("vocab"), str) else None
    except (ValueError, TypeError, CorpusError) as err:
        raise bad(f"config or vocabulary: {err}") from None
    if vocab is None:
        raise bad("vocabulary")
    corpus = meta.get("corpus")
    if not isinstance(corpus, dict) or not isinstance(corpus.get("sha256"), str) \
            or len(corpus["sha256"]) != 64 or isinstance(corpus.get("n_chars"), bool) \
            or not isinstance(corpus.get("n_chars"), int) or not 2 <= corpus["n_chars"] <= MAX_COUNT:
        raise bad("corpus")
    for f in SCALARS:                       # step first: the others are bounded by it
        if not f.metadata["check"](meta.get(f.name), meta):
            raise bad(f"{f.name} = {meta.get(f.name)!r}" + f" at update {meta['step']}" * (f.name.endswith("_loss")))
    step = meta["step"]
    count("n_epochs", step + 1, lo=1)
    count("n_samples", step + 2)
    count("n_val", step + 2)
    digests = meta.get("arrays")
    if not isinstance(digests, dict) or not all(isinstance(v, str) and len(v) == 64 for v in digests.values()):
        raise bad("array digests")
    return cfg, vocab


def _state(cfg, vocab, meta, a, path):
    """The State from verified arrays; parameters must be finite (a diverged run's last ones may not be)."""
    K, m, cell, dtype = vocab.K, cfg.m, cells.of(cfg), np.dtype(cfg.dtype)

    def flat(prefix):                       # stored as float64, used in the run's dtype
        theta = np.empty(cell.n_params(K, m), dtype=dtype)
        for name, view in zip(cell.names, cell.views(theta, K, m)):
            view[...] = a[prefix + name]
        return theta

    held = meta.get("held_step") is not None
    must_be_finite = ["best_"] + ["avg_"] * bool(cfg.ema) + ["held_"] * held + ["losses", "smooth_losses",
                                                                                "val_loss", "val_seconds"]
    if meta["status"] != "diverged":
        must_be_finite += ["", "hprev"] + [f"opt_{o}_" for o in OPTIMIZER_STATE[cfg.optimizer]]
    for key in must_be_finite:
        names = [key + n for n in cell.names] if key.endswith("_") or key == "" else [key]
        if not all(np.isfinite(a[n]).all() for n in names):
            raise CheckpointError(f"{path} holds parameters or losses that are not finite numbers; "
                                  "use an earlier copy or train again.")
    for key in ["best_"] + ["avg_"] * bool(cfg.ema) + ["held_"] * held + [""] * (meta["status"] != "diverged"):
        largest = max(float(np.abs(a[key + n]).max(initial=0.0)) for n in cell.names)
        if largest > MAX_PARAM:
            raise CheckpointError(f"{path} holds parameters as large as {largest:.3g}, which no training run "
                                  "makes (its samples would be noise); use an earlier copy or train again.")
    if (a["sample_text"] >= K).any():
        raise CheckpointError(f"{path} is damaged: a sample holds a character outside its vocabulary.")
    samples = [{"step": int(s), "smooth_loss": None if np.isnan(x) else float(x), "text": vocab.decode(t)}
               for s, x, t in zip(a["sample_steps"], a["sample_smooth"], a["sample_text"])]
    val = [{"step": int(s), "seconds": float(t), "loss": float(x)}
           for s, t, x in zip(a["val_steps"], a["val_seconds"], a["val_loss"])]
    scalars = {f.name: f.default if meta[f.name] is None else meta[f.name] for f in SCALARS}
    return State(theta=flat(""), opt={o: flat(f"opt_{o}_") for o in OPTIMIZER_STATE[cfg.optimizer]},
                 best_theta=flat("best_"), avg_theta=flat("avg_") if cfg.ema else None,
                 hprev=a["hprev"].astype(dtype), losses=a["losses"], smooth_losses=a["smooth_losses"],
                 epoch_starts=[int(s) for s in a["epoch_starts"]], samples=samples, val=val,
                 held_best=flat("held_") if held else None, **scalars)
