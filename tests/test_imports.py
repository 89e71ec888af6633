"""The import graph of lib/ and its folders: every import, at the top of a module or inside a function, read
with ast. Nothing lower imports anything higher, so there is no cycle and no command module runs twice."""
import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "lib"

pytestmark = pytest.mark.fast


def module_name(path):
    """lib/model/cells.py -> "model.cells"; a package's __init__.py -> the package ("model")."""
    parts = path.relative_to(LIB).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def modules():
    """{name: path} of every module of lib/ (lib's own __init__ left out: it is the package itself)."""
    return {module_name(p): p for p in sorted(LIB.rglob("*.py")) if p.parent != LIB or p.stem != "__init__"}


def imports_of(path, known):
    """The lib modules (names without "lib.") that the module at path imports, anywhere in it. `from lib.a
    import b` is module a.b when that is one of known, else a name of module a."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name[4:] for a in node.names if a.name.startswith("lib.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module != "lib" and not node.module.startswith("lib."):
                continue
            base = node.module[4:]
            for a in node.names:
                sub = f"{base}.{a.name}" if base else a.name
                out.add(sub if sub in known else base)
    return out - {""}


def graph():
    mods = modules()
    return {m: imports_of(p, mods) & set(mods) - {m} for m, p in mods.items()}


def cycle(edges):
    """One import cycle as a list of modules (first = last), or None."""
    state, stack = {}, []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for n in sorted(edges[m]):
            if state.get(n) == "open":
                return stack[stack.index(n):] + [n]
            if n not in state:
                found = visit(n)
                if found:
                    return found
        state[m] = "done"
        stack.pop()
        return None
    for m in edges:
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def reached(edges, m):
    """Every module that importing m imports, directly or through others."""
    seen, todo = set(), [m]
    while todo:
        for n in edges[todo.pop()] - seen:
            seen.add(n)
            todo.append(n)
    return seen


def test_lib_has_no_import_cycle():
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"a"}}) == ["a", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_reader_sees_imports_inside_functions_and_across_folders(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import numpy\nfrom lib import data\nfrom lib.model import cells\n\ndef f():\n"
                   "    from lib.training.loop import train\n    import lib.training.runs\n")
    known = {"data", "model", "model.cells", "training", "training.loop", "training.runs"}
    assert imports_of(src, known) == {"data", "model.cells", "training.loop", "training.runs"}


def test_every_folder_is_a_package_whose_face_imports_nothing():
    """Each folder of lib/ has an __init__.py that says what the folder holds and imports nothing, so that
    importing one module of a folder never runs the others."""
    folders = [p for p in LIB.iterdir() if p.is_dir() and p.name != "__pycache__"]
    assert folders
    for folder in folders:
        face = folder / "__init__.py"
        assert face.exists(), f"lib/{folder.name}/ has no __init__.py"
        assert ast.get_docstring(ast.parse(face.read_text())), f"lib/{folder.name}/__init__.py says nothing"
        assert not imports_of(face, set(modules())), f"lib/{folder.name}/__init__.py imports modules"


def test_the_layers_stand_in_order():
    """The commands -> a run -> the loop -> the model and what it is made of -> the utilities: no step
    imports one above it, directly or through others, whatever folder each stands in."""
    edges = graph()
    layers = [{"train", "search.study", "search.__main__"}, {"training.runs"}, {"training.loop"},
              {"model.cells", "optim", "model.kernels", "training.state", "sample", "rnn"},
              {"util.cli", "util.files", "util.limits"}]
    assert set().union(*layers) <= set(edges), "a layer names a module that does not exist"
    for i, layer in enumerate(layers):
        above = set().union(*layers[:i])
        for m in layer:
            up = reached(edges, m) & above
            assert not up, f"lib.{m} imports (directly or through others) {sorted(up)}, which stand above it"


def test_the_bottom_folders_import_nothing_above_them():
    """lib/util/ imports nothing of lib outside itself; lib/model/ only lib/rnn.py, lib/optim.py, the
    settings and lib/util/."""
    edges = graph()
    allowed = {"util": ("util",), "model": ("model", "rnn", "optim", "config", "util")}
    for folder, may in allowed.items():
        for m in (m for m in edges if m.split(".")[0] == folder):
            bad = {n for n in edges[m] if n.split(".")[0] not in may}
            assert not bad, f"lib.{m} imports {sorted(bad)}, above lib/{folder}/"
