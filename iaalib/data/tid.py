"""TID2013 (Ponomarenko et al., "Image database TID2013", 2015): the distortion list and a reader.

The SAF paper's cross-dataset test (Table 5) scores TID2013's distorted images with a model trained
on AVA and correlates the predicted mean with the MOS. :func:`read_tid` reads the real TID2013 and
SynthTID (``iaalib.synth.tid``, which writes the same layout) alike::

    ROOT/mos_with_names.txt   "MOS name" per line      ROOT/distorted_images/i01_01_1.bmp ...
    ROOT/mos_std.txt          one SD per line          ROOT/reference_images/I01.BMP ...

File and folder names are matched case-insensitively, as TID2013's own files mix ``I01.BMP`` and
``i25.bmp``.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .._io import sha256_file
from ..errors import DataFormatError

#: TID2013's 24 distortion types (Ponomarenko et al., "Image database TID2013", 2015).
TID_DISTORTIONS: dict[int, str] = {
    1: "Additive Gaussian noise", 2: "Additive noise in color components", 3: "Spatially correlated noise",
    4: "Masked noise", 5: "High frequency noise", 6: "Impulse noise", 7: "Quantization noise",
    8: "Gaussian blur", 9: "Image denoising", 10: "JPEG compression", 11: "JPEG2000 compression",
    12: "JPEG transmission errors", 13: "JPEG2000 transmission errors",
    14: "Non eccentricity pattern noise", 15: "Local block-wise distortions of different intensity",
    16: "Mean shift (intensity shift)", 17: "Contrast change", 18: "Change of color saturation",
    19: "Multiplicative Gaussian noise", 20: "Comfort noise", 21: "Lossy compression of noisy images",
    22: "Image color quantization with dither", 23: "Chromatic aberrations",
    24: "Sparse sampling and reconstruction",
}


_NAME = re.compile(r"^i(\d{2})_(\d{2})_(\d)\.bmp$", re.IGNORECASE)


def _case_insensitive(directory: Path) -> dict[str, Path]:
    if not directory.is_dir():
        return {}
    return {p.name.lower(): p for p in directory.iterdir() if p.is_file()}


def read_tid(root: str | os.PathLike, *, require_images: bool = True) -> pd.DataFrame:
    """Read TID2013 or SynthTID from ``root`` (``mos_with_names.txt`` + image folders).

    Columns: ``name, path, mos, ref, distortion, level, distortion_name, mos_std, ref_path``; one row
    per line of ``mos_with_names.txt``, in file order. File and folder names are matched
    case-insensitively. Raises :class:`DataFormatError` with ``file:line`` for a malformed line, a
    MOS outside 0–9, a name not of the form ``iRR_TT_L.bmp``, or (``require_images=True``) a missing
    distorted image. ``df.attrs``: ``path``, ``sha256``.
    """
    root = Path(root).expanduser()
    entries = _case_insensitive(root)
    dirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir()} if root.is_dir() else {}
    mos_path = entries.get("mos_with_names.txt")
    if mos_path is None:
        raise DataFormatError(root, None, "no mos_with_names.txt here (not a TID2013-format directory)")
    dist_files = _case_insensitive(dirs.get("distorted_images", root / "distorted_images"))
    ref_files = _case_insensitive(dirs.get("reference_images", root / "reference_images"))
    rows = []
    with open(mos_path, encoding="utf-8-sig", errors="replace") as fh:
        for line_no, line in enumerate(fh, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2:
                raise DataFormatError(mos_path, line_no, f"expected 'MOS name', got {line.strip()!r}")
            try:
                mos = float(parts[0])
            except ValueError:
                raise DataFormatError(mos_path, line_no, f"MOS {parts[0]!r} is not a number") from None
            if not np.isfinite(mos) or not 0.0 <= mos <= 9.0:
                raise DataFormatError(mos_path, line_no, f"MOS {mos} outside TID2013's range 0–9")
            m = _NAME.match(parts[1])
            if m is None:
                raise DataFormatError(mos_path, line_no, f"image name {parts[1]!r} is not iRR_TT_L.bmp")
            ref, dist, level = (int(g) for g in m.groups())
            path = dist_files.get(parts[1].lower())
            if path is None and require_images:
                raise DataFormatError(mos_path, line_no, f"distorted image {parts[1]} not found in "
                                      f"{root / 'distorted_images'}")
            ref_path = ref_files.get(f"i{ref:02d}.bmp")
            rows.append({"name": parts[1], "path": str(path) if path else None, "mos": mos, "ref": ref,
                         "distortion": dist, "level": level,
                         "distortion_name": TID_DISTORTIONS.get(dist, f"type {dist}"),
                         "ref_path": str(ref_path) if ref_path else None, "line": line_no})
    if not rows:
        raise DataFormatError(mos_path, None, "no entries")
    df = pd.DataFrame(rows)
    std_path = entries.get("mos_std.txt")
    df["mos_std"] = np.nan
    if std_path is not None:
        values = Path(std_path).read_text(encoding="utf-8-sig", errors="replace").split()
        if len(values) != len(df):
            raise DataFormatError(std_path, None, f"{len(values)} values for {len(df)} images in {mos_path.name}")
        try:
            df["mos_std"] = np.array(values, dtype=np.float64)
        except ValueError as e:
            raise DataFormatError(std_path, None, f"non-numeric value ({e})") from None
    df = df.drop(columns="line")[["name", "path", "mos", "ref", "distortion", "level", "distortion_name",
                                  "mos_std", "ref_path"]]
    df.attrs.update(path=str(mos_path), sha256=sha256_file(mos_path))
    return df

