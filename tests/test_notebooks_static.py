"""Static checks of the notebooks, the profiles and the table of contents (no kernel needed).

* notebooks are committed without outputs or execution counts and are valid nbformat;
* each has exactly one ``parameters`` cell, the first code cell, holding only literal assignments;
* each profile YAML names only parameters its notebooks declare (papermill's own inspection);
* ``_toc.yml`` has one chapter per notebook and every page it names exists;
* the notebooks hold no model/training code (that lives in iaalib) and their headings do not skip
  levels (a Sphinx warning, i.e. an error in the book build).
"""
from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import nbformat
import papermill
import pytest
import yaml

from iaalib import book

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
PROFILES = sorted((ROOT / "notebooks" / "params").glob("*.yaml"))


def _cells(path: Path) -> list[dict]:
    return json.loads(path.read_text(encoding="utf-8"))["cells"]


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def test_there_are_notebooks_and_profiles():
    assert NOTEBOOKS, "no notebooks in notebooks/"
    assert {p.stem for p in PROFILES} >= {"smoke", "demo", "ava"}
    assert all(re.match(r"^\d{2}_[A-Za-z0-9_]+$", p.stem) for p in NOTEBOOKS), \
        [p.name for p in NOTEBOOKS]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_is_valid_and_has_no_outputs(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert cell.get("outputs") == [], f"{path.name}: cell {i} has outputs (strip them)"
            assert cell.get("execution_count") is None, f"{path.name}: cell {i} has an execution count"
        assert "papermill" not in cell.get("metadata", {}), f"{path.name}: cell {i} has papermill metadata"
    assert "papermill" not in nb.metadata, f"{path.name}: notebook metadata from a papermill run"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_single_parameters_cell_of_literal_assignments(path):
    cells = _cells(path)
    tagged = [i for i, c in enumerate(cells) if "parameters" in c.get("metadata", {}).get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: {len(tagged)} cells tagged 'parameters'"
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    assert tagged[0] == first_code, f"{path.name}: the parameters cell must be the first code cell"
    tree = ast.parse(_source(cells[first_code]))
    names = []
    for stmt in tree.body:
        assert isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 \
            and isinstance(stmt.targets[0], ast.Name), \
            f"{path.name}: line {stmt.lineno} of the parameters cell is not `name = value`"
        try:
            ast.literal_eval(stmt.value)
        except ValueError:
            pytest.fail(f"{path.name}: parameter {stmt.targets[0].id} (line {stmt.lineno}) is not a "
                        "plain literal; compute derived values in the next cell")
        names.append(stmt.targets[0].id)
    assert len(names) == len(set(names)), f"{path.name}: a parameter is assigned twice"
    # papermill must see the same parameters (it is what `iaa book` uses).
    assert set(papermill.inspect_notebook(str(path))) == set(names)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_names_only_declared_parameters(profile):
    cfg = book.load_profile(profile.stem, profile.parent)  # structure and plain values
    raw = yaml.safe_load(profile.read_text(encoding="utf-8"))
    declared = {p.stem: set(papermill.inspect_notebook(str(p))) for p in NOTEBOOKS}
    for section, values in raw.items():
        if section in ("description", "common"):
            continue
        assert section in declared, f"{profile.name}: section {section!r} names no notebook"
        unknown = set(values or {}) - declared[section]
        assert not unknown, f"{profile.name}: {section} does not declare {sorted(unknown)}"
    everything = set().union(*declared.values()) | book.PIPELINE_KEYS
    unknown = set(raw.get("common") or {}) - everything
    assert not unknown, f"{profile.name}: common parameters no notebook declares: {sorted(unknown)}"
    assert cfg["common"] == (raw.get("common") or {})


def test_toc_has_one_chapter_per_notebook_and_every_page_exists():
    files = book.toc_files(ROOT / "_toc.yml")
    generated = {Path(f).name for f in files if f.startswith(book.GENERATED + "/")}
    assert generated == {p.stem for p in NOTEBOOKS} | set(book.MODULE_PAGES)
    for f in files:
        if not f.startswith(book.GENERATED + "/"):
            assert (ROOT / f"{f}.md").is_file() or (ROOT / f"{f}.ipynb").is_file(), f"{f} is missing"
    assert len(files) == len(set(files)), "a page appears twice in _toc.yml"


def test_config_excludes_build_and_environment_folders():
    cfg = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))
    assert cfg["only_build_toc_files"] is True
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert {".venv", "_build", ".iaa", "notebooks", "**/.ipynb_checkpoints"} <= set(cfg["exclude_patterns"])


FORBIDDEN = [r"^\s*class\s", r"\bnn\.Module\b", r"\.backward\(", r"\boptim\.", r"\bimport torch\b"]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_no_model_or_training_code_inline(path):
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] != "code":
            continue
        for pattern in FORBIDDEN:
            assert not re.search(pattern, _source(cell), re.M), \
                f"{path.name}: cell {i} matches {pattern!r}; put such code in iaalib"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_title_first_and_headings_do_not_skip_levels(path):
    cells = _cells(path)
    assert cells[0]["cell_type"] == "markdown" and _source(cells[0]).startswith("# "), \
        f"{path.name}: the first cell must be a markdown '# Title'"
    level = 0
    titles = 0
    for cell in cells:
        if cell["cell_type"] != "markdown":
            continue
        in_fence = False
        for line in _source(cell).splitlines():
            if line.startswith("```"):
                in_fence = not in_fence
            m = re.match(r"^(#{1,6})\s", line)
            if m and not in_fence:
                new = len(m.group(1))
                titles += new == 1
                assert new <= level + 1, f"{path.name}: heading {line!r} skips a level"
                level = new
    assert titles == 1, f"{path.name}: {titles} level-1 headings (one title per chapter)"
