"""Table V settings compared: does each variant level off, and are its claims stable?

    python -m benchmarks.bench_transfer --variant LABEL DIR0 DIR1 [--variant ...]
                                        [--settings LABEL TEXT ...] [--note TEXT] [--report FILE]

Each ``DIR`` holds what chapter 4 saved for one build (``levelling_kao_table5.csv``,
``kao_table5.csv``, ``claims_kao_04.json``: the demo's ``IAA_HOME/results/demo`` after
``iaa book --only 04 -p ...``), ``DIR0`` for ``synth_seed`` 0 and ``DIR1`` for ``synth_seed`` 1
(``-p target_synth_seed 2``). Per variant and build: the three arms' final SRCC of p(high), last
move, seed SD, levelling verdict and ``p_chance`` (:func:`iaalib.studies.runner.levelling`), the
accuracies of Table V and both claims; per variant, the two builds' claims side by side
(:func:`benchmarks.bench_stability.compare`: same verdict, each difference inside the other's
interval). Where the claims' runs are still on disk, each claim also gets ``spread``: its
per-seed differences with their SD, and each seed's image-only interval width (the paired
bootstrap over test images alone, at the claim's confidence): which of the two, training seeds or
test images, makes the interval wide. Writes ``benchmarks/results/levelling_demo_transfer.json``
by default. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, seed_stats, write_report  # noqa: E402
from benchmarks.bench_stability import compare  # noqa: E402
from iaalib.studies import claims as C  # noqa: E402
from iaalib.studies.results import load_result_table  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
ARM_FIELDS = ("final", "move", "seed_sd", "levelled", "p_chance")


def spread(claim: dict) -> dict | None:
    """Per-seed differences and image-only interval widths of a one-arm-against-one claim, from
    its runs' predictions (``provenance``: the better arm's runs, then the worse arm's); None when
    a run directory is gone."""
    runs = [Path(r["run_dir"]) for r in claim.get("provenance", [])]
    if not runs or len(runs) % 2 or not all((r / "predictions.csv").is_file() for r in runs):
        return None
    half = len(runs) // 2
    frames = [pd.read_csv(r / "predictions.csv") for r in runs]
    pairs = [C.paired_bootstrap([[b]], [[w]], claim["metric"], confidence=claim["confidence"])
             for b, w in zip(frames[:half], frames[half:])]
    diffs = seed_stats(p["difference"] for p in pairs)
    return {"per_seed_difference": diffs["values"], "seed_sd": diffs["sd"],
            "image_only_width": [round(p["ci_high"] - p["ci_low"], 3) for p in pairs],
            "n_images": pairs[0]["n_images"]}


def build(folder: Path) -> dict:
    """One build's Table V: levelling per arm, accuracies and claims."""
    lv, _ = load_result_table("levelling_kao_table5", folder.name, root=folder.parent)
    acc = load_result_table("kao_table5", folder.name, root=folder.parent)[0].iloc[0]
    claims = json.loads((folder / "claims_kao_04.json").read_text())["claims"]
    return {"arms": {arm: {k: (bool(r[k]) if k == "levelled" else round(float(r[k]), 4))
                           for k in ARM_FIELDS} for arm, r in lv.iterrows()},
            "levelled": int(lv["levelled"].sum()), "accuracy": acc.round(2).to_dict(),
            "claims": [{**{k: c[k] for k in ("claim", "difference", "ci_low", "ci_high",
                                              "verdict")}, "spread": spread(c)} for c in claims],
            "_claims": claims}


def variant(folders: list[Path]) -> dict:
    builds = [build(f) for f in folders]
    rows = compare(builds[0]["_claims"], builds[1]["_claims"])
    for b in builds:
        del b["_claims"]
    return {"builds": dict(zip(("synth_seed0", "synth_seed1"), builds)),
            "levelled": [b["levelled"] for b in builds],
            "same_verdicts": sum(r["same_verdict"] for r in rows),
            "inside_both_ways": sum(r["a_inside_b"] and r["b_inside_a"] for r in rows),
            "claims": len(rows)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", nargs=3, action="append", required=True,
                   metavar=("LABEL", "DIR0", "DIR1"))
    p.add_argument("--settings", nargs=2, action="append", default=[], metavar=("LABEL", "TEXT"))
    p.add_argument("--note", default="")
    p.add_argument("--report")
    args = p.parse_args(argv)
    settings = dict(args.settings)
    report = {"benchmark": "transfer", "note": args.note, "machine": machine_info(),
              "variants": {}}
    for label, d0, d1 in args.variant:
        v = variant([Path(d0), Path(d1)])
        report["variants"][label] = {"settings": settings.get(label, ""), **v}
        print(f"{label:<22} levelled {v['levelled'][0]}/3 and {v['levelled'][1]}/3; claims: "
              f"{v['same_verdicts']}/{v['claims']} same verdict, {v['inside_both_ways']} inside")
        for name, b in v["builds"].items():
            for c in b["claims"]:
                sp = c["spread"] or {}
                print(f"   {name}: {c['claim'][:40]:<40} {c['difference']:+.2f} "
                      f"[{c['ci_low']:+.2f}, {c['ci_high']:+.2f}] {c['verdict']}; seed SD "
                      f"{sp.get('seed_sd')}, image-only widths {sp.get('image_only_width')}")
    write_report(Path(args.report) if args.report else RESULTS / "levelling_demo_transfer.json",
                 report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
