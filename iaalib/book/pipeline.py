"""The book pipeline behind ``iaa book`` (and ``make book``).

1. generate the profile's SynthAVA / SynthTID if missing (``iaalib.datasets.ensure_profile_data``);
2. execute ``notebooks/NN_*.ipynb`` with papermill in dependency order into
   ``OUT/executed/<profile>/`` (:mod:`iaalib.book.notebooks`), chapters that train different
   runs side by side (:func:`execute_in_order`); each notebook gets only ``profile``
   and ``overrides`` (``iaa book -p NAME VALUE``) and reads every setting from the profile itself,
   exactly as when it is opened on its own;
3. on a failure stop with an error naming the notebook and the cell (partial output kept);
4. stage the book sources with the executed notebooks in ``OUT/book-src/`` and build the HTML with
   Jupyter Book 1 into ``OUT/html/`` (:mod:`iaalib.book.staging`);
5. write ``OUT/claims.json`` (every claim both papers' chapters tested, with its 95% interval and
   verdict: :mod:`iaalib.studies.claims`), ``OUT/levelling.json`` (has each trained arm's test
   metric levelled off?) and ``OUT/book-run.json`` (profile, overrides, per-notebook wall time,
   total, git revision, how many arms levelled off).

**Choice:** the sources are staged in ``OUT/book-src/`` instead of copying executed notebooks
into the repository's ``book/generated/``: builds into different output folders (the test suite's
smoke book, ``make book``) never write into the working tree or race on it. A chapter whose
notebook was not executed successfully for this profile (``--only``, or a failure in an earlier
run) is rendered as a short "not run in this profile" page, so the table of contents never
breaks; notebooks executed in earlier runs of the same profile and output folder are reused.
"""
from __future__ import annotations

import concurrent.futures as cf
import logging
import multiprocessing
import os
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from .._io import read_json, sha256_file, write_json
from ..datasets import ensure_profile_data
from ..errors import DataFormatError, IaaError
from ..paths import code_revision
from ..profiles import NOTEBOOK_RE, PARAMS_DIR, Profile, load_profile
from .notebooks import (BOOK_PARAMETERS, NOTEBOOK_DIR, NotebookExecutionError, declared_parameters,
                        dependencies, discover_notebooks, ensure_kernel, execute_notebook,
                        select_notebooks, shares_runs_with)
from ..studies import summary
from ..studies.results import nan_to_none
from .staging import build_html, stage_book

log = logging.getLogger(__name__)


def notebook_parameters(profile: Profile, declared: Mapping[str, Any],
                        overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """What ``iaa book`` passes to one notebook: ``profile`` and ``overrides``, when declared. The
    profile is passed by name, or by path when it is not in ``notebooks/params/``."""
    name = profile.name if profile.path.parent.resolve() == PARAMS_DIR.resolve() else str(profile.path)
    values = {"profile": name, "overrides": dict(overrides or {})}
    return {k: values[k] for k in BOOK_PARAMETERS if k in declared}


def write_claims(path: Path, profile: str) -> str:
    """``claims.json``: a list of claim objects (``iaalib.studies.claims.FIELDS`` first)."""
    table = summary.claims(profile)
    rows = [] if table.empty else [
        nan_to_none(r)
        for r in table.drop(columns=["provenance"], errors="ignore").to_dict(orient="records")]
    write_json(path, rows)
    return str(path)


def write_levelling(path: Path, profile: str) -> dict[str, int]:
    """``levelling.json``: one object per trained arm (``table``, ``arm``, ``metric``, ``final``,
    ``move``, ``seed_sd``, ``levelled``, ``seeds_up``, ``seeds_down``, ``seeds``, ``epochs``,
    ``run``; :func:`summary.levelling`). Returns the counts for ``book-run.json``: arms assessed
    and arms levelled off."""
    table = summary.levelling(profile)
    rows = [{"arm": arm.split(": ", 1)[-1], **nan_to_none(r)}
            for arm, r in table.to_dict(orient="index").items()]
    write_json(path, rows)
    assessed = [r["levelled"] for r in rows if r["levelled"] is not None]
    return {"assessed": len(assessed), "levelled": sum(assessed)}


def _settings_record(profile: Profile, stem: str, overrides: Mapping[str, Any] | None) -> dict:
    return dict(profile.settings(stem, overrides))


class _Inline:
    """An executor that runs each job at once in this process (``jobs=1``: the log keeps
    papermill's progress bars)."""

    def submit(self, fn, *args, **kwargs) -> cf.Future:
        fut: cf.Future = cf.Future()
        try:
            fut.set_result(fn(*args, **kwargs))
        except Exception as e:  # noqa: BLE001 - handed to the caller through the future
            fut.set_exception(e)
        return fut

    def __enter__(self) -> "_Inline":
        return self

    def __exit__(self, *exc) -> None:
        return None


def execute_in_order(plans: Sequence[tuple[Path, dict[str, Any]]], *, jobs: int, kernel: str | None,
                     cwd: Path, executed_dir: Path, entry_of, finished) -> NotebookExecutionError | None:
    """Execute ``plans`` (notebook, parameters), up to ``jobs`` at a time, each as soon as the
    notebooks it needs (:func:`~iaalib.book.notebooks.dependencies`) and those whose runs it
    reuses (:func:`~iaalib.book.notebooks.shares_runs_with`) have finished. After a failure no
    further notebook starts; those running finish. ``finished(nb, entry)`` records each one.
    Returns the first failure.

    **Choice:** three at a time by default (``iaa book --jobs``). On two cores one chapter
    trains while another draws its figures or computes its intervals, and the runs' training
    slots (:func:`iaalib.studies.runner.training_slot`) keep at most a grid's ``workers`` runs
    training at once across all of them; a chapter waiting for a slot uses no CPU, so a third
    one can use it. On one two-core machine the fresh demo book took 849 s one chapter at a time
    before the cache and memory-format speed-ups; with them, 629 s two at a time (each paper's
    chapters in order), 644 s two at a time and 623 s three at a time with chapters waiting
    only for the runs they reuse (``benchmarks/results/book_demo.json``, ``other_builds``). A
    chapter's wall time is then shared with the others'.
    """
    selected = [nb for nb, _ in plans]
    waiting, running = list(plans), {}
    done: set[str] = set()
    failure: NotebookExecutionError | None = None

    waits = {nb: [*dependencies(nb, selected), *shares_runs_with(nb, selected)] for nb in selected}

    def ready(nb: Path) -> bool:
        return all(d.stem in done for d in waits[nb])

    pool = _Inline() if jobs <= 1 else cf.ProcessPoolExecutor(
        max_workers=jobs, mp_context=multiprocessing.get_context("spawn"))
    with pool:
        while waiting or running:
            while failure is None and len(running) < max(1, jobs):
                nxt = next(((nb, p) for nb, p in waiting if ready(nb)), None)
                if nxt is None:
                    break
                waiting.remove(nxt)
                nb, params = nxt
                started = len(plans) - len(waiting)
                print(f"[{started}/{len(plans)}] {nb.name} (profile {params.get('profile')})",
                      file=sys.stderr, flush=True)
                threads = kernel_threads(nb, waits, jobs)
                fut = pool.submit(execute_notebook, nb, executed_dir / nb.name, params,
                                  kernel=kernel, cwd=cwd, progress_bar=jobs <= 1, threads=threads)
                running[fut] = (nb, {**entry_of(nb, params), "threads": threads})
            if not running:
                break
            for fut in cf.wait(running, return_when=cf.FIRST_COMPLETED)[0]:
                nb, entry = running.pop(fut)
                try:
                    entry.update(status="ok", seconds=round(fut.result(), 3))
                    done.add(nb.stem)
                except NotebookExecutionError as e:
                    entry.update(status="failed", seconds=None, error=str(e))
                    failure = failure or e
                if jobs > 1:
                    print(f"  {nb.name}: {entry['status']}"
                          + (f" in {entry['seconds']:.0f} s" if entry["seconds"] else ""),
                          file=sys.stderr, flush=True)
                finished(nb, entry)
    return failure


def kernel_threads(nb: Path, waits: Mapping[Path, Sequence[Path]], jobs: int) -> int | None:
    """The torch threads of ``nb``'s kernel: all of the machine's (None) when no other selected
    notebook (the keys of ``waits``, each with the notebooks it waits for) can run beside it
    (each one must finish before it starts, or start after it ends), else the machine's cores
    shared among ``jobs``.

    **Choice:** a kernel that may run beside another chapter computes with one thread on two
    cores. With two threads, its OpenMP threads wait for each other while the grid workers keep
    both cores busy: in the first side-by-side build (``benchmarks/results/book_demo.json``,
    ``other_builds``) the cross-dataset chapter took 159 s (22 s alone) and a fine-tuning run
    78–92 s (45–49 s with a core to itself); with one thread, 25 s and 41–77 s. What a kernel
    computes itself (t-SNE, Grad-CAM, scoring TID2013) may then differ from a two-thread kernel's
    in the last digits; the runs do not (a run trains with its config's ``num_threads``)."""
    def ancestors(x: Path, seen: set[Path]) -> set[Path]:
        for d in waits[x]:
            if d not in seen:
                seen.add(d)
                ancestors(d, seen)
        return seen

    mine = ancestors(nb, set())
    alone = all(o == nb or o in mine or nb in ancestors(o, set()) for o in waits)
    return None if jobs <= 1 or alone else max(1, (os.cpu_count() or 1) // jobs)


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


def _check_label_checksums(ava_txt: Path) -> None:
    """A real AVA.txt against the sha256 the protocol recipes record (``strict_checksum``):
    :class:`~iaalib.errors.ChecksumMismatchError` before any notebook runs, so no chapter trains
    on a label file that gives other splits and counts than the recipes'."""
    from ..data import manifests

    for name in ("kao", "standard"):
        manifests.check_label_file(ava_txt, manifests.load_recipe(name), strict=True)


def run_book(profile: str = "demo", *, only: Sequence[str] | None = None,
             out: str | os.PathLike = "_build", html: bool = True,
             overrides: Mapping[str, Any] | None = None,
             notebook_dir: str | os.PathLike = NOTEBOOK_DIR,
             params_dir: str | os.PathLike = PARAMS_DIR, jobs: int = 3) -> dict[str, Any]:
    """The whole pipeline (see the module docstring). Returns the ``book-run.json`` record.

    ``jobs``: notebooks executed at a time (:func:`execute_in_order`).

    ``overrides`` replace settings of the profile for every notebook (``iaa book -p``); an unknown
    name stops before any work is done.
    """
    t_start = time.perf_counter()
    if jobs < 1:
        raise IaaError(f"jobs must be at least 1, got {jobs}")
    out = Path(out).resolve()
    notebook_dir, params_dir = Path(notebook_dir), Path(params_dir)
    prof = load_profile(profile, params_dir)
    overrides = prof.check_overrides(overrides)
    notebooks = discover_notebooks(notebook_dir)
    selected = select_notebooks(notebooks, only)
    executed_dir = out / "executed" / profile
    executed_dir.mkdir(parents=True, exist_ok=True)
    code = code_revision()
    record: dict[str, Any] = {
        "profile": profile, "profile_file": str(prof.path), "out": str(out),
        "overrides": overrides, "only": list(only) if only else None,
        "revision": code["git_revision"], "dirty": code["dirty"],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"), "notebooks": [], "status": "running",
    }

    declared = {p.stem: declared_parameters(p) for p in notebooks}
    for section in prof.sections:
        if NOTEBOOK_RE.match(section) and section not in declared:
            log.warning("%s: section %r names no notebook in %s", prof.path, section, notebook_dir)
    plans = [(nb, notebook_parameters(prof, declared[nb.stem], overrides)) for nb in selected]

    status = _read_status(executed_dir)
    for nb in selected:
        for dep in dependencies(nb, notebooks):
            if dep not in selected and status.get(dep.stem, {}).get("status") != "ok":
                log.warning("%s needs %s, which has not run successfully in profile %r; "
                            "add it to --only if %s fails", nb.name, dep.name, profile, nb.name)

    common = prof.settings(None, overrides)
    ava_txt = common.get("ava_txt")
    if selected and ava_txt and not Path(str(ava_txt)).expanduser().is_file():
        raise DataFormatError(prof.path, prof.lines.get("common.ava_txt"),
                              f"ava_txt {ava_txt} does not exist: edit the profile to point at your "
                              "AVA.txt (book chapter 'Reproducing on real AVA')")
    if selected and ava_txt and common.get("strict_checksum"):
        _check_label_checksums(Path(str(ava_txt)).expanduser())
    t0 = time.perf_counter()
    record["data"] = ensure_profile_data(common) if selected else {}
    record["data_seconds"] = round(time.perf_counter() - t0, 3)

    kernel = ensure_kernel() if selected else None

    def finished(nb: Path, entry: dict[str, Any]) -> None:
        status[nb.stem] = {k: entry[k] for k in ("status", "seconds", "parameters", "settings",
                                                 "source_sha256")}
        write_json(_status_file(executed_dir), status)
        record["notebooks"].append(entry)

    def entry_of(nb: Path, params: dict[str, Any]) -> dict[str, Any]:
        return {"name": nb.stem, "executed_this_run": True, "output": str(executed_dir / nb.name),
                "parameters": params, "settings": _settings_record(prof, nb.stem, overrides),
                "source_sha256": sha256_file(nb)}

    record["jobs"] = jobs
    failure = execute_in_order(plans, jobs=jobs, kernel=kernel, cwd=notebook_dir,
                               executed_dir=executed_dir, entry_of=entry_of, finished=finished)

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
        if rec.get("settings") != _settings_record(prof, nb.stem, overrides):
            stale.append("the profile's settings changed since")
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

    record["claims"] = write_claims(out / "claims.json", profile)
    record["levelling"] = write_levelling(out / "levelling.json", profile)
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


