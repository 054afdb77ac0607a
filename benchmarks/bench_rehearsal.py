"""The rehearsal book, timed, and the ava profile's GPU time estimated from its runs.

    python benchmarks/bench_rehearsal.py [--home DIR] [--gpu-tflops 989] [--utilisation 0.4]
                                         [--out benchmarks/results/ava_estimate.json]

Without ``--home`` it builds `iaa book --profile rehearsal --no-html` in a fresh IAA_HOME, with
torchvision's ImageNet checkpoint files replaced by random weights of the same networks (no
network here; the "imagenet" loading path still runs). With ``--home`` it reads the runs of an
earlier rehearsal build.

For every run of the rehearsal (the ava profile's grid, one seed, two optimiser steps each) it
records the family, the measured CPU time per training image, the forward FLOPs per image
(PyTorch's FLOP counter on the run's own model and input size) and the peak memory. The ava
profile trains the same runs once per seed, on AVA's sizes (``AVA_SIZES``, from the recipes and
the papers), so its FLOPs are: seeds × runs × (3 × epochs × n_train + test passes × n_test) ×
FLOPs per image. The GPU time divides that by ``gpu_tflops`` × ``utilisation``. Assumptions are
written into the report. Not a test: numbers, not assertions.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
#: The torchvision networks whose ImageNet weights the ava profile loads (Kao FT, SAF and NIMA).
IMAGENET_NETWORKS = ("alexnet", "vgg16", "resnet50")
#: Training and test images per manifest on the real AVA (data_manifests/*.yaml and the papers):
#: Kao Sec. IV-A (165,751 training images at δ = 0, 38,994 at δ = 1, 20,000 test); the standard
#: split (255,530 lines, 20,000 listed test ids); Photo.net (17,232 images, 3,000 for testing).
AVA_SIZES = {"kao-delta0": (165_751, 20_000), "kao-delta1": (38_994, 20_000),
             "standard": (235_530, 20_000), "target": (14_232, 3_000)}
#: H100 SXM dense bf16 peak (TFLOP/s), and the share of it a well-fed training loop reaches.
GPU_TFLOPS, UTILISATION = 989.0, 0.4


def random_imagenet_checkpoints(torch_home: Path) -> list[Path]:
    """torchvision's ImageNet checkpoint files in ``torch_home``'s hub cache: same file names and
    keys, random values."""
    import torch
    from torchvision import models as tvm

    from iaalib.models.backbones import imagenet_checkpoint_path

    paths = []
    for name in IMAGENET_NETWORKS:
        path = torch_home / "hub" / "checkpoints" / imagenet_checkpoint_path(name).name
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(getattr(tvm, name)().state_dict(), path)
        paths.append(path)
    return paths


#: The rehearsal's AVA-format dataset: SynthAVA at AVA's sizes (median photo 720 x 509), with 3 of
#: its 240 JPEGs (1.25%) truncated or missing, as a real image folder can be.
N_IMAGES, SHORT_EDGE = 240, 509
DAMAGED = {"truncated": (50, 150), "missing": (100,)}


def _iaa(*args: str, env: dict) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "iaalib.cli", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True)


def build_rehearsal(tmp: Path) -> dict:
    """The rehearsal book as a user with AVA runs the ava profile: `iaa book --profile rehearsal`
    pointed at an AVA.txt, tags.txt, an image folder with damaged JPEGs (``DAMAGED``) and a
    TID2013-format folder, with random weights under torchvision's ImageNet checkpoint names.
    Returns ``{"seconds", "exit_code", "stderr", "record"}`` (``record``: book-run.json)."""
    random_imagenet_checkpoints(tmp / "torch")
    env = {**os.environ, "IAA_HOME": str(tmp / "home"), "TORCH_HOME": str(tmp / "torch"),
           "MPLBACKEND": "Agg"}
    ava, tid = tmp / "AVA", tmp / "TID2013"
    for args in (("data", "synth", "--out", str(ava), "--n", str(N_IMAGES), "--short-edge",
                  str(SHORT_EDGE)),
                 ("data", "synth-tid", "--out", str(tid), "--synth-ava", str(ava), "--n-refs", "1")):
        r = _iaa(*args, env=env)
        if r.returncode:
            raise RuntimeError(f"iaa {' '.join(args)} failed:\n{r.stderr[-4000:]}")
    images = sorted((ava / "images").glob("*.jpg"))
    for k in DAMAGED["truncated"]:
        data = images[k].read_bytes()
        images[k].write_bytes(data[: len(data) // 3])
    for k in DAMAGED["missing"]:
        images[k].unlink()
    t0 = time.perf_counter()
    r = _iaa("book", "--profile", "rehearsal", "--out", str(tmp / "build"), "--no-html",
             "-p", "ava_txt", str(ava / "AVA.txt"), "-p", "tags_txt", str(ava / "tags.txt"),
             "-p", "image_dir", str(ava / "images"), "-p", "tid_root", str(tid), env=env)
    seconds = time.perf_counter() - t0
    record_file = tmp / "build" / "book-run.json"
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    return {"seconds": seconds, "exit_code": r.returncode, "stderr": r.stderr, "record": record}


def manifest_kind(train: str) -> str:
    """Which AVA_SIZES entry a training manifest stands for (from its folder name)."""
    parts = Path(train).parts
    for kind in ("kao-delta0", "kao-delta1", "standard"):
        if kind in parts:
            return kind
    return "target"


def family(cfg) -> str:
    m = cfg.model
    if m.family == "mtcnn_finetune":
        return f"mtcnn_finetune ({m.backbone})"
    return m.family


def run_rows(home: Path) -> list[dict]:
    """One row per rehearsal run: family, AVA sizes, FLOPs per image, CPU s per image, memory."""
    from iaalib.engine.config import ExperimentConfig
    from iaalib.engine.cost import forward_flops, input_shape, schedule_flops
    from iaalib.models.factory import build_model

    flops_of: dict[tuple, int] = {}
    rows = []
    for run_dir in sorted((home / "runs").iterdir()):
        record_file = run_dir / "run.json"
        if not record_file.is_file():
            continue
        record = json.loads(record_file.read_text())
        cfg = ExperimentConfig.load(run_dir / "config.yaml")
        shape = input_shape(cfg)
        key = (json.dumps(cfg.model.__dict__, sort_keys=True, default=str), shape)
        if key not in flops_of:  # random weights: the FLOPs do not depend on them
            model_cfg = dataclasses.replace(cfg.model, weights=None, init_from=None)
            tags = sum(c.startswith("tag_") for c in
                       Path(cfg.data.train).read_text().split("\n", 1)[0].split(","))
            flops_of[key] = forward_flops(build_model(model_cfg, num_tags=tags), shape)
        history = [json.loads(line) for line in (run_dir / "history.jsonl").read_text().splitlines()
                   if line.strip()]
        seconds = sum(h["seconds"] for h in history)
        images = sum(h["n_images"] for h in history)
        kind = manifest_kind(cfg.data.train)
        n_train, n_test = AVA_SIZES[kind]
        rows.append({
            "run": record["name"], "family": family(cfg), "status": record["status"],
            "input": list(shape), "batch_size": cfg.batch_size, "steps": record.get("steps"),
            "cpu_s_per_image": seconds / images if images else None,
            "peak_memory_mib": (record.get("peak_memory") or {}).get("mib"),
            "forward_gflops_per_image": flops_of[key] / 1e9,
            "ava_manifest": kind, "ava_n_train": n_train, "ava_n_test": n_test,
            "ava_epochs": cfg.epochs,
            "ava_flops": schedule_flops(flops_of[key], epochs=cfg.epochs, n_train=n_train,
                                        n_test=n_test, monitor_test=True,
                                        monitor_every=cfg.monitor_every,
                                        has_val=bool(cfg.data.val)),
        })
    return rows


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--home", help="IAA_HOME of an earlier rehearsal build (default: build one)")
    p.add_argument("--gpu-tflops", type=float, default=GPU_TFLOPS)
    p.add_argument("--utilisation", type=float, default=UTILISATION)
    p.add_argument("--out", default=str(RESULTS / "ava_estimate.json"))
    args = p.parse_args(argv)

    from iaalib import profiles
    from iaalib.engine.cost import summarise_costs

    ava_seeds = len(profiles.load_profile("ava").common["seeds"])
    build: dict = {}
    record: dict = {}
    with tempfile.TemporaryDirectory() as tmp:
        home = Path(args.home) if args.home else Path(tmp) / "home"
        if not args.home:
            built = build_rehearsal(Path(tmp))
            record = built["record"]
            if built["exit_code"]:
                print(built["stderr"][-4000:], file=sys.stderr)
            build = {"seconds": round(built["seconds"], 1), "exit_code": built["exit_code"],
                     "notebooks": {nb["name"]: {"status": nb["status"],
                                                "seconds": nb.get("seconds")}
                                   for nb in record.get("notebooks", [])}}
        rows = run_rows(home)
    summary = summarise_costs(rows, seeds=ava_seeds, gpu_tflops=args.gpu_tflops,
                              utilisation=args.utilisation)
    report = {
        "benchmark": "rehearsal",
        "git_revision": record.get("revision") if build else None,
        "measured": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "rehearsal_build": build,
        "assumptions": {
            "gpu": f"{args.gpu_tflops:g} TFLOP/s dense bf16 peak (H100 SXM) at "
                   f"{args.utilisation:.0%} utilisation, one GPU, the input pipeline keeping up",
            "ava_seeds": ava_seeds,
            "ava_sizes": {k: {"n_train": a, "n_test": b} for k, (a, b) in AVA_SIZES.items()},
            "flops": "PyTorch's FlopCounterMode on one forward pass of each run's model at its "
                     "input size (SAF/NIMA: short edge 256 of a 720x509 photo); backward = 2 "
                     "forwards; a test pass after every epoch (monitor_test) and at the end",
            "cpu_time": "measured on this machine's CPU in the rehearsal (two optimiser steps "
                        "per run at the rehearsal's batch sizes, process wall time / images)",
            "memory": "peak memory of each run as run.json records it (CPU: the worker "
                      "process's max RSS, an upper bound)",
        },
        **summary,
        "runs": rows,
        "machine": machine_info(),
    }
    print(f"rehearsal: {len(rows)} runs"
          + (f", built in {build['seconds']:.0f} s (exit {build['exit_code']})" if build else ""))
    print(f"{'family':32s} {'runs':>4s} {'CPU s/img':>9s} {'GFLOP/img':>9s} {'peak MiB':>9s} "
          f"{'ava GPU h':>9s}")
    for name, f in summary["families"].items():
        print(f"{name:32s} {f['runs_per_seed']:4d} {f['cpu_s_per_training_image'] or 0:9.3f} "
              f"{f['forward_gflops_per_image']:9.1f} {f['peak_memory_mib_max'] or 0:9.0f} "
              f"{f['ava_gpu_hours']:9.2f}")
    print(f"ava profile: {summary['ava_flops_total']:.2e} FLOPs, about "
          f"{summary['ava_gpu_hours_total']:.1f} GPU hours ({report['assumptions']['gpu']})")
    write_report(args.out, report)
    return 0 if not build or build.get("exit_code") == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
