"""Result tables with provenance: every number the book prints comes from a run recorded on disk.

A notebook that assembles a table from runs saves it with :func:`save_result_table`; the CSV sits
next to a JSON file listing, for each run behind it, the run directory, config hash, seed, data
manifest sha256s and code revision (from the run's ``run.json``). The summary notebook reads the
tables back with :func:`load_result_table` and never re-types a figure.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Iterable

import numpy as np
import pandas as pd

from .._io import atomic_write, read_json, write_json
from ..paths import iaa_home

PROVENANCE_KEYS = ("name", "config_hash", "seed", "manifest_sha256", "code", "status", "finished")


def results_dir(profile: str, root: str | os.PathLike | None = None) -> Path:
    """``IAA_HOME/results/<profile>`` (or ``root/<profile>``)."""
    return Path(root or iaa_home() / "results") / profile


def run_provenance(run_dir: str | os.PathLike) -> dict[str, Any]:
    """The parts of a run's ``run.json`` that identify how a number was produced."""
    run_dir = Path(run_dir)
    record = read_json(run_dir / "run.json")
    out = {k: record[k] for k in PROVENANCE_KEYS if k in record}
    out["run_dir"] = os.fspath(run_dir)
    return out


def save_result_table(df: pd.DataFrame, name: str, profile: str, runs: Iterable[str | os.PathLike],
                      *, root: str | os.PathLike | None = None, note: str = "") -> Path:
    """Write ``<name>.csv`` and ``<name>.json`` (provenance of ``runs``) atomically; return the CSV path.

    Every run must have a ``run.json`` with status ``finished``: a table never mixes in numbers
    from an unfinished or failed run.
    """
    provenance = [run_provenance(r) for r in runs]
    unfinished = [p["run_dir"] for p in provenance if p.get("status") != "finished"]
    if unfinished:
        raise ValueError(f"result table {name!r} refers to runs that did not finish: {unfinished}")
    out = results_dir(profile, root)
    csv_path = out / f"{name}.csv"
    with atomic_write(csv_path, "w", encoding="utf-8", newline="") as fh:
        df.to_csv(fh)
    write_json(out / f"{name}.json", {"name": name, "profile": profile, "note": note,
                                      "index": list(map(str, df.index)), "runs": provenance})
    return csv_path


def load_result_table(name: str, profile: str, *, root: str | os.PathLike | None = None
                      ) -> tuple[pd.DataFrame, dict[str, Any]]:
    """``(table, provenance)`` saved by :func:`save_result_table`; FileNotFoundError names the file."""
    out = results_dir(profile, root)
    csv_path = out / f"{name}.csv"
    if not csv_path.exists():
        raise FileNotFoundError(f"{csv_path}: no result table {name!r} for profile {profile!r} "
                                "(run the notebook that produces it first)")
    df = pd.read_csv(csv_path, index_col=0)
    with open(out / f"{name}.json", encoding="utf-8") as fh:
        return df, json.load(fh)


def list_result_tables(profile: str, *, root: str | os.PathLike | None = None) -> list[str]:
    """Names of the result tables saved for ``profile``."""
    out = results_dir(profile, root)
    return sorted(p.stem for p in out.glob("*.csv")) if out.is_dir() else []


def nan_to_none(record: dict[str, Any]) -> dict[str, Any]:
    """``record`` with float NaN values as None (JSON null: NaN is not JSON)."""
    return {k: (None if isinstance(v, float) and v != v else v) for k, v in record.items()}


def save_levelling(table: pd.DataFrame, name: str, profile: str,
                   runs: Iterable[str | os.PathLike], *, metric: str,
                   root: str | os.PathLike | None = None) -> Path:
    """Save a chapter's levelling table (:func:`iaalib.studies.runner.levelling`) as the result
    table ``levelling_<name>``, with the ``metric`` it watched and the epochs it compared
    (``last``); the summary chapter and ``levelling.json`` gather them from every chapter."""
    out = table.assign(metric=metric, last=int(table.attrs.get("last", 2)))
    return save_result_table(out, f"levelling_{name}", profile, runs=runs, root=root,
                             note=f"has the test {metric} of each arm levelled off?")


#: The columns of a levelling table (:func:`iaalib.studies.runner.levelling`).
LEVELLING_COLUMNS = ("final", "move", "seed_sd", "levelled", "seeds_up", "seeds_down", "seeds",
                     "p_chance", "epochs", "run")


def levelling_sentence(table: pd.DataFrame, metric: str) -> str:
    """A levelling table (:func:`iaalib.studies.runner.levelling`, or :func:`summary.levelling`)
    in one sentence (generated): how many arms levelled off, and the others with their move, seed
    SD and, where every seed's own curve went the same way, that trend (rises / falls on n of n
    seeds)."""
    known = table[table["levelled"].notna()] if len(table) else table
    if known.empty:
        return f"No arm has several seeds with a per-epoch {metric}, so levelling is not assessed."
    late = known[~known["levelled"].astype(bool)]
    last = min(int(table.attrs.get("last", 3)), int(known["epochs"].min()))
    head = (f"{len(known) - len(late)} of {len(known)} arms have levelled off: over the last "
            f"{last} epochs the seed-mean {metric} moves by less than its SD over seeds.")
    unknown = [str(name) for name in table.index if name not in known.index]
    if unknown:
        head += (" Not assessed (one seed, or one epoch, so no curve): "
                 + ", ".join(unknown) + ".")
    items = "; ".join(f"{name} (moves {r.move:.3f}, seed SD {r.seed_sd:.3f}{levelling_trend(r)})"
                      for name, r in late.iterrows())
    return head + (f" Still moving: {items}." if items else "") + levelling_chance(known)


def levelling_chance(table: pd.DataFrame) -> str:
    """The check's own false-alarm rate over the arms of a levelling table, as a sentence: the
    number of arms it would call moving if no arm's seeds shared a trend (the sum of ``p_chance``,
    :func:`iaalib.studies.runner.chance_of_moving`) and the chance that it would then pass them
    all; ``""`` for a table saved before the column, or with an arm whose curves have gaps."""
    p = table["p_chance"] if "p_chance" in table else pd.Series(dtype=float)
    if p.empty or p.isna().any():
        return ""
    return (f" With no trend at all (each seed's last moves as they were, in random directions),"
            f" the check would call {p.sum():.1f} of these {len(p)} arms moving by chance, and "
            f"pass all {len(p)} with probability {np.prod(1 - p.to_numpy(float)):.0%}.")


def levelling_trend(row) -> str:
    """``"; falls on 3 of 3 seeds"`` when every seed's curve went the same way over the last epochs
    (a levelling row's ``seeds_up`` / ``seeds_down`` of ``seeds``: a mapping or a row), else
    ``""``; a seed whose curve did not move breaks the trend."""
    up, down = row.get("seeds_up"), row.get("seeds_down")
    if pd.isna(up) or pd.isna(down):  # None too: a table saved before the columns existed
        return ""
    n = row.get("seeds")
    n = int(up) + int(down) if pd.isna(n) else int(n)  # saved before ``seeds``: the seeds that moved
    if n > 1 and (up == n or down == n):
        return f"; {'rises' if up == n else 'falls'} on {n} of {n} seeds"
    return ""


def save_claims(table: pd.DataFrame, name: str, profile: str, *,
                root: str | os.PathLike | None = None) -> Path:
    """Write a chapter's claims table (:func:`iaalib.studies.claims.evaluate`) as
    ``claims_<name>.json``: one object per claim, with the provenance of the runs behind it."""
    rows = []
    for rec in table.to_dict(orient="records"):
        rec = nan_to_none(rec)
        runs = rec.pop("runs", None) or []
        rec["provenance"] = [run_provenance(r) for r in runs]
        rows.append(rec)
    path = results_dir(profile, root) / f"claims_{name}.json"
    write_json(path, {"name": name, "profile": profile, "claims": rows})
    return path


def load_claims(profile: str, *, root: str | os.PathLike | None = None) -> pd.DataFrame:
    """Every claims table saved for ``profile``, in file-name order (one row per claim)."""
    out = results_dir(profile, root)
    rows = []
    for path in sorted(out.glob("claims_*.json")) if out.is_dir() else []:
        saved = read_json(path)
        rows += [{**r, "table": saved["name"]} for r in saved["claims"]]
    return pd.DataFrame(rows)
