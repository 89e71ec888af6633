"""The checkpoint is verified before it is used: any changed byte is refused or changes nothing."""
import json
import zipfile

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lib.training import checkpoint
from lib.training.checkpoint import CheckpointError, load_state, save_state
from lib.config import Config
from lib.training.loop import train

from conftest import forge

pytestmark = pytest.mark.fast


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """A real checkpoint of a small run with Adam, validation and samples: its bytes and what it holds."""
    from conftest import SMALL_TEXT
    from lib.data import Vocab
    vocab = Vocab.from_text(SMALL_TEXT)
    data = vocab.encode(SMALL_TEXT)
    path = tmp_path_factory.mktemp("ck") / "checkpoint.npz"
    cfg = Config(m=3, steps=7, sample_every=3, sample_length=5, optimizer="adam", val_fraction=0.2, val_every=3)
    train(cfg, data, vocab, ckpt=path)
    return path.read_bytes(), load_state(path)


def same(a, b):
    """Two loaded checkpoints hold the same numbers, bit for bit, and the same record."""
    (cfg_a, vocab_a, s_a, meta_a), (cfg_b, vocab_b, s_b, meta_b) = a, b
    arrays = ("theta", "best_theta", "hprev", "losses", "smooth_losses")
    return cfg_a == cfg_b and vocab_a == vocab_b and meta_a == meta_b and \
        all(np.array_equal(getattr(s_a, k), getattr(s_b, k)) for k in arrays) and \
        all(np.array_equal(s_a.opt[k], s_b.opt[k]) for k in s_a.opt) and \
        s_a.samples == s_b.samples and s_a.val == s_b.val and s_a.epoch_starts == s_b.epoch_starts


def load_flipped(tmp_path, data, i, xor):
    bad = bytearray(data)
    bad[i] ^= xor
    path = tmp_path / "flipped.npz"
    path.write_bytes(bytes(bad))
    try:
        return load_state(path)
    except CheckpointError as err:
        message = str(err)
        assert message and "\n" not in message and "flipped.npz" in message
        return None


def member_data(data):
    """The byte offsets of every member's content (array headers and data) in a zip file's bytes."""
    import io
    import struct
    inside = np.zeros(len(data), dtype=bool)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for info in zf.infolist():
            name_len, extra_len = struct.unpack("<HH", data[info.header_offset + 26:info.header_offset + 30])
            start = info.header_offset + 30 + name_len + extra_len
            inside[start:start + info.file_size] = True
    return inside


def test_every_single_changed_byte_is_refused_or_changes_nothing(tmp_path, real):
    """Every byte of the zip's own structure and every 10th byte of the members' contents, changed by a
    random nonzero mask: refused with a one-line message, or (only in a zip field that nothing reads)
    loaded with bit-identical contents. Every changed byte of content is refused."""
    data, original = real
    inside = member_data(data)
    masks = np.random.default_rng(0).integers(1, 256, len(data))
    for i in [i for i in range(len(data)) if not inside[i] or i % 10 == 0]:
        loaded = load_flipped(tmp_path, data, i, int(masks[i]))
        assert loaded is None or same(loaded, original), f"byte {i} changed what the checkpoint holds"
        assert loaded is None or not inside[i], f"a changed byte of content (at {i}) was not noticed"


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_changed_bytes_anywhere_with_any_mask(tmp_path_factory, real, draw):
    data, original = real
    tmp = tmp_path_factory.mktemp("flip", numbered=True)
    i = draw.draw(st.integers(0, len(data) - 1))
    loaded = load_flipped(tmp, data, i, draw.draw(st.integers(1, 255)))
    assert loaded is None or same(loaded, original)


@pytest.mark.parametrize("change,needle", [
    (lambda m: m.update(step="12"), "step"),
    (lambda m: m.update(step=10**14), "damaged|forged"),
    (lambda m: m["config"].update(m=10**9), "damaged|forged"),
    (lambda m: m["config"].update(eta=-1), "eta"),
    (lambda m: m["config"].update(hidden=5), "Unknown config key"),
    (lambda m: m.update(vocab="ba"), "sorted"),
    (lambda m: m.update(vocab="aab"), "distinct|sorted"),
    (lambda m: m.update(samples=5, n_samples=-1), "n_samples"),
    (lambda m: m.update(status="great"), "status"),
    (lambda m: m.update(seconds=-3.0), "seconds"),
    (lambda m: m.update(smooth_loss=None), "smooth_loss"),
    (lambda m: m.update(version=2), "version 2"),
    (lambda m: m.update(format="other"), "not a checkpoint of this project"),
    (lambda m: m.update(corpus="abc"), "corpus"),
    (lambda m: m.update(config=[1, 2]), "config"),
])
def test_forged_meta_is_refused_in_one_line(tmp_path, real, change, needle):
    data, _ = real
    (tmp_path / "real.npz").write_bytes(data)
    forged = forge(tmp_path / "real.npz", tmp_path / "forged.npz", change)
    with pytest.raises(CheckpointError, match=needle) as err:
        load_state(forged)
    assert "\n" not in str(err.value)


def test_non_finite_parameters_are_refused(tmp_path, real):
    data, _ = real
    (tmp_path / "real.npz").write_bytes(data)

    def nan_in_W(meta):
        with zipfile.ZipFile(tmp_path / "real.npz") as zf:
            W = np.lib.format.read_array(zf.open("W.npy"))
        W[0, 0] = np.nan
        return {"W": W}
    with pytest.raises(CheckpointError, match="not finite"):
        load_state(forge(tmp_path / "real.npz", tmp_path / "nan.npz", nan_in_W))


def test_a_hidden_extra_array_is_refused_before_it_is_unpacked(tmp_path, real):
    """An extra member that deflates to 3 GiB: refused from the zip's directory alone, in a moment."""
    data, _ = real
    path = tmp_path / "extra.npz"
    path.write_bytes(data)
    with zipfile.ZipFile(path, "a", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as zf:
        with zf.open("hidden.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f8", "fortran_order": False, "shape": (3 << 27,)})
            block = bytes(1 << 24)
            for _ in range(3 << 6):
                f.write(block)
    assert path.stat().st_size < 16 << 20                       # 3 GiB hidden in under 16 MB
    with pytest.raises(CheckpointError, match="arrays are not the ones"):
        load_state(path)


def test_a_member_stored_larger_than_its_array_is_refused(tmp_path, real):
    data, _ = real
    (tmp_path / "real.npz").write_bytes(data)
    with zipfile.ZipFile(tmp_path / "real.npz") as zf:
        arrays = {n: zf.read(n) for n in zf.namelist()}
    arrays["losses.npy"] += bytes(1 << 20)          # a megabyte more than the array it claims to be
    with zipfile.ZipFile(tmp_path / "big.npz", "w") as zf:
        for name, raw in arrays.items():
            zf.writestr(name, raw)
    with pytest.raises(CheckpointError, match="larger than its array"):
        load_state(tmp_path / "big.npz")


def test_a_checkpoint_is_a_plain_npz(real, tmp_path):
    data, (cfg, vocab, state, meta) = real
    (tmp_path / "c.npz").write_bytes(data)
    with np.load(tmp_path / "c.npz", allow_pickle=False) as npz:
        assert npz["W"].shape == (3, 3) and npz["losses"].shape == (7,)
        assert json.loads(npz["meta"].tobytes())["step"] == 7
    assert meta["version"] == checkpoint.VERSION and state.val and state.samples


def test_save_state_round_trip_keeps_samples_and_validation(tmp_path, real):
    _, (cfg, vocab, state, meta) = real
    save_state(tmp_path / "again.npz", cfg, vocab, state, meta["corpus"]["sha256"], meta["corpus"]["n_chars"])
    assert same(load_state(tmp_path / "again.npz"), (cfg, vocab, state, meta))
