"""The book pipeline (iaalib.book): profiles, parameter merging, notebook selection, the Choices
generator, staging, failure reporting, and (slow) the whole smoke-profile book end to end."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from iaalib import book
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
def test_scaled_protocol_size_by_hand():
    assert book.scaled_protocol_size(3000, 2500) == 29      # 3000 * 2500 / 255530 = 29.35
    assert book.scaled_protocol_size(20000, 2500) == 196    # 195.67
    assert book.scaled_protocol_size(20000, 300) == 23      # 23.48
    assert book.scaled_protocol_size(3000, 255_530) == 3000
    assert book.scaled_protocol_size(3000, 10) == 1         # never 0
    with pytest.raises(ValueError):
        book.scaled_protocol_size(3000, 0)


def test_synth_paths_depend_on_every_generator_argument(monkeypatch, tmp_path):
    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    a = book.synth_ava_dir(300, 56, 0)
    assert a.parent == tmp_path.resolve() / "data"
    assert len({a, book.synth_ava_dir(301, 56, 0), book.synth_ava_dir(300, 64, 0),
                book.synth_ava_dir(300, 56, 1)}) == 4
    assert book.manifest_dir("demo", "kao-delta0") == tmp_path.resolve() / "data/manifests/demo/kao-delta0"
    assert book.manifest_dir("demo", "std", tmp_path / "m") == tmp_path / "m/demo/std"


def test_resolve_dataset_errors_name_the_missing_file(monkeypatch, tmp_path):
    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    with pytest.raises(IaaError, match=r"SynthAVA not generated yet.*iaa data synth"):
        book.resolve_dataset(synth_n=10)
    with pytest.raises(IaaError, match=re.escape(str(tmp_path / "AVA.txt"))):
        book.resolve_dataset(ava_txt=str(tmp_path / "AVA.txt"))
    made = book.resolve_dataset(synth_n=40, synth_short_edge=32, synth_seed=2, generate=True)
    assert made.synthetic and made.ava_txt == book.synth_ava_dir(40, 32, 2) / "AVA.txt"
    assert len(made.ava_txt.read_text().splitlines()) == 40 and made.image_dir.is_dir()
    (tmp_path / "AVA.txt").write_text("")
    (tmp_path / "tags.txt").write_text("")
    d = book.resolve_dataset(ava_txt=str(tmp_path / "AVA.txt"))
    assert (d.synthetic, d.tags_txt, d.image_dir) == (False, tmp_path / "tags.txt", None)


def _profile(tmp_path: Path, text: str, name: str = "p") -> Path:
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_load_profile_reports_file_and_line(tmp_path):
    d = _profile(tmp_path, "common:\n  seed: 0\n01_dataset:\n  n: 1\n  bad: {a: 1}\n")
    with pytest.raises(DataFormatError, match=r"p\.yaml:5: 01_dataset\.bad: parameters must be plain"):
        book.load_profile("p", d)
    _profile(tmp_path, "common:\n  seed: 0\ntraining:\n  n: 1\n")
    with pytest.raises(DataFormatError, match=r"p\.yaml:3: unknown section 'training'"):
        book.load_profile("p", d)
    _profile(tmp_path, "common: [1, 2\n")
    with pytest.raises(DataFormatError, match=r"p\.yaml:\d+: invalid YAML"):
        book.load_profile("p", d)
    with pytest.raises(IaaError, match=r"unknown profile 'nope'.*\['p'\]"):
        book.load_profile("nope", d)
    _profile(tmp_path, "description: x\ncommon:\n  seed: 0\n  tags: [a, b]\n01_dataset:\n")
    cfg = book.load_profile("p", d)
    assert cfg["common"] == {"seed": 0, "tags": ["a", "b"]} and cfg["01_dataset"] == {}


def test_notebook_parameters_merge_and_filter():
    cfg = {"common": {"a": 1, "b": 2, "c": 3}, "01_x": {"b": 20, "z": 9}}
    declared = {"a": {}, "b": {}, "profile": {}}
    params, unknown = book.notebook_parameters(cfg, "01_x.ipynb", declared, profile="demo")
    assert params == {"a": 1, "b": 20, "profile": "demo"}
    assert unknown == ["z"]
    params, unknown = book.notebook_parameters(cfg, "02_y.ipynb", {"c": {}})
    assert (params, unknown) == ({"c": 3}, [])


def test_discover_select_and_dependencies(tmp_path):
    for name in ["10_summary", "02_kao", "01_dataset", "notes"]:
        (tmp_path / f"{name}.ipynb").write_text("{}")
    nbs = book.discover_notebooks(tmp_path)
    assert [p.stem for p in nbs] == ["01_dataset", "02_kao", "10_summary"]
    pick = book.select_notebooks
    assert [p.stem for p in pick(nbs, None)] == ["01_dataset", "02_kao", "10_summary"]
    assert [p.stem for p in pick(nbs, ["10", "1"])] == ["01_dataset", "10_summary"]
    assert [p.stem for p in pick(nbs, ["kao,01_dataset.ipynb"])] == ["01_dataset", "02_kao"]
    with pytest.raises(IaaError, match=r"--only 7: no such notebook \(available: 01_dataset, 02_kao"):
        pick(nbs, ["7"])
    assert book.dependencies(nbs[0], nbs) == []
    assert [p.stem for p in book.dependencies(nbs[1], nbs)] == ["01_dataset"]
    assert [p.stem for p in book.dependencies(nbs[2], nbs)] == ["01_dataset", "02_kao"]
    (tmp_path / "02_other.ipynb").write_text("{}")
    with pytest.raises(IaaError, match=r"share the number"):
        book.discover_notebooks(tmp_path)


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
    found = book.collect_choices(pkg, nbdir)
    assert [(c.source, c.where, c.text) for c in found] == [
        ("pkg/__init__.py", "pkg", "**Choice:** the package default."),
        ("pkg/sub/mod.py", "pkg.sub.mod.f",
         "Uses `numpy.sum` and `x`. **Choice:** 0.5 because the paper is silent."),
        ("pkg/sub/mod.py", "pkg.sub.mod.C.h", "**Choice:** h is 2."),
        ("notebooks/01_a.ipynb", "01_a", "**Choice:** seeded draw."),
    ]
    md = book.choices_markdown(found)
    assert md.count("### ") == 3 and md.count("\n- ") + md.startswith("- ") == 4
    assert "- **`pkg.sub.mod.C.h`** — **Choice:** h is 2." in md


def test_collect_choices_sees_this_repository():
    found = book.collect_choices()
    assert any(c.where == "iaalib.book.scaled_protocol_size" for c in found)
    assert any(c.source == "notebooks/01_dataset.ipynb" for c in found)


def test_module_docs_markdown(tmp_path):
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text('"""Alpha module.\n\nBody with ``code``.\n\n* item\n"""\n')
    (tmp_path / "pkg" / "b.py").write_text('"""Only a title."""\n')
    md = book.module_docs_markdown("T", "Intro.", ["pkg.a", "pkg.missing", "pkg.b"], tmp_path)
    assert md.splitlines() == [
        "# T", "", "Intro.", "",
        "## Alpha module", "", "*From `pkg.a`.*", "",
        "```{eval-rst}", "Body with ``code``.", "", "* item", "```", "",
        "## Only a title", "", "*From `pkg.b`.*"]
    # Invalid reStructuredText is shown verbatim (and logged) rather than breaking the -W build.
    (tmp_path / "pkg" / "c.py").write_text('"""Bad table.\n\n===  ===\na    b\nlonger row  x\n===  ===\n"""\n')
    md = book.module_docs_markdown("T", "Intro.", ["pkg.c"], tmp_path)
    assert "```{eval-rst}" not in md and "```text\n===  ===\n" in md


def test_profiles_markdown_table(tmp_path):
    _profile(tmp_path, "description: tiny\ncommon:\n  synth_n: 300\n  seed: 0\n", "smoke")
    _profile(tmp_path, "description: real\ncommon:\n  ava_txt: /a|b\n  seed: 1\n", "ava")
    md = book.profiles_markdown(tmp_path)
    assert "- **smoke**: tiny" in md and "- **ava**: real" in md
    rows = [r for r in md.splitlines() if r.startswith("| `")]
    assert rows == ["| `synth_n` | `300` | — |", "| `seed` | `0` | `1` |", "| `ava_txt` | — | `/a\\|b` |"]


def test_stage_book_copies_executed_notebooks_and_writes_placeholders(tmp_path):
    executed = tmp_path / "executed"
    executed.mkdir()
    nbs = book.discover_notebooks()
    first = nbs[0]
    _write_nb(executed / first.name, new_markdown_cell("# Executed"), new_code_cell("1"))
    stage = tmp_path / "stage"

    chapters = book.stage_book(stage, profile="smoke", executed_dir=executed, status={},
                               notebooks=nbs)
    doc = f"{book.GENERATED}/{first.stem}"
    assert chapters[doc] == "placeholder"
    text = (stage / f"{doc}.md").read_text()
    assert "not run in the **smoke** profile" in text and f"--only {first.stem[:2]}" in text
    assert text.startswith("# ") and (stage / "_toc.yml").is_file() and (stage / "book/intro.md").is_file()
    assert "**Choice:**" in (stage / book.GENERATED / "choices.md").read_text()
    assert "| `synth_n` |" in (stage / book.GENERATED / "profiles.md").read_text()
    assert (stage / book.GENERATED / "synthava.md").read_text().startswith("# SynthAVA")

    status = {first.stem: {"status": "ok"}}
    assert book.stage_book(stage, profile="smoke", executed_dir=executed, status=status,
                           notebooks=nbs)[doc] == "notebook"
    assert not (stage / f"{doc}.md").exists()
    assert "".join(json.loads((stage / f"{doc}.ipynb").read_text())["cells"][0]["source"]) == "# Executed"

    status[first.stem]["stale"] = ["the notebook source changed since"]
    assert book.stage_book(stage, profile="smoke", executed_dir=executed, status=status,
                           notebooks=nbs)[doc] == "stale"
    cells = json.loads((stage / f"{doc}.ipynb").read_text())["cells"]
    assert "{warning}" in "".join(cells[1]["source"]) and len(cells) == 3

    status[first.stem]["status"] = "failed"
    book.stage_book(stage, profile="smoke", executed_dir=executed, status=status, notebooks=nbs)
    assert "its last run failed" in (stage / f"{doc}.md").read_text()


# ----------------------------------------------------------------------------- execution (kernel)
@pytest.fixture()
def tiny_book(tmp_path):
    """Two notebooks, the second failing in its third code cell, and a profile for them."""
    nbdir = tmp_path / "notebooks"
    nbdir.mkdir()
    _write_nb(nbdir / "01_ok.ipynb", new_markdown_cell("# OK"), _params_cell("x = 1"),
              new_code_cell("print('x is', x)"))
    _write_nb(nbdir / "02_bad.ipynb", new_markdown_cell("# Bad"), _params_cell("x = 1\ny = 0"),
              new_code_cell("z = x + 1"), new_code_cell("if x > y:\n    raise ValueError(f'boom {x}')"),
              new_code_cell("print('never')"))
    params = tmp_path / "params"
    params.mkdir()
    # A real-data profile (ava_txt set) makes the pipeline skip SynthAVA generation.
    (tmp_path / "AVA.txt").write_text("")
    (params / "t.yaml").write_text(f"common:\n  ava_txt: {tmp_path / 'AVA.txt'}\n  x: 7\n"
                                   "02_bad:\n  y: 3\n  typo: 1\n")
    return nbdir, params, tmp_path / "out"


def test_execute_notebook_failure_names_notebook_and_cell(tiny_book):
    nbdir, _, out = tiny_book
    target = out / "02_bad.ipynb"
    with pytest.raises(book.NotebookExecutionError) as err:
        book.execute_notebook(nbdir / "02_bad.ipynb", target, {"x": 5}, cwd=nbdir)
    msg = str(err.value)
    assert msg.startswith("02_bad.ipynb: cell In [4]")        # params, injected, z, raise
    assert "starts `if x > y:`" in msg and "ValueError: boom 5" in msg and str(target) in msg
    partial = json.loads(target.read_text())
    errors = [o for c in partial["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
              if o["output_type"] == "error"]
    assert [e["evalue"] for e in errors] == ["boom 5"]


def test_run_book_stops_on_failure_and_records_it(tiny_book, caplog):
    nbdir, params, out = tiny_book
    with pytest.raises(book.NotebookExecutionError, match=r"02_bad\.ipynb: cell In \[4\].*boom 7"):
        book.run_book("t", out=out, html=False, notebook_dir=nbdir, params_dir=params)
    assert "does not declare parameter 'typo'" in caplog.text
    record = json.loads((out / "book-run.json").read_text())
    assert record["status"] == "failed" and record["profile"] == "t"
    by_name = {e["name"]: e for e in record["notebooks"]}
    assert by_name["01_ok"]["status"] == "ok" and by_name["01_ok"]["seconds"] > 0
    assert by_name["01_ok"]["parameters"] == {"x": 7}
    assert by_name["02_bad"]["status"] == "failed" and by_name["02_bad"]["parameters"] == {"x": 7, "y": 3}
    assert (out / "executed/t/02_bad.ipynb").is_file()
    executed = json.loads((out / "executed/t/01_ok.ipynb").read_text())
    assert "x is 7\n" in "".join(executed["cells"][-1]["outputs"][0]["text"])

    # --only 1: runs one notebook, reports the other as not rerun.
    record = book.run_book("t", only=["1"], out=out, html=False, notebook_dir=nbdir, params_dir=params)
    by_name = {e["name"]: e for e in record["notebooks"]}
    assert record["status"] == "ok" and by_name["01_ok"]["executed_this_run"]
    assert by_name["02_bad"] == {**by_name["02_bad"], "executed_this_run": False, "status": "failed"}


def test_run_book_rejects_a_missing_real_label_file_before_running(tmp_path):
    params = _profile(tmp_path, "common:\n  seed: 0\n  ava_txt: /nowhere/AVA.txt\n", "real")
    with pytest.raises(DataFormatError, match=r"real\.yaml:3: ava_txt /nowhere/AVA\.txt does not exist"):
        book.run_book("real", out=tmp_path / "out", html=False, params_dir=params)
    assert not (tmp_path / "out" / "executed" / "real" / "status.json").exists()


# ----------------------------------------------------------------------------- the whole smoke book
#: Chapters that present tables only, by design (the summary puts every paper table next to ours).
TABLES_ONLY = {"10_summary"}


@pytest.mark.slow
def test_smoke_book_end_to_end(tmp_path):
    out = tmp_path / "build"
    env = {**os.environ, "IAA_HOME": str(tmp_path / "home"), "MPLBACKEND": "Agg"}
    r = subprocess.run([sys.executable, "-m", "iaalib.cli", "book", "--profile", "smoke",
                        "--out", str(out)], cwd=ROOT, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]

    record = json.loads((out / "book-run.json").read_text())
    notebooks = book.discover_notebooks()
    assert record["profile"] == "smoke" and record["status"] == "ok" and "revision" in record
    assert {e["name"] for e in record["notebooks"]} == {p.stem for p in notebooks}
    assert all(e["status"] == "ok" and e["executed_this_run"] and e["seconds"] > 0
               for e in record["notebooks"])
    assert record["total_seconds"] >= record["notebook_seconds"] > 0

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
    for doc in book.toc_files(ROOT / "_toc.yml"):
        page = html / f"{doc}.html"
        assert page.is_file(), f"no HTML for {doc}"
        if doc.startswith(book.GENERATED + "/") and Path(doc).name in {p.stem for p in notebooks}:
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
