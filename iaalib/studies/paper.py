"""The papers' published numbers and claims (``paper_results.yaml``), as data for generated tables.

Nothing the book prints about "the paper" is typed in a notebook: it is read from here. The SAF text
available to us lost its tables, so SAF has claims (orderings stated in words) instead of numbers.
"""
from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import numpy as np
import pandas as pd
import yaml


@functools.cache
def paper_results() -> dict[str, Any]:
    """The whole ``paper_results.yaml`` (``{"kao": {...}, "saf": {...}}``)."""
    text = resources.files(__package__).joinpath("paper_results.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def paper_table(paper: str, table: str) -> pd.DataFrame:
    """One printed table as a DataFrame (rows × columns as in the paper; NaN where it prints '–')."""
    entry = paper_results()[paper][table]
    if "rows" not in entry:
        raise KeyError(f"{paper}/{table} is not a table (keys: {sorted(entry)})")
    df = pd.DataFrame.from_dict(entry["rows"], orient="index", columns=entry["columns"], dtype=float)
    df.attrs["source"] = entry.get("source", "")
    return df


def paper_value(paper: str, *keys: str) -> Any:
    """A single printed figure, e.g. ``paper_value("kao", "dataset", "n_images")`` → 185751."""
    node: Any = paper_results()[paper]
    for k in keys:
        node = node[k]
    return node


#: The papers as the claims table names them.
PAPER_NAMES = {"kao": "Kao et al.", "saf": "SAF"}


def claims(paper: str, table: str | None = None) -> list[dict[str, Any]]:
    """The headline claims of ``paper`` (``paper_results.yaml``: ``<paper>.claims.<table>``), each
    ``{id, source, claim, metric, better, worse[, paper_difference]}`` (see
    :mod:`iaalib.studies.claims`); every table's when ``table`` is None."""
    entry = paper_results()[paper]["claims"]
    if table is None:
        return [c for t in entry.values() for c in t]
    if table not in entry:
        raise KeyError(f"{paper} has no claims for {table!r} (have {sorted(entry)})")
    return list(entry[table])


def statement(paper: str, table: str) -> str:
    """What the paper's text says about a table, in words (SAF: its tables were lost)."""
    return paper_results()[paper].get("statements", {}).get(table, "")


def paper_next_to_ours(ours: pd.DataFrame, paper: pd.DataFrame, *, ours_name: str = "ours",
                       paper_name: str = "paper") -> pd.DataFrame:
    """One row per (row, column) cell of ``ours`` that the paper also has: ``paper`` and ``ours``
    columns (for :func:`iaalib.viz.paper_vs_ours`); cells the paper lacks get NaN."""
    records = []
    for r in ours.index:
        for c in ours.columns:
            p = paper.at[r, c] if r in paper.index and c in paper.columns else np.nan
            records.append({"cell": f"{r} · {c}" if len(ours.index) > 1 else c,
                            paper_name: p, ours_name: ours.at[r, c]})
    return pd.DataFrame(records).set_index("cell")
