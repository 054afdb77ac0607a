"""Run the benchmark reports (speed and learnability targets are reported here, never asserted in tests).

    python -m benchmarks.run_all [--all]

Runs each script in a fresh interpreter, in order, and prints where its JSON report went
(``benchmarks/results/``). The quick ones by default; ``--all`` adds the slow ones (the
learnability check trains small CNNs for about half an hour; the whole demo book; paper-size model
steps). Numbers depend on what else the machine is doing: each report records the load average.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
QUICK = [
    ["bench_parse.py"],                      # issue 2: AVA.txt parse, protocols, manifests
    ["bench_decode.py"],                     # issue 2: DCT-scaled decode vs peer baseline (target ≥ 2×)
    ["bench_synth.py"],                      # issue 3: SynthAVA N=3000 @128 px (target < 60 s)
    ["bench_models.py", "--sizes", "demo"],  # issue 4: one training step per model
    ["bench_train.py"],                      # issue 5: engine training img/s per family
    ["bench_score.py"],                      # issue 5: iaa score vs peer loop
]
SLOW = [
    ["learnability.py"],                     # issue 3: SynthAVA is learnable; tags help
    ["bench_models.py", "--sizes", "paper"],
    ["bench_book.py", "--profile", "demo", "--fresh"],  # issue 6: whole demo book (target ≤ 600 s)
]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--all", action="store_true", help="also the slow reports")
    args = ap.parse_args(argv)
    failed = []
    for cmd in QUICK + (SLOW if args.all else []):
        t0 = time.perf_counter()
        print(f"== {' '.join(cmd)}", flush=True)
        r = subprocess.run([sys.executable, str(HERE / cmd[0]), *cmd[1:]])
        print(f"   {'ok' if r.returncode == 0 else 'FAILED'} in {time.perf_counter() - t0:.0f} s",
              flush=True)
        if r.returncode:
            failed.append(cmd[0])
    print(f"reports in {HERE / 'results'}" + (f"; failed: {failed}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
