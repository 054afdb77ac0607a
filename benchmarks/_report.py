"""What every benchmark report records about the machine, and how a report is written.

Numbers from a shared two-core machine mean little without the load they were measured under,
so ``machine_info`` records the load average next to the CPU count, platform and the versions
of the libraries the benchmark imported.
"""
from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

from iaalib._io import write_json

_VERSIONED = ("numpy", "pandas", "PIL", "torch", "torchvision")


def machine_info(**extra: Any) -> dict[str, Any]:
    """CPU count, platform, Python, 1/5/15-minute load and versions of already-imported libraries."""
    info: dict[str, Any] = {"cpus": os.cpu_count(), "platform": platform.platform(),
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
