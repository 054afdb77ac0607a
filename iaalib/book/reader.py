"""What the rendered book shows of each executed notebook: the reader view's cell tags.

The executed notebook (``executed/<profile>/NN_*.ipynb``) keeps every cell, the record of the run;
the copy staged for the HTML gets Jupyter Book / MyST-NB tags by these rules (:func:`reader_tags`):

- papermill's injected-parameters cell → ``remove-cell`` (the ``parameters`` cell above it shows
  the defaults, and the chapter prints the profile's resolved settings);
- a code cell whose every statement is bookkeeping — a ``glue(...)`` call, pandas styling
  (``x.style.format(...)``), ``display(Markdown(...))`` — → ``remove-input`` (its output stays);
- a code cell in which at least half of the statements are bookkeeping and that trains, evaluates
  or plots nothing (:data:`TEACHING_CALLS`) → ``hide-input`` (behind a toggle);
- tags a cell already has (``hide-input`` on setup cells, ``remove-input`` on boxes) are kept.
"""
from __future__ import annotations

import ast
import json
import os
from pathlib import Path
from typing import Any

#: Functions whose call in a cell means the cell teaches: it stays visible.
TEACHING_CALLS = frozenset({"run_grid", "evaluate", "train", "build_model", "forward_shapes",
                            "loss_terms", "kao_data", "table1_configs", "table2_configs",
                            "table3_configs", "table4_configs", "table5_configs", "profile_config",
                            "paired_bootstrap", "cross_dataset", "tsne_panels", "gradcam_examples"})
REMOVE_CELL, REMOVE_INPUT, HIDE_INPUT = "remove-cell", "remove-input", "hide-input"


def _python(source: str) -> ast.Module | None:
    lines = [ln for ln in source.splitlines() if not ln.lstrip().startswith(("%", "!"))]
    try:
        return ast.parse("\n".join(lines))
    except SyntaxError:
        return None


def _called(node: ast.AST) -> set[str]:
    names = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Call):
            f = n.func
            names.add(f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", ""))
    return names


def is_bookkeeping(stmt: ast.stmt) -> bool:
    """A ``glue(...)`` call, pandas styling, or ``display(Markdown(...))`` (see the module doc)."""
    value = stmt.value if isinstance(stmt, (ast.Expr, ast.Assign)) else None
    if value is None:
        return False
    called = _called(value)
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "glue":
        return True
    if any(isinstance(n, ast.Attribute) and n.attr == "style" for n in ast.walk(value)):
        return not (called & TEACHING_CALLS)
    if isinstance(value, ast.Call) and getattr(value.func, "id", None) == "display":
        inner = value.args[0] if value.args else None
        return (isinstance(inner, ast.Call) and getattr(inner.func, "id", None) == "Markdown"
                and not (called & TEACHING_CALLS))
    return False


def reader_tags(cell: dict[str, Any]) -> list[str]:
    """The tags the rendered copy of ``cell`` gets (the cell's own tags plus the rules')."""
    tags = list(cell.get("metadata", {}).get("tags", []))
    if cell.get("cell_type") != "code" or REMOVE_CELL in tags:
        return tags
    if "injected-parameters" in tags:
        return tags + [REMOVE_CELL]
    if "parameters" in tags or REMOVE_INPUT in tags or HIDE_INPUT in tags:
        return tags
    source = "".join(cell.get("source", ""))
    tree = _python(source)
    if tree is None or not tree.body:
        return tags
    kept = [s for s in tree.body if not isinstance(s, (ast.Import, ast.ImportFrom))]
    book = sum(is_bookkeeping(s) for s in kept)
    if kept and book == len(kept):
        return tags + [REMOVE_INPUT]
    if kept and 2 * book >= len(kept) and not (_called(tree) & TEACHING_CALLS):
        return tags + [HIDE_INPUT]
    return tags


def apply_reader_tags(notebook: str | os.PathLike) -> dict[str, int]:
    """Rewrite ``notebook``'s cell tags by :func:`reader_tags`; returns how many cells got each
    added tag."""
    path = Path(notebook)
    nb = json.loads(path.read_text(encoding="utf-8"))
    added: dict[str, int] = {}
    for cell in nb.get("cells", []):
        before = list(cell.get("metadata", {}).get("tags", []))
        after = reader_tags(cell)
        for tag in after[len(before):]:
            added[tag] = added.get(tag, 0) + 1
        if after != before:
            cell.setdefault("metadata", {})["tags"] = after
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")
    return added
