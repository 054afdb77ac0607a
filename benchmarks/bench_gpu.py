"""Images per second of every network family of the ava profile on a GPU: training and scoring.

    python benchmarks/bench_gpu.py [--steps 20] [--families mtcnn1 saf ...] [--batch N]
                                   [--out benchmarks/results/gpu.json] [--allow-cpu]

For the first time a GPU is lent: each family's ava network (the ava profile's widths, batch
sizes and input sizes: Kao's 227 crops, SAF/NIMA at short edge 256 of a 720 x 509 photo) trains
``steps`` SGD steps on random tensors already on the device, with the engine's bf16 autocast and
channels-last, then scores the same batches in inference mode. Reports images/s and peak memory.
The input pipeline is not part of it (see benchmarks/bench_decode.py): compare its images/s with
these to see whether decoding keeps up. Without CUDA it says so and exits 0; ``--allow-cpu`` runs
it on the CPU anyway (one step, a check of the script itself).
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
AVA_PHOTO = (720, 509)


def ava_networks() -> dict[str, dict]:
    """{family: model config, input shape, batch size} from the ava profile's settings."""
    from iaalib import profiles
    from iaalib.engine.config import ModelConfig

    ava = profiles.load_profile("ava")
    c = ava.common
    kao = dict(width_mult=c["kao_width_mult"], fc_dim=c["kao_fc_dim"], dropout=c["kao_dropout"],
               options={"batch_norm": True} if c["kao_batch_norm"] else {})
    crop, edge = int(c["kao_crop"]), int(c["saf_short_edge"])
    saf_shape = (3, edge, round(edge * AVA_PHOTO[0] / AVA_PHOTO[1]))
    nets = {f: {"model": ModelConfig(family=f, **kao), "shape": (3, crop, crop),
                "batch": int(c["kao_batch_size"])}
            for f in ("mtcnn1", "mtcnn2", "mtcnn3", "mtcnn_enhanced")}
    for backbone in ava.sections["03_kao_mtrl"]["finetune_backbones"]:
        nets[f"finetune_{backbone}"] = {
            "model": ModelConfig(family="mtcnn_finetune", backbone=backbone,
                                 fc_dim=ava.sections["03_kao_mtrl"]["kao_finetune_fc_dim"]),
            "shape": (3, crop, crop), "batch": int(c["kao_batch_size"])}
    nets["saf"] = {"model": ModelConfig(family="saf", group_size=int(c["saf_group_size"])),
                   "shape": saf_shape, "batch": int(c["saf_batch_size"])}
    nets["nima"] = {"model": ModelConfig(family="nima", backbone="vgg16",
                                         dropout=c["saf_nima_dropout"]),
                    "shape": saf_shape, "batch": int(c["saf_batch_size"])}
    return nets


def _loss(outputs) -> "torch.Tensor":
    """A scalar that reaches every output (the families' own losses cost no more)."""
    values = outputs.values() if isinstance(outputs, dict) else [outputs]
    return sum(v.float().mean() for v in values if v is not None and v.is_floating_point())


def measure(net: dict, device, *, steps: int, batch: int | None, amp: bool) -> dict:
    import torch

    from iaalib.engine.device import peak_memory, reset_peak_memory
    from iaalib.models.factory import build_model

    b = batch or net["batch"]
    model = build_model(net["model"], num_tags=29).to(device)
    if amp:
        model = model.to(memory_format=torch.channels_last)
    opt = torch.optim.SGD(model.parameters(), lr=1e-3, momentum=0.9)
    x = torch.randn(b, *net["shape"], device=device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)
    reset_peak_memory(device)

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    def train_step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
            loss = _loss(model(x))
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    model.train()
    train_step()                                   # warm-up (cuDNN autotuning, allocations)
    sync()
    t0 = time.perf_counter()
    for _ in range(steps):
        train_step()
    sync()
    train_s = time.perf_counter() - t0
    model.eval()
    with torch.inference_mode(), torch.autocast(device.type, dtype=torch.bfloat16, enabled=amp):
        model(x)
        sync()
        t0 = time.perf_counter()
        for _ in range(steps):
            model(x)
        sync()
    score_s = time.perf_counter() - t0
    peak = peak_memory(device)
    return {"batch": b, "input": list(net["shape"]), "steps": steps,
            "train_images_per_s": round(steps * b / train_s, 1),
            "score_images_per_s": round(steps * b / score_s, 1),
            "peak_memory_mib": peak["mib"], "peak_memory_kind": peak["kind"]}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--families", nargs="+", help="default: every family of the ava profile")
    p.add_argument("--batch", type=int, help="override every family's batch size")
    p.add_argument("--allow-cpu", action="store_true", help="run on the CPU (checks the script)")
    p.add_argument("--out", default=str(RESULTS / "gpu.json"))
    args = p.parse_args(argv)

    import torch

    if not torch.cuda.is_available() and not args.allow_cpu:
        print("bench_gpu: this benchmark needs a CUDA GPU (torch.cuda.is_available() is False); "
              "nothing measured. Run it on a GPU machine, or with --allow-cpu to check the script.")
        return 0
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    amp = device.type == "cuda"
    nets = ava_networks()
    chosen = args.families or list(nets)
    unknown = sorted(set(chosen) - set(nets))
    if unknown:
        p.error(f"unknown families {unknown}; known: {', '.join(nets)}")
    results = {}
    for name in chosen:
        results[name] = measure(nets[name], device, steps=args.steps, batch=args.batch, amp=amp)
        r = results[name]
        print(f"{name:24s} batch {r['batch']:3d} {tuple(r['input'])}: train "
              f"{r['train_images_per_s']:8.1f} img/s, score {r['score_images_per_s']:8.1f} img/s"
              + (f", peak {r['peak_memory_mib']:,.0f} MiB" if r["peak_memory_mib"] else ""))
    device_name = torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"
    write_report(args.out, {"benchmark": "gpu", "device": device_name, "amp_bf16": amp,
                            "families": results, "machine": machine_info()})
    return 0


if __name__ == "__main__":
    sys.exit(main())
