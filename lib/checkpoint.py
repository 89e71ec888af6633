"""One checkpoint file: a NumPy .npz that loads with allow_pickle=False.

Arrays: the parameters U, W, V, b, c; the best parameters best_U .. best_c; the optimiser state
opt_<name>_U .. opt_<name>_c (AdaGrad: opt_mem_*); hprev (m,); the histories losses (step,),
smooth_losses (step,) and epoch_starts (n_epochs,). Everything else (format, config, vocabulary,
position in the text, step, smooth loss, best step, RNG state, samples, status) is one JSON string, meta.

save() writes a temporary file beside the target, fsyncs it and renames it over the target, so a
crash, Ctrl-C or SIGKILL at any moment leaves either the old checkpoint or the new one, never a
broken file.
"""
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FORMAT = "dd2424-char-rnn-checkpoint"
VERSION = 2       # 2: optimiser arrays opt_<name>_*, hprev (B, m), validation history


class CheckpointError(ValueError):
    """A checkpoint that cannot be used, with a message that says why and what to do."""


def write_atomic(path, data):
    """Write bytes to path through a temporary file beside it, fsync and a rename: afterwards path
    holds either its old content or data, never a mix, whatever happens to the process meanwhile."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(path.name + ".*.part"):   # left by a process killed while writing
        stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name + ".", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    try:                                   # make the rename itself durable
        dir_fd = os.open(path.parent, os.O_RDONLY)
        os.fsync(dir_fd)
        os.close(dir_fd)
    except OSError:
        pass


def save(path, arrays, meta):
    """Write arrays (dict name -> ndarray) and meta (JSON-able dict) to path, atomically."""
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(json.dumps(dict(meta, format=FORMAT, version=VERSION))), **arrays)
    write_atomic(path, buffer.getvalue())


def load(path):
    """(arrays dict, meta dict) from a checkpoint; CheckpointError with a clear reason otherwise."""
    path = Path(path)
    if not path.exists():
        raise CheckpointError(f"Checkpoint not found: {path}. Train first (notebook 3 or python -m lib.train).")
    if path.is_dir():
        raise CheckpointError(f"Checkpoint path is a directory: {path}; give the checkpoint.npz inside it.")
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise CheckpointError(
            f"{path} is not a checkpoint of this project (not a .npz file"
            f"{', but empty' if not magic else ''}).")
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except ValueError as err:
        if "pickle" in str(err):
            raise CheckpointError(
                f"{path} holds Python objects that only pickle could load; refused "
                "(loading pickle can run arbitrary code). It is not a checkpoint of this project.") from None
        raise CheckpointError(f"{path} is not a readable .npz checkpoint ({err}).") from None
    except (zipfile.BadZipFile, EOFError, OSError) as err:
        raise CheckpointError(
            f"{path} is truncated or corrupted ({type(err).__name__}: {err}); "
            "use an earlier copy or train again.") from None
    if "meta" not in arrays:
        raise CheckpointError(f"{path} is a .npz file but not a checkpoint of this project (no meta).")
    try:
        meta = json.loads(str(arrays.pop("meta")))
    except json.JSONDecodeError:
        raise CheckpointError(f"{path} has an unreadable meta record; it is corrupted.") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is a .npz file but not a checkpoint of this project.")
    if meta.get("version") != VERSION:
        raise CheckpointError(
            f"{path} has checkpoint format version {meta.get('version')}; this code reads version {VERSION}.")
    return arrays, meta
