"""Profiles: the only source of a chapter's settings (``notebooks/params/<profile>.yaml``).

A profile file has a ``description``, a ``common:`` section (settings every chapter shares: the
dataset, the training settings of each paper's runs) and one section per notebook stem (the
chapter's own knobs, e.g. ``02_kao_mtcnn: {lambdas: [...]}``); an optional ``extends: <profile>``
starts from another profile and replaces what it lists. Values are plain (numbers, strings,
booleans, null and lists of them).

A chapter's settings are, later ones winning: ``common`` → its own section → ``overrides`` (a
mapping of any known setting: ``iaa book -p NAME VALUE`` or papermill's ``overrides``) → the
notebook's own parameters that are not ``None``. :func:`chapter_settings` builds them, so a
notebook opened in JupyterLab and the same notebook run by ``iaa book --profile P`` train the same
runs (``tests/test_notebooks_static.py`` checks it, notebook by notebook).
"""
from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from ._io import yaml_key_lines
from .errors import DataFormatError, IaaError
from .paths import REPO_ROOT

PARAMS_DIR = REPO_ROOT / "notebooks" / "params"
NOTEBOOK_RE = re.compile(r"^(\d{2})_[A-Za-z0-9_]+$")
_TOP_KEYS = ("description", "extends", "common")


class MissingSettingError(IaaError, KeyError):
    """A chapter asked for a setting its profile does not define."""

    def __str__(self) -> str:
        return str(self.args[0])


class Settings(Mapping):
    """A chapter's resolved settings: a read-only mapping with attribute access (``S.kao_epochs``).

    ``sources[name]`` says where each value came from ("common", the section, "override",
    "notebook parameter"); a missing setting raises :class:`IaaError` naming the profile file.
    """

    def __init__(self, values: Mapping[str, Any], *, profile: str, notebook: str | None,
                 path: str, sources: Mapping[str, str]):
        self._values, self._sources = dict(values), dict(sources)
        self.profile, self.notebook, self.path = profile, notebook, path

    def __getitem__(self, name: str) -> Any:
        try:
            return self._values[name]
        except KeyError:
            raise MissingSettingError(f"setting {name!r} is not in profile {self.profile!r} "
                                      f"({self.path}; notebook {self.notebook})") from None

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        return self[name]

    def __contains__(self, name: object) -> bool:
        return name in self._values

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    def __repr__(self) -> str:
        return f"Settings(profile={self.profile!r}, notebook={self.notebook!r}, {self._values!r})"

    @property
    def sources(self) -> dict[str, str]:
        return dict(self._sources)

    def table(self):
        """``pandas.DataFrame`` (setting, value, source), for the chapter's record."""
        return pd.DataFrame([{"setting": k, "value": repr(v), "source": self._sources[k]}
                             for k, v in self._values.items()]).set_index("setting")


class Profile:
    """One profile file, validated (:func:`load_profile`)."""

    def __init__(self, name: str, path: Path, description: str, common: Mapping[str, Any],
                 sections: Mapping[str, Mapping[str, Any]], lines: Mapping[str, int]):
        self.name, self.path, self.description = name, path, description
        self.common, self.sections, self.lines = dict(common), dict(sections), dict(lines)

    def known(self) -> set[str]:
        """Every setting name the profile defines (common and every section)."""
        return set(self.common).union(*self.sections.values()) if self.sections else set(self.common)

    def check_overrides(self, overrides: Mapping[str, Any] | None) -> dict[str, Any]:
        overrides = dict(overrides or {})
        unknown = sorted(k for k in overrides if k not in self.known())
        if unknown:
            raise IaaError(f"unknown setting(s) {unknown} for profile {self.name!r} "
                           f"({self.path}); known: {', '.join(sorted(self.known()))}")
        for key, value in overrides.items():
            if not _is_plain(value):
                raise IaaError(f"override {key}={value!r}: settings are plain values")
        return overrides

    def settings(self, notebook: str | None = None, overrides: Mapping[str, Any] | None = None,
                 parameters: Mapping[str, Any] | None = None) -> Settings:
        """``common`` → the notebook's section → ``overrides`` → non-None ``parameters``."""
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        if isinstance(overrides, str):  # papermill's -p passes a dict as its text
            overrides = _from_text("overrides", overrides, {})
        layers = [("common", self.common), (notebook or "", self.sections.get(notebook or "", {})),
                  ("override", self.check_overrides(overrides))]
        for source, layer in layers:
            for k, v in layer.items():
                values[k], sources[k] = v, source
        for k, v in (parameters or {}).items():
            if v is None:
                continue
            if k not in values:
                raise IaaError(f"notebook parameter {k!r} is not a setting of profile "
                               f"{self.name!r} for {notebook} ({self.path})")
            if isinstance(v, str) and not isinstance(values[k], str) and values[k] is not None:
                v = _from_text(k, v, values[k])  # papermill's -p: a list or number as text
            values[k], sources[k] = v, "notebook parameter"
        return Settings(values, profile=self.name, notebook=notebook, path=str(self.path),
                        sources=sources)


def load_profile(profile: str | Path, params_dir: str | Path = PARAMS_DIR) -> Profile:
    """Read and validate ``<params_dir>/<profile>.yaml`` (or a path); :class:`DataFormatError`
    names file and line of a bad entry. ``extends: <name>`` merges over that profile."""
    path = Path(profile) if str(profile).endswith((".yaml", ".yml")) else \
        Path(params_dir) / f"{profile}.yaml"
    if not path.is_file():
        avail = sorted(p.stem for p in Path(params_dir).glob("*.yaml"))
        raise IaaError(f"unknown profile {str(profile)!r}: {path} does not exist "
                       f"(available: {avail})")
    text = path.read_text(encoding="utf-8")
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        raise DataFormatError(path, mark.line + 1 if mark else None, f"invalid YAML: {e}") from e
    if not isinstance(data, dict):
        raise DataFormatError(path, 1, "a profile must be a mapping (description, common, sections)")
    lines = yaml_key_lines(text)
    sections: dict[str, dict[str, Any]] = {}
    for key, section in data.items():
        if key in ("description", "extends"):
            continue
        if key != "common" and not NOTEBOOK_RE.match(str(key)):
            raise DataFormatError(path, lines.get(str(key)), f"unknown section {key!r}: expected "
                                  "'description', 'extends', 'common' or a notebook name such as "
                                  "'01_dataset'")
        section = {} if section is None else section
        if not isinstance(section, dict):
            raise DataFormatError(path, lines.get(str(key)), f"section {key!r} must be a mapping")
        for name, value in section.items():
            where = lines.get(f"{key}.{name}")
            if not str(name).isidentifier():
                raise DataFormatError(path, where, f"{name!r} is not a setting name")
            if not _is_plain(value):
                raise DataFormatError(path, where, f"{key}.{name}: settings must be plain values "
                                      "(number, string, bool, null, or a list of them)")
        sections[str(key)] = dict(section)
    common = sections.pop("common", {})
    name = path.stem
    if data.get("extends"):
        base = load_profile(str(data["extends"]), path.parent)
        common = {**base.common, **common}
        merged = {k: dict(v) for k, v in base.sections.items()}
        for k, v in sections.items():
            merged[k] = {**merged.get(k, {}), **v}
        sections = merged
        unknown = sorted(set(common) - set(base.common))
        if unknown:
            raise DataFormatError(path, lines.get(f"common.{unknown[0]}"),
                                  f"common.{unknown[0]} is not a setting of {data['extends']!r}")
    return Profile(name, path, str(data.get("description", "")).strip(), common, sections, lines)


def chapter_settings(profile: str, notebook: str, overrides: Mapping[str, Any] | None = None,
                     **parameters: Any) -> Settings:
    """The settings of ``notebook`` (its stem, e.g. ``"02_kao_mtcnn"``) in ``profile``: what each
    notebook's second cell calls with its parameters cell's values (``None`` = the profile's)."""
    return load_profile(profile).settings(notebook, overrides, parameters)


def parse_overrides(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """``[("kao_epochs", "5"), ("lambdas", "[0, 1]")]`` → ``{"kao_epochs": 5, "lambdas": [0, 1]}``
    (each value read as YAML, as papermill reads ``-y``; strings stay strings)."""
    out: dict[str, Any] = {}
    for name, text in pairs:
        if not str(name).isidentifier():
            raise IaaError(f"-p {name}: not a setting name")
        try:
            out[name] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError as e:
            raise IaaError(f"-p {name} {text!r}: not a valid value ({e})") from None
    return out


def _from_text(name: str, text: str, like: Any) -> Any:
    """A parameter papermill's ``-p`` passed as text, read as YAML into the type of ``like``."""
    try:
        value = yaml.safe_load(text) if text.strip() else ""
    except yaml.YAMLError as e:
        raise IaaError(f"parameter {name}: {text!r} is not a valid YAML value ({e})") from None
    if isinstance(like, Mapping) and not isinstance(value, Mapping):
        raise IaaError(f"parameter {name}: expected a mapping like {{\"kao_epochs\": 5}}, got {text!r}")
    return value


def _is_plain(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, list):
        return all(_is_plain(v) for v in value)
    return False
