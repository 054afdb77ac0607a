"""Where iaalib looks for data and writes generated files.

* ``IAA_HOME`` (env) or ``<repo>/.iaa`` — generated datasets (``data/``) and run records (``runs/``).
* ``IAA_SHARED_DATA`` (env) or ``<repo>/../shared/data`` — real AVA/TID2013 label files, read-only,
  optional (tests skip when absent). Never copied into the repository.
* :func:`code_revision` — the git commit of the checkout, recorded with every run and book build.
"""
from __future__ import annotations

import functools
import os
import subprocess
from pathlib import Path
from typing import Any

from . import __version__

REPO_ROOT = Path(__file__).resolve().parent.parent


def iaa_home() -> Path:
    return Path(os.environ.get("IAA_HOME", REPO_ROOT / ".iaa")).resolve()


def data_home() -> Path:
    return iaa_home() / "data"


def runs_home() -> Path:
    return iaa_home() / "runs"


def shared_data_dir() -> Path | None:
    """The read-only real label files, or None when they are not on this machine."""
    p = Path(os.environ.get("IAA_SHARED_DATA", REPO_ROOT.parent / "shared" / "data"))
    return p.resolve() if p.is_dir() else None


@functools.lru_cache(maxsize=1)
def code_revision() -> dict[str, Any]:
    """Git commit and dirty flag of the iaalib checkout; the package version when not in git."""
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO_ROOT, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=REPO_ROOT, capture_output=True, text=True, timeout=10,
                               check=True).stdout.strip() != ""
        return {"git_revision": rev, "dirty": dirty, "iaalib_version": __version__}
    except (OSError, subprocess.SubprocessError):
        return {"git_revision": None, "dirty": None, "iaalib_version": __version__}

