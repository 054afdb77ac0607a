"""benchmarks.bench_stability: comparing two builds' claims, and the chance that a replicate's
difference falls outside an interval."""
import json

import numpy as np
import pytest

from benchmarks import bench_stability


def test_chance_outside_matches_the_literature_and_a_simulation():
    # Cumming & Maillardet (2006): a replication mean falls inside a 95% CI 83.4% of the time.
    assert bench_stability.chance_outside(0.95) == pytest.approx(1 - 0.834, abs=5e-4)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(2, 200_000))  # two replicates, SE 1; the interval is a ± z
    z = 2.4977  # the two-sided z of confidence 0.9875 (Bonferroni for m = 4)
    simulated = float(np.mean(np.abs(b - a) > z))
    assert bench_stability.chance_outside(0.9875) == pytest.approx(simulated, abs=2e-3)


def _claim(name, diff, low, high, confidence=0.95, verdict="inconclusive"):
    return {"paper": "P", "source": "T", "claim": name, "metric": "acc", "difference": diff,
            "ci_low": low, "ci_high": high, "n_seeds": 3, "verdict": verdict,
            "confidence": confidence}


def test_compare_by_hand(tmp_path):
    a = [_claim("x", 1.0, -0.5, 2.5), _claim("y", 0.2, 0.1, 0.3, verdict="reproduced")]
    b = [_claim("x", 2.0, 0.5, 3.5), _claim("y", 0.5, 0.3, 0.7, verdict="reproduced")]
    rows = bench_stability.compare(a, b)
    assert [(r["a_inside_b"], r["b_inside_a"], r["same_verdict"]) for r in rows] == [
        (True, True, True), (False, False, True)]
    assert bench_stability._expected_outside(rows) == pytest.approx(4 * 0.1658, abs=0.01)
    fa, fb, out = tmp_path / "a.json", tmp_path / "b.json", tmp_path / "r.json"
    fa.write_text(json.dumps(a)), fb.write_text(json.dumps(b))
    assert bench_stability.main([str(fa), str(fb), "--report", str(out)]) == 0
    summary = json.loads(out.read_text())["summary"]
    assert summary["a_difference_inside_b_interval"] == 1
    assert summary["b_difference_inside_a_interval"] == 1


def test_cpu_info_reads_the_first_cpu_block_of_a_cpuinfo_file(tmp_path):
    """``machine_info``'s ``cpu``: the model name and the vector/bf16 flags of the first CPU, in
    the order of ``_ISA_FLAGS``; a later CPU's flags are not mixed in; no file gives ``{}``."""
    from benchmarks._report import cpu_info

    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Some CPU @ 2.0GHz\n"
                       "flags\t\t: fpu sse2 avx512_bf16 avx avx2 fma avx512f\n\n"
                       "processor\t: 1\nmodel name\t: Other\nflags\t\t: amx_tile\n")
    assert cpu_info(cpuinfo) == {"model": "Some CPU @ 2.0GHz",
                                 "isa": ["avx2", "fma", "avx512f", "avx512_bf16"]}
    assert cpu_info(tmp_path / "missing") == {}


def test_more_than_two_builds_compare_every_pair(tmp_path):
    """Three builds: three pairs, each summarised as two builds would be; per claim, every
    build's difference and the disagreements named by hand."""
    a = [_claim("x", 1.0, -0.5, 2.5), _claim("y", 0.2, 0.1, 0.3, verdict="reproduced")]
    b = [_claim("x", 2.0, 0.5, 3.5, verdict="reproduced"), _claim("y", 0.25, 0.1, 0.4,
                                                                  verdict="reproduced")]
    c = [_claim("x", 1.5, -0.5, 3.0), _claim("y", 0.2, 0.15, 0.22, verdict="reproduced")]
    files = []
    for name, claims in zip("abc", (a, b, c)):
        files.append(tmp_path / f"{name}.json")
        files[-1].write_text(json.dumps(claims))
    out = tmp_path / "r.json"
    assert bench_stability.main([*map(str, files), "--labels", "A", "B", "C",
                                 "--report", str(out)]) == 0
    report = json.loads(out.read_text())
    assert [(p["a"], p["b"]) for p in report["pairs"]] == [("A", "B"), ("A", "C"), ("B", "C")]
    assert report["pairs"][0]["summary"] == bench_stability.summarize(bench_stability.compare(a, b))
    x, y = report["claims"]
    assert {k: v["difference"] for k, v in x["builds"].items()} == {"A": 1.0, "B": 2.0, "C": 1.5}
    assert x["verdicts_differ"] == ["A / B", "B / C"] and x["outside"] == []
    # y: every build's 0.2 or 0.25 lies inside A's [0.1, 0.3] and B's [0.1, 0.4]; C's [0.15, 0.22]
    # holds A's 0.2 but not B's 0.25
    assert y["verdicts_differ"] == [] and y["outside"] == ["B outside C"]
    with pytest.raises(SystemExit):  # one build compares with nothing
        bench_stability.main([str(files[0]), "--report", str(out)])
