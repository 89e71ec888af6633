"""The import graph of lib/: every import, at the top of a module or inside a function, read with ast.
Nothing lower imports anything higher, so there is no cycle and no command module runs twice."""
import ast
from pathlib import Path

import pytest

LIB = Path(__file__).resolve().parent.parent / "lib"

pytestmark = pytest.mark.fast


def imports_of(path):
    """The lib modules (names without "lib.") that the module at path imports, anywhere in it."""
    out = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out |= {a.name.split(".")[1] for a in node.names if a.name.startswith("lib.")}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "lib":
                out |= {a.name for a in node.names}
            elif node.module.startswith("lib."):
                out.add(node.module.split(".")[1])
    return out


def graph():
    modules = {p.stem for p in LIB.glob("*.py")} - {"__init__"}
    return {m: imports_of(LIB / f"{m}.py") & modules for m in sorted(modules)}


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


def test_lib_has_no_import_cycle():
    found = cycle(graph())
    assert found is None, "import cycle: " + " -> ".join(found)


def test_the_cycle_finder_finds_cycles():
    assert cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert cycle({"a": {"a"}}) == ["a", "a"]
    assert cycle({"a": {"b"}, "b": set()}) is None


def test_the_reader_sees_imports_inside_functions(tmp_path):
    src = tmp_path / "m.py"
    src.write_text("import numpy\nfrom lib import cells, data\n\ndef f():\n    from lib.loop import train\n"
                   "    import lib.runs\n")
    assert imports_of(src) == {"cells", "data", "loop", "runs"}


def test_the_layers_stand_in_order():
    """command -> runs -> loop -> {cells, optim, kernels, state, sample}: no step imports one above it."""
    edges = graph()

    def reached(m, seen):
        for n in edges[m] - seen:
            seen.add(n)
            reached(n, seen)
        return seen
    layers = [{"train", "search"}, {"runs"}, {"loop"}, {"cells", "optim", "kernels", "state", "sample"}]
    for i, layer in enumerate(layers):
        above = set().union(*layers[:i])
        for m in layer:
            up = reached(m, set()) & above
            assert not up, f"lib.{m} imports (directly or through others) {sorted(up)}, which stand above it"
