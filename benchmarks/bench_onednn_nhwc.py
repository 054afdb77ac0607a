"""Which convolutions can train in the channels-last format on this CPU without corrupting memory?

    python -m benchmarks.bench_onednn_nhwc [--timeout 30] [--repeats 100] [--report FILE]

With PyTorch 2.14.1 on an AVX2 CPU without AVX-512, the backward pass of a 1×1 convolution of
stride 2 with few input channels, in channels-last tensors, makes the process abort ("double free
or corruption", "corrupted size vs. prev_size") or hang: oneDNN's kernel for its input gradient
writes outside its buffers. Each case here runs in its own interpreter (a batch of 8 at 20×16,
``--repeats`` forward and backward passes) and is recorded as ``ok``, ``crashed`` (the exit code)
or ``hung`` (still running after ``--timeout`` seconds). :func:`iaalib.engine.device.
use_channels_last` keeps such models contiguous on every CPU. Writes
``benchmarks/results/onednn_nhwc.json``. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
#: (input channels, output channels, kernel, stride, channels-last)
CASES = [(ic, 8, 1, 2, True) for ic in (1, 2, 3, 4, 5, 6, 7, 8)] + [
    (4, 16, 1, 2, True), (12, 24, 1, 2, True), (4, 8, 1, 1, True), (4, 8, 3, 2, True),
    (4, 8, 1, 2, False)]
_CASE = """
import sys, torch
ic, oc, k, s, cl, n = (int(a) for a in sys.argv[1:])
fmt = torch.channels_last if cl else torch.contiguous_format
torch.manual_seed(0)
for _ in range(n):
    x = torch.randn(8, ic, 20, 16).to(memory_format=fmt).requires_grad_()
    conv = torch.nn.Conv2d(ic, oc, k, stride=s, padding=k // 2, bias=False).to(memory_format=fmt)
    conv(x).sum().backward()
"""


def run_case(case: tuple, *, repeats: int, timeout: float) -> dict:
    """One case in a fresh interpreter: ``{"outcome": "ok" | "crashed" | "hung", ...}``."""
    ic, oc, k, s, cl = case
    args = [sys.executable, "-c", _CASE, *map(str, (ic, oc, k, s, int(cl), repeats))]
    row = {"in_channels": ic, "out_channels": oc, "kernel": k, "stride": s, "channels_last": cl}
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return row | {"outcome": "hung"}
    if done.returncode == 0:
        return row | {"outcome": "ok"}
    return row | {"outcome": "crashed", "exit_code": done.returncode,
                  "message": done.stderr.strip().splitlines()[-1:]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--timeout", type=float, default=30.0)
    p.add_argument("--repeats", type=int, default=100)
    p.add_argument("--report", default=str(RESULTS / "onednn_nhwc.json"))
    args = p.parse_args(argv)
    import torch

    rows = []
    for case in CASES:
        rows.append(run_case(case, repeats=args.repeats, timeout=args.timeout))
        print(rows[-1])
    write_report(args.report, {"benchmark": "onednn_nhwc", "repeats": args.repeats,
                               "timeout_seconds": args.timeout,
                               "cpu_capability": torch.backends.cpu.get_cpu_capability(),
                               "cases": rows, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
