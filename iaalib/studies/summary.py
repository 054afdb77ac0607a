"""The summary chapter: every paper table next to our numbers, generated from saved result tables.

Our side comes only from :mod:`iaalib.studies.results` (tables saved by notebooks 01–09 with the
provenance of the finished runs behind them); the paper's side only from ``paper_results.yaml``.
Nothing here trains or types a number.
"""
from __future__ import annotations

import os

import pandas as pd

from . import paper, results

#: our result table → the Kao table it reproduces (same row/column labels where we ran the same thing)
KAO_TABLES = {"kao_table1": "table1", "kao_table2": "table2", "kao_table3": "table3",
              "kao_table4": "table4", "kao_table5": "table5"}


def long_comparison(paper_df: pd.DataFrame | None, ours_df: pd.DataFrame | None,
                    profile: str) -> pd.DataFrame:
    """One row per (row, column) cell present in either table: ``paper``, ``ours``, ``profile``.

    Cells only the paper has (e.g. the AVA baselines of Table IV we do not run) keep ``ours``
    empty; cells only we have (e.g. an EfficientNet-Lite0 stand-in) keep ``paper`` empty.
    """
    def cells(df: pd.DataFrame | None) -> pd.Series:
        if df is None or df.empty:
            return pd.Series(dtype=float)
        s = df.stack(future_stack=True) if hasattr(df, "stack") else df.stack()
        s.index = [f"{r} / {c}" for r, c in s.index]
        return pd.to_numeric(s, errors="coerce")

    p, o = cells(paper_df), cells(ours_df)
    index = list(dict.fromkeys([*p.index, *o.index]))
    out = pd.DataFrame({"paper": p.reindex(index), "ours": o.reindex(index)}, index=index)
    out["profile"] = profile
    return out


def _load(name: str, profile: str, root) -> tuple[pd.DataFrame | None, dict | None]:
    try:
        return results.load_result_table(name, profile, root=root)
    except FileNotFoundError:
        return None, None


def kao_comparisons(profile: str, *, root: str | os.PathLike | None = None
                    ) -> dict[str, pd.DataFrame]:
    """``{table name: long comparison}`` for Kao Tables I–V (accuracy in %), paper vs ours."""
    out = {}
    for ours_name, table in KAO_TABLES.items():
        ours, _ = _load(ours_name, profile, root)
        out[table] = long_comparison(paper.paper_table("kao", table), ours, profile)
    return out


def kao_fig9_comparison(profile: str, *, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Correlation of each semantic sub-task with the *high aesthetic* sub-task: paper vs ours."""
    ours, _ = _load("kao_fig9", profile, root)
    fig9 = paper.paper_table("kao", "fig9")
    col = "high aesthetic"
    out = pd.DataFrame({"paper": fig9[col]})
    out["ours"] = ours[col].reindex(out.index) if ours is not None and col in ours else float("nan")
    out["profile"] = profile
    return out.drop(index=["low aesthetic", "high aesthetic"])


def kao_semantic_ap_comparison(profile: str, *, root: str | os.PathLike | None = None
                               ) -> pd.DataFrame:
    """Semantic average precision (%): the paper's two figures next to ours, matched by model name."""
    printed = {k: v for k, v in paper.paper_value("kao", "semantic_ap").items() if k != "source"}
    ours, _ = _load("kao_semantic_ap", profile, root)
    paper_df = pd.DataFrame(printed, index=["delta=0"])
    return long_comparison(paper_df, ours, profile)


def claims(profile: str, *, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every claim both papers' chapters tested for ``profile`` (:func:`results.load_claims`),
    Kao first, in chapter order; the book writes it to ``claims.json``."""
    table = results.load_claims(profile, root=root)
    if table.empty:
        return table
    order = {name: i for i, name in enumerate(paper.PAPER_NAMES.values())}
    return table.sort_values("paper", key=lambda c: c.map(order), kind="stable") \
        .reset_index(drop=True)


#: a chapter's levelling table → how the summary names it, in book order (other names are shown
#: as saved, after these)
LEVELLING_TABLES = {"kao_table1": "Kao Table I", "kao_table2": "Kao Table II",
                    "kao_table3": "Kao Table III", "kao_table5": "Kao Table V",
                    "saf_table2": "SAF Table 2", "saf_ablations": "SAF Tables 3-4 and P"}


def levelling(profile: str, *, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every arm's levelling check that a chapter saved (:func:`results.save_levelling`), one row
    per arm, indexed ``"<table>: <arm>"`` (:data:`LEVELLING_TABLES` names the tables); an arm
    that two tables share (MTCNN #1 at λ = 1/M in Tables I and II) is counted once, under the
    first table in book order (:data:`LEVELLING_TABLES`' order, then other names)."""
    order = list(LEVELLING_TABLES)
    tables = sorted((n.removeprefix("levelling_") for n in results.list_result_tables(
        profile, root=root) if n.startswith("levelling_")),
        key=lambda t: (order.index(t) if t in order else len(order), t))
    frames = []
    for table in tables:
        df, _ = results.load_result_table(f"levelling_{table}", profile, root=root)
        if df.empty:  # a chapter whose runs record no per-epoch test metric
            continue
        shown = LEVELLING_TABLES.get(table, table)
        frames.append(df.set_axis([f"{shown}: {arm}" for arm in df.index]).assign(table=table))
    if not frames:
        return pd.DataFrame(columns=[*results.LEVELLING_COLUMNS, "metric", "last", "table"])
    out = pd.concat(frames)
    named = out["run"].fillna("").astype(str) != ""
    out = out[~(named & out["run"].duplicated())]
    out["levelled"] = out["levelled"].map(lambda v: None if pd.isna(v) else bool(v)).astype(object)
    out.attrs["last"] = int(out["last"].max())
    return out


def provenance_table(profile: str, *, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every run behind every saved table: run name, config hash, seed, code revision, finish time."""
    rows = []
    for name in results.list_result_tables(profile, root=root):
        _, prov = results.load_result_table(name, profile, root=root)
        for run in prov["runs"]:
            code = run.get("code") or {}
            rows.append({"table": name, "run": run.get("name"),
                         "config hash": (run.get("config_hash") or "")[:12],
                         "seed": run.get("seed"),
                         "code revision": (code.get("git_revision") or code.get("iaalib_version")
                                           or "")[:12] + ("+dirty" if code.get("dirty") else ""),
                         "finished": run.get("finished"), "run dir": run.get("run_dir")})
    return pd.DataFrame(rows, columns=["table", "run", "config hash", "seed", "code revision",
                                       "finished", "run dir"])
