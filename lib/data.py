"""The corpus: reading it, its vocabulary, and encoding characters as indices.

The project trains on data/goblet_book.txt when a user has put their own copy there (it is copyrighted
and never committed); otherwise on a public-domain default corpus that `make data` builds (lib/corpus.py).
"""
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DATA_DIR = ROOT / "data"
GOBLET = DATA_DIR / "goblet_book.txt"
DEFAULT = DATA_DIR / "shakespeare_tragedies.txt"
MAX_K = 10_000  # a larger vocabulary is refused: U and V grow as K m, and every update with them


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


def read_text(path, min_length=2):
    """The text of a UTF-8 file, with universal newlines (CRLF and CR read as LF).

    Raises CorpusError for a missing path, a directory, a file that is not UTF-8 text,
    or a text shorter than min_length characters.
    """
    path = Path(path)
    if not path.exists():
        raise CorpusError(
            f"Corpus file not found: {path}. Put goblet_book.txt in {DATA_DIR}/ "
            "or run `make data` for the default corpus.")
    if path.is_dir():
        raise CorpusError(f"Corpus path is a directory, not a text file: {path}.")
    raw = path.read_bytes()
    nul = raw.find(b"\x00")
    if nul >= 0:
        raise CorpusError(
            f"{path} looks like a binary file (a NUL byte at byte offset {nul}); "
            "give a plain UTF-8 text file.")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise CorpusError(
            f"{path} is not UTF-8 (invalid byte 0x{raw[err.start]:02x} at byte offset {err.start}); "
            f"re-encode it, for example: iconv -f latin1 -t utf-8 {path.name} > fixed.txt") from None
    text = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n")
    if not text:
        raise CorpusError(f"Corpus file is empty: {path}.")
    if len(text) < min_length:
        raise CorpusError(
            f"{path} holds {len(text)} characters; training needs at least {min_length} "
            "(seq_length + 1). Use a longer text or a smaller seq_length.")
    return text


@dataclass(frozen=True)
class Vocab:
    """The sorted distinct characters of a text; index i stands for chars[i]."""
    chars: str

    @classmethod
    def from_text(cls, text):
        chars = "".join(sorted(set(text)))
        if len(chars) < 2:
            raise CorpusError(
                f"The text has {len(chars)} distinct character(s) ({chars!r}); there is nothing to "
                "predict. Use a real text.")
        if len(chars) > MAX_K:
            raise CorpusError(
                f"The text has {len(chars)} distinct characters; this project refuses more than "
                f"{MAX_K} (the parameters grow as K m). Use a text in an alphabetic script.")
        return cls(chars)

    @property
    def K(self):
        return len(self.chars)

    @property
    def char_to_ind(self):
        return {ch: i for i, ch in enumerate(self.chars)}

    def encode(self, text):
        """Indices (len(text),) int64. Raises ValueError naming any character not in the vocabulary."""
        missing = sorted(set(text) - set(self.chars))
        if missing:
            raise ValueError(
                f"Characters not in the vocabulary: {''.join(missing)!r} "
                f"({', '.join(f'U+{ord(c):04X}' for c in missing)}).")
        codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
        table = np.frombuffer(self.chars.encode("utf-32-le"), dtype=np.uint32)   # sorted code points
        return np.searchsorted(table, codes).astype(np.int64)

    def decode(self, indices):
        """The string for a sequence of indices."""
        return "".join(self.chars[i] for i in indices)


def load_corpus(path=None, min_length=2):
    """(text, vocab, data) for a corpus file; path None means default_corpus_path()."""
    text = read_text(default_corpus_path() if path is None else path, min_length)
    vocab = Vocab.from_text(text)
    return text, vocab, vocab.encode(text)
