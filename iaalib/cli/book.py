"""``iaa book``: execute the notebooks with papermill and build the Jupyter Book."""
from __future__ import annotations

import argparse
from pathlib import Path

from ..book.pipeline import run_book
from ..profiles import parse_overrides


def book_command(args: argparse.Namespace) -> int:
    """``iaa book [--profile P] [--only NB ...] [-p NAME VALUE ...] [--out DIR] [--no-html]
    [--jobs N] [--browser-check]``."""
    record = run_book(args.profile, only=args.only, out=args.out, html=not args.no_html,
                      overrides=parse_overrides(args.parameter or []), jobs=args.jobs)
    for e in record["notebooks"]:
        how = "executed" if e["executed_this_run"] else "reused"
        secs = f"{e['seconds']:.1f} s" if e.get("seconds") is not None else "-"
        print(f"  {e['name']:<28} {e['status']:<7} {how:<8} {secs}")
    print(f"total {record['total_seconds']:.1f} s (notebooks {record['notebook_seconds']:.1f} s "
          f"summed over {record.get('jobs', 1)} at a time, "
          f"data {record['data_seconds']:.1f} s, html {record.get('html_seconds', 0):.1f} s); "
          f"record: {Path(record['out']) / 'book-run.json'}")
    if record.get("html"):
        print(f"book: {record['html']}")
    if getattr(args, "browser_check", False):
        return _browser_check(Path(record["out"]))
    return 0


def _browser_check(out: Path) -> int:
    from ..book.browser import check_build  # selenium: only for this check

    reports = check_build(out)
    bad = [r for r in reports if r.problems]
    for r in reports:
        print(f"  {r.page:<44} {'ok' if not r.problems else '; '.join(r.problems)}")
    print(f"browser check: {len(reports) - len(bad)} of {len(reports)} pages ok; screenshots in "
          f"{out / 'screenshots'}")
    return 1 if bad else 0
