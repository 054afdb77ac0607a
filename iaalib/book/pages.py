"""The book's generated pages: the "Choices" chapter, the profile table and pages made of module
docstrings (SynthAVA's documentation). Everything is read with ``ast``/YAML; nothing is imported.
"""
from __future__ import annotations

import ast
import dataclasses
import io
import json
import logging
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import docutils.core
import docutils.utils

from ..errors import DataFormatError
from ..paths import REPO_ROOT
from ..profiles import PARAMS_DIR, load_profile
from .notebooks import NOTEBOOK_DIR, discover_notebooks

log = logging.getLogger(__name__)

PACKAGE_DIR = REPO_ROOT / "iaalib"


# ============================================================================ generated pages
_CHOICE_RE = re.compile(r"\*{0,2}Choice:\*{0,2}")


_ROLE_RE = re.compile(r":(?:py:)?(?:func|class|meth|mod|attr|data|obj|exc):`~?([^`]+)`")


@dataclasses.dataclass(frozen=True)
class Choice:
    """One place where a paper is silent: ``where`` (module/object or notebook) and the text."""

    source: str
    where: str
    text: str


def _paragraphs(text: str) -> list[str]:
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def _clean_paragraph(p: str) -> str:
    p = " ".join(line.strip() for line in p.splitlines())
    p = _ROLE_RE.sub(lambda m: f"`{m.group(1)}`", p)
    p = re.sub(r"``([^`]+)``", r"`\1`", p)
    return _CHOICE_RE.sub("**Choice:**", p, count=1)


def collect_choices(package_dir: str | os.PathLike = PACKAGE_DIR,
                    notebook_dir: str | os.PathLike | None = NOTEBOOK_DIR) -> list[Choice]:
    """Every docstring paragraph containing "Choice:" in ``package_dir`` (parsed with ``ast``,
    nothing is imported) and every notebook markdown paragraph containing it, in file order."""
    package_dir = Path(package_dir)
    out: list[Choice] = []
    for py in sorted(package_dir.rglob("*.py")):
        rel = py.relative_to(package_dir.parent)
        module = ".".join(rel.with_suffix("").parts)
        if module.endswith(".__init__"):
            module = module[: -len(".__init__")]
        try:
            tree = ast.parse(py.read_text(encoding="utf-8"), filename=str(py))
        except SyntaxError as e:
            raise DataFormatError(py, e.lineno, f"cannot parse: {e.msg}") from e

        def visit(node: ast.AST, qual: str) -> None:
            doc = ast.get_docstring(node, clean=True) if isinstance(
                node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) else None
            for para in _paragraphs(doc or ""):
                if _CHOICE_RE.search(para):
                    out.append(Choice(str(rel), qual, _clean_paragraph(para)))
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                    visit(child, f"{qual}.{child.name}")

        visit(tree, module)
    if notebook_dir is not None:
        for nb in discover_notebooks(notebook_dir):
            cells = json.loads(nb.read_text(encoding="utf-8")).get("cells", [])
            for cell in cells:
                if cell.get("cell_type") != "markdown":
                    continue
                src = "".join(cell.get("source", []))
                for para in _paragraphs(src):
                    if _CHOICE_RE.search(para):
                        out.append(Choice(f"notebooks/{nb.name}", nb.stem, _clean_paragraph(para)))
    return out


def choices_markdown(choices: Sequence[Choice]) -> str:
    """Markdown for the "Choices" chapter: one ``###`` heading per file, one bullet per choice."""
    if not choices:
        return "*No docstring marks a choice yet.*\n"
    lines: list[str] = []
    current = None
    for c in choices:
        if c.source != current:
            current = c.source
            lines += ["", f"### `{c.source}`", ""]
        lines.append(f"- **`{c.where}`** — {c.text}")
    return "\n".join(lines).lstrip("\n") + "\n"


def profiles_markdown(params_dir: str | os.PathLike = PARAMS_DIR,
                      order: Sequence[str] = ("smoke", "demo", "rehearsal", "ava")) -> str:
    """A table of every profile's ``common`` parameters (rows) by profile (columns)."""
    names = [p for p in order if (Path(params_dir) / f"{p}.yaml").is_file()]
    names += sorted(p.stem for p in Path(params_dir).glob("*.yaml") if p.stem not in names)
    profiles = {n: load_profile(n, params_dir) for n in names}
    keys: list[str] = []
    for cfg in profiles.values():
        keys += [k for k in cfg.common if k not in keys]

    def cell(v: Any) -> str:
        if v is None or v == "":
            return "—"
        return f"`{v}`".replace("|", "\\|")

    rows = ["| parameter | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for k in keys:
        rows.append(f"| `{k}` | " + " | ".join(cell(profiles[n].common.get(k)) for n in names) + " |")
    desc = [f"- **{n}**: {profiles[n].description}" for n in names]
    return "\n".join(desc) + "\n\n" + "\n".join(rows) + "\n"


def ava_estimate_markdown(path: str | os.PathLike) -> str:
    """The "Reproducing on real AVA" chapter's cost table, from ``benchmarks/bench_rehearsal.py``'s
    report: per family the rehearsal's CPU time, FLOPs and memory, and the ava profile's GPU time."""
    path = Path(path)
    if not path.is_file():
        return (f"*No rehearsal has been recorded yet ({path.name} is missing): run "
                "`python benchmarks/bench_rehearsal.py`.*\n")
    r = json.loads(path.read_text(encoding="utf-8"))
    rows = ["| family | runs per seed | CPU s per training image | forward GFLOPs per image | "
            "peak memory (MiB) | ava GPU hours | share |", "|---|---:|---:|---:|---:|---:|---:|"]
    for name, f in r["families"].items():
        cpu, mem = f["cpu_s_per_training_image"], f["peak_memory_mib_max"]
        rows.append(f"| {name} | {f['runs_per_seed']} | {'—' if cpu is None else f'{cpu:.3f}'} | "
                    f"{f['forward_gflops_per_image']:.1f} | {'—' if mem is None else f'{mem:,.0f}'} "
                    f"| {f['ava_gpu_hours']:.2f} | {r['share_by_family'][name]:.0%} |")
    a, build = r["assumptions"], r.get("rehearsal_build") or {}
    took = f" The rehearsal book took {build['seconds']:.0f} s." if build.get("seconds") else ""
    return ("\n".join(rows) + "\n\n"
            f"**The ava profile: {r['ava_flops_total']:.2e} FLOPs, about "
            f"{r['ava_gpu_hours_total']:.1f} GPU hours** on {a['gpu']}, {a['ava_seeds']} seeds.{took}"
            f" FLOPs: {a['flops']}. CPU time: {a['cpu_time']}. Memory: {a['memory']}. Measured "
            f"{r.get('measured', '?')} at revision `{(r.get('git_revision') or '?')[:10]}` on "
            f"{r['machine'].get('cpus')} CPUs ({path.name}).\n")


#: Book pages generated from module docstrings: page stem -> (title, introduction, modules).
MODULE_PAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "synthava": (
        "SynthAVA and SynthTID: the embedded datasets",
        "The default profiles run on synthetic data in exactly the file formats of AVA and TID2013, "
        "so the same code serves the demo and the real datasets. This page is generated from the "
        "generators' documentation (`iaalib.synth`), so it always describes the code that "
        "made the data.",
        ("iaalib.synth.ava", "iaalib.synth.quality", "iaalib.synth.motifs",
         "iaalib.synth.tid"),
    ),
}


def module_docs_markdown(title: str, intro: str, modules: Sequence[str],
                         package_root: str | os.PathLike = REPO_ROOT) -> str:
    """A MyST page made of module docstrings (read with ``ast``; nothing is imported).

    Each module becomes a ``##`` section titled by its docstring's first line, the rest rendered as
    reStructuredText (``{eval-rst}``), the docstrings' own markup. A docstring that is not valid
    reStructuredText is shown verbatim (with a logged warning naming the module), so a formatting
    slip in a docstring never breaks the warnings-as-errors book build. Missing modules are skipped.
    """
    parts = [f"# {title}", "", intro, ""]
    for module in modules:
        path = Path(package_root, *module.split(".")).with_suffix(".py")
        if not path.is_file():
            continue
        doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")), clean=True) or ""
        head, _, body = doc.partition("\n")
        parts += [f"## {head.strip().rstrip('.')}", "", f"*From `{module}`.*", ""]
        body = body.strip("\n")
        if not body.strip():
            continue
        problems = _rst_problems(body)
        if problems:
            log.warning("%s: docstring is not valid reStructuredText (%s); shown verbatim in the book",
                        path, problems[0])
            parts += ["```text", body, "```", ""]
        else:
            parts += ["```{eval-rst}", body, "```", ""]
    return "\n".join(parts)


def _rst_problems(text: str) -> list[str]:
    """docutils' warnings and errors for ``text`` (Sphinx's Python roles read as literals)."""
    stream = io.StringIO()
    docutils.core.publish_doctree(
        _ROLE_RE.sub(lambda m: f"``{m.group(1)}``", text),
        settings_overrides={"report_level": docutils.utils.Reporter.WARNING_LEVEL,
                            "halt_level": docutils.utils.Reporter.SEVERE_LEVEL + 1,
                            "warning_stream": stream, "file_insertion_enabled": False,
                            "raw_enabled": False})
    return [line for line in stream.getvalue().splitlines() if "(WARNING" in line or "(ERROR" in line
            or "(SEVERE" in line]

