"""Exceptions iaalib raises on bad input. The CLI prints them as one clear line and exits non-zero."""
from __future__ import annotations

import os


class IaaError(Exception):
    """Base class: an error the user can act on (bad file, missing weights, diverged run...)."""


class DataFormatError(IaaError, ValueError):
    """A label/manifest file is malformed. The message names the file and (1-based) line."""

    def __init__(self, path: str | os.PathLike | None, line: int | None, message: str):
        self.path = os.fspath(path) if path is not None else None
        self.line = line
        self.reason = message
        where = self.path or "<input>"
        if line is not None:
            where = f"{where}:{line}"
        super().__init__(f"{where}: {message}")


class ChecksumMismatchError(IaaError):
    """A label file's sha256 differs from the one its data_manifests/ recipe expects."""


class BadImageError(IaaError):
    """An image cannot be used; ``reason`` is a short machine-readable tag (e.g. 'truncated')."""

    def __init__(self, path: str | os.PathLike, reason: str, detail: str = ""):
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))


class WeightsUnavailableError(IaaError):
    """Pretrained weights are requested but cannot be obtained offline."""


class CheckpointError(IaaError):
    """A checkpoint file is missing, corrupt, or not written by iaalib."""


class TrainingDivergedError(IaaError):
    """A loss term became NaN/Inf; the message names the step and the term, ``where`` holds them
    (``{"step", "epoch", "batch", "term"}``) for the run record."""

    def __init__(self, message: str, *, where: dict | None = None):
        super().__init__(message)
        self.where = dict(where or {})

    def __reduce__(self):  # picklable across worker processes
        return (_diverged, (str(self), self.where))


def _diverged(message: str, where: dict) -> "TrainingDivergedError":
    return TrainingDivergedError(message, where=where)
