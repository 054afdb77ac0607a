"""Wall time of the whole book: `iaa book --profile P` in a fresh interpreter.

    python benchmarks/bench_book.py [--profile demo] [--fresh | --home DIR] [--out DIR]
                                    [-p NAME VALUE ...] [--jobs N] [--report FILE]

Runs the pipeline exactly as `make book` does (data generation, every notebook through papermill,
the Jupyter Book build) and records the per-notebook wall times from ``book-run.json`` (with
``--jobs`` above 1 a chapter's wall time is shared with the chapters beside it). With
``--fresh`` it uses an empty temporary ``IAA_HOME``, so SynthAVA generation and every training run
are included (the "fresh machine" case, minus creating the venv); without it, checkpoint-or-train
reuses earlier runs under the current ``IAA_HOME``; ``--home DIR`` uses (and keeps) that folder,
e.g. an empty one for a fresh build whose runs another benchmark reads afterwards (the stability
comparison of two ``synth_seed`` builds). ``-p`` passes a setting to ``iaa book`` as its ``-p``.
Before and after the build, ``speed_probe_ms_per_image`` records how fast the machine was
(``bench_cpu_kernels.speed_probe``, in a fresh interpreter); ``levelling`` counts the arms whose
test metric levelled off, from the book's own ``levelling.json``; ``cpu_core_seconds`` is the CPU
time the build's processes used, by role (:func:`role_of`: training workers, notebook kernels, the
pipeline), sampled every two seconds with psutil, and ``cpu_utilisation`` its share of the
machine's cores over the wall time. Target for the demo profile: the
whole book in at most 600 s on two CPU cores. Writes
``benchmarks/results/book_<profile>.json``.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402
from iaalib.studies.results import levelling_trend  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGET_S = {"demo": 600.0}


def speed_probe() -> float | None:
    """``bench_cpu_kernels.speed_probe()`` in a fresh interpreter (None if it fails)."""
    code = "from benchmarks.bench_cpu_kernels import speed_probe; print(speed_probe())"
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    return float(r.stdout.split()[-1]) if r.returncode == 0 and r.stdout.split() else None


def levelling_summary(path: Path) -> dict | None:
    """The book's ``levelling.json`` in brief: arms assessed, arms levelled off, and the others
    with their move, seed SD and trend, and the misses to expect with no trend at all (the sum
    of ``p_chance``; None for a book written before the column). None when the build wrote no
    such file."""
    if not path.is_file():
        return None
    rows = [r for r in json.loads(path.read_text()) if r["levelled"] is not None]
    chance = [r.get("p_chance") for r in rows]
    return {"assessed": len(rows), "levelled": sum(r["levelled"] for r in rows),
            "expected_moving_by_chance": (round(sum(chance), 2) if None not in chance else None),
            "still_moving": [f"{r['table']}: {r['arm']} (moves {r['move']:.4f}, seed SD "
                             f"{r['seed_sd']:.4f}{levelling_trend(r)})"
                             for r in rows if not r["levelled"]]}


def role_of(cmdline: str, ancestors: list[str]) -> str:
    """The role of a process of the build from its command line and its ancestors' (nearest
    first): a notebook's kernel, a training worker (any process a kernel started: the runs' pool
    and its forkserver), or the pipeline (``iaa book``, its notebook executors, data generation
    and the HTML build)."""
    if "ipykernel_launcher" in cmdline:
        return "notebook kernels"
    if any("ipykernel_launcher" in a for a in ancestors):
        return "training workers"
    return "pipeline"


class CpuSampler(threading.Thread):
    """CPU seconds (user + system) of ``root`` and every process it starts, by :func:`role_of`,
    sampled every ``every`` seconds. A process is known from its first sample on and read until
    it ends, even after its parent has ended (an orphaned pool worker): what it used after the
    last sample is missed. None without psutil."""

    def __init__(self, root: int, every: float = 2.0):
        super().__init__(daemon=True)
        self.root, self.every, self.done = root, every, threading.Event()
        self.seen: dict[tuple[int, float], list] = {}  # (pid, start time) -> [role, seconds]

    def sample(self, psutil) -> None:
        try:
            root = psutil.Process(self.root)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            procs = []
        for pid, created in list(self.seen):  # orphans too, unless their pid was reused
            try:
                p = psutil.Process(pid)
                if p.create_time() == created:
                    procs.append(p)
            except psutil.Error:
                continue
        for proc in procs:
            try:
                with proc.oneshot():
                    key = (proc.pid, proc.create_time())
                    t = proc.cpu_times()
                    if key not in self.seen:
                        ancestors = [" ".join(a.cmdline()) for a in proc.parents()]
                        self.seen[key] = [role_of(" ".join(proc.cmdline()), ancestors), 0.0]
                    self.seen[key][1] = max(self.seen[key][1], t.user + t.system)
            except psutil.Error:  # ended or a zombie: its last sample stands
                continue

    def run(self) -> None:
        try:
            import psutil
        except ImportError:
            return
        while not self.done.wait(self.every):
            self.sample(psutil)

    def totals(self) -> dict[str, float] | None:
        if not self.seen:
            return None
        out: dict[str, float] = {}
        for role, secs in self.seen.values():
            out[role] = round(out.get(role, 0.0) + secs, 1)
        return dict(sorted(out.items()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--fresh", action="store_true", help="empty temporary IAA_HOME (no reuse)")
    p.add_argument("--home", help="IAA_HOME to use and keep (empty: a fresh build)")
    p.add_argument("-p", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"),
                   help="a setting for iaa book (as its -p)")
    p.add_argument("--out", help="book output folder (default: a temporary folder)")
    p.add_argument("--jobs", type=int, help="iaa book --jobs (default: iaa book's)")
    p.add_argument("--report", help="JSON report (default: benchmarks/results/book_<profile>.json)")
    args = p.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="iaa-bench-book-") as tmp:
        out = Path(args.out) if args.out else Path(tmp) / "build"
        # this checkout's iaalib, in the pipeline and in every notebook's kernel
        path = os.pathsep.join(x for x in (str(ROOT), os.environ.get("PYTHONPATH")) if x)
        env = {**os.environ, "MPLBACKEND": "Agg", "PYTHONPATH": path}
        home = Path(args.home) if args.home else Path(tmp) / "home" if args.fresh else None
        fresh = home is not None and not (home.exists() and any(home.iterdir()))
        if home is not None:
            env["IAA_HOME"] = str(home.resolve())
        settings = [x for name, value in args.p for x in ("-p", name, value)]
        probe_before = speed_probe()
        t0 = time.perf_counter()
        proc = subprocess.Popen([sys.executable, "-m", "iaalib.cli", "book", "--profile",
                                 args.profile, "--out", str(out), *settings,
                                 *(["--jobs", str(args.jobs)] if args.jobs else [])],
                                cwd=ROOT, env=env)
        sampler = CpuSampler(proc.pid)
        sampler.start()
        r = subprocess.CompletedProcess(proc.args, proc.wait())
        wall = time.perf_counter() - t0
        sampler.done.set()
        sampler.join()
        cpu = sampler.totals()
        probe_after = speed_probe()
        record = json.loads((out / "book-run.json").read_text()) if (out / "book-run.json").is_file() else {}
        levelling = levelling_summary(out / "levelling.json")

    target = TARGET_S.get(args.profile)
    report = {
        "benchmark": "book", "profile": args.profile, "fresh_iaa_home": fresh,
        "settings": dict(args.p),
        "exit_code": r.returncode, "wall_seconds": round(wall, 1),
        "pipeline_total_seconds": record.get("total_seconds"),
        "data_seconds": record.get("data_seconds"), "html_seconds": record.get("html_seconds"),
        "notebooks": {e["name"]: e.get("seconds") for e in record.get("notebooks", [])},
        "jobs": record.get("jobs"), "target_seconds": target,
        "meets_target": None if target is None else bool(r.returncode == 0 and wall <= target),
        "git_revision": record.get("revision"), "machine": machine_info(),
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "speed_probe_ms_per_image": {"before": probe_before, "after": probe_after},
        "levelling": levelling,
        "cpu_core_seconds": cpu,
        "cpu_utilisation": (round(sum(cpu.values()) / (wall * (os.cpu_count() or 1)), 3)
                            if cpu else None),
    }
    print(f"iaa book --profile {args.profile}{' (fresh IAA_HOME)' if fresh else ''}: "
          f"{wall:.1f} s wall, exit {r.returncode}; speed probe {probe_before} -> {probe_after} "
          "ms per image")
    for name, secs in report["notebooks"].items():
        print(f"  {name:<28} {secs if secs is not None else '-':>8} s")
    if cpu:
        print("  CPU core-seconds: " + ", ".join(f"{k} {v:.0f}" for k, v in cpu.items())
              + f" ({report['cpu_utilisation']:.0%} of the cores)")
    if levelling:
        print(f"  levelled off: {levelling['levelled']} of {levelling['assessed']} arms"
              + "".join(f"\n    still moving: {x}" for x in levelling["still_moving"]))
    print(f"  data {report['data_seconds']} s, html {report['html_seconds']} s"
          + (f"; target <= {target:.0f} s: {'met' if report['meets_target'] else 'NOT met'}" if target else ""))
    write_report(Path(args.report) if args.report else RESULTS / f"book_{args.profile}.json", report)
    return r.returncode


if __name__ == "__main__":
    sys.exit(main())
