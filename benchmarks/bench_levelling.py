"""Two builds' levelling checks side by side: does a setting make the runs level off?

    python -m benchmarks.bench_levelling A/levelling.json B/levelling.json [--labels A B]
                                         [--note TEXT] [--report FILE]

Reads the ``levelling.json`` the book writes next to ``claims.json`` (one object per trained arm:
final value, last move, seed SD, levelled) for two builds, for example the demo and the demo with
one setting changed (``iaa book -p NAME VALUE``, finished runs reused), and reports per arm both
builds' final value, move and verdict, and per table and overall: arms levelled off, the mean last
move and the mean change of the final value (B − A). Writes
``benchmarks/results/levelling_<A>_<B>.json`` by default. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
FIELDS = ("final", "move", "seed_sd", "levelled")


def compare(a: list[dict], b: list[dict]) -> list[dict]:
    """One row per arm (same table and arm) assessed in both builds."""
    by_b = {(r["table"], r["arm"]): r for r in b}
    rows = []
    for ra in a:
        rb = by_b.get((ra["table"], ra["arm"]))
        if rb is None or None in (ra["levelled"], rb["levelled"]):
            continue
        rows.append({"table": ra["table"], "arm": ra["arm"], "metric": ra["metric"],
                     "a": {k: ra[k] for k in FIELDS}, "b": {k: rb[k] for k in FIELDS}})
    return rows


def totals(rows: list[dict]) -> dict:
    """Arms levelled off, mean last move (each build) and mean change of the final value."""
    if not rows:
        return {"arms": 0}
    return {"arms": len(rows),
            **{f"levelled_{s}": sum(r[s]["levelled"] for r in rows) for s in "ab"},
            **{f"mean_move_{s}": round(float(np.mean([r[s]["move"] for r in rows])), 4)
               for s in "ab"},
            "mean_final_change": round(float(np.mean([r["b"]["final"] - r["a"]["final"]
                                                      for r in rows])), 4)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("a")
    p.add_argument("b")
    p.add_argument("--labels", nargs=2, default=["a", "b"])
    p.add_argument("--note", default="")
    p.add_argument("--report")
    args = p.parse_args(argv)
    rows = compare(json.loads(Path(args.a).read_text()), json.loads(Path(args.b).read_text()))
    tables = sorted({r["table"] for r in rows})
    report = {"benchmark": "levelling", "labels": args.labels, "files": [args.a, args.b],
              "note": args.note, "arms": rows, "summary": totals(rows),
              "by_table": {t: totals([r for r in rows if r["table"] == t]) for t in tables},
              "machine": machine_info()}
    la, lb = args.labels
    for r in rows:
        a, b = r["a"], r["b"]
        print(f"{r['table']:<14} {r['arm']:<34} {la}: {a['final']:.4f} moves {a['move']:.4f} "
              f"(SD {a['seed_sd']:.4f}) {'ok' if a['levelled'] else 'MOVING'}   {lb}: "
              f"{b['final']:.4f} moves {b['move']:.4f} (SD {b['seed_sd']:.4f}) "
              f"{'ok' if b['levelled'] else 'MOVING'}")
    print(json.dumps(report["summary"]))
    write_report(Path(args.report) if args.report else RESULTS / f"levelling_{la}_{lb}.json",
                 report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
