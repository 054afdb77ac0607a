"""AVA label files: ``AVA.txt``, ``tags.txt``, ``challenges.txt`` and ``*.jpgl`` id lists.

``AVA.txt`` (Murray et al., AVA, CVPR 2012; used by Kao et al. Sec. IV-A and the SAF paper's
"Dataset" section) has one image per line and 15 integer fields::

    index image_id c1 c2 ... c10 tag1 tag2 challenge_id

``c_k`` is the number of votes for score ``k`` (1..10); tag id 0 means "no tag". Per image we derive
the vote count ``n = Σ c_k``, the normalised distribution ``p_k = c_k / n``, the mean score
``Σ k·p_k`` and the score SD ``sqrt(Σ (k - mean)² p_k)`` (SAF paper, "Metrics").

Parsing is vectorised: the pandas C parser reads the whole file, cheap checks decide whether anything
is wrong, and only then a line-by-line pass finds the exact file:line of every problem.
No torch here.
"""
from __future__ import annotations

import hashlib
import io
import logging
import os
import re
from collections import Counter

import numpy as np
import pandas as pd

from ..errors import DataFormatError

logger = logging.getLogger(__name__)

N_BINS = 10
VOTE_COLUMNS = [f"vote_{k}" for k in range(1, N_BINS + 1)]
AVA_COLUMNS = ["index", "image_id", *VOTE_COLUMNS, "tag1", "tag2", "challenge_id"]
SCORES = np.arange(1, N_BINS + 1, dtype=np.int64)

_N_FIELDS = len(AVA_COLUMNS)  # 15
# Bytes a well-formed AVA.txt may contain; anything else sends the file to the exact (slow) path.
# "." matters: the C parser would silently read "6.0" as the integer 6.
_ALLOWED_BYTES = b"0123456789 \t\r\n+-"
_INT_TOKEN = re.compile(r"[+-]?[0-9]+")
_INT_TOKEN_BYTES = re.compile(rb"[+-]?[0-9]+")
_LIMIT = 10**18  # fields must satisfy |value| < 10**18 (fits int64 with room; AVA values are tiny)
_GOOD_LINE = re.compile(rb"[ \t]*(?:[+-]?0*[0-9]{1,18}[ \t]+){14}[+-]?0*[0-9]{1,18}[ \t\r]*")


def score_stats(votes: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distribution, mean and SD of 10-bin vote counts (SAF paper, "Metrics").

    ``votes`` is ``[N, 10]`` non-negative counts (or weights: rows need not be integers). Returns ``dist [N,10]`` (rows sum to 1),
    ``mean [N] = Σ k·p_k`` and ``sd [N] = sqrt(Σ (k - mean)² p_k)`` (population SD of the votes).
    The mean is computed as ``(Σ k·c_k) / n`` — one correctly rounded division — so a mean of exactly
    5 or 6 compares exactly against the δ thresholds of Kao et al.
    """
    votes = np.asarray(votes)
    if votes.ndim != 2 or votes.shape[1] != N_BINS:
        raise ValueError(f"votes must have shape [N, {N_BINS}], got {votes.shape}")
    # integer counts stay exact; float input (e.g. a normalised distribution) is used as given
    votes = votes.astype(np.int64 if np.issubdtype(votes.dtype, np.integer) else np.float64, copy=False)
    if (votes < 0).any():
        raise ValueError("vote counts must be non-negative")
    n = votes.sum(axis=1)
    if (n == 0).any():
        raise ValueError(f"{int((n == 0).sum())} row(s) have no votes")
    mean = (votes @ SCORES) / n
    dist = votes / n[:, None]
    sd = np.sqrt(((SCORES[None, :] - mean[:, None]) ** 2 * votes).sum(axis=1) / n)
    return dist, mean, sd


def read_ava_txt(path: str | os.PathLike, on_bad: str = "raise") -> pd.DataFrame:
    """Parse ``AVA.txt`` into one row per image, in file order.

    Columns: ``index, image_id, vote_1..vote_10, tag1, tag2, challenge_id`` (int64) and
    ``n_votes`` (int64), ``mean``, ``sd`` (float64). ``df.attrs``: ``path``, ``sha256`` (of the file's
    bytes), ``n_lines`` (non-blank lines read, dropped ones included), ``n_dropped``, ``dropped``
    (list of ``(line, reason)``, 1-based line numbers) and ``n_blank_lines``.

    A line is malformed when it does not have 15 fields, a field is not an integer (or not below
    10**18 in magnitude), a field is negative, all ten vote counts are zero, or its image id already appeared on an
    earlier line. ``on_bad="raise"`` raises :class:`DataFormatError` naming ``file:line`` of the first
    one; ``on_bad="drop"`` drops every malformed line (for duplicates: the later occurrences), counts
    them and logs a warning summary.

    Lines may end with a trailing space or ``\\r\\n``; blank lines at the end are ignored.
    **Choice:** blank lines in the middle carry no data, so they are skipped too (counted in
    ``attrs["n_blank_lines"]`` with a logged warning) rather than treated as malformed; line numbers
    in messages stay those of the file.
    """
    if on_bad not in ("raise", "drop"):
        raise ValueError(f"on_bad must be 'raise' or 'drop', got {on_bad!r}")
    path = os.fspath(path)
    with open(path, "rb") as fh:
        data = fh.read()
    sha = hashlib.sha256(data).hexdigest()

    table = _parse_fast(data)
    if table is not None:
        n_lines, dropped, kinds, n_blank = len(table), [], Counter(), 0
    else:
        table, n_lines, dropped, kinds, n_blank = _parse_exact(data, path, on_bad)
    if dropped:
        first_line, first_reason = dropped[0]
        logger.warning("%s: dropped %d malformed line(s) of %d (%s); first: line %d: %s", path,
                       len(dropped), n_lines, ", ".join(f"{k}: {v}" for k, v in kinds.items()),
                       first_line, first_reason)
    if n_blank:
        logger.warning("%s: skipped %d blank line(s) inside the file", path, n_blank)

    df = pd.DataFrame(table, columns=AVA_COLUMNS)
    _, mean, sd = score_stats(table[:, 2:12])
    df["n_votes"] = table[:, 2:12].sum(axis=1)
    df["mean"] = mean
    df["sd"] = sd
    df.attrs.update(path=path, sha256=sha, n_lines=int(n_lines), n_dropped=len(dropped),
                    dropped=dropped, n_blank_lines=int(n_blank))
    return df


def _parse_fast(data: bytes) -> np.ndarray | None:
    """The whole file as an int64 ``[N, 15]`` array, or None if anything may be wrong."""
    body = data.rstrip()
    if not body:
        return np.zeros((0, _N_FIELDS), dtype=np.int64)
    if body.translate(None, _ALLOWED_BYTES):
        return None
    try:
        frame = pd.read_csv(io.BytesIO(body), sep=r"\s+", header=None, names=range(_N_FIELDS),
                            dtype=np.int64, engine="c", skip_blank_lines=True)
    except (ValueError, OverflowError, pd.errors.ParserError):
        return None
    table = frame.to_numpy(dtype=np.int64)
    if len(table) != body.count(b"\n") + 1:  # blank or CR-only lines: let the exact path decide
        return None
    if ((np.abs(table) >= _LIMIT).any() or _row_problems(table).any()
            or pd.Index(table[:, 1]).has_duplicates):
        return None
    return table


def _row_problems(table: np.ndarray) -> np.ndarray:
    """Boolean mask of rows with a negative field or all-zero votes."""
    return (table < 0).any(axis=1) | (table[:, 2:12].sum(axis=1) == 0)


def _line_problem(tokens: list[bytes]) -> tuple[str, str]:
    """(kind, message) for a line that failed the well-formed-line pattern."""
    if len(tokens) != _N_FIELDS:
        return "field count", f"expected {_N_FIELDS} integer fields, found {len(tokens)}"
    for k, tok in enumerate(tokens):
        text = tok.decode("utf-8", errors="replace")
        if not _INT_TOKEN_BYTES.fullmatch(tok):
            return "non-integer", f"field {k + 1} ({AVA_COLUMNS[k]}) is not an integer: {text[:20]!r}"
        if abs(int(tok)) >= _LIMIT:
            return "out of range", f"field {k + 1} ({AVA_COLUMNS[k]}) is out of range: {text[:20]!r}"
    return "separator", "fields must be separated by spaces or tabs"


def _parse_exact(data: bytes, path: str, on_bad: str):
    """Exact validation with file line numbers; used only when the fast path saw a problem.

    Lines matching the well-formed pattern are parsed together by the C parser; only the others are
    diagnosed one by one, so even a large file with a few bad lines is read in about a second.
    """
    lines = data.split(b"\n")
    while lines and not lines[-1].strip():
        lines.pop()
    good_lines, good_numbers, problems = [], [], []  # problems: (line, kind, message)
    n_lines = n_blank = 0
    for i, line in enumerate(lines, start=1):
        if _GOOD_LINE.fullmatch(line):
            good_lines.append(line)
            good_numbers.append(i)
            n_lines += 1
        elif not line.strip():
            n_blank += 1
        else:
            n_lines += 1
            problems.append((i, *_line_problem(line.split())))
    if good_lines:
        table = pd.read_csv(io.BytesIO(b"\n".join(good_lines)), sep=r"\s+", header=None,
                            names=range(_N_FIELDS), dtype=np.int64, engine="c").to_numpy()
    else:
        table = np.zeros((0, _N_FIELDS), dtype=np.int64)
    numbers = np.array(good_numbers, dtype=np.int64)

    bad = np.zeros(len(table), dtype=bool)
    for r in np.flatnonzero(_row_problems(table)):
        row = table[r]
        negative = np.flatnonzero(row < 0)
        if len(negative):
            k = int(negative[0])
            problems.append((int(numbers[r]), "negative", f"negative {AVA_COLUMNS[k]}: {row[k]}"))
        else:
            problems.append((int(numbers[r]), "no votes", "all vote counts are zero"))
        bad[r] = True
    valid = np.flatnonzero(~bad)  # a malformed line does not "claim" its image id
    repeated = pd.Index(table[valid, 1]).duplicated(keep="first")
    if repeated.any():
        first_line = dict(zip(table[valid[~repeated], 1].tolist(), numbers[valid[~repeated]].tolist()))
        for r in valid[repeated]:
            image_id = int(table[r, 1])
            problems.append((int(numbers[r]), "duplicate id",
                             f"duplicate image id {image_id} (first on line {first_line[image_id]})"))
            bad[r] = True

    problems.sort()
    if problems and on_bad == "raise":
        line, _, message = problems[0]
        raise DataFormatError(path, line, message)
    dropped = [(line, message) for line, _, message in problems]
    kinds = Counter(kind for _, kind, _ in problems)
    return table[~bad], n_lines, dropped, kinds, n_blank


def _read_text_lines(path: str | os.PathLike):
    """(1-based line number, stripped text) for every non-blank line."""
    with open(path, encoding="utf-8") as fh:
        for i, line in enumerate(fh, start=1):
            text = line.strip()
            if text:
                yield i, text


def _read_id_name_file(path: str | os.PathLike, what: str) -> dict[int, str]:
    out: dict[int, str] = {}
    for i, text in _read_text_lines(path):
        parts = text.split(maxsplit=1)
        if len(parts) != 2 or not _INT_TOKEN.fullmatch(parts[0]):
            raise DataFormatError(path, i, f"expected '<{what} id> <name>', got {text[:60]!r}")
        key = int(parts[0])
        if key in out:
            raise DataFormatError(path, i, f"duplicate {what} id {key}")
        out[key] = parts[1]
    return out


def read_tags(path: str | os.PathLike) -> dict[int, str]:
    """``tags.txt``: ``<tag id> <name>`` per line (names may contain spaces). Id 0 in AVA.txt = no tag."""
    return _read_id_name_file(path, "tag")


def read_challenges(path: str | os.PathLike) -> dict[int, str]:
    """``challenges.txt``: ``<challenge id> <name>`` per line."""
    return _read_id_name_file(path, "challenge")


def read_id_list(path: str | os.PathLike) -> np.ndarray:
    """An ``*.jpgl`` image list (e.g. the official ``generic_test.jpgl``): one integer id per line.

    Blank lines are ignored; a non-integer or a repeated id raises :class:`DataFormatError`.
    """
    ids: list[int] = []
    first_seen: dict[int, int] = {}
    for i, text in _read_text_lines(path):
        if not _INT_TOKEN.fullmatch(text):
            raise DataFormatError(path, i, f"expected one integer image id, got {text[:60]!r}")
        v = int(text)
        if v in first_seen:
            raise DataFormatError(path, i, f"duplicate image id {v} (first on line {first_seen[v]})")
        first_seen[v] = i
        ids.append(v)
    return np.array(ids, dtype=np.int64)
