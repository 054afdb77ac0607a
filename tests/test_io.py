"""Atomic writes: all-or-nothing, and the permissions an ordinary open() would give."""
from __future__ import annotations

import os
import stat

import pytest

from iaalib._io import atomic_write, sha256_file, write_json, read_json


def test_atomic_write_keeps_the_old_file_on_error(tmp_path):
    p = tmp_path / "a.txt"
    p.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(p) as fh:
            fh.write("new, half written")
            raise RuntimeError("killed")
    assert p.read_text() == "old"
    assert [f.name for f in tmp_path.iterdir()] == ["a.txt"]  # no temporary left behind


def test_atomic_write_permissions_follow_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_write(tmp_path / "b.txt") as fh:
            fh.write("x")
        (tmp_path / "c.txt").write_text("x")
    finally:
        os.umask(old)
    mode = lambda f: stat.S_IMODE((tmp_path / f).stat().st_mode)  # noqa: E731
    assert mode("b.txt") == mode("c.txt") == 0o644


def test_json_round_trip_and_checksum(tmp_path):
    import hashlib
    write_json(tmp_path / "d.json", {"b": 1, "a": [1, 2]})
    assert read_json(tmp_path / "d.json") == {"a": [1, 2], "b": 1}
    data = (tmp_path / "d.json").read_bytes()
    assert sha256_file(tmp_path / "d.json") == hashlib.sha256(data).hexdigest()
