"""Profiles as the only source of settings (iaalib.profiles): validation with file:line, the
layering common → section → overrides → notebook parameters, ``extends``, and ``-p`` parsing."""
from __future__ import annotations

from pathlib import Path

import pytest

from iaalib import profiles
from iaalib.errors import DataFormatError, IaaError


def _profile(tmp_path: Path, text: str, name: str = "p") -> Path:
    (tmp_path / f"{name}.yaml").write_text(text)
    return tmp_path


def test_load_profile_reports_file_and_line(tmp_path):
    d = _profile(tmp_path, "common:\n  seed: 0\n01_dataset:\n  n: 1\n  bad: {a: 1}\n")
    with pytest.raises(DataFormatError, match=r"p\.yaml:5: 01_dataset\.bad: settings must be plain"):
        profiles.load_profile("p", d)
    _profile(tmp_path, "common:\n  seed: 0\ntraining:\n  n: 1\n")
    with pytest.raises(DataFormatError, match=r"p\.yaml:3: unknown section 'training'"):
        profiles.load_profile("p", d)
    _profile(tmp_path, "common: [1, 2\n")
    with pytest.raises(DataFormatError, match=r"p\.yaml:\d+: invalid YAML"):
        profiles.load_profile("p", d)
    with pytest.raises(IaaError, match=r"unknown profile 'nope'.*\['p'\]"):
        profiles.load_profile("nope", d)
    _profile(tmp_path, "description: x\ncommon:\n  seed: 0\n  tags: [a, b]\n01_dataset:\n")
    prof = profiles.load_profile("p", d)
    assert prof.common == {"seed": 0, "tags": ["a", "b"]} and prof.sections["01_dataset"] == {}
    assert prof.description == "x" and profiles.load_profile(d / "p.yaml").common == prof.common


def test_settings_are_layered_and_typos_are_errors(tmp_path):
    d = _profile(tmp_path, "common:\n  a: 1\n  b: 2\n01_x:\n  b: 20\n  k: [0, 1]\n")
    prof = profiles.load_profile("p", d)
    s = prof.settings("01_x")
    assert dict(s) == {"a": 1, "b": 20, "k": [0, 1]} and s.b == 20 and s.profile == "p"
    assert s.sources == {"a": "common", "b": "01_x", "k": "01_x"}
    s = prof.settings("01_x", {"a": 5}, {"k": [2], "b": None})
    assert (s.a, s.b, s.k) == (5, 20, [2])
    assert s.sources["a"] == "override" and s.sources["k"] == "notebook parameter"
    assert "a" in s and "zz" not in s and s.get("zz", 7) == 7
    with pytest.raises(IaaError, match=r"setting 'zz' is not in profile 'p'"):
        s.zz
    with pytest.raises(IaaError, match=r"unknown setting\(s\) \['typo'\]"):
        prof.settings("01_x", {"typo": 1})
    with pytest.raises(IaaError, match=r"notebook parameter 'q' is not a setting"):
        prof.settings("01_x", None, {"q": 1})
    assert dict(prof.settings("02_y")) == {"a": 1, "b": 2}      # another section's keys stay out


def test_extends_merges_over_the_base_profile(tmp_path):
    _profile(tmp_path, "common:\n  a: 1\n  b: 2\n01_x:\n  k: 1\n  j: 2\n", "base")
    d = _profile(tmp_path, "extends: base\ncommon:\n  b: 3\n01_x:\n  k: 5\n", "child")
    child = profiles.load_profile("child", d)
    assert child.common == {"a": 1, "b": 3} and child.sections["01_x"] == {"k": 5, "j": 2}
    _profile(tmp_path, "extends: base\ncommon:\n  new: 3\n", "bad")
    with pytest.raises(DataFormatError, match=r"bad\.yaml:3: common\.new is not a setting of 'base'"):
        profiles.load_profile("bad", d)


def test_parse_overrides_reads_yaml_values():
    assert profiles.parse_overrides([("kao_epochs", "5"), ("lambdas", "[0, 1/M]"),
                                     ("device", "cpu"), ("x", "")]) == \
        {"kao_epochs": 5, "lambdas": [0, "1/M"], "device": "cpu", "x": ""}
    with pytest.raises(IaaError, match="not a setting name"):
        profiles.parse_overrides([("a-b", "1")])


def test_shipped_profiles_define_the_same_settings():
    """Every profile defines every setting, so an override valid for one is valid for all."""
    names = ["smoke", "demo", "ava"] + [p.stem for p in profiles.PARAMS_DIR.glob("*.yaml")
                                        if p.stem not in ("smoke", "demo", "ava")]
    loaded = {n: profiles.load_profile(n) for n in names}
    ref = loaded["demo"]
    for name, prof in loaded.items():
        assert set(prof.common) == set(ref.common), name
        assert set(prof.sections) == set(ref.sections), name
        for section, values in ref.sections.items():
            assert set(prof.sections[section]) == set(values), (name, section)
        assert len(prof.common["seeds"]) >= 1 and len(set(prof.common["seeds"])) == \
            len(prof.common["seeds"]), name


def test_papermill_text_values_are_read_as_yaml():
    """papermill's -p passes a dict or a list as text: read it as YAML, as iaa book's -p does."""
    from iaalib import profiles
    s = profiles.chapter_settings("smoke", "02_kao_mtcnn", '{"kao_epochs": 3}',
                                  lambdas='[0, "1/M"]')
    assert s["kao_epochs"] == 3 and s["lambdas"] == [0, "1/M"]
    assert s.sources["kao_epochs"] == "override" and s.sources["lambdas"] == "notebook parameter"
    with pytest.raises(profiles.IaaError, match="expected a mapping"):
        profiles.chapter_settings("smoke", "02_kao_mtcnn", "[1, 2]")
