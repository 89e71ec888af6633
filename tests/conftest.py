import numpy as np
import pytest

from lib.data import Vocab

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
