"""The book (iaalib.book): notebook selection, what the pipeline passes to a notebook, the Choices
generator and other generated pages, staging, failure reporting, and (slow) the whole smoke-profile
book end to end."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from iaalib import profiles
from iaalib.book import notebooks as nbs_mod
from iaalib.book import pages, pipeline, staging
from iaalib.errors import DataFormatError, IaaError

ROOT = Path(__file__).resolve().parent.parent


def _write_nb(path: Path, *cells) -> Path:
    nb = new_notebook(cells=list(cells), metadata={
        "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}})
    nbformat.write(nb, path)
    return path


def _params_cell(src: str):
    c = new_code_cell(src)
    c.metadata["tags"] = ["parameters"]
    return c


# ----------------------------------------------------------------------------- small pieces
def _profile(tmp_path: Path, text: str, name: str = "p") -> Path:
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_notebook_parameters_are_the_profile_and_the_overrides_only(tmp_path):
    prof = profiles.load_profile("demo")
    declared = {"profile": {}, "overrides": {}, "lambdas": {}}
    assert pipeline.notebook_parameters(prof, declared, {"seed": 3}) == \
        {"profile": "demo", "overrides": {"seed": 3}}
    assert pipeline.notebook_parameters(prof, {"profile": {}}) == {"profile": "demo"}
    other = profiles.load_profile("t", _profile(tmp_path, "common:\n  seed: 0\n", "t"))
    assert pipeline.notebook_parameters(other, declared)["profile"] == str(tmp_path / "t.yaml")


def test_discover_select_and_dependencies(tmp_path):
    for name in ["10_summary", "02_kao", "01_dataset", "notes"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    nbs = nbs_mod.discover_notebooks(tmp_path)
    assert [p.stem for p in nbs] == ["01_dataset", "02_kao", "10_summary"]
    pick = nbs_mod.select_notebooks
    assert [p.stem for p in pick(nbs, None)] == ["01_dataset", "02_kao", "10_summary"]
    assert [p.stem for p in pick(nbs, ["10", "1"])] == ["01_dataset", "10_summary"]
    assert [p.stem for p in pick(nbs, ["kao,01_dataset.ipynb"])] == ["01_dataset", "02_kao"]
    with pytest.raises(IaaError, match=r"--only 7: no such notebook \(available: 01_dataset, 02_kao"):
        pick(nbs, ["7"])
    assert nbs_mod.dependencies(nbs[0], nbs) == []
    assert [p.stem for p in nbs_mod.dependencies(nbs[1], nbs)] == ["01_dataset"]
    assert [p.stem for p in nbs_mod.dependencies(nbs[2], nbs)] == ["01_dataset", "02_kao"]
    for name in ["03_kao_more", "05_saf_model", "06_saf_ablations"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    nbs = nbs_mod.discover_notebooks(tmp_path)
    shares = {p.stem: [q.stem for q in nbs_mod.shares_runs_with(p, nbs)] for p in nbs}
    assert shares == {"01_dataset": [], "02_kao": [], "03_kao_more": ["02_kao"], "05_saf_model": [],
                      "06_saf_ablations": ["05_saf_model"], "10_summary": []}
    # a notebook that names the chapters whose runs it reuses waits for those only
    _write_nb(tmp_path / "07_saf_tsne.ipynb")
    nb = json.loads((tmp_path / "07_saf_tsne.ipynb").read_text())
    nb["metadata"]["iaa"] = {"reuses_runs_of": ["05_saf_model"]}
    (tmp_path / "07_saf_tsne.ipynb").write_text(json.dumps(nb))
    nbs = nbs_mod.discover_notebooks(tmp_path)
    assert [q.stem for q in nbs_mod.shares_runs_with(tmp_path / "07_saf_tsne.ipynb", nbs)] == \
        ["05_saf_model"]
    (tmp_path / "02_other.ipynb").write_text("{}")
    with pytest.raises(IaaError, match=r"share the number"):
        nbs_mod.discover_notebooks(tmp_path)


# ----------------------------------------------------------------------------- generated pages
def test_collect_choices_from_docstrings_and_notebooks(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""Package.\n\n**Choice:** the package default.\n"""\n')
    (pkg / "sub" / "mod.py").write_text(
        '"""Module without choices.\n\nJust text."""\n\n'
        'def f():\n    """Do f (Eq. 3).\n\n    Uses :func:`numpy.sum` and ``x``. Choice: 0.5\n'
        '    because the paper is silent.\n    """\n\n'
        'class C:\n    def g(self):\n        """No choice here."""\n\n'
        '    def h(self):\n        """First.\n\n        **Choice:** h is 2."""\n')
    nbdir = tmp_path / "nbs"
    nbdir.mkdir()
    _write_nb(nbdir / "01_a.ipynb", new_markdown_cell("# A\n\nIntro.\n\n**Choice:** seeded draw."),
              new_code_cell("# Choice: in code, ignored"))
    found = pages.collect_choices(pkg, nbdir)
    assert [(c.source, c.where, c.text) for c in found] == [
        ("pkg/__init__.py", "pkg", "**Choice:** the package default."),
        ("pkg/sub/mod.py", "pkg.sub.mod.f",
         "Uses `numpy.sum` and `x`. **Choice:** 0.5 because the paper is silent."),
        ("pkg/sub/mod.py", "pkg.sub.mod.C.h", "**Choice:** h is 2."),
        ("notebooks/01_a.ipynb", "01_a", "**Choice:** seeded draw."),
    ]
    md = pages.choices_markdown(found)
    assert md.count("### ") == 3 and md.count("\n- ") + md.startswith("- ") == 4
    assert "- **`pkg.sub.mod.C.h`** — **Choice:** h is 2." in md


def test_collect_choices_sees_this_repository():
    found = pages.collect_choices()
    assert any(c.where == "iaalib.datasets.scaled_protocol_size" for c in found)
    assert any(c.source == "notebooks/01_dataset.ipynb" for c in found)


def test_module_docs_markdown(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text('"""Alpha module.\n\nBody with ``code``.\n\n* item\n"""\n')
    (tmp_path / "pkg" / "b.py").write_text('"""Only a title."""\n')
    md = pages.module_docs_markdown("T", "Intro.", ["pkg.a", "pkg.missing", "pkg.b"], tmp_path)
    assert md.splitlines() == [
        "# T", "", "Intro.", "",
        "## Alpha module", "", "*From `pkg.a`.*", "",
        "```{eval-rst}", "Body with ``code``.", "", "* item", "```", "",
        "## Only a title", "", "*From `pkg.b`.*"]
    # Invalid reStructuredText is shown verbatim (and logged) rather than breaking the -W build.
    (tmp_path / "pkg" / "c.py").write_text('"""Bad table.\n\n===  ===\na    b\nlonger row  x\n===  ===\n"""\n')
    md = pages.module_docs_markdown("T", "Intro.", ["pkg.c"], tmp_path)
    assert "```{eval-rst}" not in md and "```text\n===  ===\n" in md


def test_profiles_markdown_table(tmp_path):
    _profile(tmp_path, "description: tiny\ncommon:\n  synth_n: 300\n  seed: 0\n", "smoke")
    _profile(tmp_path, "description: real\ncommon:\n  ava_txt: /a|b\n  seed: 1\n", "ava")
    md = pages.profiles_markdown(tmp_path)
    assert "- **smoke**: tiny" in md and "- **ava**: real" in md
    rows = [r for r in md.splitlines() if r.startswith("| `")]
    assert rows == ["| `synth_n` | `300` | — |", "| `seed` | `0` | `1` |", "| `ava_txt` | — | `/a\\|b` |"]


def test_stage_book_copies_executed_notebooks_and_writes_placeholders(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    nbs = nbs_mod.discover_notebooks()
    first = nbs[0]
    _write_nb(executed / first.name, new_markdown_cell("# Executed"), new_code_cell("1"))
    stage = tmp_path / "stage"

    chapters = staging.stage_book(stage, profile="smoke", executed_dir=executed, status={},
                               notebooks=nbs)
    doc = f"{staging.GENERATED}/{first.stem}"
    assert chapters[doc] == "placeholder"
    text = (stage / f"{doc}.md").read_text()
    assert "not run in the **smoke** profile" in text and f"--only {first.stem[:2]}" in text
    assert text.startswith("# ") and (stage / "_toc.yml").is_file() and (stage / "book/intro.md").is_file()
    assert "**Choice:**" in (stage / staging.GENERATED / "choices.md").read_text()
    assert "| `synth_n` |" in (stage / staging.GENERATED / "profiles.md").read_text()
    assert (stage / staging.GENERATED / "synthava.md").read_text().startswith("# SynthAVA")

    status = {first.stem: {"status": "ok"}}
    assert staging.stage_book(stage, profile="smoke", executed_dir=executed, status=status,
                           notebooks=nbs)[doc] == "notebook"
    assert not (stage / f"{doc}.md").exists()
    assert "".join(json.loads((stage / f"{doc}.ipynb").read_text())["cells"][0]["source"]) == "# Executed"

    status[first.stem]["stale"] = ["the notebook source changed since"]
    assert staging.stage_book(stage, profile="smoke", executed_dir=executed, status=status,
                           notebooks=nbs)[doc] == "stale"
    cells = json.loads((stage / f"{doc}.ipynb").read_text())["cells"]
    assert "{warning}" in "".join(cells[1]["source"]) and len(cells) == 3

    status[first.stem]["status"] = "failed"
    staging.stage_book(stage, profile="smoke", executed_dir=executed, status=status, notebooks=nbs)
    assert "its last run failed" in (stage / f"{doc}.md").read_text()


# ----------------------------------------------------------------------------- execution (kernel)
@pytest.fixture()
def tiny_book(tmp_path):
    """Two notebooks, the second failing in its third code cell, and a profile for them."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    setup = "from iaalib.profiles import chapter_settings\nS = chapter_settings(profile, '{}', overrides)"
    _write_nb(nbdir / "01_ok.ipynb", new_markdown_cell("# OK"),
              _params_cell("profile = 'demo'\noverrides = {}"),
              new_code_cell(setup.format("01_ok") + "\nprint('x is', S.x)"))
    _write_nb(nbdir / "02_bad.ipynb", new_markdown_cell("# Bad"),
              _params_cell("profile = 'demo'\noverrides = {}"), new_code_cell(setup.format("02_bad")),
              new_code_cell("if S.x > S.y:\n    raise ValueError(f'boom {S.x}')"),
              new_code_cell("print('never')"))
    params = tmp_path / "params"
    params.mkdir()
    # A real-data profile (ava_txt set) makes the pipeline skip SynthAVA generation.
    (tmp_path / "AVA.txt").write_text("")
    (params / "t.yaml").write_text(f"common:\n  ava_txt: {tmp_path / 'AVA.txt'}\n  x: 7\n"
                                   "02_bad:\n  y: 3\n")
    return nbdir, params, tmp_path / "out"


def test_execute_notebook_failure_names_notebook_and_cell(tiny_book):
    nbdir, _, out = tiny_book
    target = out / "02_bad.ipynb"
    params = {"profile": str(tiny_book[1] / "t.yaml"), "overrides": {"x": 5}}
    with pytest.raises(nbs_mod.NotebookExecutionError) as err:
        nbs_mod.execute_notebook(nbdir / "02_bad.ipynb", target, params, cwd=nbdir)
    msg = str(err.value)
    assert msg.startswith("02_bad.ipynb: cell In [4]")        # params, injected, settings, raise
    assert "starts `if S.x > S.y:`" in msg and "ValueError: boom 5" in msg and str(target) in msg
    partial = json.loads(target.read_text())
    errors = [o for c in partial["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert [e["evalue"] for e in errors] == ["boom 5"]


def test_run_book_stops_on_failure_and_records_it(tiny_book, caplog):
    nbdir, params, out = tiny_book
    with pytest.raises(nbs_mod.NotebookExecutionError, match=r"02_bad\.ipynb: cell In \[4\].*boom 7"):
        pipeline.run_book("t", out=out, html=False, notebook_dir=nbdir, params_dir=params)
    record = json.loads((out / "book-run.json").read_text())
    assert record["status"] == "failed" and record["profile"] == "t"
    by_name = {e["name"]: e for e in record["notebooks"]}
    assert by_name["01_ok"]["status"] == "ok" and by_name["01_ok"]["seconds"] > 0
    assert by_name["01_ok"]["parameters"] == {"profile": str(params / "t.yaml"), "overrides": {}}
    assert by_name["01_ok"]["settings"]["x"] == 7 and by_name["02_bad"]["settings"]["y"] == 3
    assert by_name["02_bad"]["status"] == "failed"
    assert (out / "executed/t/02_bad.ipynb").is_file()
    executed = json.loads((out / "executed/t/01_ok.ipynb").read_text())
    assert "x is 7\n" in "".join(executed["cells"][-1]["outputs"][0]["text"])
    # An override reaches every notebook (iaa book -p x 1: then 02_bad passes), unknown names stop.
    with pytest.raises(IaaError, match=r"unknown setting\(s\) \['typo'\]"):
        pipeline.run_book("t", out=out, html=False, notebook_dir=nbdir, params_dir=params,
                          overrides={"typo": 1})
    record = pipeline.run_book("t", out=out, html=False, notebook_dir=nbdir, params_dir=params,
                               overrides={"x": 1})
    assert record["status"] == "ok" and record["overrides"] == {"x": 1}

    # --only 1 without the override: runs one notebook, reports the other (run with x = 1) as stale.
    record = pipeline.run_book("t", only=["1"], out=out, html=False, notebook_dir=nbdir, params_dir=params)
    by_name = {e["name"]: e for e in record["notebooks"]}
    assert record["status"] == "ok" and by_name["01_ok"]["executed_this_run"]
    assert by_name["02_bad"]["executed_this_run"] is False and by_name["02_bad"]["status"] == "ok"
    assert by_name["02_bad"]["stale"] == ["the profile's settings changed since"]


def test_two_jobs_run_the_papers_side_by_side_and_each_paper_in_order(tmp_path):
    """--jobs 2: a Kao and a SAF chapter overlap; the second Kao chapter waits for the first (it
    reuses its runs); the summary waits for all. Each notebook logs when it starts and ends."""
    nbdir, params = tmp_path / "notebooks", tmp_path / "params"
    nbdir.mkdir()
    params.mkdir()
    (tmp_path / "AVA.txt").write_text("")
    (params / "t.yaml").write_text(f"common:\n  ava_txt: {tmp_path / 'AVA.txt'}\n")
    log = tmp_path / "log.txt"
    body = ("import os, time\nopen({log!r}, 'a').write(f'start {name} {{time.time()}}\\n')\n"
            "time.sleep({pause})\nopen({log!r}, 'a').write(f'end {name} {{time.time()}}\\n')\n"
            "open({log!r}, 'a').write(f'threads {name} {{os.environ.get(\"OMP_NUM_THREADS\")}}\\n')")
    for name, pause in [("01_dataset", 0), ("02_kao_a", 5), ("03_kao_b", 0), ("05_saf_a", 5),
                        ("10_summary", 0)]:
        _write_nb(nbdir / f"{name}.ipynb", _params_cell("profile = 'demo'\noverrides = {}"),
                  new_code_cell(body.format(log=str(log), name=name, pause=pause)))
    record = pipeline.run_book("t", out=tmp_path / "out", html=False, notebook_dir=nbdir,
                               params_dir=params, jobs=2)
    assert record["status"] == "ok" and record["jobs"] == 2
    at, threads = {}, {}
    for line in log.read_text().splitlines():
        what, name, t = line.split()
        if what == "threads":
            threads[name] = t
        else:
            at[what, name] = float(t)
    assert at["start", "05_saf_a"] < at["end", "02_kao_a"] and \
        at["start", "02_kao_a"] < at["end", "05_saf_a"]                       # side by side
    assert at["start", "03_kao_b"] >= at["end", "02_kao_a"]                    # Kao in order
    assert at["start", "10_summary"] >= max(t for (w, _), t in at.items() if w == "end"
                                            and _ != "10_summary")
    assert min(at["start", n] for n in ("02_kao_a", "05_saf_a")) >= at["end", "01_dataset"]
    # a kernel that may run beside another gets the cores shared; one that runs alone, all
    shared = str(max(1, (os.cpu_count() or 1) // 2))
    assert threads == {"01_dataset": str(os.environ.get("OMP_NUM_THREADS")), "02_kao_a": shared,
                       "03_kao_b": shared, "05_saf_a": shared,
                       "10_summary": str(os.environ.get("OMP_NUM_THREADS"))}
    assert {e["name"]: e["threads"] for e in record["notebooks"]}["03_kao_b"] == int(shared)
    with pytest.raises(IaaError, match="jobs must be at least 1"):
        pipeline.run_book("t", out=tmp_path / "out", html=False, notebook_dir=nbdir,
                          params_dir=params, jobs=0)


def test_run_book_rejects_a_missing_real_label_file_before_running(tmp_path):
    params = _profile(tmp_path, "common:\n  seed: 0\n  ava_txt: /nowhere/AVA.txt\n", "real")
    with pytest.raises(DataFormatError, match=r"real\.yaml:3: ava_txt /nowhere/AVA\.txt does not exist"):
        pipeline.run_book("real", out=tmp_path / "out", html=False, params_dir=params)
    assert not (tmp_path / "out" / "executed" / "real" / "status.json").exists()


def test_run_book_stops_on_a_label_checksum_mismatch_before_any_notebook(tmp_path, monkeypatch):
    """strict_checksum: an AVA.txt whose sha256 differs from the recipe's stops `iaa book` with
    both checksums named, before notebook 01 (nothing executed, nothing trained)."""
    from iaalib.data import manifests
    from iaalib.errors import ChecksumMismatchError

    label = tmp_path / "AVA.txt"
    label.write_text("1 953619 0 1 5 17 38 36 15 6 5 1 1 22 1396\n")
    recipes = tmp_path / "recipes"
    recipes.mkdir()
    for name in ("kao", "standard"):
        (recipes / f"{name}.yaml").write_text(f"protocol: {name}\nparameters: {{}}\nexpected: {{}}\n"
                                              f"label_file:\n  sha256: {'ab' * 32}\n")
    monkeypatch.setattr(manifests, "RECIPE_DIR", recipes)
    params = _profile(tmp_path, f"common:\n  seed: 0\n  ava_txt: {label}\n  strict_checksum: true\n",
                      "real")
    with pytest.raises(ChecksumMismatchError, match=rf"AVA\.txt: sha256 [0-9a-f]{{64}} differs from "
                                                    rf"{'ab' * 32} expected by recipe kao"):
        pipeline.run_book("real", out=tmp_path / "out", html=False, params_dir=params)
    assert not (tmp_path / "out" / "executed" / "real" / "status.json").exists()


# ----------------------------------------------------------------------------- the whole smoke book
#: Chapters that present tables only, by design (the summary puts every paper table next to ours).
TABLES_ONLY = {"10_summary"}


@pytest.mark.slow
def test_smoke_book_end_to_end(smoke_book):
    out = smoke_book

    record = json.loads((out / "book-run.json").read_text())
    notebooks = nbs_mod.discover_notebooks()
    assert record["profile"] == "smoke" and record["status"] == "ok" and "revision" in record
    claims = json.loads((out / "claims.json").read_text())
    assert isinstance(claims, list) and len(claims) >= 20
    for c in claims:
        assert {"paper", "source", "claim", "metric", "difference", "ci_low", "ci_high", "n_seeds",
                "verdict"} <= set(c)
        assert c["verdict"] in ("reproduced", "contradicted", "inconclusive", "not run")
        if c["verdict"] != "not run":
            assert c["ci_low"] <= c["difference"] <= c["ci_high"] and c["n_seeds"] >= 1
            if c["n_seeds"] < 3:   # the smoke profile's 2 seeds: too few for a verdict
                assert c["verdict"] == "inconclusive"
    # every chapter that trains seeded runs saved its levelling check; the book gathers them
    levelling = json.loads((out / "levelling.json").read_text())
    assert {"kao_table1", "kao_table2", "kao_table3", "kao_table5", "saf_table2",
            "saf_ablations"} <= {r["table"] for r in levelling}
    for r in levelling:
        assert {"arm", "metric", "final", "move", "seed_sd", "levelled", "epochs", "run"} <= set(r)
        if r["levelled"] is not None:
            assert r["levelled"] == (r["move"] < r["seed_sd"])
            # the seeds' own sign pattern is one of the 2^n flips p_chance counts
            n_flips = 2 ** r["seeds"]
            assert (r["p_chance"] >= 1 / n_flips) if not r["levelled"] else \
                (r["p_chance"] <= 1 - 1 / n_flips)
    runs = [r["run"] for r in levelling]
    assert len(runs) == len(set(runs))                     # an arm two tables share: once
    assessed = [r["levelled"] for r in levelling if r["levelled"] is not None]
    assert record["levelling"] == {"assessed": len(assessed), "levelled": sum(assessed)}
    assert {e["name"] for e in record["notebooks"]} == {p.stem for p in notebooks}
    assert all(e["status"] == "ok" and e["executed_this_run"] and e["seconds"] > 0
               for e in record["notebooks"])
    # notebooks run side by side: the build lasts at least its longest notebook, and their
    # summed seconds may exceed it
    assert record["total_seconds"] >= max(e["seconds"] for e in record["notebooks"])
    assert record["notebook_seconds"] == pytest.approx(sum(e["seconds"] for e in record["notebooks"]),
                                                       abs=0.01)

    # Chapters that may run side by side never train the same run: each run a chapter reuses
    # was trained by a chapter it waits for (its declared reuses, transitively), or by itself.
    trained, reused = {}, {}
    for nb in notebooks:
        cells = json.loads((out / "executed/smoke" / nb.name).read_text())["cells"]
        text = "".join("".join(o.get("text", "")) for c in cells for o in c.get("outputs", []))
        trained[nb.stem] = set(re.findall(r"^(\S+)\s+trained in", text, re.M))
        reused[nb.stem] = set(re.findall(r"^(\S+)\s+reused", text, re.M))
    names = [n for ns in trained.values() for n in ns]
    assert len(names) == len(set(names)), "a run was trained by two chapters"
    assert sum(map(len, reused.values())) > 0

    def waits_for(stem: str) -> set[str]:
        nb = next(p for p in notebooks if p.stem == stem)
        direct = {q.stem for q in [*nbs_mod.dependencies(nb, notebooks),
                                   *nbs_mod.shares_runs_with(nb, notebooks)]}
        return direct.union(*(waits_for(d) for d in direct)) if direct else set()

    for stem, runs in reused.items():
        allowed = waits_for(stem) | {stem}
        missing = {n for n in runs if not any(n in trained[s] for s in allowed)}
        assert not missing, f"{stem} reuses {sorted(missing)[:3]}, trained by a chapter it does not wait for"

    figures_made = {}
    for nb in notebooks:
        executed = json.loads((out / "executed/smoke" / nb.name).read_text())
        errors = [o for c in executed["cells"] if c["cell_type"] == "code"
                  for o in c.get("outputs", []) if o["output_type"] == "error"]
        assert not errors, f"{nb.name}: {errors[0]['ename']}: {errors[0]['evalue']}"
        figures_made[nb.stem] = sum("image/png" in o.get("data", {}) for c in executed["cells"]
                                    if c["cell_type"] == "code" for o in c.get("outputs", []))

    html = out / "html"
    assert Path(record["html"]) == html / "index.html"
    for doc in staging.toc_files(ROOT / "_toc.yml"):
        page = html / f"{doc}.html"
        assert page.is_file(), f"no HTML for {doc}"
        if doc.startswith(staging.GENERATED + "/") and Path(doc).name in {p.stem for p in notebooks}:
            text = page.read_text(encoding="utf-8")
            assert "not run in the" not in text
            images = re.findall(r'<img[^>]+src="([^"]+)"', text)
            pngs = [s for s in images if s.endswith(".png") and (page.parent / s).is_file()]
            made = figures_made[Path(doc).name]
            assert len(pngs) + text.count("data:image/png") >= made, f"{doc}: figures lost in the HTML"
            if Path(doc).name in TABLES_ONLY:
                assert text.count("<table") >= 3, f"{doc}: the summary tables are missing"
            else:
                assert pngs or "data:image/png" in text, f"{doc}: no figures in the HTML"
            assert "{glue" not in text, f"{doc}: an unresolved glue reference"
