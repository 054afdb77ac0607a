"""What every benchmark report records about the machine, and how a report is written.

Numbers from a shared two-core machine mean little without the load they were measured under,
so ``machine_info`` records the load average next to the CPU count, platform and the versions
of the libraries the benchmark imported; and since results depend on the instruction set that the
kernels dispatch to (a "stand-in for another machine" limits it), the CPU's model and its widest
vector and bf16 extensions (``cpu``).
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from iaalib._io import write_json

_VERSIONED = ("numpy", "pandas", "PIL", "torch", "torchvision")
#: The /proc/cpuinfo flags that decide which kernels PyTorch, oneDNN and MKL use.
_ISA_FLAGS = ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_info(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> dict[str, Any]:
    """The first CPU's ``model`` name and which of :data:`_ISA_FLAGS` it has (``isa``), read
    from ``cpuinfo``; ``{}`` where that file does not exist (not Linux)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return {}
    first = text.split("\n\n", 1)[0]  # one block per logical CPU; the first stands for all
    fields = {k.strip(): v.strip() for k, _, v in
              (line.partition(":") for line in first.splitlines() if ":" in line)}
    flags = set(fields.get("flags", "").split())
    return {"model": fields.get("model name"), "isa": [f for f in _ISA_FLAGS if f in flags]}


def machine_info(**extra: Any) -> dict[str, Any]:
    """CPU count, model and instruction-set extensions (:func:`cpu_info`), platform, Python,
    1/5/15-minute load and versions of already-imported libraries."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "cpu": cpu_info(),
                            "platform": platform.platform(),
                            "python": platform.python_version(), "loadavg": list(os.getloadavg())}
    for name in _VERSIONED:
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "__version__"):
            info[name] = module.__version__
    return info | extra


def write_report(path: str | os.PathLike, report: dict[str, Any]) -> Path:
    """Write ``report`` atomically as key-sorted JSON (load at the end added) and say where."""
    report.setdefault("machine", machine_info())
    report["machine"]["loadavg_at_end"] = list(os.getloadavg())
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(path, report)
    print(f"wrote {path}")
    return path


def record_seconds(record: dict[str, Any]) -> float | None:
    """A run's wall time from its run.json timestamps (None while it has not finished)."""
    import datetime as dt

    if not (record.get("started") and record.get("finished")):
        return None
    return (dt.datetime.fromisoformat(record["finished"])
            - dt.datetime.fromisoformat(record["started"])).total_seconds()


def seed_stats(values) -> dict[str, Any]:
    """Mean, SD over seeds (ddof 1; None for one value) and the values, rounded to 4 digits."""
    import numpy as np

    a = np.asarray(list(values), float)
    return {"mean": round(float(a.mean()), 4),
            "sd": round(float(a.std(ddof=1)), 4) if a.size > 1 else None,
            "values": [round(float(v), 4) for v in a]}


def add_demo_run_options(parser, *, report: str | os.PathLike) -> None:
    """The options of the benchmarks that train a chapter's runs on a built profile."""
    parser.add_argument("--profile", default="demo")
    parser.add_argument("--home", help="IAA_HOME with the profile's data (default: the current one)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--report", default=str(report))


def kao_chapter3(args) -> tuple[Any, Any, Any]:
    """``(settings S, KaoData, KaoSettings)`` of notebook 03 under ``args.profile`` (after
    pointing IAA_HOME at ``args.home``): the data notebook 01 wrote, δ = 0."""
    if args.home:
        os.environ["IAA_HOME"] = str(Path(args.home).resolve())
    from iaalib import datasets, profiles
    from iaalib.studies import kao

    S = profiles.chapter_settings(args.profile, "03_kao_mtrl", {})
    data = kao.kao_data(S.profile, datasets.profile_dataset(S).image_dir, deltas=[0])
    return S, data, kao.KaoSettings.from_settings(S)
