"""What every notebook does first: notebook.start(globals(), "07_ladder") types and checks the notebook's
parameters (its `parameters` cell, as papermill may have changed them) and returns ROOT.

Each parameter must have the type of its default in the notebook's `parameters` cell, keep its rule
(PARAMETER_RULES, a rule of lib/config.py's CHECKS), and be one the notebook has; SettingError names it as
the notebook does.
"""
import ast
import json
from pathlib import Path

from lib.config import SettingError, as_int, is_number, require
from lib.data import ROOT

PARAMETER_RULES = {   # a notebook parameter's rule (CHECKS) beyond the type of its default
    "steps": "count", "sample_every": "count", "m": "count", "seq_length": "count", "n_seeds": "count",
    "val_chars": "count", "val_checks": "count", "tune_chars": "count", "n": "sample", "seed": "seed",
    "h": "positive", "sig": "positive",
    "budget_seconds": "positive", "val_fraction": "[0, 0.5)",
}
TRUE, FALSE = ("true", "yes", "on", "1"), ("false", "no", "off", "0")


def start(namespace, notebook):
    """The start of every notebook: its parameters (in namespace, its globals) typed and checked, figures
    drawn as PNG (on screen) and PDF (in the report); returns ROOT, the project's folder."""
    try:
        from IPython import get_ipython
        shell = get_ipython()
    except ImportError:
        shell = None
    if shell is not None:
        shell.run_line_magic("config", 'InlineBackend.figure_formats = ["png", "pdf"]')
    check_parameters(namespace, notebook)
    return ROOT


def check_parameters(namespace, notebook, root=None):
    """Check and type a notebook's parameters in namespace (its globals), in place: each must have the type
    of its default in the notebook's `parameters` cell (a bool also as true/false, yes/no, on/off, 1/0 in
    any case, as papermill passes `-p overwrite false`; a number never as text), keep its rule
    (PARAMETER_RULES), and be one the notebook has. SettingError names the parameter."""
    root = Path(root or ROOT)
    cells = json.loads((root / "notebooks" / f"{notebook}.ipynb").read_text(encoding="utf-8"))["cells"]
    source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
    defaults = {t.id: ast.literal_eval(node.value) for node in ast.parse(source).body
                if isinstance(node, ast.Assign) for t in node.targets}
    given = [name for cell in namespace.get("In", []) if cell.startswith("# Parameters")
             for name in _assigned(cell)]             # what papermill injected
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise SettingError(unknown[0], f"is not a parameter of {notebook} (it has {', '.join(defaults)}).")
    for name, default in defaults.items():
        namespace[name] = _typed(name, namespace[name], default)


def _assigned(source):
    return [t.id for node in ast.parse(source).body if isinstance(node, ast.Assign) for t in node.targets
            if isinstance(t, ast.Name)]


def _typed(name, value, default):
    """value as the type of default, keeping name's rule; SettingError otherwise."""
    if isinstance(default, bool):
        if isinstance(value, str) and value.strip().lower() in TRUE + FALSE:
            value = value.strip().lower() in TRUE
        elif as_int(value) in (0, 1):
            value = bool(value)
        if not isinstance(value, bool):
            raise SettingError(name, f"must be true or false, got {value!r}.")
    elif isinstance(default, (int, float)):
        if not (as_int(value) is not None if isinstance(default, int) else is_number(value)):
            raise SettingError(name, f"must be {'an integer' if isinstance(default, int) else 'a number'}, "
                               f"got {value!r}.")
    elif default is None or isinstance(default, str):
        if not (value is None and default is None) and not isinstance(value, str) and not hasattr(value, "__fspath__"):
            raise SettingError(name, f"must be {'a path or None' if default is None else 'text'}, got {value!r}.")
        value = value if value is None or isinstance(value, str) else str(value)
    if name in PARAMETER_RULES:
        require(PARAMETER_RULES[name], value, name)
    return value
