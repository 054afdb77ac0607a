"""Shared fixtures. Real label files come from ../shared/data (or IAA_SHARED_DATA); tests that need
them skip cleanly when they are absent. Nothing from there is ever copied into the repository."""
from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

from iaalib.paths import shared_data_dir

os.environ.setdefault("MPLBACKEND", "Agg")


@pytest.fixture(scope="session")
def shared_data() -> Path:
    d = shared_data_dir()
    if d is None:
        pytest.skip("real label files (../shared/data) are not on this machine")
    return d


def shared_file(*parts: str) -> Path:
    """Path of one real label file, or skip the test when it is absent."""
    d = shared_data_dir()
    p = d.joinpath(*parts) if d is not None else None
    if p is None or not p.exists():
        pytest.skip(f"real label file {'/'.join(parts)} not available")
    return p


def tree_hash(root: Path) -> str:
    """sha256 over every file below ``root`` (relative path and bytes): byte-identical trees."""
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + b"\0" + p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="session")
def smoke_book(tmp_path_factory) -> Path:
    """The whole smoke book, built once per session (`iaa book --profile smoke` in a fresh
    IAA_HOME): the build folder (executed notebooks, HTML, claims.json, book-run.json)."""
    tmp = tmp_path_factory.mktemp("smoke-book")
    out = tmp / "build"
    env = {**os.environ, "IAA_HOME": str(tmp / "home"), "MPLBACKEND": "Agg"}
    root = Path(__file__).resolve().parent.parent
    r = subprocess.run([sys.executable, "-m", "iaalib.cli", "book", "--profile", "smoke",
                        "--out", str(out)], cwd=root, env=env, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-4000:]
    return out
