"""iaalib.studies.saf: the SAF grids build the intended configs, shared runs share one config hash,
runs train once and reproduce, result tables have the agreed layout, and the t-SNE / Grad-CAM /
cross-dataset helpers agree with independent computations (scipy, sklearn, hand-made examples)."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image
from scipy import stats

from engine_helpers import make_tiny_dataset
from iaalib.errors import IaaError
from iaalib import viz
from iaalib.models.factory import build_model
from iaalib.studies import results, runner, saf


# ----------------------------------------------------------------------------- fixtures
@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A private IAA_HOME for the module (runs are shared between the tests below)."""
    root = tmp_path_factory.mktemp("saf-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IAA_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def data(home):
    return make_tiny_dataset(home / "tiny", n=48)


#: base_config arguments of a SAF that trains in seconds
TINY = dict(epochs=1, batch_size=8, short_edge=64, width_mult=0.0625, group_size=2, weights=None,
            lr=0.01, alpha=0.01, beta=0.1, num_threads=1, device="cpu")


@pytest.fixture(scope="module")
def base(data):
    return saf.base_config(train=data["train"], test=data["test"], image_dir=data["images"],
                           **TINY)


def again_kwargs(base) -> dict:
    """The fixture's base_config arguments, for rebuilding it (as another notebook does)."""
    return {"train": base.data.train, "test": base.data.test, "image_dir": base.data.image_dir,
            **TINY}


@pytest.fixture(scope="module")
def trained(base):
    """Full, w/o Act, vanilla AE (= w/o Act & Split) and NIMA, trained once for the module."""
    t3 = saf.table3_configs(base)
    configs = {"full": t3["full"], "w/o Act": t3["w/o Act"],
               "vanilla AE": saf.vanilla_autoencoder_config(base),
               "NIMA": saf.nima_config(base, dropout=0.0)}
    return runner.run_grid(configs, echo=None)


# ----------------------------------------------------------------------------- configs
def test_base_config_is_the_full_saf_model(base, data):
    assert base.model.family == "saf" and base.data.transform == "saf"
    assert (base.model.split_regressor, base.model.fusion, base.model.decoder) == (True, "gap", True)
    assert (base.model.group_size, base.model.width_mult, base.model.weights) == (2, 0.0625, None)
    assert (base.loss.alpha, base.loss.beta, base.loss.activation) == (0.01, 0.1, "l1")
    assert base.data.short_edge == 64 and base.data.train == str(data["train"])
    # the paper's defaults: VGG16 with ImageNet weights, short edge 256, SGD with momentum 0.9
    paper_cfg = saf.base_config(train=data["train"], test=data["test"], image_dir=data["images"])
    assert (paper_cfg.data.short_edge, paper_cfg.model.width_mult, paper_cfg.model.weights) == \
        (256, 1.0, "imagenet")
    assert paper_cfg.to_dict()["optim"]["name"] == "sgd"
    assert paper_cfg.to_dict()["optim"]["momentum"] == 0.9


def test_ablation_rows_switch_exactly_their_parts(base):
    t3 = saf.table3_configs(base)
    assert list(t3) == ["full", "w/o Split", "w/o Act", "w/o Act & Split"]
    switches = {k: (c.model.split_regressor, c.loss.beta) for k, c in t3.items()}
    assert switches == {"full": (True, 0.1), "w/o Split": (False, 0.1), "w/o Act": (True, 0.0),
                        "w/o Act & Split": (False, 0.0)}
    for c in t3.values():  # everything else is the base config
        d, b = c.to_dict(), base.to_dict()
        for section in ("data", "optim"):
            assert d[section] == b[section]
        assert (c.model.group_size, c.loss.alpha, c.loss.activation, c.seed) == (2, 0.01, "l1", 0)
    t4 = saf.table4_configs(base)
    assert {k: c.loss.activation for k, c in t4.items()} == {"L1": "l1", "KL": "kl", "JS": "js"}
    assert {k: c.model.group_size for k, c in saf.bottleneck_configs(base, [1, 4]).items()} == \
        {"P=1": 1, "P=4": 4}
    with pytest.raises(IaaError, match="unknown SAF ablation"):
        saf.saf_config(base, ablation="w/o Decoder")
    with pytest.raises(IaaError, match="activation must be one of"):
        saf.saf_config(base, activation="l2")


def test_runs_shared_between_chapters_have_one_hash(base):
    h = lambda c: c.config_hash()  # noqa: E731
    full = h(saf.table3_configs(base)["full"])
    assert full == h(saf.table2_configs(base)["SAF"]) == h(saf.table4_configs(base)["L1"]) \
        == h(saf.bottleneck_configs(base, [1, 2, 4])["P=2"]) \
        == h(saf.seed_configs(base, [0])["seed=0"]) \
        == h(base)  # the base config is the full model
    assert h(saf.vanilla_autoencoder_config(base)) == h(saf.table3_configs(base)["w/o Act & Split"])
    t2 = saf.table2_configs(base)
    assert list(t2) == ["SAF", "NIMA", "SAF w/o Split", "SAF w/o Act"]
    assert h(t2["SAF w/o Split"]) == h(saf.table3_configs(base)["w/o Split"])
    assert h(t2["SAF w/o Act"]) == h(saf.table3_configs(base)["w/o Act"])
    assert h(saf.nima_config(base, dropout=0.0)) == \
        h(saf.table2_configs(base, nima_dropout=0.0)["NIMA"])
    grid = {**saf.table3_configs(base), **saf.table4_configs(base),
            **saf.bottleneck_configs(base, [1, 2, 4]), **saf.seed_configs(base, [0, 1])}
    # 4 ablations + KL + JS + P=1 + P=4 + seed 1 (full = L1 = P=2 = seed 0)
    assert len({h(c) for c in grid.values()}) == 9
    # a rebuilt base (e.g. in another notebook) hashes the same; names are presentation only
    again = saf.base_config(**again_kwargs(base))
    assert h(again) == full and h(again.with_overrides({"name": "other"})) == full
    assert h(saf.seed_configs(base, [1])["seed=1"]) != full
    # bf16 on a CPU is the base's, so every run of the chapters (NIMA too) trains with it
    amp = saf.base_config(**{**again_kwargs(base), "cpu_amp": True})
    assert amp.cpu_amp and h(amp) != full
    assert all(c.cpu_amp for c in [*saf.table2_configs(amp).values(), *saf.table4_configs(amp).values()])
    assert h(saf.vanilla_autoencoder_config(base, separate_run=True)) != full


def test_nima_shares_encoder_width_data_and_schedule(base):
    nima = saf.nima_config(base, dropout=0.5)
    assert (nima.model.family, nima.model.backbone, nima.model.dropout) == ("nima", "vgg16", 0.5)
    assert (nima.model.width_mult, nima.model.weights) == (base.model.width_mult, base.model.weights)
    assert nima.to_dict()["data"] == base.to_dict()["data"]
    assert nima.to_dict()["optim"] == base.to_dict()["optim"]
    assert (nima.epochs, nima.batch_size, nima.seed) == (base.epochs, base.batch_size, base.seed)
    assert (nima.loss.alpha, nima.loss.beta) == (0.0, 0.0)


# ----------------------------------------------------------------------------- data for the book
def test_book_config_reads_the_standard_split_of_a_profile(home, data):
    folder = home / "data" / "manifests" / "p" / "standard"
    folder.mkdir(parents=True)
    for name in ("train", "test"):
        (folder / f"{name}.csv").write_bytes(Path(data[name]).read_bytes())
    cfg = saf.book_config("p", data["images"], train_subset=6, epochs=1, width_mult=0.0625)
    assert Path(cfg.data.test) == folder / "test.csv"
    assert Path(cfg.data.train).parent == folder / "subsets" and len(pd.read_csv(cfg.data.train)) == 6
    with pytest.raises(IaaError, match="run notebook 01"):
        saf.book_config("missing-profile", data["images"])


def test_profile_settings_reach_every_saf_and_nima_config(home, data):
    """profile_config reads the profile's saf_* settings: saf_ema_epochs (0 in every shipped
    profile, so their hashes are unchanged) reaches SAF and NIMA alike."""
    from iaalib import profiles
    folder = home / "data" / "manifests" / "smoke" / "standard"
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train", "test"):
        (folder / f"{name}.csv").write_bytes(Path(data[name]).read_bytes())
    plain = saf.profile_config(profiles.chapter_settings("smoke", "05_saf_model"), data["images"])
    averaged = saf.profile_config(profiles.chapter_settings(
        "smoke", "05_saf_model", '{"saf_ema_epochs": 1}'), data["images"])
    assert (plain.optim.ema_epochs, averaged.optim.ema_epochs) == (0.0, 1.0)
    assert saf.nima_config(averaged).optim.ema_epochs == 1.0
    assert plain.config_hash() == plain.with_overrides({"optim.ema_epochs": 0.0}).config_hash()
    assert averaged.config_hash() != plain.config_hash()
    assert averaged.with_overrides({"optim.ema_epochs": 0.0}).config_hash() == plain.config_hash()


# ----------------------------------------------------------------------------- training a grid
def test_run_configs_trains_each_hash_once_and_reuses(base, trained, monkeypatch):
    assert {r.status for r in trained.values()} == {"finished"}
    assert len({r.dir for r in trained.values()}) == 4
    from iaalib.engine import trainer as T

    def no_training(self):
        raise AssertionError("a finished run was trained again")

    monkeypatch.setattr(T.Trainer, "fit", no_training)
    lines = []
    again = runner.run_grid({"a": base, "b": saf.table4_configs(base)["L1"]}, echo=lines.append)
    assert again["a"].dir == again["b"].dir == trained["full"].dir
    assert len(lines) == 1 and lines[0].startswith(base.name) and " reused " in lines[0]


def test_vanilla_autoencoder_trains_exactly_like_w_o_act_and_split(trained, base):
    """The Choice behind sharing the run: GAP has no parameters, so with beta = 0 a model computing
    it trains exactly as one without a fusing module."""
    literal = runner.run_grid({"v": saf.vanilla_autoencoder_config(base, separate_run=True)},
                              echo=None)["v"]
    assert literal.dir != trained["vanilla AE"].dir
    a, b = literal.predictions, trained["vanilla AE"].predictions
    cols = [f"p{i}" for i in range(1, 11)]
    pd.testing.assert_frame_equal(a[cols], b[cols])
    assert literal.metrics["srcc_mean"] == trained["vanilla AE"].metrics["srcc_mean"]


@pytest.mark.slow
def test_parallel_workers_give_the_same_runs_as_one_process(base, tmp_path, monkeypatch):
    configs = {"KL": saf.saf_config(base, activation="kl"), "JS": saf.saf_config(base, activation="js")}
    monkeypatch.setenv("IAA_HOME", str(tmp_path / "parallel"))
    lines = []
    parallel = runner.run_grid(configs, workers=2, echo=lines.append)
    assert sum(" trained in " in line for line in lines) == 2
    monkeypatch.setenv("IAA_HOME", str(tmp_path / "serial"))
    serial = runner.run_grid(configs, workers=1, echo=None)
    for k in configs:
        assert parallel[k].dir != serial[k].dir
        pd.testing.assert_frame_equal(parallel[k].predictions, serial[k].predictions)


def test_a_run_that_cannot_train_is_a_clear_error(base, tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    broken = base.with_overrides({"data.image_dir": str(tmp_path / "no-images")})
    with pytest.raises(IaaError, match="every training image was skipped"):
        runner.run_grid({"x": broken}, echo=None)


# ----------------------------------------------------------------------------- result tables
def test_metrics_table_layout_and_provenance(trained, home):
    runs = {"SAF": trained["full"], "NIMA": trained["NIMA"]}
    table = runner.metric_table(runs, saf.METRICS)
    assert list(table.index) == ["SAF", "NIMA"] and tuple(table.columns) == saf.METRICS
    for label, run in runs.items():
        m = run.metrics
        assert table.at[label, "acc"] == pytest.approx(100 * m["acc"])
        assert table.at[label, "srcc_mean"] == pytest.approx(m["srcc_mean"])
        pred = run.predictions  # recompute from predictions.csv with scipy
        assert table.at[label, "srcc_mean"] == pytest.approx(
            stats.spearmanr(pred["mean"], pred["gt_mean"])[0])
        assert table.at[label, "plcc_sd"] == pytest.approx(stats.pearsonr(pred["sd"], pred["gt_sd"])[0])
    csv = results.save_result_table(table, "saf_table2", "unit",
                                    runner.run_dirs({**runs, "again": trained["full"]}),
                                    root=home / "results")
    back, prov = results.load_result_table("saf_table2", "unit", root=home / "results")
    pd.testing.assert_frame_equal(back, table)
    assert csv.name == "saf_table2.csv"
    assert [p["run_dir"] for p in prov["runs"]] == [str(trained["full"].dir), str(trained["NIMA"].dir)]


def test_figures(trained):
    table = pd.DataFrame({"srcc_mean": [0.1, 0.3, 0.2], "plcc_mean": [0.1, 0.2, 0.3]},
                         index=["P=8", "P=2", "P=4"])
    errors = pd.DataFrame({"srcc_mean": [0.05, 0.01, 0.02]}, index=["P=8", "P=2", "P=4"])
    fig = viz.bottleneck_figure(table, errors=errors)
    (ax,) = fig.axes
    assert [list(line.get_xdata()) for line in ax.get_lines()[:1]] == [[2, 4, 8]]
    assert list(ax.get_lines()[0].get_ydata()) == [0.3, 0.2, 0.1]
    pred = trained["full"].predictions
    fig = viz.distribution_figure([np.zeros((8, 12, 3))] * 2,
                                  pred[[f"gt_p{i}" for i in range(1, 11)]][:2],
                                  {"m": pred[[f"p{i}" for i in range(1, 11)]][:2]})
    assert len(fig.axes) == 4 and len(fig.axes[2].patches) == 20  # 10 bins x (ground truth, m)


# ----------------------------------------------------------------------------- model helpers
def test_forward_shapes_and_loss_terms(base, data):
    from iaalib.engine.loaders import build_dataset

    model = build_model(base.model)
    sample = build_dataset(base, data["test"], train=False)[0]
    shapes = saf.forward_shapes(model, sample["image"])
    h, w = sample["image"].shape[1:]
    assert shapes.at["input image", "shape"] == (1, 3, h, w)
    b = shapes.at["bottleneck F (1×1 conv to M·P maps, ReLU)", "shape"]
    # stride 16: the encoder drops VGG16's fifth max-pool
    assert b[:2] == (1, 10 * base.model.group_size) and (b[2], b[3]) == (h // 16, w // 16)
    assert shapes.at["spatial pyramid pooling", "shape"] == (1, 10 * base.model.group_size, 21)
    assert shapes.at["decoder → reconstruction", "shape"] == (1, 3, h, w)
    assert shapes.at["group average pooling (M values)", "shape"] == (1, 10)
    assert shapes["parameters"].sum() == sum(p.numel() for p in model.parameters())
    terms = saf.loss_terms(model, sample, base)
    assert terms["total"] == pytest.approx(terms["emd"] + base.loss.alpha * terms["recon"]
                                           + base.loss.beta * terms["act"], rel=1e-5)


def test_untrained_predictions_are_the_trainers_initial_network(base, tmp_path, monkeypatch):
    """With lr = 0 training never changes the weights the logits depend on, so the run's test
    predictions must equal the untrained model's."""
    monkeypatch.setenv("IAA_HOME", str(tmp_path))
    frozen = base.with_overrides({"optim.lr": 0.0, "optim.weight_decay": 0.0})
    run = runner.run_grid({"frozen": frozen}, echo=None)["frozen"]
    untrained = saf.untrained_predictions(frozen)
    cols = [f"p{i}" for i in range(1, 11)]
    np.testing.assert_allclose(untrained[cols].to_numpy(), run.predictions[cols].to_numpy(),
                               rtol=1e-5, atol=1e-7)
    other = saf.untrained_predictions(frozen.with_overrides({"seed": 1}))
    assert not np.allclose(other[cols].to_numpy(), untrained[cols].to_numpy())


# ----------------------------------------------------------------------------- t-SNE
def test_tsne_panels_embed_the_same_images(trained):
    preds = {"a": trained["full"].predictions, "b": trained["w/o Act"].predictions.iloc[::-1]}
    panels = saf.tsne_panels(preds, n_points=10, seed=0, perplexity=3)
    assert list(panels) == ["ground truth", "a", "b"]
    values = {k: v for k, (_, v) in panels.items()}
    np.testing.assert_array_equal(values["a"], values["b"])
    ids = np.sort(np.random.default_rng(0).choice(sorted(preds["a"].image_id), 10, replace=False))
    np.testing.assert_allclose(values["a"], preds["a"].set_index("image_id").loc[ids, "gt_mean"])
    assert all(p.shape == (10, 2) for p, _ in panels.values())


def test_neighbour_agreement_ordered_vs_random():
    x = np.linspace(0, 1, 400)
    line = np.c_[x, np.zeros_like(x)]
    assert saf.neighbour_agreement(line, x) > 0.95
    rng = np.random.default_rng(0)
    assert abs(saf.neighbour_agreement(rng.normal(size=(400, 2)), rng.normal(size=400))) < 0.15
    # hand example: 4 points, k = 1 -> each point's nearest neighbour's value
    pts = np.array([[0.0, 0], [1, 0], [10, 0], [12, 0]])
    vals = np.array([1.0, 2.0, 3.0, 4.0])  # neighbours' values: 2, 1, 4, 3
    assert saf.neighbour_agreement(pts, vals, k=1) == \
        pytest.approx(stats.spearmanr(vals, [2, 1, 4, 3])[0])


# ----------------------------------------------------------------------------- Grad-CAM helpers
def test_cam_concentration_by_hand():
    flat = np.ones((10, 10))
    spike = np.zeros((10, 10))
    spike[3, 4] = 1.0
    assert saf.cam_concentration([flat], top=0.2) == pytest.approx(0.2)
    assert saf.cam_concentration([spike], top=0.2) == pytest.approx(1.0)
    assert saf.cam_concentration([flat, spike], top=0.2) == pytest.approx(0.6)
    # an all-zero map has no share: left out of the mean, NaN when every map is zero
    zero = np.zeros_like(flat)
    assert saf.cam_concentration([flat, zero, spike], top=0.2) == pytest.approx(0.6)
    assert np.isnan(saf.cam_concentration([zero, zero], top=0.2))


def test_gradcam_examples_one_map_per_image_and_model(trained, data):
    ids = pd.read_csv(data["test"]).image_id.tolist()[:3]
    runs = {"vanilla AE": trained["vanilla AE"], "full": trained["full"]}
    images, maps, scores = saf.gradcam_examples(runs, ids)
    assert len(images) == 3 and set(maps) == {"vanilla AE", "full"}
    for label in maps:
        assert [m.shape for m in maps[label]] == [im.shape[:2] for im in images]
        assert all(m.min() >= 0 and m.max() <= 1 for m in maps[label])
    pred = trained["full"].predictions.set_index("image_id")
    np.testing.assert_allclose(scores["full"], pred.loc[ids, "mean"], rtol=1e-5)
    np.testing.assert_allclose(scores["ground truth"], pred.loc[ids, "gt_mean"], rtol=1e-6)
    with pytest.raises(IaaError, match=r"image ids \[1\] are not in"):
        saf.gradcam_examples(runs, [1])


# ----------------------------------------------------------------------------- Table 5
def _tiny_tid(root: Path, refs: int = 2) -> Path:
    """A TID2013-format folder: 2 references x 2 distortion types x 5 levels, MOS falling with
    the level (brightness and noise damage), images of 64x80 px."""
    rng = np.random.default_rng(0)
    (root / "distorted_images").mkdir(parents=True)
    (root / "reference_images").mkdir()
    lines = []
    for r in range(1, refs + 1):
        ref = np.clip(rng.normal(0.6, 0.1, (64, 80, 3)) * 255, 0, 255).astype(np.uint8)
        Image.fromarray(ref).save(root / "reference_images" / f"I{r:02d}.BMP")
        for t in (1, 16):
            for level in range(1, 6):
                img = ref.astype(float)
                if t == 1:
                    img = img + rng.normal(0, 12 * level, img.shape)
                else:
                    img = img * (1 - 0.15 * level)
                name = f"i{r:02d}_{t:02d}_{level}.bmp"
                Image.fromarray(np.clip(img, 0, 255).astype(np.uint8)).save(
                    root / "distorted_images" / name)
                lines.append(f"{6.5 - level + 0.1 * r:.4f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


def test_cross_dataset_against_scipy(trained, tmp_path):
    from iaalib.data.tid import read_tid
    from iaalib.engine.evaluate import evaluate_tid

    tid_root = _tiny_tid(tmp_path / "tid")
    runs = {"SAF": trained["full"], "NIMA": trained["NIMA"]}
    frames = {label: saf.tid_predictions(run, tid_root, device="cpu") for label, run in runs.items()}
    table, per, by_level = saf.cross_dataset(frames, tid_root)
    assert set(frames["SAF"]) >= {"image_id", "mean", "gt_mean", "distortion", "level"}
    np.testing.assert_array_equal(frames["SAF"]["gt_mean"], frames["SAF"]["mos"])
    assert list(table.index) == ["SAF", "NIMA"]
    assert list(table.columns) == ["srcc_mean", "plcc_mean", "n_images"]
    tid = read_tid(tid_root)
    assert list(per.index) == ["#1 Additive Gaussian noise", "#16 Mean shift (intensity shift)"]
    for label, run in runs.items():
        pred = evaluate_tid(run.dir, tid_root, device="cpu", return_predictions=True)["predictions"]
        mos = tid["mos"].to_numpy()[pred["index"]]
        assert table.at[label, "srcc_mean"] == pytest.approx(stats.spearmanr(pred["mean"], mos)[0])
        assert table.at[label, "plcc_mean"] == pytest.approx(stats.pearsonr(pred["mean"], mos)[0])
        assert table.at[label, "n_images"] == 20
        for code, name in [(1, "#1 Additive Gaussian noise"), (16, "#16 Mean shift (intensity shift)")]:
            rows = tid["distortion"].to_numpy()[pred["index"]] == code
            assert per.at[name, (label, "srcc_mean")] == pytest.approx(
                stats.spearmanr(pred["mean"][rows], mos[rows])[0])
        levels = tid["level"].to_numpy()[pred["index"]]
        np.testing.assert_allclose(by_level[label],
                                   [pred["mean"][levels == k].mean() for k in range(1, 6)])
    np.testing.assert_allclose(by_level["MOS"], [tid.mos[tid.level == k].mean() for k in range(1, 6)])
    fig = viz.per_distortion_figure(per)
    assert len(fig.axes[0].patches) == 4  # 2 types x 2 models


def test_batch_norm_encoder_is_shared_by_saf_and_nima(base):
    """The demo's batch-norm encoder: SAF builds vgg16_bn, and NIMA gets the same encoder."""
    bn = base.with_overrides({"model.options": {"batch_norm": True}})
    nima = saf.nima_config(bn, dropout=0.0)
    assert nima.model.backbone == "vgg16_bn" and nima.model.options == {}
    assert saf.nima_config(base, dropout=0.0).model.backbone == "vgg16"
    n_bn = lambda cfg: sum(type(m).__name__ == "BatchNorm2d"  # noqa: E731
                           for m in build_model(cfg.model).modules())
    assert n_bn(bn) >= 13 and n_bn(nima) == 13
    assert bn.config_hash() != base.config_hash()
