"""One runner for every study grid: checkpoint-or-train each distinct config once, then tables.

A study (``iaalib.studies.kao``, ``iaalib.studies.saf``) builds a grid ``{key: ExperimentConfig}``
whose keys name the table cells (``("delta=0", "lambda=1/M")`` or ``"SAF"``);
:func:`with_seeds` repeats a grid over training seeds (keys ``(key, seed)``). :func:`run_grid`
trains what is not finished yet — the test is the engine's own (:func:`iaalib.engine.trainer.
plan_run`), so a finished run is never trained twice, whichever chapter asks — and returns the
:class:`~iaalib.engine.runrecord.Run` of every key. A run that diverges is recorded as
``diverged`` (with its step and reason) and the grid goes on; tables show it as missing.

:func:`metric_table` turns runs into a table (mean over seeds; accuracy and AP in percent),
:func:`arms` groups seeded runs by cell for the claims (:mod:`iaalib.studies.claims`), and
:func:`training_subset` draws the seeded training subsets both papers' demo runs use.

Executors: ``"local"`` trains ``workers`` runs at a time in worker processes (1: in this process),
each in one of ``workers`` training slots this machine's grids share (:func:`training_slot`:
chapters side by side train at most ``workers`` runs at once among them);
``"slurm"`` submits every run as a job through ``submitit`` (``slurm`` options from the profile);
``"debug"`` is submitit's in-process executor (tests).
"""
from __future__ import annotations

import atexit
import concurrent.futures as cf
import contextlib
import io
import itertools
import logging
import multiprocessing
import os
import re
import signal
import time
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from .._io import atomic_write
from ..data.manifests import read_manifest
from ..engine.config import ExperimentConfig
from ..engine.cost import run_flops
from ..engine.loaders import stem_activations
from ..engine.runrecord import Run
from ..errors import IaaError, TrainingDivergedError
from ..paths import iaa_home
from .results import LEVELLING_COLUMNS

try:
    import fcntl
except ImportError:  # not on Windows: grids of parallel chapters then share no slots
    fcntl = None

with warnings.catch_warnings():  # tqdm.auto's "IProgress not found" in the book's kernels
    warnings.simplefilter("ignore")
    from ..engine.trainer import default_run_dir, plan_run, train

log = logging.getLogger(__name__)

#: Metrics shown in percent in every result table.
PERCENT_METRICS = ("acc", "semantic_ap")
EXECUTORS = ("local", "slurm", "debug")


# ============================================================================ grids
def with_seeds(configs: Mapping[Hashable, ExperimentConfig], seeds: Sequence[int]
               ) -> dict[tuple[Hashable, int], ExperimentConfig]:
    """Every config of ``configs`` once per training seed: keys ``(key, seed)``. The run name's
    ``-s<seed>`` suffix follows the seed (a config's own seed is one of them or not)."""
    out = {}
    for key, cfg in configs.items():
        for s in seeds:
            name = re.sub(r"-s\d+$", "", cfg.name) + f"-s{int(s)}"
            out[(key, int(s))] = cfg.with_overrides({"seed": int(s), "name": name})
    return out


def is_finished(cfg: ExperimentConfig) -> bool:
    """True when :func:`run_grid` would reuse ``cfg``'s run (finished or diverged)."""
    try:
        return plan_run(cfg) == "reuse"
    except IaaError:
        return False


def run_grid(configs: Mapping[Hashable, ExperimentConfig], *, workers: int = 1,
             executor: str = "local", slurm: Mapping[str, Any] | Sequence[str] | None = None,
             echo: Callable[[str], Any] | None = print) -> dict[Hashable, Run]:
    """Checkpoint-or-train every config (identical configs once) and return ``{key: Run}``.

    ``echo`` gets one line per distinct run: reused, trained (wall time) or diverged (step).
    Results do not depend on ``workers`` or the executor: every run is seeded and deterministic.
    ``slurm``: submitit's parameters for ``executor="slurm"``, as a mapping or as the profile's
    list of ``"name=value"`` strings (:func:`slurm_parameters`).
    """
    if executor not in EXECUTORS:
        raise IaaError(f"executor must be one of {', '.join(EXECUTORS)}, got {executor!r}")
    say = echo or (lambda _line: None)
    unique: dict[str, ExperimentConfig] = {}
    for cfg in configs.values():
        unique.setdefault(cfg.config_hash(), cfg)
    todo = [cfg for cfg in unique.values() if not is_finished(cfg)]
    for cfg in unique.values():
        if cfg not in todo:
            say(f"{cfg.name:<44} reused               {default_run_dir(cfg).name}")
    if executor == "local":
        _warm_stem_caches(todo)
        if workers > 1 and len(todo) > workers:
            todo = longest_first(todo)
    if executor == "local" and (workers <= 1 or len(todo) <= 1):
        outcomes = ((cfg, train_one(cfg.to_dict(), slots=max(1, workers))) for cfg in todo)
    elif executor == "local":
        outcomes = _process_pool(todo, workers)
    else:
        outcomes = _submitit(todo, executor, slurm_parameters(slurm))
    for cfg, (status, seconds, message) in outcomes:
        if status == "failed":
            raise IaaError(f"training {cfg.name} (config {cfg.config_hash()[:10]}) failed: "
                           f"{message}")
        what = f"trained in {seconds:.1f} s" if status == "finished" else "DIVERGED"
        say(f"{cfg.name:<44} {what:<20} {default_run_dir(cfg).name}"
            + (f"  ({message})" if status == "diverged" else ""))
    runs = {h: Run(default_run_dir(cfg)) for h, cfg in unique.items()}
    return {key: runs[cfg.config_hash()] for key, cfg in configs.items()}


def longest_first(todo: Sequence[ExperimentConfig]) -> list[ExperimentConfig]:
    """``todo`` ordered by the FLOPs of training each run (:func:`iaalib.engine.cost.run_flops`),
    largest first; ties keep their order.

    **Choice:** a pool hands out the longest runs first (the classic longest-processing-time
    rule), so a grid does not end with one long run on one core while the other idles: the
    Table III grid's last fine-tuning run used to train alone for 41 s after the short MTRLCNN
    runs. Only the order changes, never a result. A config whose cost cannot be estimated
    leaves the order as it is, with a warning."""
    try:
        cost = {cfg.config_hash(): run_flops(cfg) for cfg in todo}
    except Exception as e:  # noqa: BLE001 - ordering is an optimisation, never a failure
        log.warning("cannot estimate the runs' cost (%s: %s); training them in grid order",
                    type(e).__name__, e)
        return list(todo)
    return sorted(todo, key=lambda cfg: -cost[cfg.config_hash()])


def _warm_stem_caches(todo: Sequence[ExperimentConfig]) -> None:
    """Build the activation caches the runs need here, before the workers would wait for one of
    them to build it (on ``STEM_THREADS``, :func:`iaalib.data.activations.load_activations`)."""
    for stem, image_dir, size in dict.fromkeys((c.model.stem, c.data.image_dir, c.data.stem_size)
                                               for c in todo if c.model.stem):
        stem_activations(stem, image_dir, size)


def train_one(cfg_dict: dict, slots: int = 0, home: str | None = None) -> tuple[str, float, str]:
    """Train one config (here or in a worker): ``(status, seconds, message)``; status is
    "finished", "diverged" (message: the reason) or "failed" (message: the error). With
    ``slots``, the run first waits for one of that many training slots (:func:`training_slot`);
    ``seconds`` counts from then. ``home``: the grid's IAA_HOME, which a pool worker takes over
    (it kept the environment of its start, or of its fork server's)."""
    if home is not None:
        os.environ["IAA_HOME"] = home
    cfg = ExperimentConfig.from_dict(cfg_dict)
    t0 = time.perf_counter()
    try:
        with training_slot(slots), contextlib.redirect_stdout(io.StringIO()):
            t0 = time.perf_counter()
            train(cfg, quiet=True)
    except TrainingDivergedError as e:
        return "diverged", time.perf_counter() - t0, str(e).split(";")[0]
    except Exception as e:  # a worker hands back a message: custom exceptions may not unpickle
        return "failed", time.perf_counter() - t0, f"{type(e).__name__}: {e}"
    return "finished", time.perf_counter() - t0, ""


@contextlib.contextmanager
def training_slot(slots: int, *, poll: float = 0.2):
    """Hold one of ``slots`` training slots while the block runs: an exclusive lock on one of
    ``IAA_HOME/slots/0.lock`` … ``<slots-1>.lock``, waiting (polling every ``poll`` s) while all
    are held. Every grid on the machine takes its runs' slots from the same files, so chapters
    executed side by side (``iaa book --jobs``) train at most ``slots`` runs at once among
    them, and a run's wall time stays its own. ``slots`` 0 (or no fcntl): no slot."""
    if slots < 1 or fcntl is None:
        yield
        return
    folder = iaa_home() / "slots"
    folder.mkdir(parents=True, exist_ok=True)
    handles = [open(folder / f"{i}.lock", "a") for i in range(slots)]
    try:
        held = _take_one(handles, poll)
        try:
            yield
        finally:
            fcntl.flock(held, fcntl.LOCK_UN)
    finally:
        for fh in handles:
            fh.close()


def _take_one(handles, poll: float):
    while True:
        for fh in handles:
            try:
                fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return fh
            except BlockingIOError:
                continue
        time.sleep(poll)


_POOL: dict[int, cf.ProcessPoolExecutor] = {}


def _worker_pool(workers: int) -> cf.ProcessPoolExecutor:
    """One pool of ``workers`` processes per process, kept between grids, so that a chapter's
    grids pay the workers' start-up (importing torch, loading cached activations) once. The
    workers ignore SIGINT (:func:`_ignore_interrupts`)."""
    pool = _POOL.get(workers)
    if pool is None or getattr(pool, "_broken", False):
        pool = _POOL[workers] = cf.ProcessPoolExecutor(
            max_workers=workers, mp_context=worker_context(), initializer=_ignore_interrupts)
    return pool


def worker_context() -> multiprocessing.context.BaseContext:
    """How a grid's workers start. **Choice:** forked from a fork server that has imported the
    engine once (``forkserver``, where the platform has it; spawned elsewhere). Not forked from
    this process: a forked worker would inherit this process's torch threads. A spawned worker
    imports torch, torchvision and the engine itself, 3.6 CPU-seconds here (21.5 for three pools
    of two), twice per chapter; the fork server imports them once per chapter and its workers
    start with nothing left to import. Runs train as fast in either: a Kao and a SAF run, four
    times each way in ABBA order, took 64.4 s of training forked and 63.0 s spawned
    (``benchmarks/results/worker_start.json``)."""
    if "forkserver" not in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("spawn")
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload(["iaalib.engine.trainer", __name__])
    return ctx


def _ignore_interrupts() -> None:
    """A pool worker's initializer. Jupyter interrupts a kernel's whole process group, when a
    notebook ends under papermill and on "interrupt kernel". An idle worker then printed a
    KeyboardInterrupt traceback (up to two per chapter in every `iaa book` log), and a busy one
    died mid-run (to resume from its last epoch later). Ignoring SIGINT lets a run in progress
    finish and be recorded; the kernel still stops at once, and its interrupted grid hands out no
    more runs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@atexit.register
def _shutdown_pools() -> None:
    for pool in _POOL.values():
        pool.shutdown(wait=False, cancel_futures=True)
    _POOL.clear()


def _process_pool(todo: Sequence[ExperimentConfig], workers: int):
    pool = _worker_pool(workers)
    home = os.fspath(iaa_home())
    futures = {pool.submit(train_one, cfg.to_dict(), workers, home): cfg for cfg in todo}
    try:
        for fut in cf.as_completed(futures):
            yield futures[fut], fut.result()
    finally:
        for fut in futures:
            fut.cancel()


def slurm_parameters(options: Mapping[str, Any] | Sequence[str] | None) -> dict[str, Any]:
    """submitit's parameters from a mapping or from ``["slurm_partition=gpu", "gpus_per_node=1",
    "timeout_min=720"]`` (the profile's ``slurm`` list; each value read as YAML)."""
    if not options:
        return {}
    if isinstance(options, Mapping):
        return dict(options)
    out: dict[str, Any] = {}
    for item in options:
        name, sep, value = str(item).partition("=")
        if not sep or not name.strip().isidentifier():
            raise IaaError(f"slurm option {item!r}: expected name=value, e.g. timeout_min=720")
        out[name.strip()] = yaml.safe_load(value) if value.strip() else ""
    return out


def _submitit(todo: Sequence[ExperimentConfig], executor: str, slurm: dict[str, Any]):
    """One submitit job per run (``slurm``: ``folder`` for logs and submitit's own parameters,
    e.g. ``slurm_partition``, ``gpus_per_node``, ``timeout_min``)."""
    if not todo:
        return
    import submitit  # only when a cluster (or its debug executor) is asked for

    folder = slurm.pop("folder", None) or os.fspath(Path(default_run_dir(todo[0])).parent
                                                     / "_submitit")
    ex = submitit.AutoExecutor(folder=folder, cluster=None if executor == "slurm" else "debug")
    if slurm:
        ex.update_parameters(**slurm)
    jobs = [(cfg, ex.submit(train_one, cfg.to_dict())) for cfg in todo]
    for cfg, job in jobs:
        yield cfg, job.result()


def describe(cfg: ExperimentConfig) -> str:
    """A run's training setup in one line (for a chapter's opening printout)."""
    d, m, o = cfg.data, cfg.model, cfg.optim
    if m.stem:
        shifted = f", shifted up to {d.stem_shift} cell(s)" if d.stem_shift else ""
        seen = f"above the frozen stem {m.stem} (whole image at {d.stem_size}², cached{shifted})"
    elif d.transform == "kao":
        seen = f"{d.crop}² crops of {d.resize}² images"
    else:
        seen = f"short edge {d.short_edge}, aspect kept"
    net = m.family + (f" ({m.backbone}, {m.weights or 'random'} weights)" if m.backbone else
                      f" at width ×{m.width_mult:g}") + (f", P = {m.group_size}" if m.group_size
                                                          else "")
    schedule = o.schedule + (f" (×{o.gamma:g} every {o.step_size} epochs)" if o.schedule == "step"
                             else "")
    averaged = (f", result = moving average of the weights over ~{o.ema_epochs:g} epoch(s)"
                if o.ema_epochs else "")
    return (f"{net}, {seen}; {cfg.epochs} epoch(s), batch {cfg.batch_size}, {o.name} lr {o.lr:g}, "
            f"{schedule} schedule, weight decay {o.weight_decay:g}{averaged}; "
            f"config {cfg.config_hash()[:10]}")


# ============================================================================ tables
def arm_label(key: Hashable) -> str:
    """A grid key as a string: ``("delta=0", "lambda=1/M")`` → ``"delta=0 | lambda=1/M"``."""
    return " | ".join(map(str, key)) if isinstance(key, tuple) else str(key)


def by_key(runs: Mapping[tuple[Hashable, int], Run]) -> dict[Hashable, list[Run]]:
    """``{(key, seed): Run}`` → ``{key: [Run, ... by seed]}``."""
    out: dict[Hashable, list[tuple[int, Run]]] = {}
    for (key, seed), run in runs.items():
        out.setdefault(key, []).append((int(seed), run))
    return {k: [r for _, r in sorted(v, key=lambda p: p[0])] for k, v in out.items()}


def first_seed(runs: Mapping[tuple[Hashable, int], Run]) -> dict[Hashable, Run]:
    """``{(key, seed): Run}`` → ``{key: the run of the lowest seed}`` (figures of one run)."""
    return {k: v[0] for k, v in by_key(runs).items()}


def run_dirs(runs: Mapping[Any, Run | Sequence[Run]] | Sequence[Run]) -> list[str]:
    """The distinct directories of the finished runs in ``runs`` (for a result table's provenance)."""
    values = runs.values() if isinstance(runs, Mapping) else runs
    flat = [r for v in values for r in ([v] if isinstance(v, Run) else v)]
    return list(dict.fromkeys(os.fspath(r.dir) for r in flat if r.status == "finished"))


def arms(runs: Mapping[Hashable, Run], *, seeded: bool = True) -> dict[str, list[Run]]:
    """``{(key, seed): Run}`` → ``{arm_label(key): [Run, ... by seed]}`` (``seeded=False``: each
    key is its own arm with one run)."""
    out: dict[str, list[tuple[int, Run]]] = {}
    for k, run in runs.items():
        key, seed = (k if seeded else (k, 0))
        out.setdefault(arm_label(key), []).append((int(seed), run))
    return {label: [r for _, r in sorted(pairs, key=lambda p: p[0])] for label, pairs in out.items()}


def _value(run: Run, metric: str) -> float:
    if run.status != "finished":
        return np.nan
    v = run.metrics.get(metric)
    return np.nan if v is None else float(v) * (100.0 if metric in PERCENT_METRICS else 1.0)


def metric_table(runs: Mapping[Hashable, Run | Sequence[Run]],
                 metrics: Sequence[str] = ("acc",)) -> pd.DataFrame:
    """One row per key, one column per metric (a key with several runs: their mean over seeds;
    accuracy and AP in percent; NaN for a diverged or missing value). ``attrs["runs"]``: the
    finished run directories behind the table, ``attrs["diverged"]``: keys of diverged runs."""
    rows, dirs, diverged = {}, set(), []
    for key, value in runs.items():
        group = [value] if isinstance(value, Run) else list(value)
        values = {m: [_value(r, m) for r in group] for m in metrics}
        rows[key] = {m: float(np.nanmean(v)) if np.isfinite(v).any() else np.nan
                     for m, v in values.items()}
        dirs |= {os.fspath(r.dir) for r in group if r.status == "finished"}
        if any(r.status == "diverged" for r in group):
            diverged.append(key)
    index = pd.MultiIndex.from_tuples(list(rows)) if rows and all(
        isinstance(k, tuple) for k in rows) else list(rows)
    df = pd.DataFrame(list(rows.values()), index=index, columns=list(metrics))
    df.attrs.update(runs=sorted(dirs), diverged=diverged)
    return df


def grid_table(runs: Mapping[tuple[str, str], Run | Sequence[Run]], metric: str = "acc"
               ) -> pd.DataFrame:
    """``{(row, column): runs}`` → rows × columns of ``metric`` (first-seen order)."""
    long = metric_table(runs, [metric])
    rows = list(dict.fromkeys(r for r, _ in runs))
    cols = list(dict.fromkeys(c for _, c in runs))
    df = pd.DataFrame(np.nan, index=rows, columns=cols, dtype=float)
    for (r, c) in runs:
        df.loc[r, c] = long.loc[(r, c), metric]
    df.attrs.update(long.attrs)
    return df


def seed_table(runs: Mapping[tuple[Hashable, int], Run], metric: str) -> pd.DataFrame:
    """``{(key, seed): Run}`` → keys × seeds of ``metric`` (the spread behind a mean)."""
    keys = list(dict.fromkeys(arm_label(k) for k, _ in runs))
    seeds = sorted({s for _, s in runs})
    df = pd.DataFrame(np.nan, index=keys, columns=[f"seed {s}" for s in seeds], dtype=float)
    for (k, s), run in runs.items():
        df.loc[arm_label(k), f"seed {s}"] = _value(run, metric)
    return df


def learning_curves(runs: Mapping[Hashable, Run], column: str) -> pd.DataFrame:
    """Epoch × run of a ``history.jsonl`` column (e.g. ``test_srcc_mean`` of runs trained with
    ``monitor_test``); columns are ``arm_label(key)`` and, for seeded grids, ``" (seed s)"``."""
    out = {}
    for key, run in runs.items():
        seeded = isinstance(key, tuple) and len(key) == 2 and isinstance(key[1], int)
        label = f"{arm_label(key[0])} (seed {key[1]})" if seeded else arm_label(key)
        hist = pd.DataFrame(run.history)
        if column in hist:  # epochs without a test pass (monitor_every > 1) left out
            out[label] = hist.set_index("epoch")[column].dropna()
    return pd.DataFrame(out)


def levelling(runs: Mapping[tuple[Hashable, int], Run], column: str, *, last: int = 2
              ) -> pd.DataFrame:
    """Has each arm's test metric levelled off? Per arm of a seeded grid: the final value (mean
    over seeds), ``move`` = how much the seed-mean curve moves over the last ``last`` epochs
    (max − min), ``seed_sd`` = the SD over seeds of the final value, ``levelled`` = move <
    seed_sd (the last epochs change it by less than the run-to-run variation), ``seeds_up`` /
    ``seeds_down`` = how many of the ``seeds`` curves rose / fell over those epochs (all one way:
    a trend, such as a net that still learns or overfits; mixed: noise), and ``run`` = the arm's
    run name without its seed (the same arm in two tables has the same ``run``), and
    ``p_chance`` = how often the check would call the arm moving if the seeds shared no trend
    (:func:`chance_of_moving`; NaN when a seed's curve lacks one of the last epochs).

    **Choice:** ``last = 2`` (the change made by the final epoch): the demo's schedules cut the
    learning rate for their last epochs, and the question is whether more of them would change a
    result by more than another seed would."""
    rows = {}
    for key, group in by_key(runs).items():
        curves = [pd.DataFrame(r.history).set_index("epoch")[column].dropna() for r in group
                  if r.status == "finished" and column in pd.DataFrame(r.history)]
        if not curves:
            continue
        aligned = pd.concat(curves, axis=1)
        mean = aligned.mean(axis=1)
        finals = [float(c.iloc[-1]) for c in curves]
        tail, tail_rows = mean.iloc[-last:], aligned.iloc[-last:]
        sd = float(np.std(finals, ddof=1)) if len(finals) > 1 else np.nan
        move = float(tail.max() - tail.min())
        assessed = np.isfinite(sd) and len(mean) >= last  # a one-epoch run has no curve
        steps = [float(c.iloc[-1] - c.iloc[-last]) for c in curves if len(c) >= last]
        rows[arm_label(key)] = {"final": float(mean.iloc[-1]),
                                "move": move if len(mean) >= last else np.nan, "seed_sd": sd,
                                "levelled": bool(move < sd) if assessed else None,
                                "seeds_up": sum(d > 0 for d in steps),
                                "seeds_down": sum(d < 0 for d in steps), "seeds": len(steps),
                                "p_chance": (chance_of_moving(tail_rows.to_numpy()) if assessed
                                             and not tail_rows.isna().any().any() else np.nan),
                                "epochs": int(len(mean)),
                                "run": re.sub(r"-s\d+$", "", group[0].record.get("name", ""))}
    out = pd.DataFrame.from_dict(rows, orient="index", columns=list(LEVELLING_COLUMNS))
    out.attrs["last"] = int(last)
    return out


def chance_of_moving(tails: np.ndarray, threshold: float | None = None) -> float:
    """How often the levelling check would call a trend-free arm moving. ``tails`` holds every
    seed's curve over the last epochs (epochs × seeds, no gaps). With no trend that the seeds
    share, each seed's path over those epochs, ``tail_i − tail_i[0]``, is as likely to have gone
    the other way; a sign pattern ``e`` gives the seed-mean path ``mean_i e_i (tail_i −
    tail_i[0])`` and the final values ``tail_i[0] + e_i (tail_i[-1] − tail_i[0])``. The result is
    the share of the ``2^n`` patterns under which that path moves (max − min) by at least the SD
    of those finals (ddof 1), i.e. fails the check: the exact sign-flip (randomisation)
    distribution of the check for an arm with this one's epoch-to-epoch noise. An arm whose seeds
    do share a trend moves by more than its noise alone, so its value is only a guide to the
    no-trend rate. ``threshold``: compare every pattern's move with this number instead (with the
    observed move: the sign-flip test of a shared trend). Exact up to 16 seeds; beyond, a seeded
    sample of 65,536 patterns that includes the observed one and its mirror."""
    if np.isnan(tails).any():
        raise ValueError("chance_of_moving: every seed needs a value at every epoch of the tail")
    paths = tails - tails[:1]                      # each seed's path from the tail's first epoch
    n = paths.shape[1]
    if n <= 16:
        signs = np.array(list(itertools.product((1.0, -1.0), repeat=n)))
    else:
        signs = np.vstack([np.ones((1, n)), -np.ones((1, n)),
                           np.random.default_rng(0).choice((1.0, -1.0), size=(65_534, n))])
    means = (signs[:, None, :] * paths[None]).mean(axis=2)        # pattern × epoch
    moves = means.max(axis=1) - means.min(axis=1)
    if threshold is None:
        finals = tails[:1] + signs * paths[-1]                      # pattern × seed
        threshold = np.std(finals, axis=1, ddof=1)
    return float(np.mean(moves >= np.asarray(threshold) - 1e-12))


# ============================================================================ data
def training_subset(manifest: str | os.PathLike, n: int | None, *, seed: int = 0) -> Path:
    """A seeded random subset of ``n`` rows of a training manifest (file order kept), written
    atomically to ``<manifest folder>/subsets/<stem>_n<n>_s<seed>.csv``; the manifest itself when
    ``n`` is 0/None or not smaller than it. The same arguments give the same bytes (and config
    hash).

    **Choice:** the demo profiles train some runs on a subset of the training images so the grid
    fits its time budget; the test set is never subsampled.
    """
    manifest = Path(manifest)
    if not n:
        return manifest
    if not manifest.is_file():
        raise IaaError(f"{manifest}: manifest not found (run notebook 01, which writes the "
                       "manifests, first)")
    if n < 0:
        raise IaaError(f"training subset size must be positive, got {n}")
    df = read_manifest(manifest)
    if n >= len(df):
        return manifest
    rows = np.sort(np.random.default_rng(seed).choice(len(df), size=int(n), replace=False))
    out = manifest.parent / "subsets" / f"{manifest.stem}_n{int(n)}_s{int(seed)}.csv"
    data = df.iloc[rows].to_csv(index=False, lineterminator="\n").encode("utf-8")
    if not out.is_file() or out.read_bytes() != data:
        with atomic_write(out, "wb") as fh:
            fh.write(data)
    return out
