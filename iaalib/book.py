"""The book pipeline behind ``iaa book`` (and ``make book``).

1. generate the profile's SynthAVA / SynthTID if missing (under ``IAA_HOME/data``);
2. execute ``notebooks/NN_*.ipynb`` with papermill in dependency order into
   ``OUT/executed/<profile>/``, with the parameters of ``notebooks/params/<profile>.yaml``
   (``common:`` merged with the notebook's own section; only parameters the notebook declares);
3. on a failure stop with an error naming the notebook and the cell (partial output kept);
4. stage the book sources (``_config.yml``, ``_toc.yml``, ``book/``) with the executed notebooks
   in ``OUT/book-src/`` and build the HTML with Jupyter Book 1 (``execute_notebooks: off``,
   warnings are errors) into ``OUT/html/``;
5. write ``OUT/book-run.json`` (profile, per-notebook wall time, total time, git revision).

**Choice:** the sources are staged in ``OUT/book-src/`` instead of copying executed notebooks
into the repository's ``book/generated/``: builds into different output folders (the test suite's
smoke book, ``make book``) never write into the working tree or race on it. A chapter whose
notebook was not executed successfully for this profile (``--only``, or a failure in an earlier
run) is rendered as a short "not run in this profile" page, so the table of contents never
breaks; notebooks executed in earlier runs of the same profile and output folder are reused.

The module also holds the dataset-location helpers the notebooks share (:func:`synth_ava_dir`,
:func:`resolve_dataset`, :func:`manifest_dir`) and the generators of the "Choices" and "Profiles"
pages. Heavy imports (papermill, Jupyter Book) happen inside the functions that need them.
"""
from __future__ import annotations

import ast
import contextlib
import dataclasses
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from ._io import read_json, sha256_file, write_json
from .errors import DataFormatError, IaaError
from .paths import REPO_ROOT, data_home

log = logging.getLogger(__name__)

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
PARAMS_DIR = NOTEBOOK_DIR / "params"
BOOK_DIR = REPO_ROOT / "book"
CONFIG_FILE = REPO_ROOT / "_config.yml"
TOC_FILE = REPO_ROOT / "_toc.yml"
PACKAGE_DIR = REPO_ROOT / "iaalib"
#: Where the table of contents expects the executed notebooks (inside the staged sources).
GENERATED = "book/generated"
#: Images in the full AVA.txt; protocol sizes are scaled by N / AVA_N_IMAGES on smaller sets.
AVA_N_IMAGES = 255_530
#: Parameters `iaa book` itself reads from a profile's ``common:`` section (to generate data);
#: they may appear there even when no notebook declares them.
PIPELINE_KEYS = frozenset({"synth_n", "synth_short_edge", "synth_seed", "synth_tid_refs", "tid_root"})
_NOTEBOOK_RE = re.compile(r"^(\d{2})_[A-Za-z0-9_]+$")
_INLINE_KERNEL_BACKEND = "module://matplotlib_inline.backend_inline"


class NotebookExecutionError(IaaError):
    """A notebook failed under papermill; the message names the notebook and the cell."""


# ============================================================================ dataset locations
def synth_ava_dir(n: int, short_edge: int, seed: int) -> Path:
    """The SynthAVA directory of a profile: ``IAA_HOME/data/synth-ava_n<N>_e<edge>_s<seed>``."""
    return data_home() / f"synth-ava_n{int(n)}_e{int(short_edge)}_s{int(seed)}"


def synth_tid_dir(n: int, short_edge: int, seed: int, n_refs: int) -> Path:
    """The SynthTID directory made from :func:`synth_ava_dir` ``(n, short_edge, seed)``."""
    return data_home() / f"synth-tid_n{int(n)}_e{int(short_edge)}_s{int(seed)}_r{int(n_refs)}"


def manifest_dir(profile: str, name: str, root: str | os.PathLike | None = None) -> Path:
    """Where a profile's manifests live: ``<root or IAA_HOME/data/manifests>/<profile>/<name>``.

    Notebook 01 writes ``kao-delta0``, ``kao-delta1`` and ``standard`` here; later notebooks read them.
    """
    base = Path(root) if root else data_home() / "manifests"
    return base / profile / name


@dataclasses.dataclass(frozen=True)
class DatasetPaths:
    """The label files and images one profile works on (real AVA or SynthAVA)."""

    name: str
    ava_txt: Path
    tags_txt: Path | None
    challenges_txt: Path | None
    image_dir: Path | None
    synthetic: bool


def resolve_dataset(*, ava_txt: str = "", tags_txt: str = "", image_dir: str = "",
                    synth_n: int = 3000, synth_short_edge: int = 128,
                    synth_seed: int = 0, generate: bool = False) -> DatasetPaths:
    """The dataset a notebook uses: the real ``ava_txt`` when given, else the profile's SynthAVA.

    With a real ``AVA.txt``, ``tags.txt``/``challenges.txt`` default to the same folder and the
    images to ``<folder>/images``. ``generate=True`` generates a missing SynthAVA (so a notebook
    runs top to bottom on a fresh machine; ``iaa book`` has generated it already). Raises
    :class:`IaaError` naming the missing file and how to get it.
    """
    if ava_txt:
        label = Path(ava_txt).expanduser()
        if not label.is_file():
            raise IaaError(f"{label}: AVA.txt not found (set ava_txt in the profile; see the "
                           "'Reproducing on real AVA' chapter)")
        folder = label.parent
        tags = Path(tags_txt).expanduser() if tags_txt else folder / "tags.txt"
        chal = folder / "challenges.txt"
        images = Path(image_dir).expanduser() if image_dir else folder / "images"
        return DatasetPaths("AVA", label, tags if tags.is_file() else None,
                            chal if chal.is_file() else None,
                            images if images.is_dir() else None, synthetic=False)
    d = synth_ava_dir(synth_n, synth_short_edge, synth_seed)
    label = d / "AVA.txt"
    if generate:
        from .data.synth import generate_synth_ava

        generate_synth_ava(d, n=synth_n, seed=synth_seed, short_edge=synth_short_edge)
    if not label.is_file():
        raise IaaError(f"{label}: SynthAVA not generated yet; run `iaa book` (it generates it) or "
                       f"`iaa data synth --out {d} --n {synth_n} --short-edge {synth_short_edge} "
                       f"--seed {synth_seed}`")
    return DatasetPaths(f"SynthAVA (N={synth_n})", label, d / "tags.txt", d / "challenges.txt",
                        d / "images", synthetic=True)


def scaled_protocol_size(value: int, n_images: int, *, reference: int = AVA_N_IMAGES) -> int:
    """``value`` scaled from the full AVA (``reference`` images) to a set of ``n_images``.

    **Choice:** on SynthAVA, Kao's tag threshold (3000) and test size (20,000) are scaled by
    N / 255,530 and rounded to the nearest integer, so the filter keeps a comparable share of tags
    and images.
    """
    if n_images <= 0:
        raise ValueError(f"n_images must be positive, got {n_images}")
    return max(1, int(round(value * n_images / reference)))


# ============================================================================ notebooks & profiles
def discover_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """``NN_name.ipynb`` files in ``notebook_dir``, in number order (= dependency order)."""
    found = []
    for p in Path(notebook_dir).glob("*.ipynb"):
        m = _NOTEBOOK_RE.match(p.stem)
        if m:
            found.append((int(m.group(1)), p.stem, p))
    numbers = [n for n, _, _ in found]
    dupes = sorted({n for n in numbers if numbers.count(n) > 1})
    if dupes:
        raise IaaError(f"{notebook_dir}: two notebooks share the number(s) {dupes}")
    return [p for _, _, p in sorted(found)]


def notebook_number(path: str | os.PathLike) -> int:
    return int(Path(path).stem[:2])


def dependencies(path: str | os.PathLike, available: Sequence[str | os.PathLike]) -> list[Path]:
    """The notebooks ``path`` needs first: 01 writes the manifests every later notebook reads,
    and 10 (the summary) reads every other notebook's runs. Dependencies always have lower
    numbers, so number order is a valid execution order."""
    n = notebook_number(path)
    avail = [Path(p) for p in available]
    if n == 1:
        return []
    if n == 10:
        return [p for p in avail if notebook_number(p) < 10]
    return [p for p in avail if notebook_number(p) == 1]


def select_notebooks(notebooks: Sequence[Path], only: Iterable[str] | None) -> list[Path]:
    """The notebooks named by ``only`` (numbers like ``1``/``01``, stems like ``01_dataset``,
    or names like ``dataset``), in dependency order; all of them when ``only`` is empty."""
    if not only:
        return list(notebooks)
    tokens = [t.strip() for item in only for t in str(item).split(",") if t.strip()]
    chosen: set[Path] = set()
    for tok in tokens:
        t = tok[:-6] if tok.endswith(".ipynb") else tok
        hits = [p for p in notebooks
                if (t.isdigit() and notebook_number(p) == int(t)) or p.stem == t or p.stem[3:] == t]
        if not hits:
            names = ", ".join(p.stem for p in notebooks) or "none"
            raise IaaError(f"--only {tok}: no such notebook (available: {names})")
        chosen.update(hits)
    return [p for p in notebooks if p in chosen]


def declared_parameters(notebook: str | os.PathLike) -> dict[str, Any]:
    """Parameters of a notebook's ``parameters`` cell: name -> papermill's inferred info."""
    import papermill

    pm_log = logging.getLogger("papermill")
    level = pm_log.level
    pm_log.setLevel(logging.WARNING)  # inspect_notebook logs "Input Notebook" like a run
    try:
        return papermill.inspect_notebook(str(notebook))
    finally:
        pm_log.setLevel(level)


def _yaml_key_lines(text: str) -> dict[tuple[str, ...], int]:
    """1-based line of every key up to depth 2 in a YAML mapping (for file:line errors)."""
    import yaml

    lines: dict[tuple[str, ...], int] = {}
    node = yaml.compose(text)
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            lines[(k.value,)] = k.start_mark.line + 1
            if isinstance(v, yaml.MappingNode):
                for k2, _ in v.value:
                    lines[(k.value, k2.value)] = k2.start_mark.line + 1
    return lines


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return False


def load_profile(profile: str, params_dir: str | os.PathLike = PARAMS_DIR) -> dict[str, Any]:
    """Read ``notebooks/params/<profile>.yaml``: ``description``, ``common`` and one section per
    notebook stem, each a mapping of plain values. Bad files raise :class:`DataFormatError`."""
    import yaml

    path = Path(params_dir) / f"{profile}.yaml"
    if not path.is_file():
        avail = sorted(p.stem for p in Path(params_dir).glob("*.yaml"))
        raise IaaError(f"unknown profile {profile!r}: {path} does not exist (available: {avail})")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise DataFormatError(path, mark.line + 1 if mark else None, f"invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise DataFormatError(path, 1, "a profile must be a mapping (description, common, sections)")
    lines = _yaml_key_lines(text)
    for key, section in data.items():
        if key == "description":
            continue
        if key != "common" and not _NOTEBOOK_RE.match(str(key)):
            raise DataFormatError(path, lines.get((key,)), f"unknown section {key!r}: expected "
                                  "'description', 'common' or a notebook name such as '01_dataset'")
        if section is None:
            data[key] = {}
            continue
        if not isinstance(section, dict):
            raise DataFormatError(path, lines.get((key,)), f"section {key!r} must be a mapping")
        for name, value in section.items():
            if not str(name).isidentifier():
                raise DataFormatError(path, lines.get((key, name)), f"{name!r} is not a parameter name")
            if not _is_plain(value):
                raise DataFormatError(path, lines.get((key, name)),
                                      f"{key}.{name}: parameters must be plain values "
                                      "(number, string, bool, null, or a list of them)")
    data.setdefault("common", {})
    data["_path"] = str(path)
    return data


def notebook_parameters(profile_cfg: Mapping[str, Any], notebook: str | os.PathLike,
                        declared: Mapping[str, Any] | None = None,
                        profile: str | None = None) -> tuple[dict[str, Any], list[str]]:
    """The papermill parameters of one notebook: ``common`` merged with its own section (the
    section wins), restricted to the parameters the notebook declares. ``profile`` is passed as
    the ``profile`` parameter when the notebook declares one.

    Returns ``(parameters, unknown)`` where ``unknown`` lists the names in the notebook's own
    section that it does not declare (the pipeline warns about them).
    """
    nb = Path(notebook)
    declared = declared_parameters(nb) if declared is None else declared
    own = dict(profile_cfg.get(nb.stem) or {})
    merged = {**(profile_cfg.get("common") or {}), **own}
    if profile is not None and "profile" in declared:
        merged.setdefault("profile", profile)
    params = {k: v for k, v in merged.items() if k in declared}
    unknown = sorted(k for k in own if k not in declared)
    return params, unknown


# ============================================================================ kernel & execution
def ensure_kernel(name: str = "python3") -> str:
    """A kernel that runs this interpreter (``sys.executable``), registering one if needed.

    ``python3`` is used when its kernelspec starts ``python``/``python3`` (jupyter_client then runs
    ``sys.executable``) or this very interpreter; otherwise a kernelspec ``iaa-book`` pointing at
    ``sys.executable`` is installed into this environment's prefix (or the user's, if read-only).
    """
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

    this = os.path.abspath(sys.executable)
    bare = {"python", f"python{sys.version_info[0]}", "python{}.{}".format(*sys.version_info[:2])}
    ksm = KernelSpecManager()
    for candidate in (name, "iaa-book"):
        try:
            spec = ksm.get_kernel_spec(candidate)
        except NoSuchKernel:
            continue
        exe = spec.argv[0] if spec.argv else ""
        if exe in bare or os.path.abspath(exe) == this:
            return candidate
    from ipykernel.kernelspec import install

    try:
        where = install(kernel_name="iaa-book", display_name="Python 3 (iaa-book)",
                        prefix=sys.prefix)
    except OSError:
        where = install(kernel_name="iaa-book", display_name="Python 3 (iaa-book)", user=True)
    log.info("registered Jupyter kernel 'iaa-book' for %s in %s", sys.executable, where)
    return "iaa-book"


@contextlib.contextmanager
def _kernel_environment():
    """Kernels inherit os.environ: show figures inline even when MPLBACKEND=Agg (make, CI)."""
    saved = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = _INLINE_KERNEL_BACKEND
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("MPLBACKEND", None)
        else:
            os.environ["MPLBACKEND"] = saved


def _first_line(source: str) -> str:
    for line in (source or "").splitlines():
        if line.strip():
            return line.strip()[:100]
    return ""


def execute_notebook(notebook: str | os.PathLike, output: str | os.PathLike,
                     parameters: Mapping[str, Any], *, kernel: str = "python3",
                     cwd: str | os.PathLike = NOTEBOOK_DIR, start_timeout: int = 120) -> float:
    """Run one notebook with papermill; returns the wall time in seconds.

    On an error raises :class:`NotebookExecutionError` naming the notebook, the cell (execution
    count, index in the executed copy, first line of its source) and the exception; the partial
    executed notebook stays at ``output``.
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    nb, out = Path(notebook), Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        with _kernel_environment():
            papermill.execute_notebook(str(nb), str(out), parameters=dict(parameters),
                                       kernel_name=kernel, cwd=str(cwd), log_output=False,
                                       progress_bar=True, start_timeout=start_timeout)
    except PapermillExecutionError as e:
        raise NotebookExecutionError(
            f"{nb.name}: cell In [{e.exec_count}] (cell index {e.cell_index} of the executed "
            f"notebook; starts `{_first_line(e.source)}`) raised {e.ename}: {e.evalue}\n"
            f"  partial output kept in {out}") from e
    except Exception as e:  # kernel died, timeout, bad notebook JSON ...
        raise NotebookExecutionError(f"{nb.name}: execution failed: {type(e).__name__}: {e}\n"
                                     f"  partial output (if any) in {out}") from e
    return time.perf_counter() - t0


def ensure_profile_data(common: Mapping[str, Any]) -> dict[str, Any]:
    """Generate the profile's SynthAVA and SynthTID (skipped by the generators when present).

    Nothing is generated for a profile with a real ``ava_txt``; SynthTID is not generated when
    ``tid_root`` names a real TID2013.
    """
    if common.get("ava_txt"):
        log.info("profile uses real AVA (%s): no synthetic data generated", common["ava_txt"])
        return {}
    n = int(common.get("synth_n", 3000))
    edge = int(common.get("synth_short_edge", 128))
    seed = int(common.get("synth_seed", 0))
    info: dict[str, Any] = {}
    from .data.synth import generate_synth_ava

    ava = synth_ava_dir(n, edge, seed)
    t0 = time.perf_counter()
    generate_synth_ava(ava, n=n, seed=seed, short_edge=edge)
    info["synth_ava"] = {"dir": str(ava), "seconds": round(time.perf_counter() - t0, 3)}
    if not common.get("tid_root"):
        from .data.synth_tid import generate_synth_tid

        refs = int(common.get("synth_tid_refs", 10))
        tid = synth_tid_dir(n, edge, seed, refs)
        t0 = time.perf_counter()
        generate_synth_tid(tid, synth_ava_dir=ava, n_refs=refs, seed=seed)
        info["synth_tid"] = {"dir": str(tid), "seconds": round(time.perf_counter() - t0, 3)}
    return info


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
                      order: Sequence[str] = ("smoke", "demo", "ava")) -> str:
    """A table of every profile's ``common`` parameters (rows) by profile (columns)."""
    names = [p for p in order if (Path(params_dir) / f"{p}.yaml").is_file()]
    names += sorted(p.stem for p in Path(params_dir).glob("*.yaml") if p.stem not in names)
    profiles = {n: load_profile(n, params_dir) for n in names}
    keys: list[str] = []
    for cfg in profiles.values():
        keys += [k for k in cfg["common"] if k not in keys]

    def cell(v: Any) -> str:
        if v is None or v == "":
            return "—"
        return f"`{v}`".replace("|", "\\|")

    rows = ["| parameter | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    for k in keys:
        rows.append(f"| `{k}` | " + " | ".join(cell(profiles[n]["common"].get(k)) for n in names) + " |")
    desc = [f"- **{n}**: {profiles[n].get('description', '').strip()}" for n in names]
    return "\n".join(desc) + "\n\n" + "\n".join(rows) + "\n"


#: Book pages generated from module docstrings: page stem -> (title, introduction, modules).
MODULE_PAGES: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "synthava": (
        "SynthAVA and SynthTID: the embedded datasets",
        "The default profiles run on synthetic data in exactly the file formats of AVA and TID2013, "
        "so the same code serves the demo and the real datasets. This page is generated from the "
        "generators' documentation (`iaalib.data.synth*`), so it always describes the code that "
        "made the data.",
        ("iaalib.data.synth", "iaalib.data.synth_quality", "iaalib.data.synth_motifs",
         "iaalib.data.synth_tid"),
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
    import io

    import docutils.core
    import docutils.utils

    stream = io.StringIO()
    docutils.core.publish_doctree(
        _ROLE_RE.sub(lambda m: f"``{m.group(1)}``", text),
        settings_overrides={"report_level": docutils.utils.Reporter.WARNING_LEVEL,
                            "halt_level": docutils.utils.Reporter.SEVERE_LEVEL + 1,
                            "warning_stream": stream, "file_insertion_enabled": False,
                            "raw_enabled": False})
    return [line for line in stream.getvalue().splitlines() if "(WARNING" in line or "(ERROR" in line
            or "(SEVERE" in line]


# ============================================================================ staging & HTML
def toc_files(toc: str | os.PathLike = TOC_FILE) -> list[str]:
    """Every document the table of contents references (``root`` and ``file`` entries)."""
    import yaml

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
    from jupyter_book.sphinx import build_sphinx

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


# ============================================================================ the pipeline
def git_revision(repo: Path = REPO_ROOT) -> dict[str, Any]:
    """``{"revision": sha or None, "dirty": bool or None}`` of the repository."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=repo, capture_output=True,
                             text=True, timeout=10)
        if rev.returncode != 0:
            return {"revision": None, "dirty": None}
        st = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=repo,
                            capture_output=True, text=True, timeout=30)
        return {"revision": rev.stdout.strip(), "dirty": bool(st.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"revision": None, "dirty": None}


def _status_file(executed_dir: Path) -> Path:
    return executed_dir / "status.json"


def _read_status(executed_dir: Path) -> dict[str, Any]:
    f = _status_file(executed_dir)
    if not f.is_file():
        return {}
    try:
        data = read_json(f)
    except (OSError, ValueError):
        log.warning("%s is unreadable; treating every notebook as not run", f)
        return {}
    return data if isinstance(data, dict) else {}


def run_book(profile: str = "demo", *, only: Sequence[str] | None = None,
             out: str | os.PathLike = "_build", html: bool = True,
             notebook_dir: str | os.PathLike = NOTEBOOK_DIR,
             params_dir: str | os.PathLike = PARAMS_DIR) -> dict[str, Any]:
    """The whole pipeline (see the module docstring). Returns the ``book-run.json`` record."""
    t_start = time.perf_counter()
    out = Path(out).resolve()
    notebook_dir, params_dir = Path(notebook_dir), Path(params_dir)
    cfg = load_profile(profile, params_dir)
    notebooks = discover_notebooks(notebook_dir)
    selected = select_notebooks(notebooks, only)
    executed_dir = out / "executed" / profile
    executed_dir.mkdir(parents=True, exist_ok=True)
    record: dict[str, Any] = {
        "profile": profile, "profile_file": cfg["_path"], "out": str(out),
        "only": list(only) if only else None, **git_revision(),
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notebooks": [], "status": "running",
    }

    # Parameters of every notebook first: a typo in the profile fails before any work is done.
    declared = {p.stem: declared_parameters(p) for p in notebooks}
    for section in cfg:
        if _NOTEBOOK_RE.match(str(section)) and section not in declared:
            log.warning("%s: section %r names no notebook in %s", cfg["_path"], section, notebook_dir)
    all_declared = set().union(*declared.values()) if declared else set()
    for key in cfg["common"]:
        if key not in all_declared and key not in PIPELINE_KEYS:
            log.warning("%s: common parameter %r is declared by no notebook", cfg["_path"], key)
    plans = []
    for nb in selected:
        params, unknown = notebook_parameters(cfg, nb, declared[nb.stem], profile=profile)
        for k in unknown:
            log.warning("%s: %s does not declare parameter %r; ignored", cfg["_path"], nb.name, k)
        plans.append((nb, params))

    status = _read_status(executed_dir)
    for nb in selected:
        for dep in dependencies(nb, notebooks):
            if dep not in selected and status.get(dep.stem, {}).get("status") != "ok":
                log.warning("%s needs %s, which has not run successfully in profile %r; "
                            "add it to --only if %s fails", nb.name, dep.name, profile, nb.name)

    ava_txt = cfg["common"].get("ava_txt")
    if selected and ava_txt and not Path(str(ava_txt)).expanduser().is_file():
        line = _yaml_key_lines(Path(cfg["_path"]).read_text(encoding="utf-8")).get(("common", "ava_txt"))
        raise DataFormatError(cfg["_path"], line, f"ava_txt {ava_txt} does not exist: edit the "
                              "profile to point at your AVA.txt (book chapter 'Reproducing on real AVA')")
    t0 = time.perf_counter()
    record["data"] = ensure_profile_data(cfg["common"]) if selected else {}
    record["data_seconds"] = round(time.perf_counter() - t0, 3)

    kernel = ensure_kernel() if selected else None
    failure: NotebookExecutionError | None = None
    for i, (nb, params) in enumerate(plans, 1):
        target = executed_dir / nb.name
        print(f"[{i}/{len(plans)}] {nb.name} (profile {profile})", file=sys.stderr, flush=True)
        entry = {"name": nb.stem, "executed_this_run": True, "output": str(target),
                 "parameters": params, "source_sha256": sha256_file(nb)}
        try:
            seconds = execute_notebook(nb, target, params, kernel=kernel, cwd=notebook_dir)
            entry.update(status="ok", seconds=round(seconds, 3))
        except NotebookExecutionError as e:
            entry.update(status="failed", seconds=None, error=str(e))
            failure = e
        status[nb.stem] = {k: entry[k] for k in ("status", "seconds", "parameters", "source_sha256")}
        write_json(_status_file(executed_dir), status)
        record["notebooks"].append(entry)
        if failure:
            break

    # Notebooks not executed now: reuse earlier successful runs, noting if they are stale.
    ran = {e["name"] for e in record["notebooks"]}
    for nb in notebooks:
        if nb.stem in ran:
            continue
        rec = status.get(nb.stem)
        if not rec:
            continue
        stale = []
        if rec.get("source_sha256") != sha256_file(nb):
            stale.append("the notebook source changed since")
        params, _ = notebook_parameters(cfg, nb, declared[nb.stem], profile=profile)
        if rec.get("parameters") != params:
            stale.append("the profile's parameters changed since")
        rec["stale"] = stale
        record["notebooks"].append({"name": nb.stem, "executed_this_run": False,
                                    "status": rec.get("status"), "seconds": rec.get("seconds"),
                                    "output": str(executed_dir / nb.name), "stale": stale})
    for e in record["notebooks"]:
        if e.get("stale"):
            log.warning("%s: reusing outputs of an earlier run (%s)", e["name"], "; ".join(e["stale"]))
    record["notebooks"].sort(key=lambda e: e["name"])
    record["notebook_seconds"] = round(sum(e["seconds"] or 0 for e in record["notebooks"]
                                           if e["executed_this_run"]), 3)

    if failure is None and html:
        t0 = time.perf_counter()
        stage = out / "book-src"
        print(f"building the HTML book from {stage}", file=sys.stderr, flush=True)
        chapters = stage_book(stage, profile=profile, executed_dir=executed_dir, status=status,
                              notebooks=notebooks, params_dir=params_dir)
        try:
            record["html"] = str(build_html(stage, out / "html"))
        except IaaError as e:
            failure = e  # type: ignore[assignment]
        record["chapters"] = chapters
        record["html_seconds"] = round(time.perf_counter() - t0, 3)
    record["total_seconds"] = round(time.perf_counter() - t_start, 3)
    record["status"] = "failed" if failure else "ok"
    if failure:
        record["error"] = str(failure)
    write_json(out / "book-run.json", record)
    if failure:
        raise failure
    return record


def main_book(args) -> int:
    """``iaa book [--profile P] [--only NB ...] [--out DIR] [--no-html]``."""
    record = run_book(args.profile, only=args.only, out=args.out, html=not args.no_html)
    for e in record["notebooks"]:
        how = "executed" if e["executed_this_run"] else "reused"
        secs = f"{e['seconds']:.1f} s" if e.get("seconds") is not None else "-"
        print(f"  {e['name']:<28} {e['status']:<7} {how:<8} {secs}")
    print(f"total {record['total_seconds']:.1f} s (notebooks {record['notebook_seconds']:.1f} s, "
          f"data {record['data_seconds']:.1f} s, html {record.get('html_seconds', 0):.1f} s); "
          f"record: {Path(record['out']) / 'book-run.json'}")
    if record.get("html"):
        print(f"book: {record['html']}")
    return 0
