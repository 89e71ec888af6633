import hashlib
import json
import zipfile

import numpy as np
import pytest

from lib.data import Vocab
from lib.training import progress

QUIET = dict(show=progress.QUIET)     # lib.training.runs.run without a word

# A small text written for the tests: K = 24 characters, some repeated words, two lines.
SMALL_TEXT = ("a cat sat on the mat, and the dog ran far.\n"
              "then the bird sang: was it a song? yes, it was!\n") * 4


@pytest.fixture
def small_text():
    return SMALL_TEXT


@pytest.fixture
def small_vocab():
    return Vocab.from_text(SMALL_TEXT)


@pytest.fixture
def small_data(small_vocab):
    return small_vocab.encode(SMALL_TEXT)


@pytest.fixture
def corpus_file(tmp_path):
    path = tmp_path / "small.txt"
    path.write_text(SMALL_TEXT, encoding="utf-8")
    return path


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


def assert_same_state(a, b):
    """Two training states hold the same numbers, bit for bit."""
    for name in ("theta", "best_theta", "hprev", "losses", "smooth_losses"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    assert a.opt.keys() == b.opt.keys() and all(np.array_equal(a.opt[k], b.opt[k]) for k in a.opt)
    assert a.samples == b.samples and a.epoch_starts == b.epoch_starts
    assert [(v["step"], v["loss"]) for v in a.val] == [(v["step"], v["loss"]) for v in b.val]  # seconds differ
    assert (a.e, a.epoch, a.step, a.best_step, a.eta_scale) == (b.e, b.epoch, b.step, b.best_step, b.eta_scale)
    assert (a.avg_theta is None) == (b.avg_theta is None)
    assert a.avg_theta is None or np.array_equal(a.avg_theta, b.avg_theta)


def assert_figure(png):
    """png (and the PDF beside it) hold a drawn figure: a readable image of a figure's size with lines and
    text on it (not blank, not one colour), and a PDF that is one."""
    import matplotlib.image
    from pathlib import Path
    png = Path(png)
    img = matplotlib.image.imread(png)
    assert img.ndim == 3 and img.shape[0] >= 300 and img.shape[1] >= 600, img.shape
    ink = (img[..., :3] < 0.9).any(axis=-1).mean()             # share of pixels that are not near white
    assert 0.01 < ink < 0.95, f"{png.name}: {ink:.1%} of the pixels are drawn"
    assert len(np.unique(img[..., :3].reshape(-1, 3), axis=0)) > 20, f"{png.name}: too few colours"
    pdf = png.with_suffix(".pdf").read_bytes()
    assert pdf.startswith(b"%PDF") and len(pdf) > 2000, png.with_suffix(".pdf")


def forge(path, out, change):
    """A checkpoint whose meta was changed by change(meta) and whose digests were recomputed to match:
    what someone editing the file on purpose would make."""
    with zipfile.ZipFile(path) as zf:
        arrays = {name[:-4]: np.lib.format.read_array(zf.open(name)) for name in zf.namelist()}
    meta = json.loads(arrays.pop("meta").tobytes())
    arrays.pop("digest")
    extra = change(meta) or {}
    arrays.update(extra)
    meta["arrays"].update({k: hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest() for k, v in extra.items()})
    record = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    with zipfile.ZipFile(out, "w") as zf:
        for name, a in {"meta": record, "digest": np.frombuffer(hashlib.sha256(record).digest(), np.uint8),
                        **arrays}.items():
            with zf.open(name + ".npy", "w") as f:
                np.lib.format.write_array(f, a)
    return out
