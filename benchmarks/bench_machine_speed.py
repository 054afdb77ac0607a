"""How steady this machine's speed is: the speed probe in many fresh interpreters, back to back.

    python benchmarks/bench_machine_speed.py [--processes 12] [--out FILE]

``bench_book`` records ``bench_cpu_kernels.speed_probe`` (the frozen stem's ms per image, batches
of 16, two threads, best of three passes) before and after each build. This benchmark runs that
probe in ``--processes`` fresh interpreters one after the other, with nothing else running, and
reports every reading, their spread and the time each was taken. A spread of tens of percent
between back-to-back processes means a build's wall time on this machine carries the same noise,
whatever the code. Writes ``benchmarks/results/machine_speed.json``.
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._report import machine_info, write_report  # noqa: E402
from benchmarks.bench_book import speed_probe  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--processes", type=int, default=12)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "machine_speed.json"))
    args = p.parse_args(argv)
    t0 = time.time()
    readings = []
    for _ in range(args.processes):
        ms = speed_probe()
        readings.append({"seconds_from_start": round(time.time() - t0, 1), "ms_per_image": ms})
        print(f"{readings[-1]['seconds_from_start']:7.1f} s: {ms} ms per image", flush=True)
    values = [r["ms_per_image"] for r in readings if r["ms_per_image"] is not None]
    report = {"benchmark": "machine_speed", "machine": machine_info(), "readings": readings,
              "min": min(values), "median": statistics.median(values), "max": max(values),
              "max_over_min": round(max(values) / min(values), 3)}
    print(f"min {report['min']}, median {report['median']}, max {report['max']} ms per image "
          f"(max / min {report['max_over_min']})")
    write_report(args.out, report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
