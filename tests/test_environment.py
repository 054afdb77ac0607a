"""environment.yml (conda) and pyproject.toml must list exactly the same packages and pins."""
from __future__ import annotations

import re
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def _norm(req: str) -> str:
    name, spec = re.match(r"^\s*([A-Za-z0-9_.\-\[\]]+)\s*(.*)$", req).groups()
    return re.sub(r"[-_.]+", "-", name).lower() + spec.replace(" ", "")


def test_environment_yml_matches_pyproject():
    py = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = {_norm(r) for r in py["dependencies"]}
    for extra in py.get("optional-dependencies", {}).values():
        wanted |= {_norm(r) for r in extra}
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip_lists = [d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(pip_lists) == 1, "environment.yml needs exactly one pip: section"
    have = {_norm(r) for r in pip_lists[0]}
    assert have == wanted, (
        f"only in pyproject: {sorted(wanted - have)}; only in environment.yml: {sorted(have - wanted)}"
    )


def test_pins_as_required():
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    norm = {_norm(d) for d in deps}
    assert "torch==2.14.1" in norm and "torchvision==0.29.1" in norm
    assert "jupyter-book>=1,<2" in norm
