"""How strong should the MTRLCNN's prior tr(W Ω⁻¹ Wᵀ) be at demo scale? Kao Table III's trunk MTRLCNN.

    python -m benchmarks.bench_mtrl [--profile demo] [--home DIR] [--seeds 0 1 2]
                                    [--weight NAME=VALUE ...] [--report FILE]

Eq. 11 adds tr(W Ω⁻¹ Wᵀ) once to data terms summed over the N training images, i.e. with weight
1/N next to batch-mean losses. The paper's N is ~185,000 AVA images; the demo's is ~2,600, so
1/N of the demo's own N makes the prior ~70 times stronger relative to the data than in the paper.
Trains the chapter's trunk MTRLCNN #1 (``studies.kao.trunk_config(mtrl=True)``, λ = 1/M, δ = 0)
with each ``loss.mtrl.weight`` (``own-N`` = 1/N of the training set, the engine's default) next to
MTCNN #1 without the prior, every seed, two runs at a time. Reports per variant: test accuracy,
SRCC of p(high), semantic AP, the smallest eigenvalue of the last Ω relative to its mean, and the
agreement (Pearson r, sign agreement) of the learned low-aesthetic correlations with the paper's
Fig. 9 column, which is SynthAVA's ground truth. Needs the profile's data (``iaa book --only 01``
under the same IAA_HOME). Writes ``benchmarks/results/demo_mtrl.json``. Numbers, not assertions.
"""
from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import machine_info, write_report  # noqa: E402

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_N = 185_751  # Kao et al.'s AVA images (Sec. IV-A); Table IV's runs train on ~165-185k


def _stats(values) -> dict:
    a = np.asarray(values, float)
    return {"mean": round(float(a.mean()), 4),
            "sd": round(float(a.std(ddof=1)), 4) if a.size > 1 else None,
            "values": [round(float(v), 4) for v in a]}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--profile", default="demo")
    p.add_argument("--home", help="IAA_HOME with the profile's data (default: the current one)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--weight", action="append", default=[], metavar="NAME=VALUE",
                   help="a loss.mtrl.weight to try (default: own-N, paper-N)")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--report", default=str(RESULTS / "demo_mtrl.json"))
    args = p.parse_args(argv)
    if args.home:
        os.environ["IAA_HOME"] = str(Path(args.home).resolve())
    import torch

    from iaalib import datasets, profiles
    from iaalib.studies import kao, runner
    from iaalib.studies.paper import paper_table

    S = profiles.chapter_settings(args.profile, "03_kao_mtrl", {})
    dataset = datasets.profile_dataset(S)
    data = kao.kao_data(S.profile, dataset.image_dir, deltas=[0])
    settings = kao.KaoSettings.from_settings(S)
    weights = ({k: float(v) for k, v in (w.split("=", 1) for w in args.weight)} if args.weight
               else {"own-N": None, "paper-N": 1.0 / PAPER_N})
    mtrl = kao.trunk_config(settings, data, lam="1/M", mtrl=True)
    configs = {"MTCNN #1": kao.trunk_config(settings, data, lam="1/M")}
    for name, w in weights.items():
        cfg = mtrl if w is None else mtrl.with_overrides({"loss.mtrl.weight": w})
        configs[f"MTRLCNN {name}"] = cfg.with_overrides(
            {"name": mtrl.name.rsplit("-s", 1)[0] + ("" if w is None else f"-w{w:.3g}")})
    runs = runner.run_grid(runner.with_seeds(configs, args.seeds), workers=args.workers)
    paper_low = paper_table("kao", "fig9")["low aesthetic"]
    report = {"benchmark": "demo_mtrl", "profile": args.profile, "seeds": args.seeds,
              "n_train": int(data.train_rows[0.0]), "paper_n": PAPER_N, "variants": {}}
    for name, cfg in configs.items():
        rs = [runs[(name, s)] for s in args.seeds]
        row = {"mtrl_weight": cfg.loss.mtrl.weight if cfg.loss.mtrl.enabled else 0.0,
               "acc": _stats([r.metrics["acc"] for r in rs]),
               "srcc_p_high": _stats([r.metrics["srcc_p_high"] for r in rs]),
               "semantic_ap": _stats([r.metrics["semantic_ap"] for r in rs])}
        if cfg.loss.mtrl.enabled:
            ratio, agree, signs = [], [], []
            for r in rs:
                omega = torch.as_tensor(r.omega()[-1], dtype=torch.float64)
                ev = torch.linalg.eigvalsh(omega)
                ratio.append(float(ev.min() / ev.mean()))
                fig9 = kao.fig9_table(kao.task_correlations(r, data))
                cmp = kao.compare_correlations(fig9["low aesthetic"], paper_low)
                agree.append(cmp["pearson"])
                signs.append(cmp["sign_agreement"])
            row.update(omega_min_eig_over_mean=_stats(ratio), fig9_pearson=_stats(agree),
                       fig9_sign_agreement=_stats(signs))
        report["variants"][name] = row
        print(f"{name:22} acc {row['acc']['mean']:.3f}  srcc {row['srcc_p_high']['mean']:.3f}  "
              f"AP {row['semantic_ap']['mean']:.3f}"
              + (f"  Fig. 9 r {row['fig9_pearson']['mean']:+.2f}" if "fig9_pearson" in row else ""))
    report["machine"] = machine_info()
    write_report(Path(args.report), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
