"""Are the book's verdicts stable? Two builds' claims.json compared claim by claim.

    python benchmarks/bench_stability.py A/claims.json B/claims.json [C/claims.json ...]
                                          [--labels A B ...] [--note TEXT] [--report FILE]

For example the demo book built with `synth_seed` 0 and 1 (another SynthAVA, so other images,
splits and runs), or on two machines. Per claim: both verdicts, whether they agree, and whether
each build's difference lies inside the other build's 95% interval. The issue's target: every
verdict the same, every difference inside the other's interval. With more than two builds
(say two synth_seeds on each of two machines) it compares every pair (``pairs``) and lists, per
claim, each build's result and the pairs that disagree (``claims``). Writes
``benchmarks/results/stability_demo.json`` by default. Not a test: numbers, not assertions.

Even correct intervals miss the other build's difference now and then: when two builds estimate
the same difference with the same normal standard error, the other's estimate falls outside
an interval of confidence c with probability 2(1 − Φ(z/√2)), z = Φ⁻¹((1 + c)/2): 16.6 % at
c = 95 % (Cumming & Maillardet 2006: a replication falls inside a 95 % interval 83.4 % of the
time). The report adds that expected count (``expected_outside_by_chance``) from each claim's
``confidence``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from scipy import stats

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"


def _key(c: dict) -> tuple[str, str, str]:
    return c["paper"], c["source"], c["claim"]


def chance_outside(confidence: float) -> float:
    """P(an independent replicate's estimate falls outside this build's interval) for a normal
    interval of ``confidence`` when both builds have the same standard error: 2(1 − Φ(z/√2))."""
    z = stats.norm.ppf((1 + confidence) / 2)
    return float(2 * stats.norm.sf(z / np.sqrt(2)))


def compare(a: list[dict], b: list[dict]) -> list[dict]:
    """One row per claim run in both builds."""
    by_b = {_key(c): c for c in b}
    rows = []
    for ca in a:
        cb = by_b.get(_key(ca))
        if cb is None or "not run" in (ca["verdict"], cb["verdict"]):
            continue
        rows.append({
            "paper": ca["paper"], "source": ca["source"], "claim": ca["claim"],
            "metric": ca["metric"],
            "a": {k: ca[k] for k in ("difference", "ci_low", "ci_high", "n_seeds", "verdict")},
            "b": {k: cb[k] for k in ("difference", "ci_low", "ci_high", "n_seeds", "verdict")},
            "same_verdict": ca["verdict"] == cb["verdict"],
            "a_inside_b": cb["ci_low"] <= ca["difference"] <= cb["ci_high"],
            "b_inside_a": ca["ci_low"] <= cb["difference"] <= ca["ci_high"],
            "chance_outside": {side: chance_outside(c["confidence"]) if c.get("confidence")
                               else None for side, c in (("a", ca), ("b", cb))},
        })
    return rows


def _expected_outside(rows: list[dict]) -> float | None:
    """The expected number of differences outside the other build's interval (both directions)
    if every claim's two builds were replicates with equal standard errors; None without the
    claims' ``confidence``."""
    p = [r["chance_outside"][side] for r in rows for side in ("a", "b")]
    return None if not p or None in p else round(sum(p), 2)


def summarize(rows: list[dict]) -> dict:
    """Counts over :func:`compare`'s rows: verdicts alike, differences inside, chance misses."""
    return {
        "claims_compared": len(rows),
        "same_verdict": sum(r["same_verdict"] for r in rows),
        "a_difference_inside_b_interval": sum(r["a_inside_b"] for r in rows),
        "b_difference_inside_a_interval": sum(r["b_inside_a"] for r in rows),
        "expected_outside_by_chance": _expected_outside(rows),
        "verdicts_a": {v: sum(r["a"]["verdict"] == v for r in rows)
                       for v in ("reproduced", "contradicted", "inconclusive")},
        "verdicts_b": {v: sum(r["b"]["verdict"] == v for r in rows)
                       for v in ("reproduced", "contradicted", "inconclusive")},
    }


def across(builds: dict[str, list[dict]]) -> tuple[list[dict], list[dict]]:
    """Every pair of ``{label: claims}`` (:func:`summarize` each) and, per claim run in all of
    them, each build's result and the disagreements: pairs with other verdicts, and ``"A outside
    B"`` where A's difference lies outside B's interval."""
    labels, pairs, per_claim = list(builds), [], {}
    for i, la in enumerate(labels):
        for lb in labels[i + 1:]:
            rows = compare(builds[la], builds[lb])
            pairs.append({"a": la, "b": lb, "summary": summarize(rows)})
            for r in rows:
                c = per_claim.setdefault(_key(r), {
                    "paper": r["paper"], "source": r["source"], "claim": r["claim"],
                    "metric": r["metric"], "builds": {}, "verdicts_differ": [], "outside": []})
                c["builds"][la], c["builds"][lb] = r["a"], r["b"]
                if not r["same_verdict"]:
                    c["verdicts_differ"].append(f"{la} / {lb}")
                if not r["a_inside_b"]:
                    c["outside"].append(f"{la} outside {lb}")
                if not r["b_inside_a"]:
                    c["outside"].append(f"{lb} outside {la}")
    claims = [c for c in per_claim.values() if len(c["builds"]) == len(labels)]
    return pairs, claims


def _print_many(pairs: list[dict], claims: list[dict]) -> None:
    for c in claims:
        flag = "; ".join(c["verdicts_differ"] + c["outside"])
        print(f"{c['source'][:12]:<12} {c['claim'][:56]:<56} "
              + " ".join(f"{v['difference']:+.3f}" for v in c["builds"].values())
              + (f"  <-- {flag}" if flag else ""))
    for pr in pairs:
        print(pr["a"], "/", pr["b"], json.dumps(pr["summary"]))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("claims", nargs="+", help="two or more builds' claims.json")
    p.add_argument("--labels", nargs="+", help="one per file (default: a, b, c, ...)")
    p.add_argument("--report", default=str(RESULTS / "stability_demo.json"))
    p.add_argument("--note", default="", help="how the builds were made")
    args = p.parse_args(argv)
    labels = args.labels or [chr(ord("a") + i) for i in range(len(args.claims))]
    if len(args.claims) < 2 or len(labels) != len(args.claims):
        p.error("give two or more claims files and, with --labels, one label per file")
    builds = {lab: json.loads(Path(f).read_text()) for lab, f in zip(labels, args.claims)}
    report = {"benchmark": "stability", "labels": labels, "files": args.claims, "note": args.note,
              "machine": machine_info()}
    if len(builds) > 2:
        pairs, claims = across(builds)
        _print_many(pairs, claims)
        write_report(Path(args.report), report | {"pairs": pairs, "claims": claims})
        return 0
    rows = compare(*builds.values())
    summary = summarize(rows)
    for r in rows:
        flag = "" if r["same_verdict"] and r["a_inside_b"] and r["b_inside_a"] else "  <--"
        print(f"{r['source'][:12]:<12} {r['claim'][:56]:<56} {r['a']['verdict'][:6]:>6} "
              f"{r['b']['verdict'][:6]:>6}  {r['a']['difference']:+.3f} {r['b']['difference']:+.3f}"
              f"{flag}")
    print(json.dumps(summary, indent=1))
    write_report(Path(args.report), report | {"summary": summary, "claims": rows})
    return 0


if __name__ == "__main__":
    sys.exit(main())
