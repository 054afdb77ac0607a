"""Staging the book sources with the executed notebooks, and the Jupyter Book 1 HTML build."""
from __future__ import annotations

import json
import os
import shutil
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import IaaError
from ..paths import REPO_ROOT
from ..profiles import PARAMS_DIR
from .pages import MODULE_PAGES, ava_estimate_markdown, choices_markdown, collect_choices, \
    module_docs_markdown, profiles_markdown
from .reader import apply_reader_tags

BOOK_DIR = REPO_ROOT / "book"
CONFIG_FILE = REPO_ROOT / "_config.yml"
TOC_FILE = REPO_ROOT / "_toc.yml"
#: The rehearsal's cost report, shown in the "Reproducing on real AVA" chapter.
AVA_ESTIMATE = REPO_ROOT / "benchmarks" / "results" / "ava_estimate.json"
#: Where the table of contents expects the executed notebooks (inside the staged sources).
GENERATED = "book/generated"


def toc_files(toc: str | os.PathLike = TOC_FILE) -> list[str]:
    """Every document the table of contents references (``root`` and ``file`` entries)."""
    data = yaml.safe_load(Path(toc).read_text(encoding="utf-8"))
    found: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("root", "file"):
                if key in node:
                    found.append(str(node[key]))
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(data)
    return found


def _notebook_title(path: Path) -> str:
    nb = json.loads(path.read_text(encoding="utf-8"))
    for cell in nb.get("cells", []):
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", [])).splitlines():
                if line.startswith("# "):
                    return line[2:].strip()
    return path.stem


def _placeholder(title: str, profile: str, stem: str, reason: str) -> str:
    return (f"# {title}\n\n```{{note}}\nThis chapter was not run in the **{profile}** profile "
            f"({reason}). Run it with `iaa book --profile {profile} --only {stem[:2]}`.\n```\n")


def _stale_notice(nb_path: Path, reasons: Sequence[str]) -> None:
    nb = json.loads(nb_path.read_text(encoding="utf-8"))
    cell = {"cell_type": "markdown", "id": "iaa-stale-notice", "metadata": {},
            "source": ["```{warning}\n", "These outputs were executed by an earlier run of "
                       f"`iaa book` ({'; '.join(reasons)}).\n", "```"]}
    nb["cells"].insert(1 if nb.get("cells") else 0, cell)
    nb_path.write_text(json.dumps(nb, indent=1, ensure_ascii=False), encoding="utf-8")


def stage_book(stage: Path, *, profile: str, executed_dir: Path, status: Mapping[str, Any],
               notebooks: Sequence[Path], params_dir: Path = PARAMS_DIR) -> dict[str, str]:
    """Copy the book sources into ``stage`` and fill ``book/generated/``.

    Returns {toc document: "notebook" | "stale" | "placeholder"} for the notebook chapters.
    """
    if stage.exists():
        shutil.rmtree(stage)
    shutil.copytree(BOOK_DIR, stage / "book",
                    ignore=shutil.ignore_patterns("generated", ".ipynb_checkpoints", "__pycache__"))
    shutil.copy2(CONFIG_FILE, stage / "_config.yml")
    shutil.copy2(TOC_FILE, stage / "_toc.yml")
    gen = stage / GENERATED
    gen.mkdir(parents=True, exist_ok=True)
    (gen / "choices.md").write_text(choices_markdown(collect_choices()), encoding="utf-8")
    (gen / "profiles.md").write_text(profiles_markdown(params_dir), encoding="utf-8")
    (gen / "ava_estimate.md").write_text(ava_estimate_markdown(AVA_ESTIMATE), encoding="utf-8")
    for stem, (title, intro, modules) in MODULE_PAGES.items():
        (gen / f"{stem}.md").write_text(module_docs_markdown(title, intro, modules), encoding="utf-8")

    by_stem = {p.stem: p for p in notebooks}
    chapters: dict[str, str] = {}
    for doc in toc_files(stage / "_toc.yml"):
        if not doc.startswith(GENERATED + "/"):
            continue
        stem = Path(doc).name
        if stem in ("choices", "profiles") or stem in MODULE_PAGES:
            continue
        src = by_stem.get(stem)
        rec = status.get(stem, {})
        executed = executed_dir / f"{stem}.ipynb"
        title = _notebook_title(src) if src else stem
        if rec.get("status") == "ok" and executed.is_file():
            shutil.copy2(executed, gen / f"{stem}.ipynb")
            apply_reader_tags(gen / f"{stem}.ipynb")
            reasons = rec.get("stale") or []
            if reasons:
                _stale_notice(gen / f"{stem}.ipynb", reasons)
            chapters[doc] = "stale" if reasons else "notebook"
        else:
            reason = ("its last run failed" if rec.get("status") == "failed"
                      else "no notebook source" if src is None else "not executed yet")
            (gen / f"{stem}.md").write_text(_placeholder(title, profile, stem, reason), encoding="utf-8")
            chapters[doc] = "placeholder"
    return chapters


def build_html(stage: Path, html_dir: Path, *, warnings_as_errors: bool = True) -> Path:
    """Jupyter Book 1 over the staged sources (``execute_notebooks: off``) into ``html_dir``.

    Uses Jupyter Book's own Sphinx entry point (what ``jupyter-book build -W --keep-going`` runs),
    so the output can go straight to ``html_dir``. Returns the path of ``index.html``.
    """
    from jupyter_book.sphinx import build_sphinx  # Sphinx: imported only for an HTML build

    html_dir = Path(html_dir)
    if html_dir.exists():
        shutil.rmtree(html_dir)
    result = build_sphinx(
        str(stage), str(html_dir),
        noconfig=True, path_config=str(stage / "_config.yml"),
        confoverrides={"external_toc_path": str(stage / "_toc.yml"), "latex_individualpages": False},
        doctreedir=str(html_dir.parent / ".doctrees"),
        warningiserror=warnings_as_errors, keep_going=True, freshenv=True, quiet=True,
    )
    if isinstance(result, BaseException):
        raise IaaError(f"Jupyter Book build failed: {type(result).__name__}: {result}") from result
    if result != 0:
        raise IaaError(f"Jupyter Book build reported warnings (treated as errors, listed above); "
                       f"sources staged in {stage}")
    index = html_dir / "index.html"
    if not index.is_file():
        raise IaaError(f"Jupyter Book build wrote no {index}")
    return index

