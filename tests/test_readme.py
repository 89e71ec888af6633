"""The README is the project's map: the two commands on its first screen, every file of lib/ named in
"Where the code is", every command in the exit codes, at most 2,000 words (dated results live in docs/)."""
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
LIB = ROOT / "lib"
README = (ROOT / "README.md").read_text(encoding="utf-8")

pytestmark = pytest.mark.fast


def section(title):
    """The text of the README's section `## title`, up to the next one."""
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", README, re.M | re.S)
    assert match, f"the README has no section '## {title}'"
    return match.group(1)


def lib_files():
    """Every file of lib/ a newcomer should find on the map (not __init__.py, not what a build makes)."""
    return sorted(p.relative_to(LIB) for p in LIB.rglob("*") if p.is_file() and p.name != "__init__.py"
                  and "__pycache__" not in p.parts and p.suffix not in (".so", ".pyd", ".pyc"))


def named(rel, text):
    """Whether the map names lib/rel: its whole path, or its name in the bullet of its folder."""
    if f"`lib/{rel.as_posix()}`" in text:
        return True
    if len(rel.parts) == 1:
        return False
    bullets = re.split(r"\n(?=- )", text)
    folder = f"`lib/{rel.parent.as_posix()}/`"
    return any(folder in b and f"`{rel.name}`" in b for b in bullets)


def test_the_map_names_every_file_of_lib():
    where = section("Where the code is")
    missing = [str(rel) for rel in lib_files() if not named(rel, where)]
    assert not missing, f"the README's map does not name lib/{', lib/'.join(missing)}"


def test_the_map_check_fails_on_a_missing_module():
    text = "- `lib/model/`: `cells.py`, the network.\n- `lib/rnn.py`: the network.\n"
    assert named(Path("model/cells.py"), text) and named(Path("rnn.py"), text)
    assert not named(Path("model/gru.py"), text) and not named(Path("optim.py"), text)
    assert not named(Path("search/cells.py"), text)


def test_the_two_commands_are_on_the_first_screen():
    first = "\n".join(README.splitlines()[:25])
    assert "make report" in first and "make test" in first


def test_the_exit_codes_name_every_command():
    commands = sorted({f"lib.{p.stem}" for p in LIB.glob("*.py") if '__name__ == "__main__"' in p.read_text()} |
                      {f"lib.{p.parent.name}" for p in LIB.glob("*/__main__.py")})
    assert len(commands) >= 8
    codes = section("The command line")
    sentence = codes[codes.index("Exit codes"):codes.index("| code |")]
    missing = [c for c in commands if f"`{c}`" not in sentence]
    assert not missing, f"the exit codes do not name {missing}"
    words = ["no", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"]
    assert f"all {words[len(commands)]} commands" in sentence


def test_the_readme_is_a_map_of_at_most_2000_words():
    assert len(README.split()) <= 2000
