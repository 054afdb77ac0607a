"""Does the activation cache depend on the threads that build it, and what does one thread cost?

    python -m benchmarks.bench_cache_threads IMAGE_DIR [IMAGE_DIR ...] [--threads 1 2]
                                             [--workers 1] [--note TEXT] [--report FILE]

Builds the demo stem's activation cache (``efficientnet_lite0:16`` at 112², the demo's
``stem``/``stem_size``) of each image folder once per thread count
(:data:`iaalib.data.activations.STEM_THREADS` set for the build, each into a fresh cache
folder) and per worker count (the process's torch threads, which the build splits the images
over: ``_forward_all``'s ``workers``), and reports the build's seconds and the largest
difference between the settings' activations. Writes ``benchmarks/results/cache_threads.json``
by default. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402
from iaalib.data import activations as A  # noqa: E402
from iaalib.engine.loaders import FrozenStem, stem_identity  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
SPEC, SIZE = "efficientnet_lite0:16", 112


def build(image_dir: str, threads: int, workers: int = 1) -> tuple[torch.Tensor, float]:
    default, A.STEM_THREADS = A.STEM_THREADS, threads
    process_threads = torch.get_num_threads()
    torch.set_num_threads(workers)
    A._LOADED.clear()
    try:
        with tempfile.TemporaryDirectory() as root:
            t0 = time.perf_counter()
            acts = A.load_activations(image_dir, stem=lambda: FrozenStem(SPEC),
                                      stem_id=stem_identity(SPEC), size=SIZE, cache_root=root)
            return acts.values, time.perf_counter() - t0
    finally:
        A.STEM_THREADS = default
        torch.set_num_threads(process_threads)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("image_dirs", nargs="+")
    p.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    p.add_argument("--workers", type=int, nargs="+", default=[1],
                   help="process threads during the build (the images are split over them)")
    p.add_argument("--note", default="")
    p.add_argument("--report", default=str(RESULTS / "cache_threads.json"))
    args = p.parse_args(argv)
    rows = []
    for d in args.image_dirs:
        built = {(f"{t}" if args.workers == [1] else f"{t} thread(s), {w} worker(s)"):
                 build(d, t, w) for t in args.threads for w in args.workers}
        first = next(iter(built.values()))[0]
        row = {"image_dir": d, "images": int(first.shape[1]),
               "seconds": {str(t): round(s, 2) for t, (_, s) in built.items()},
               "max_abs_difference_to_first": {
                   str(t): float((v - first).abs().max()) for t, (v, _) in built.items()},
               "identical_to_first": {str(t): bool(torch.equal(v, first))
                                      for t, (v, _) in built.items()}}
        rows.append(row)
        print(row)
    write_report(args.report, {"benchmark": "cache_threads", "stem": SPEC, "size": SIZE,
                               "threads": args.threads, "workers": args.workers,
                               "folders": rows, "note": args.note,
                               "machine": machine_info()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
