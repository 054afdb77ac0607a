"""Where iaalib looks for data and writes generated files.

* ``IAA_HOME`` (env) or ``<repo>/.iaa`` — generated datasets (``data/``) and run records (``runs/``).
* ``IAA_SHARED_DATA`` (env) or ``<repo>/../shared/data`` — real AVA/TID2013 label files, read-only,
  optional (tests skip when absent). Never copied into the repository.
"""
from __future__ import annotations

import os
from pathlib import Path

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
