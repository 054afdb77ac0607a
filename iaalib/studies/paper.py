"""The papers' published numbers and claims (``paper_results.yaml``), as data for generated tables.

Nothing the book prints about "the paper" is typed in a notebook: it is read from here. The SAF text
available to us lost its tables, so SAF has claims (orderings stated in words) instead of numbers.
"""
from __future__ import annotations

import functools
from importlib import resources
from typing import Any

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


def paper_claims(paper: str = "saf") -> dict[str, dict[str, Any]]:
    """Claims stated in words: ``{table: {"source", "text", "better": [[a, b, metric], ...]}}``.

    ``better`` lists pairs the paper says are ordered (a better than b on metric).
    """
    return paper_results()[paper]["claims"]


def check_claims(claims: dict[str, Any], ours: pd.DataFrame) -> pd.DataFrame:
    """Compare the paper's orderings with ours.

    ``ours``: index = method names used in the claims, columns = metrics. Returns one row per
    claimed pair with both values and whether our runs agree (None when a method/metric is missing).
    """
    rows = []
    for a, b, metric in claims["better"]:
        va = ours.at[a, metric] if a in ours.index and metric in ours.columns else None
        vb = ours.at[b, metric] if b in ours.index and metric in ours.columns else None
        agree = None if va is None or vb is None or pd.isna(va) or pd.isna(vb) else bool(va > vb)
        rows.append({"claim": f"{a} > {b} ({metric})", "ours_a": va, "ours_b": vb, "reproduced": agree})
    return pd.DataFrame(rows)
