"""How often does the levelling check call an arm "still moving" by chance alone?

    python -m benchmarks.bench_levelling_null RESULTS [RESULTS ...] [--labels A ...]
                                              [--note TEXT] [--report FILE]

``RESULTS`` is a book's result folder (``IAA_HOME/results/<profile>``). The levelling check
(:func:`iaalib.studies.runner.levelling`, ``last = 2``) calls an arm levelled off when the
seed-mean curve moves over the last epoch by less than the SD over seeds of the final value.
This reads every ``levelling_*`` table there, recomputes each arm's check from its runs'
``history.jsonl`` with the library (an arm two tables share is counted once), and reports per arm
``p_chance`` (:func:`iaalib.studies.runner.chance_of_moving`: if the seeds' last moves had the
sizes they had but random directions, how often would the check still say "moving"?) and
``p_trend``, the exact sign-flip test of a trend the seeds share (the same distribution with the
observed move as the threshold; with 3 seeds it cannot go below 2/8 = 0.25).

Per build: the arms the check calls moving, the number expected with no trend at all
(``sum p_chance``), the chance that a trend-free book passes every arm (``prod (1 - p_chance)``)
and of at least the observed misses (the Poisson-binomial distribution of the count). An arm with
a real trend moves by more than its noise alone, so its ``p_chance`` is only a guide to the
no-trend rate. Not a test: numbers, not assertions. Writes
``benchmarks/results/levelling_null.json`` by default.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402
from iaalib.engine.runrecord import Run  # noqa: E402
from iaalib.studies import runner  # noqa: E402
from iaalib.studies.results import load_result_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: The history column behind each metric name the chapters give ``save_levelling``.
COLUMNS = {"SRCC of p(high)": "test_srcc_p_high", "SRCC of the mean": "test_srcc_mean"}


def arm_rows(results: Path) -> list[dict]:
    """One row per assessed arm of every levelling table in ``results`` (shared arms once)."""
    rows, seen = [], set()
    for path in sorted(results.glob("levelling_*.csv")):
        saved, provenance = load_result_table(path.stem, results.name, root=results.parent)
        dirs = [Path(r["run_dir"]) for r in provenance["runs"]]
        dirs = [d if d.is_dir() else results.parent.parent / "runs" / d.name for d in dirs]
        for arm, rec in saved.iterrows():
            if rec["run"] in seen or pd.isna(rec["levelled"]):
                continue
            seen.add(rec["run"])
            runs = {(arm, i): Run(d) for i, d in enumerate(
                d for d in dirs if d.name.rsplit("-", 2)[0] == rec["run"])}
            column = COLUMNS[rec["metric"]]
            check = runner.levelling(runs, column).loc[arm]
            tails = runner.learning_curves(runs, column).iloc[-2:].to_numpy()
            rows.append({"table": path.stem.removeprefix("levelling_"), "arm": arm,
                         "levelled": bool(check["levelled"]), "saved_levelled": bool(rec["levelled"]),
                         "move": round(float(check["move"]), 5),
                         "seed_sd": round(float(check["seed_sd"]), 5),
                         "seed_moves": [round(float(x), 5) for x in tails[1] - tails[0]],
                         "p_chance": float(check["p_chance"]), "tails": tails.tolist(),
                         "p_trend": runner.chance_of_moving(tails, float(check["move"]))})
    return rows


def summary(rows: list[dict]) -> dict:
    p = np.array([r["p_chance"] for r in rows])
    # Poisson-binomial distribution of the number of false alarms, by convolution
    dist = np.array([1.0])
    for q in p:
        dist = np.convolve(dist, [1 - q, q])
    moving = sum(not r["levelled"] for r in rows)
    return {"arms": len(rows), "moving": moving,
            "expected_moving_without_trend": round(float(p.sum()), 2),
            "p_all_levelled_without_trend": round(float(dist[0]), 3),
            "p_at_least_observed_without_trend": round(float(dist[moving:].sum()), 3),
            "arms_with_p_trend_below_0.05": sum(r["p_trend"] < 0.05 for r in rows)}


def pooled_trends(builds: dict[str, list[dict]]) -> list[dict]:
    """Per arm assessed in every build: all builds' seeds together (say 2 synth_seeds x 3 seeds),
    how many rose / fell in the last epoch and the exact sign-flip p of a trend they share."""
    keyed = [{(r["table"], r["arm"]): r for r in rows} for rows in builds.values()]
    out = []
    for key in [k for k in keyed[0] if all(k in b for b in keyed[1:])]:
        tails = np.hstack([np.array(b[key]["tails"]) for b in keyed])
        moves = tails[1] - tails[0]
        out.append({"table": key[0], "arm": key[1], "seeds": len(moves),
                    "seeds_up": int((moves > 0).sum()), "seeds_down": int((moves < 0).sum()),
                    "p_trend": runner.chance_of_moving(tails, abs(float(moves.mean())))})
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("results", nargs="+")
    p.add_argument("--labels", nargs="+")
    p.add_argument("--note", default="")
    p.add_argument("--report")
    args = p.parse_args(argv)
    labels = args.labels or [str(i) for i in range(len(args.results))]
    builds = {}
    for label, root in zip(labels, args.results):
        rows = arm_rows(Path(root))
        builds[label] = {"results": root, "summary": summary(rows), "arms": rows}
        for r in rows:
            print(f"{label:<6} {r['table']:<14} {r['arm']:<34} moves {r['move']:.4f} "
                  f"SD {r['seed_sd']:.4f} {'ok    ' if r['levelled'] else 'MOVING'} "
                  f"seeds {r['seed_moves']} p_chance {r['p_chance']:.3f} "
                  f"p(trend) {r['p_trend']:.3f}")
        print(label, json.dumps(builds[label]["summary"]))
    pooled = pooled_trends({k: v["arms"] for k, v in builds.items()}) if len(builds) > 1 else []
    for r in sorted(pooled, key=lambda r: r["p_trend"])[:5]:
        print(f"pooled {r['table']:<14} {r['arm']:<34} up {r['seeds_up']} down {r['seeds_down']} "
              f"of {r['seeds']}: p(trend) {r['p_trend']:.3f}")
    report = {"benchmark": "levelling_null", "note": args.note, "builds": builds,
              "pooled_over_builds": pooled,
              "machine": machine_info()}
    write_report(Path(args.report) if args.report else RESULTS / "levelling_null.json", report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
