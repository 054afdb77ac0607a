"""The papers' numbers as data, and result tables that refuse numbers without finished runs."""
from __future__ import annotations

import re
from pathlib import Path

import pandas as pd
import pytest

from iaalib._io import write_json
from iaalib.paths import REPO_ROOT
from iaalib.studies import paper, results

KAO_TXT = REPO_ROOT.parent / "shared" / "papers" / "kao-mtcnn-semantic-aesthetic.txt"


def test_kao_tables_match_the_paper_text():
    """Every Kao accuracy in paper_results.yaml appears in the paper's text (independent source)."""
    if not KAO_TXT.exists():
        pytest.skip("paper text not available")
    text = KAO_TXT.read_text()
    numbers = set(re.findall(r"\d+\.\d+", text))
    for table in ("table1", "table2", "table3", "table4", "table5"):
        df = paper.paper_table("kao", table)
        for v in df.to_numpy().ravel():
            if pd.notna(v):
                assert any(abs(float(n) - v) < 1e-9 for n in numbers), (table, v)


def test_kao_fig9_rows_are_the_29_tags_and_antisymmetric():
    fig9 = paper.paper_table("kao", "fig9")
    assert len(fig9) == 31
    assert (fig9["low aesthetic"] + fig9["high aesthetic"]).abs().max() <= 0.0031
    # the paper's reading of Fig. 9: Snapshot and Candid go with low aesthetics
    assert fig9.loc["snapshot", "low aesthetic"] == fig9["low aesthetic"].iloc[2:].max()
    assert fig9.loc["candid", "low aesthetic"] > 0
    assert fig9.loc["advertisement", "high aesthetic"] > 0 and fig9.loc["seascapes", "high aesthetic"] > 0


def test_dataset_counts_are_consistent():
    d = paper.paper_value("kao", "dataset")
    assert d["n_train"] + d["n_test"] == d["n_images"]
    # the paper's Photo.net figures do not add up (17,232 vs 3,000 + 15,232); the data says so
    assert d["photonet_train"] + d["photonet_test"] != d["photonet_images"]
    assert "18,232" in d["note"]


def test_claims_are_well_formed_and_name_their_source():
    for name in ("kao", "saf"):
        specs = paper.claims(name)
        assert specs and len({c["id"] for c in specs}) == len(specs)
        for c in specs:
            assert {"id", "source", "claim", "metric", "better", "worse"} <= set(c), c
            assert c["metric"] in ("acc", "srcc_mean", "plcc_mean", "srcc_sd", "plcc_sd"), c
    # the printed differences of Table I are the paper's own numbers
    t1 = paper.paper_table("kao", "table1")
    by_id = {c["id"]: c for c in paper.claims("kao", "table1")}
    assert by_id["t1-lam1m-vs-0"]["paper_difference"] == pytest.approx(
        t1.at["delta=0", "lambda=1/M"] - t1.at["delta=0", "lambda=0"])
    assert by_id["t1-lam1m-vs-early"]["paper_difference"] == pytest.approx(
        t1.at["delta=0", "lambda=1/M"] - t1.at["delta=0", "early stopping"])


def _fake_run(tmp_path: Path, name: str, status: str) -> Path:
    d = tmp_path / name
    write_json(d / "run.json", {"status": status, "name": name, "config_hash": "abc", "seed": 3,
                                "manifest_sha256": {"train": "00"}, "code": {"git_revision": "r"}})
    return d


def test_result_table_round_trip_with_provenance(tmp_path):
    run = _fake_run(tmp_path, "r1", "finished")
    df = pd.DataFrame({"acc": [0.7]}, index=["MTCNN #1"])
    path = results.save_result_table(df, "table1", "demo", [run], root=tmp_path / "res")
    back, prov = results.load_result_table("table1", "demo", root=tmp_path / "res")
    assert path.exists() and back.loc["MTCNN #1", "acc"] == 0.7
    assert prov["runs"][0]["seed"] == 3 and prov["runs"][0]["run_dir"] == str(run)
    assert results.list_result_tables("demo", root=tmp_path / "res") == ["table1"]


def test_result_table_refuses_unfinished_runs(tmp_path):
    run = _fake_run(tmp_path, "r2", "running")
    with pytest.raises(ValueError, match="did not finish"):
        results.save_result_table(pd.DataFrame({"a": [1]}), "t", "demo", [run], root=tmp_path)
    with pytest.raises(FileNotFoundError, match="no result table"):
        results.load_result_table("t", "demo", root=tmp_path)


def test_long_comparison_keeps_cells_from_either_side():
    from iaalib.studies.summary import long_comparison
    p = pd.DataFrame({"A": [1.0], "B": [2.0]}, index=["r"])
    o = pd.DataFrame({"A": [1.5], "C": [3.0]}, index=["r"])
    out = long_comparison(p, o, "demo")
    assert out.loc["r / A", ["paper", "ours"]].tolist() == [1.0, 1.5]
    assert pd.isna(out.loc["r / B", "ours"]) and out.loc["r / B", "paper"] == 2.0
    assert pd.isna(out.loc["r / C", "paper"]) and out.loc["r / C", "ours"] == 3.0
    assert set(out["profile"]) == {"demo"}


def test_summary_reads_saved_tables_and_claims(tmp_path):
    from iaalib.studies import summary
    run = _fake_run(tmp_path, "r1", "finished")
    ours = pd.DataFrame({"lambda=0": [70.0], "lambda=1/M": [74.0]}, index=["delta=0"])
    results.save_result_table(ours, "kao_table1", "demo", [run], root=tmp_path / "res")
    saf3 = pd.DataFrame({"srcc_mean": [0.6, 0.5, 0.4, 0.45]},
                        index=["full", "w/o Split", "w/o Act", "w/o Act & Split"])
    results.save_result_table(saf3, "saf_table3", "demo", [run], root=tmp_path / "res")
    comp = summary.kao_comparisons("demo", root=tmp_path / "res")["table1"]
    assert comp.loc["delta=0 / lambda=1/M", "ours"] == 74.0
    assert comp.loc["delta=0 / lambda=1/M", "paper"] == 76.15
    assert pd.isna(comp.loc["delta=1 / lambda=0", "ours"])
    table = pd.DataFrame([{"paper": "SAF", "source": "Table 3", "claim": "x", "metric": "srcc_mean",
                           "difference": 0.1, "ci_low": 0.05, "ci_high": 0.2, "n_seeds": 3,
                           "verdict": "reproduced", "runs": [str(run)]},
                          {"paper": "Kao et al.", "source": "Table I", "claim": "y", "metric": "acc",
                           "difference": 1.0, "ci_low": -1.0, "ci_high": 3.0, "n_seeds": 3,
                           "verdict": "inconclusive", "runs": [str(run)]}])
    results.save_claims(table, "ch", "demo", root=tmp_path / "res")
    claims = summary.claims("demo", root=tmp_path / "res")
    assert claims["paper"].tolist() == ["Kao et al.", "SAF"]            # Kao first
    assert claims.loc[0, "provenance"][0]["run_dir"] == str(run) and claims.loc[0, "table"] == "ch"
    prov = summary.provenance_table("demo", root=tmp_path / "res")
    assert set(prov["table"]) == {"kao_table1", "saf_table3"} and (prov["seed"] == 3).all()
