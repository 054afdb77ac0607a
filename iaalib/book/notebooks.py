"""The chapters' notebooks: finding them, their order, and executing one with papermill.

``notebooks/NN_name.ipynb`` start in number order, which is their dependency order (01 writes the
manifests every later chapter reads; 10, the summary, reads every other chapter's results).
A chapter runs after the chapters whose runs it reuses (:func:`shares_runs_with`); the others may
run side by side (``iaa book --jobs``).
Each notebook declares ``profile`` and ``overrides`` in its ``parameters`` cell (plus its own
knobs, ``None`` by default) and reads every setting from the profile
(:func:`iaalib.profiles.chapter_settings`).
"""
from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import papermill
from ipykernel.kernelspec import install
from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
from papermill.exceptions import PapermillExecutionError

from ..errors import IaaError
from ..paths import REPO_ROOT
from ..profiles import NOTEBOOK_RE

log = logging.getLogger(__name__)

NOTEBOOK_DIR = REPO_ROOT / "notebooks"
#: The parameters ``iaa book`` passes to every notebook that declares them.
BOOK_PARAMETERS = ("profile", "overrides")


_INLINE_KERNEL_BACKEND = "module://matplotlib_inline.backend_inline"


class NotebookExecutionError(IaaError):
    """A notebook failed under papermill; the message names the notebook and the cell."""


# ============================================================================ notebooks & profiles
def discover_notebooks(notebook_dir: str | os.PathLike = NOTEBOOK_DIR) -> list[Path]:
    """``NN_name.ipynb`` files in ``notebook_dir``, in number order (= dependency order)."""
    found = []
    for p in Path(notebook_dir).glob("*.ipynb"):
        m = NOTEBOOK_RE.match(p.stem)
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


def part(path: str | os.PathLike) -> str:
    """The first word of a notebook's name after its number: the paper of a chapter ("kao",
    "saf"), or the chapter itself ("dataset", "summary")."""
    return Path(path).stem[3:].split("_")[0]


#: The notebook metadata key (``metadata.iaa.reuses_runs_of``) that lists the chapters whose runs
#: a chapter reuses.
REUSES_KEY = "reuses_runs_of"


def shares_runs_with(path: str | os.PathLike, available: Sequence[str | os.PathLike]) -> list[Path]:
    """The notebooks whose runs ``path`` reuses (checkpoint-or-train): it runs after them instead
    of training the same run at the same time. A notebook names them by stem in its metadata,
    ``{"iaa": {"reuses_runs_of": ["02_kao_mtcnn"]}}``; one that names none waits for every
    earlier chapter of its paper (:func:`part`). Chapters that reuse nothing of each other may
    run side by side."""
    n, p = notebook_number(path), part(path)
    try:
        meta = json.loads(Path(path).read_text(encoding="utf-8")).get("metadata", {})
    except (OSError, ValueError, AttributeError):
        meta = {}
    named = (meta.get("iaa") or {}).get(REUSES_KEY)
    if named is None:
        return [Path(q) for q in available if notebook_number(q) < n and part(q) == p]
    return [Path(q) for q in available if Path(q).stem in set(named)]


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
    pm_log = logging.getLogger("papermill")
    level = pm_log.level
    pm_log.setLevel(logging.WARNING)  # inspect_notebook logs "Input Notebook" like a run
    try:
        return papermill.inspect_notebook(str(notebook))
    finally:
        pm_log.setLevel(level)


# ============================================================================ kernel & execution
def ensure_kernel(name: str = "python3") -> str:
    """A kernel that runs this interpreter (``sys.executable``), registering one if needed.

    ``python3`` is used when its kernelspec starts ``python``/``python3`` (jupyter_client then runs
    ``sys.executable``) or this very interpreter; otherwise a kernelspec ``iaa-book`` pointing at
    ``sys.executable`` is installed into this environment's prefix (or the user's, if read-only).
    """
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
    try:
        where = install(kernel_name="iaa-book", display_name="Python 3 (iaa-book)",
                        prefix=sys.prefix)
    except OSError:
        where = install(kernel_name="iaa-book", display_name="Python 3 (iaa-book)", user=True)
    log.info("registered Jupyter kernel 'iaa-book' for %s in %s", sys.executable, where)
    return "iaa-book"


@contextlib.contextmanager
def _kernel_environment(threads: int | None = None):
    """Kernels inherit os.environ: show figures inline even when MPLBACKEND=Agg (make, CI), and
    with ``threads`` give torch and the BLAS libraries that many threads (``OMP_NUM_THREADS``)."""
    values = {"MPLBACKEND": _INLINE_KERNEL_BACKEND}
    if threads:
        values["OMP_NUM_THREADS"] = str(threads)
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def _first_line(source: str) -> str:
    for line in (source or "").splitlines():
        if line.strip():
            return line.strip()[:100]
    return ""


def execute_notebook(notebook: str | os.PathLike, output: str | os.PathLike,
                     parameters: Mapping[str, Any], *, kernel: str = "python3",
                     cwd: str | os.PathLike = NOTEBOOK_DIR, start_timeout: int = 120,
                     progress_bar: bool = True, threads: int | None = None) -> float:
    """Run one notebook with papermill; returns the wall time in seconds.

    On an error raises :class:`NotebookExecutionError` naming the notebook, the cell (execution
    count, index in the executed copy, first line of its source) and the exception; the partial
    executed notebook stays at ``output``. ``threads``: the kernel's torch/BLAS threads (None: as
    many as the machine has).
    """
    nb, out = Path(notebook), Path(output)
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    try:
        with _kernel_environment(threads):
            papermill.execute_notebook(str(nb), str(out), parameters=dict(parameters),
                                       kernel_name=kernel, cwd=str(cwd), log_output=False,
                                       progress_bar=progress_bar, start_timeout=start_timeout)
    except PapermillExecutionError as e:
        raise NotebookExecutionError(
            f"{nb.name}: cell In [{e.exec_count}] (cell index {e.cell_index} of the executed "
            f"notebook; starts `{_first_line(e.source)}`) raised {e.ename}: {e.evalue}\n"
            f"  partial output kept in {out}") from e
    except Exception as e:  # kernel died, timeout, bad notebook JSON ...
        raise NotebookExecutionError(f"{nb.name}: execution failed: {type(e).__name__}: {e}\n"
                                     f"  partial output (if any) in {out}") from e
    return time.perf_counter() - t0

