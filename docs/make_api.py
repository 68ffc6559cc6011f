"""Write docs/API.md from the docstrings: every public name of msfreq, one line each.

    python docs/make_api.py          # rewrite docs/API.md
    python docs/make_api.py --check  # exit 1 if docs/API.md is not what the code says

The test suite runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import sys
from pathlib import Path

MODULES = [
    "msfreq", "msfreq.params", "msfreq.scales", "msfreq.frames", "msfreq.fft", "msfreq.transform",
    "msfreq.representation", "msfreq.quantize", "msfreq.resample", "msfreq.store", "msfreq.containers", "msfreq.audio",
    "msfreq.convert", "msfreq.pool", "msfreq.batch", "msfreq.report", "msfreq.dataset",
    "msfreq.errors", "msfreq.torch",
]
#: Modules whose optional dependency may be missing: read from the source, not imported, so
#: that the reference is the same with or without the extra installed.
FROM_SOURCE = {"msfreq.torch"}
TARGET = Path(__file__).resolve().parent / "API.md"


def summary(module, name: str) -> str:
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismodule(value) \
            or hasattr(value, "__wrapped__"):  # functools.lru_cache and the like
        doc = inspect.getdoc(value) or ""
    else:
        doc = ""
    first = " ".join(doc.strip().split("\n\n")[0].split())
    if first:
        return first
    if isinstance(value, frozenset):
        return f"constant: {len(value)} names, e.g. `{sorted(value)[0]}`"
    if isinstance(value, (int, float, str, tuple)):
        text = repr(value)
        return f"constant: `{text if len(text) <= 80 else text[:77] + '...'}`"
    return f"{type(value).__name__}"


def first_paragraph(doc: str | None) -> str:
    return " ".join((inspect.cleandoc(doc or "")).strip().split("\n\n")[0].split())


def from_source(module_name: str) -> tuple[str, list[str]]:
    """The headline and the reference lines of a module, read from its source."""
    path = Path(__file__).resolve().parent.parent / (module_name.replace(".", "/") + ".py")
    tree = ast.parse(path.read_text())
    names, entries = [], {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "__all__" for t in node.targets):
            names = ast.literal_eval(node.value)
        elif isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            kind = "class" if isinstance(node, ast.ClassDef) else "function"
            entries[node.name] = (kind, first_paragraph(ast.get_docstring(node)))
        elif isinstance(node, ast.AnnAssign | ast.Assign):
            target = node.target if isinstance(node, ast.AnnAssign) else node.targets[0]
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            text = repr(value)
            entries[getattr(target, "id", "")] = (
                "value", f"constant: `{text if len(text) <= 80 else text[:77] + '...'}`")
    lines = [f"- `{name}` ({entries[name][0]}): {entries[name][1]}" for name in names]
    return first_paragraph(ast.get_docstring(tree)), lines


def render() -> str:
    lines = ["# API reference", "",
             "Generated from the docstrings by `python docs/make_api.py` (checked by the tests).",
             "Every public name, one line each; the docstrings (numpydoc, with examples) say more.", ""]
    for module_name in MODULES:
        if module_name in FROM_SOURCE:
            headline, entries = from_source(module_name)
            lines += [f"## `{module_name}`", "", headline, "", *entries, ""]
            continue
        module = importlib.import_module(module_name)
        headline = " ".join((inspect.getdoc(module) or "").split("\n\n")[0].split())
        lines += [f"## `{module_name}`", "", headline, ""]
        for name in module.__all__:
            kind = "class" if inspect.isclass(getattr(module, name)) else (
                "function" if callable(getattr(module, name)) else "value")
            lines.append(f"- `{name}` ({kind}): {summary(module, name)}")
        lines.append("")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        if not TARGET.exists() or TARGET.read_text() != text:
            print(f"{TARGET} is stale: run python docs/make_api.py", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
