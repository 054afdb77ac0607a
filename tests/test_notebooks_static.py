"""Static checks of the notebooks, the profiles and the table of contents (no kernel needed).

* notebooks are committed without outputs or execution counts and are valid nbformat;
* each has exactly one ``parameters`` cell, the first code cell, holding only literal assignments:
  ``profile``, ``overrides`` and knobs that default to ``None`` (= the profile's value);
* the profile is the only source of settings: a notebook opened on its own and the same notebook
  run by ``iaa book`` resolve identical settings, and no cell reads a setting except through them;
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

from iaalib import profiles
from iaalib.book import pages, pipeline, staging

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


def _parameters(path: Path) -> dict[str, object]:
    cells = _cells(path)
    first_code = next(i for i, c in enumerate(cells) if c["cell_type"] == "code")
    values = {}
    for stmt in ast.parse(_source(cells[first_code])).body:
        values[stmt.targets[0].id] = ast.literal_eval(stmt.value)
    return values


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
    values = _parameters(path)
    assert values.pop("profile") == "demo" and values.pop("overrides") == {}, path.name
    known = profiles.load_profile("demo").settings(path.stem)
    for name, value in values.items():
        assert value is None, f"{path.name}: {name} = {value!r}; knobs default to None (the profile's)"
        assert name in known, f"{path.name}: parameter {name!r} is not a setting of the profiles"


def _settings_statement(path: Path) -> str:
    """The ``S = profiles.chapter_settings(...)`` statement of a notebook's settings cell."""
    for cell in _cells(path):
        if cell["cell_type"] != "code":
            continue
        src = "\n".join(line for line in _source(cell).splitlines() if not line.startswith("%"))
        for stmt in ast.parse(src).body:
            if isinstance(stmt, ast.Assign) and "chapter_settings" in ast.unparse(stmt.value):
                return ast.unparse(stmt)
    pytest.fail(f"{path.name}: no `S = profiles.chapter_settings(...)`")


@pytest.mark.parametrize("profile_name", ["demo", "smoke", "ava"])
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_opened_alone_or_run_by_iaa_book_the_settings_are_identical(path, profile_name):
    """The notebook as a reader opens it (its parameters cell, with the profile name set) and as
    `iaa book --profile P` runs it (papermill's injected parameters) resolve the same settings —
    the ones of the profile file — and the settings statement passes every knob on."""
    statement = _settings_statement(path)
    assert f"'{path.stem}'" in statement, f"{path.name}: chapter_settings names another notebook"
    alone = {**_parameters(path), "profile": profile_name, "profiles": profiles}
    exec(statement, alone)
    prof = profiles.load_profile(profile_name)
    injected = {**_parameters(path), "profiles": profiles,
                **pipeline.notebook_parameters(prof, papermill.inspect_notebook(str(path)))}
    exec(statement, injected)
    assert dict(alone["S"]) == dict(injected["S"]) == dict(prof.settings(path.stem))
    knobs = set(_parameters(path)) - {"profile", "overrides"}
    call = ast.parse(statement).body[0].value
    assert {kw.arg for kw in call.keywords} == knobs, f"{path.name}: knobs not passed on"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_settings_are_read_through_the_profile_only(path):
    """No code cell reads a setting as a bare name (it would bypass the profile): settings are
    ``S.<name>``; parameters appear only in the parameters cell and the settings statement."""
    known = set(profiles.load_profile("demo").settings(path.stem)) | {"overrides"}
    statement = _settings_statement(path)
    assigned, read = set(), []
    for cell in [c for c in _cells(path) if c["cell_type"] == "code"][1:]:
        src = "\n".join(line for line in _source(cell).splitlines() if not line.startswith("%"))
        for stmt in ast.parse(src).body:
            if ast.unparse(stmt) == statement:
                continue
            for node in ast.walk(stmt):
                if isinstance(node, ast.Name):
                    (assigned.add if isinstance(node.ctx, ast.Store) else read.append)(node.id)
                elif isinstance(node, ast.FunctionDef):
                    assigned.add(node.name)
                elif isinstance(node, ast.arg):
                    assigned.add(node.arg)
    stray = sorted({n for n in read if n in known and n not in assigned})
    assert not stray, f"{path.name}: reads setting(s) {stray} directly; use S.<name>"


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_profile_sections_name_notebooks(profile):
    prof = profiles.load_profile(profile.stem, profile.parent)  # structure and plain values
    raw = yaml.safe_load(profile.read_text(encoding="utf-8"))
    stems = {p.stem for p in NOTEBOOKS}
    for section in raw:
        if section in ("description", "common", "extends"):
            continue
        assert section in stems, f"{profile.name}: section {section!r} names no notebook"
    assert set(prof.common) >= set(raw.get("common") or {})


def test_toc_has_one_chapter_per_notebook_and_every_page_exists():
    files = staging.toc_files(ROOT / "_toc.yml")
    generated = {Path(f).name for f in files if f.startswith(staging.GENERATED + "/")}
    assert generated == {p.stem for p in NOTEBOOKS} | set(pages.MODULE_PAGES)
    for f in files:
        if not f.startswith(staging.GENERATED + "/"):
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
def test_every_code_cell_is_valid_python(path):
    """Python's compiler on each code cell (IPython magics aside): a syntax error is found here,
    not minutes into a book build."""
    for i, cell in enumerate(_cells(path)):
        if cell["cell_type"] == "code":
            code = "\n".join("" if line.lstrip().startswith(("%", "!")) else line
                             for line in _source(cell).splitlines())
            try:
                compile(code, f"{path.name}[{i}]", "exec")
            except SyntaxError as e:
                pytest.fail(f"{path.name}: cell {i}, line {e.lineno}: {e.msg}")


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
