"""The `iaa` command: help is complete and label-only commands stay free of torch."""
from __future__ import annotations

import subprocess
import sys

from iaalib.cli import build_parser


def test_every_subcommand_has_help_and_a_handler():
    p = build_parser()
    actions = [a for a in p._actions if a.__class__.__name__ == "_SubParsersAction"]
    seen = []

    def walk(parser, prefix):
        subs = [a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction"]
        if not subs:
            assert parser.get_default("handler") is not None, prefix
            assert parser.format_help().strip()
            seen.append(prefix)
            return
        for name, child in subs[0].choices.items():
            walk(child, prefix + [name])

    walk(p, [])
    assert actions and {tuple(s) for s in seen} >= {
        ("data", "filter"), ("data", "synth"), ("data", "synth-tid"),
        ("train",), ("eval",), ("score",), ("book",),
    }


def test_import_iaalib_and_cli_do_not_import_torch():
    code = ("import sys, iaalib, iaalib.cli, iaalib.data; iaalib.cli.build_parser(); "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_unknown_command_fails_nonzero():
    r = subprocess.run([sys.executable, "-m", "iaalib.cli", "nonsense"], capture_output=True, text=True)
    assert r.returncode != 0


def test_synth_names_the_worker_cap_instead_of_a_wrong_count(tmp_path, capsys):
    """100 images with 2 workers asked: generation uses 1 process (at most one per 250 images),
    and the log says why rather than "1 workers"."""
    from iaalib.cli import main

    assert main(["data", "synth", "--out", str(tmp_path / "s"), "--n", "100", "--short-edge", "32",
                 "--workers", "2"]) == 0
    out = capsys.readouterr().out
    assert "(1 worker of 2 asked: at most one per 250 images)" in out
    assert "1 workers" not in out
