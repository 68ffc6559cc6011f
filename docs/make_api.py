"""Write docs/API.md from the docstrings: every public name of msfreq, one line each.

    python docs/make_api.py          # rewrite docs/API.md
    python docs/make_api.py --check  # exit 1 if docs/API.md is not what the code says

The test suite runs the check, so the reference cannot drift from the code.
"""

from __future__ import annotations

import importlib
import inspect
import sys
from pathlib import Path

MODULES = [
    "msfreq", "msfreq.params", "msfreq.scales", "msfreq.frames", "msfreq.transform",
    "msfreq.representation", "msfreq.quantize", "msfreq.store", "msfreq.audio",
    "msfreq.convert", "msfreq.pool", "msfreq.batch", "msfreq.report", "msfreq.dataset",
    "msfreq.errors",
]
TARGET = Path(__file__).resolve().parent / "API.md"


def summary(module, name: str) -> str:
    value = getattr(module, name)
    if inspect.isclass(value) or inspect.isfunction(value) or inspect.ismodule(value):
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


def render() -> str:
    lines = ["# API reference", "",
             "Generated from the docstrings by `python docs/make_api.py` (checked by the tests).",
             "Every public name, one line each; the docstrings (numpydoc, with examples) say more.", ""]
    for module_name in MODULES:
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
