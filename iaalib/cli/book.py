"""``iaa book``: execute the notebooks with papermill and build the Jupyter Book."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..book.pipeline import run_book
from ..profiles import parse_overrides


def book_command(args: argparse.Namespace) -> int:
    """``iaa book [--profile P] [--only NB ...] [-p NAME VALUE ...] [--out DIR] [--no-html]``."""
    record = run_book(args.profile, only=args.only, out=args.out, html=not args.no_html,
                      overrides=parse_overrides(args.parameter or []))
    for e in record["notebooks"]:
        how = "executed" if e["executed_this_run"] else "reused"
        secs = f"{e['seconds']:.1f} s" if e.get("seconds") is not None else "-"
        print(f"  {e['name']:<28} {e['status']:<7} {how:<8} {secs}")
    print(f"total {record['total_seconds']:.1f} s (notebooks {record['notebook_seconds']:.1f} s, "
          f"data {record['data_seconds']:.1f} s, html {record.get('html_seconds', 0):.1f} s); "
          f"record: {Path(record['out']) / 'book-run.json'}")
    if record.get("html"):
        print(f"book: {record['html']}")
    return 0
