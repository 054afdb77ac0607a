"""The manifest schema, protocol recipes (``data_manifests/*.yaml``) and manifest files
(``train.csv``/``test.csv``/``val.csv`` + ``summary.json``).

Schema: every manifest has :data:`MANIFEST_COLUMNS` and, for Kao's protocol, one 0/1 column
``tag_<id>`` per kept tag (:data:`TAG_COLUMN`, ascending id); ``label`` = 1 if mean > 5
(:data:`THRESHOLD`). A protocol run is a :class:`Split`.

A recipe records a protocol's parameters, the counts it gives on the full official ``AVA.txt`` and the
sha256 of the AVA.txt release it expects, so a different label file gives a clear warning (or, strict,
an error) instead of silently different splits. Manifests are written atomically with each CSV's sha256
in ``summary["files"]``. No torch here.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from .._io import atomic_write, read_json, sha256_bytes, sha256_file, write_json
from ..errors import ChecksumMismatchError, DataFormatError, IaaError
from ..paths import REPO_ROOT
from .ava import SCORES, VOTE_COLUMNS

logger = logging.getLogger(__name__)

RECIPE_DIR = REPO_ROOT / "data_manifests"
MANIFEST_FILES = ("train.csv", "test.csv", "val.csv")
TAG_COLUMN = re.compile(r"^tag_\d+$")
_RECIPE_KEYS = ("protocol", "parameters", "label_file", "expected")
# Recipe parameters that change the checked counts (delta/seed/val_size do not: see check_expected).
_COUNT_PARAMETERS = {"kao": ("min_tag_count", "test_size"), "standard": ()}
_INT_COLUMNS = ["image_id", *VOTE_COLUMNS, "n_votes", "label", "tag1", "tag2", "challenge_id"]


# ------------------------------------------------------------------------------------- schema
MANIFEST_COLUMNS = ["image_id", *VOTE_COLUMNS, "n_votes", "mean", "sd", "label",
                    "tag1", "tag2", "challenge_id"]


THRESHOLD = 5.0  # Kao et al. Sec. IV-A: high quality if mean > 5 (+δ)


@dataclasses.dataclass
class Split:
    """Manifests of one protocol run; ``val`` is None unless ``val_size > 0``."""

    train: pd.DataFrame
    test: pd.DataFrame
    val: pd.DataFrame | None
    summary: dict


def tag_column(tag_id: int) -> str:
    """Name of the multi-hot column of a kept tag (``tag_14``); the raw slots are ``tag1``/``tag2``."""
    return f"tag_{int(tag_id)}"



# ------------------------------------------------------------------------------------- recipes
def load_recipe(name_or_path: str | os.PathLike) -> dict:
    """A recipe by name (``"kao"`` → ``data_manifests/kao.yaml``) or path; adds ``name`` and ``path``."""
    p = Path(name_or_path)
    if not p.suffix and not p.exists():
        p = RECIPE_DIR / f"{p.name}.yaml"
    if not p.is_file():
        known = sorted(q.stem for q in RECIPE_DIR.glob("*.yaml"))
        raise IaaError(f"no recipe {os.fspath(name_or_path)!r} (known: {', '.join(known)})")
    try:
        recipe = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        line = getattr(getattr(e, "problem_mark", None), "line", None)
        raise DataFormatError(p, None if line is None else line + 1, f"invalid YAML: {e}") from e
    if not isinstance(recipe, dict) or any(k not in recipe for k in _RECIPE_KEYS):
        raise DataFormatError(p, None, f"a recipe needs the keys {list(_RECIPE_KEYS)}")
    if recipe["protocol"] not in _COUNT_PARAMETERS:
        raise DataFormatError(p, None, f"unknown protocol {recipe['protocol']!r}")
    if not isinstance(recipe["label_file"], dict) or "sha256" not in recipe["label_file"]:
        raise DataFormatError(p, None, "label_file needs a sha256 entry (null when unknown)")
    recipe.setdefault("name", p.stem)
    recipe["path"] = os.fspath(p)
    return recipe


def _known_sha(value) -> str | None:
    return value.lower() if isinstance(value, str) and re.fullmatch(r"[0-9a-fA-F]{64}", value) else None


def check_label_file(path: str | os.PathLike, recipe: dict, *, strict: bool = False,
                     sha256: str | None = None) -> bool:
    """True if ``path``'s sha256 equals the recipe's ``label_file.sha256``.

    A recipe whose sha256 is unknown (null) gives a warning that its expected counts cannot be
    guaranteed; a different sha256 gives a warning, or :class:`ChecksumMismatchError` when ``strict``.
    Pass ``sha256`` if it is already known (``read_ava_txt`` records it in ``df.attrs``).
    """
    name = recipe.get("name", "?")
    actual = sha256 or sha256_file(path)
    expected = _known_sha(recipe["label_file"].get("sha256"))
    if expected is None:
        logger.warning("recipe %s records no sha256 for its label file, so %s (sha256 %s) cannot be "
                       "verified and the recipe's expected counts cannot be guaranteed", name,
                       os.fspath(path), actual)
        return False
    if actual == expected:
        return True
    msg = (f"{os.fspath(path)}: sha256 {actual} differs from {expected} expected by recipe {name}; "
           f"splits and counts will differ from the recipe's")
    if strict:
        raise ChecksumMismatchError(msg)
    logger.warning(msg)
    return False


def check_expected(summary: dict, recipe: dict, *, strict: bool = False) -> list[str]:
    """Compare a protocol summary with the recipe's expected counts; return the mismatches.

    Counts are compared only when the parameters that determine them match the recipe's
    (kao: ``min_tag_count``, ``test_size``; standard: the test list's sha256 when the recipe has one).
    ``n_kept_tags`` is ``len(kept_tags)``; ``n_train_delta0`` is the training images before δ and
    before a validation hold-out (the paper's 165,751). Expected values of null are not checked.
    Mismatches are logged as warnings, or raise :class:`IaaError` when ``strict``.
    """
    name = recipe.get("name", "?")
    params = recipe.get("parameters") or {}
    differing = [k for k in _COUNT_PARAMETERS[recipe["protocol"]]
                 if k in params and summary.get(k) != params[k]]
    listed = _known_sha((recipe.get("test_list") or {}).get("sha256"))
    if listed is not None and summary.get("test_list_sha256") not in (None, listed):
        differing.append("test_list")
    if differing:
        logger.warning("parameters %s differ from recipe %s; its expected counts are not checked",
                       differing, name)
        return []
    derived = {"n_kept_tags": len(summary.get("kept_tags") or []),
               "n_train_delta0": summary.get("n_train_before_delta", 0) + summary.get("n_val", 0)}
    mismatches = []
    for key, want in (recipe.get("expected") or {}).items():
        if want is None:
            continue
        got = derived[key] if key in derived else summary.get(key)
        if got != want:
            mismatches.append(f"{key}: {got} (recipe {name} expects {want})")
    if mismatches:
        msg = f"counts differ from recipe {name}: " + "; ".join(mismatches)
        if strict:
            raise IaaError(msg)
        logger.warning(msg)
    return mismatches


# ------------------------------------------------------------------------------------- manifests
def csv_bytes(frame: pd.DataFrame) -> bytes:
    """``frame`` as CSV (header, no index, "\\n" line ends), written by pyarrow's CSV writer: on
    the 235,000-row Kao training manifest about 10x faster than ``DataFrame.to_csv``
    (benchmarks/results/parse.json). Floats keep their shortest round-trip digits."""
    import pyarrow as pa
    import pyarrow.csv as pa_csv

    names = [str(c) for c in frame.columns]
    if any(set(n) & set(',"\r\n') for n in names):  # pyarrow quotes every header name
        return frame.to_csv(index=False, lineterminator="\n").encode("utf-8")
    sink = pa.BufferOutputStream()
    pa_csv.write_csv(pa.Table.from_pandas(frame, preserve_index=False), sink,
                     pa_csv.WriteOptions(include_header=False, quoting_style="needed"))
    return (",".join(names) + "\n").encode("utf-8") + sink.getvalue().to_pybytes()


def write_manifest(split: Split, out_dir: str | os.PathLike) -> dict:
    """Write ``train.csv``, ``test.csv`` (and ``val.csv`` if any) and ``summary.json`` into ``out_dir``.

    Each file is written atomically; ``summary.json`` (written last, removed first) gets
    ``files: {name: sha256}``. A stale ``val.csv`` from an earlier run is removed. Returns the summary.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    (out / "summary.json").unlink(missing_ok=True)
    files = {}
    for name, frame in zip(MANIFEST_FILES, (split.train, split.test, split.val)):
        if frame is None:
            (out / name).unlink(missing_ok=True)
            continue
        missing = [c for c in MANIFEST_COLUMNS if c not in frame.columns]
        if missing:
            raise ValueError(f"{name}: manifest lacks columns {missing}")
        data = csv_bytes(frame)
        with atomic_write(out / name, "wb") as fh:
            fh.write(data)
        files[name] = sha256_bytes(data)
    summary = dict(split.summary, files=files)
    write_json(out / "summary.json", summary)
    return summary


def read_manifest(path: str | os.PathLike) -> pd.DataFrame:
    """Read one manifest CSV and validate it; :class:`DataFormatError` names the file (and line).

    Checks: the columns of ``MANIFEST_COLUMNS`` are present; integer columns hold integers; votes are
    non-negative with ``n_votes`` their sum; ``mean`` equals the votes' mean; ``label`` is
    ``mean > 5``; ``tag_<id>`` columns are 0/1; image ids are unique. If a ``summary.json`` next to
    the file lists its sha256 and the bytes differ, a warning says the file was changed.
    """
    path = Path(path)
    try:
        df = pd.read_csv(path)
    except pd.errors.EmptyDataError as e:
        raise DataFormatError(path, None, "empty file: no header") from e
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        m = re.search(r"line (\d+)", str(e))
        raise DataFormatError(path, int(m.group(1)) if m else None, f"not a CSV manifest: {e}") from e
    missing = [c for c in MANIFEST_COLUMNS if c not in df.columns]
    if missing:
        raise DataFormatError(path, 1, f"missing columns {missing}")
    tag_columns = [c for c in df.columns if TAG_COLUMN.match(c)]

    for c in _INT_COLUMNS + tag_columns:
        df[c] = _integer_column(df[c], path, c)
    for c in ("mean", "sd"):
        values = pd.to_numeric(df[c], errors="coerce")
        _fail_first(~np.isfinite(values.to_numpy(dtype=float)), path, f"{c} is not a finite number")
        df[c] = values.astype(np.float64)

    votes = df[VOTE_COLUMNS].to_numpy()
    _fail_first((votes < 0).any(axis=1), path, "negative vote count")
    _fail_first(votes.sum(axis=1) != df["n_votes"].to_numpy(), path, "n_votes is not the sum of the votes")
    _fail_first(df["n_votes"].to_numpy() == 0, path, "no votes")
    mean = (votes @ SCORES) / np.maximum(df["n_votes"].to_numpy(), 1)
    _fail_first(np.abs(mean - df["mean"].to_numpy()) > 1e-9, path, "mean does not match the votes")
    _fail_first(df["label"].to_numpy() != (df["mean"].to_numpy() > THRESHOLD), path,
                "label is not (mean > 5)")
    for c in tag_columns:
        _fail_first(~df[c].isin([0, 1]).to_numpy(), path, f"{c} is not 0/1")
        df[c] = df[c].astype(np.int8)
    _fail_first(df["image_id"].duplicated().to_numpy(), path, "duplicate image_id")
    _warn_if_changed(path)
    return df


def _fail_first(bad: np.ndarray, path: Path, message: str) -> None:
    """Raise for the first bad row; CSV line = row + 2 (line 1 is the header)."""
    bad = np.asarray(bad, dtype=bool)
    if bad.any():
        raise DataFormatError(path, int(np.argmax(bad)) + 2, message)


def _integer_column(col: pd.Series, path: Path, name: str) -> pd.Series:
    if pd.api.types.is_integer_dtype(col.dtype):
        return col.astype(np.int64)
    values = pd.to_numeric(col, errors="coerce").to_numpy(dtype=float)
    _fail_first(~np.isfinite(values) | (values != np.round(values)), path, f"{name} is not an integer")
    return pd.Series(values.astype(np.int64), index=col.index, name=name)


def _warn_if_changed(path: Path) -> None:
    summary_path = path.parent / "summary.json"
    if not summary_path.is_file():
        return
    try:
        recorded = (read_json(summary_path).get("files") or {}).get(path.name)
    except (ValueError, AttributeError):
        logger.warning("%s: unreadable; cannot verify %s", summary_path, path.name)
        return
    if recorded is not None and recorded != sha256_file(path):
        logger.warning("%s: sha256 differs from the one recorded in %s (file changed after writing)",
                       path, summary_path)
