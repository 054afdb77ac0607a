"""Which notebooks may run at the same time: the book's stages and lanes.

A notebook that depends on nothing (01 writes the manifests) or on more than the first (10 reads
every chapter's runs) runs alone, as a barrier. Between barriers, the chapters of one paper reuse
each other's runs (checkpoint-or-train), so they run in order, in one lane per paper: the second
word of the notebook's name (``02_kao_mtcnn`` → ``kao``). **Choice:** with ``book_parallel: 2``
(the demo profile) the two papers' lanes run at once, each notebook in its own process: while one
chapter imports, draws figures or builds tables on one core, the other paper's training uses the
second. Results do not change: runs are seeded and the lanes share no run.
"""
from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from .notebooks import dependencies

P = TypeVar("P")


def lane_name(path: Path) -> str:
    """The lane of a chapter notebook: the second word of its name."""
    parts = Path(path).stem.split("_")
    return parts[1] if len(parts) > 1 else parts[0]


def stages(plans: Sequence[tuple[Path, P]], notebooks: Sequence[Path]) -> list[list[list[tuple[Path, P]]]]:
    """``plans`` (notebook, parameters) in number order → stages run one after another; each
    stage is a list of lanes whose notebooks run in order (a barrier: one lane of one notebook)."""
    first = [p for p in notebooks if not dependencies(p, notebooks)]
    out: list[list[list[tuple[Path, P]]]] = []
    lanes: dict[str, list[tuple[Path, P]]] = {}
    for plan in plans:
        deps = dependencies(plan[0], notebooks)
        barrier = not deps or any(d not in first for d in deps)
        if barrier:
            if lanes:
                out.append(list(lanes.values()))
                lanes = {}
            out.append([[plan]])
        else:
            lanes.setdefault(lane_name(plan[0]), []).append(plan)
    if lanes:
        out.append(list(lanes.values()))
    return out


def run_stages(plans: Sequence[tuple[Path, P]], notebooks: Sequence[Path], *, parallel: int,
               execute: Callable[[Path, P], Any], done: Callable[[Path, Any], bool],
               announce: Callable[[Path], Any] = lambda nb: None) -> None:
    """Run every plan with ``execute(nb, params)``: in this process while one lane runs at a
    time; with ``parallel`` > 1 the lanes of a stage run at once, each notebook in a spawned
    process (``execute`` must pickle: a module-level function or a partial of one).
    ``announce(nb)`` runs here before each notebook; ``done(nb, result)`` records a result and
    says whether to go on (False: the lanes stop after their current notebook and later stages
    do not run)."""
    stop = threading.Event()
    lock = threading.Lock()
    pool = cf.ProcessPoolExecutor(parallel, mp_context=multiprocessing.get_context("spawn")) \
        if parallel > 1 else None
    if pool is not None:  # start every worker now, so that the lanes start together
        for f in [pool.submit(time.sleep, 0.2) for _ in range(parallel)]:
            f.result()

    def lane(items: Sequence[tuple[Path, P]], concurrent: bool) -> None:
        for nb, params in items:
            if stop.is_set():
                return
            with lock:
                announce(nb)
            result = pool.submit(execute, nb, params).result() if concurrent \
                else execute(nb, params)
            with lock:
                if not done(nb, result):
                    stop.set()

    try:
        for stage in stages(plans, notebooks):
            if stop.is_set():
                break
            if pool is None or len(stage) == 1:
                for items in stage:
                    lane(items, False)
                continue
            with cf.ThreadPoolExecutor(min(parallel, len(stage))) as threads:
                for f in [threads.submit(lane, items, True) for items in stage]:
                    f.result()
    finally:
        if pool is not None:
            pool.shutdown()
