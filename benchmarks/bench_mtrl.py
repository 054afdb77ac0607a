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
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._report import (add_demo_run_options, kao_chapter3, machine_info,  # noqa: E402
                                seed_stats, write_report)

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_N = 185_751  # Kao et al.'s AVA images (Sec. IV-A); Table IV's runs train on ~165-185k


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_demo_run_options(p, report=RESULTS / "demo_mtrl.json")
    p.add_argument("--weight", action="append", default=[], metavar="NAME=VALUE",
                   help="a loss.mtrl.weight to try (default: own-N, paper-N)")
    args = p.parse_args(argv)
    _S, data, settings = kao_chapter3(args)
    import torch

    from iaalib.studies import kao, runner
    from iaalib.studies.paper import paper_table

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
               "acc": seed_stats([r.metrics["acc"] for r in rs]),
               "srcc_p_high": seed_stats([r.metrics["srcc_p_high"] for r in rs]),
               "semantic_ap": seed_stats([r.metrics["semantic_ap"] for r in rs])}
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
            row.update(omega_min_eig_over_mean=seed_stats(ratio), fig9_pearson=seed_stats(agree),
                       fig9_sign_agreement=seed_stats(signs))
        report["variants"][name] = row
        print(f"{name:22} acc {row['acc']['mean']:.3f}  srcc {row['srcc_p_high']['mean']:.3f}  "
              f"AP {row['semantic_ap']['mean']:.3f}"
              + (f"  Fig. 9 r {row['fig9_pearson']['mean']:+.2f}" if "fig9_pearson" in row else ""))
    report["machine"] = machine_info()
    write_report(Path(args.report), report)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
