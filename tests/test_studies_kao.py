"""iaalib.studies.kao: configs of Kao et al.'s tables, shared runs, result-table layouts, figures'
data, and the Table V target (a second SynthAVA through the id,score adapter)."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from iaalib.errors import DataFormatError, IaaError
from iaalib.studies import kao, runner
from iaalib.studies.paper import paper_next_to_ours, paper_table

from engine_helpers import TAG_IDS, make_tiny_dataset

TINY = kao.KaoSettings(epochs=1, batch_size=8, resize=72, crop=64, width_mult=0.125, fc_dim=32,
                       batch_norm=True, dropout=0.0, optimizer="adam", lr=1e-3, weight_decay=0.0,
                       device="cpu", num_threads=1, finetune_epochs=1, finetune_train_size=12,
                       finetune_fc_dim=16, early_stop_patience=1)
WHOLE = dataclasses.replace(TINY, finetune_train_size=0)   # fine-tuning on the whole training set


def _data29(tmp_path: Path) -> kao.KaoData:
    """A KaoData with the paper's 29 tags (configs only; nothing is read or trained)."""
    ids = [1, 2, 4, 5, 7, 8, 9, 10, 12, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 27, 28, 29,
           31, 35, 38, 39, 40, 50]
    names = paper_table("kao", "fig9").index[2:]
    return kao.KaoData(tmp_path / "images", {0.0: tmp_path / "d0" / "train.csv",
                                             1.0: tmp_path / "d1" / "train.csv"},
                       tmp_path / "d0" / "test.csv", tuple(f"tag_{i}" for i in ids), tuple(names))


@pytest.fixture()
def tiny_profile(tmp_path, monkeypatch):
    """Notebook 01's layout for profile 'unit': kao-delta0 / kao-delta1 manifests + summary.json."""
    monkeypatch.setenv("IAA_HOME", str(tmp_path / "home"))
    paths = make_tiny_dataset(tmp_path / "data", n=48, splits=(0.75, 0.0, 0.25))
    from iaalib import datasets
    train, test = pd.read_csv(paths["train"]), pd.read_csv(paths["test"])
    for delta, rows in ((0, train), (1, train[(train["mean"] > 6) | (train["mean"] < 4)])):
        out = datasets.manifest_dir("unit", f"kao-delta{delta}")
        out.mkdir(parents=True)
        rows.to_csv(out / "train.csv", index=False)
        test.to_csv(out / "test.csv", index=False)
        (out / "summary.json").write_text(json.dumps(
            {"kept_tags": list(TAG_IDS), "kept_tag_names": ["Abstract", "Nature", "Black and White"]}))
    return kao.kao_data("unit", paths["images"], deltas=(0, 1))


# ----------------------------------------------------------------------------- configs
def test_lambda_labels_are_table_one_columns():
    labels = [kao.lambda_label(lam) for lam in kao.LAMBDAS]
    assert labels == list(paper_table("kao", "table1").columns)
    assert kao.lambda_label(0.5) == "lambda=0.5" and kao.lambda_label("3/M") == "lambda=3/M"
    assert kao.lambda_label("1/2") == "lambda=0.5"


def test_grids_have_the_paper_layouts(tmp_path):
    data = _data29(tmp_path)
    t1 = kao.table1_configs(TINY, data)
    assert sorted({r for r, _ in t1}) == list(paper_table("kao", "table1").index)
    assert [c for r, c in t1 if r == "delta=0"] == list(paper_table("kao", "table1").columns)
    t2 = kao.table2_configs(TINY, data)
    assert [c for r, c in t2 if r == "delta=1"] == list(paper_table("kao", "table2").columns)
    t4 = kao.table4_configs(WHOLE, data, backbones=("alexnet", "vgg16", "resnet50"))
    assert {c for _, c in t4} <= set(paper_table("kao", "table4").columns)
    t3 = kao.table3_configs(WHOLE, data, backbones=("alexnet", "vgg16", "resnet50"))
    assert [c for r, c in t3 if r == "MTRLCNN"] == list(paper_table("kao", "table3").columns)
    assert {r for r, _ in t3} == set(paper_table("kao", "table3").index)
    target = kao.TargetData(tmp_path / "t.csv", tmp_path / "s.csv", tmp_path / "img")
    t5 = kao.table5_configs(TINY, target, stcnn_source=tmp_path / "a", mtcnn_source=tmp_path / "b")
    assert {c for _, c in t5} <= set(paper_table("kao", "table5").columns)
    # the Table V runs share one step schedule: the trunks' unless transfer_step_size is set
    assert {c.optim.step_size for c in t5.values()} == {TINY.step_size}
    own = dataclasses.replace(TINY, transfer_epochs=6, transfer_step_size=4)
    assert {(c.epochs, c.optim.step_size) for c in kao.table5_configs(
        own, target, stcnn_source=tmp_path / "a", mtcnn_source=tmp_path / "b").values()} == {(6, 4)}
    assert kao.KaoSettings.from_settings({"kao_transfer_step_size": 4}).transfer_step_size == 4


def test_configs_carry_what_each_run_varies(tmp_path):
    data = _data29(tmp_path)
    t1 = kao.table1_configs(dataclasses.replace(TINY, epochs=3), data)
    stcnn, mtcnn, early = t1[("delta=0", "lambda=0")], t1[("delta=1", "lambda=1/M")], \
        t1[("delta=0", "early stopping")]
    assert (stcnn.model.family, stcnn.loss.lam) == ("mtcnn1", 0)
    assert mtcnn.loss.lam == "1/M" and mtcnn.data.train == str(tmp_path / "d1" / "train.csv")
    assert mtcnn.data.test == str(tmp_path / "d0" / "test.csv")     # δ = 0 test set for every δ
    assert early.loss.semantic_early_stop.enabled and early.loss.lam == 1.0
    assert not stcnn.loss.semantic_early_stop.enabled and not stcnn.loss.mtrl.enabled
    assert (stcnn.data.resize, stcnn.data.crop, stcnn.model.width_mult, stcnn.model.fc_dim) == \
        (72, 64, 0.125, 32)
    assert stcnn.model.options == {"batch_norm": True} and stcnn.optim.name == "adam"
    t2 = kao.table2_configs(TINY, data)
    assert t2[("delta=0", "Enhanced MTCNN")].loss.lam == "2/M"
    assert t2[("delta=0", "MTCNN #3")].model.family == "mtcnn3"
    t3 = kao.table3_configs(WHOLE, data, backbones=("efficientnet_lite0",))
    ft = t3[("MTRLCNN", "EfficientNet-Lite0 FT")]
    assert ft.loss.mtrl.enabled and not t3[("MTCNN", "EfficientNet-Lite0 FT")].loss.mtrl.enabled
    assert (ft.model.family, ft.model.backbone, ft.model.weights, ft.model.width_mult) == \
        ("mtcnn_finetune", "efficientnet_lite0", "imagenet", 1.0)
    assert ft.epochs == WHOLE.finetune_epochs and ft.model.fc_dim == WHOLE.finetune_fc_dim
    # the fine-tuning budget of its own (None: the trunk's), the ImageNet blocks at lr x mult,
    # and the MTRL prior's weight (None: 1/N of the run's own training set, Eq. 11)
    assert (ft.batch_size, ft.optim.lr, ft.optim.pretrained_lr_mult) == \
        (WHOLE.batch_size, WHOLE.lr, 1.0) and ft.loss.mtrl.weight is None
    tuned = dataclasses.replace(WHOLE, finetune_batch_size=16, finetune_lr=0.003,
                                finetune_lr_mult=0.1, finetune_step_size=1,
                                mtrl_weight=1 / 185_751)
    t3t = kao.table3_configs(tuned, data, backbones=("efficientnet_lite0",))
    ftt, trunk = t3t[("MTRLCNN", "EfficientNet-Lite0 FT")], t3t[("MTRLCNN", "MTCNN #1")]
    assert (ftt.batch_size, ftt.optim.lr, ftt.optim.pretrained_lr_mult, ftt.optim.step_size) == \
        (16, 0.003, 0.1, 1)
    assert (trunk.batch_size, trunk.optim.lr, trunk.optim.pretrained_lr_mult,
            trunk.optim.step_size) == (WHOLE.batch_size, WHOLE.lr, 1.0, WHOLE.step_size)
    assert ftt.loss.mtrl.weight == trunk.loss.mtrl.weight == 1 / 185_751
    # bf16 on a CPU: the trunks follow cpu_amp, the fine-tuned backbones finetune_cpu_amp
    amp = kao.table3_configs(dataclasses.replace(tuned, cpu_amp=True), data,
                             backbones=("efficientnet_lite0",))
    assert amp[("MTRLCNN", "MTCNN #1")].cpu_amp and not amp[("MTRLCNN", "EfficientNet-Lite0 FT")].cpu_amp
    assert not trunk.cpu_amp
    assert kao.KaoSettings.from_settings({"cpu_amp": True, "kao_finetune_cpu_amp": True}).finetune_cpu_amp
    # frozen depthwise kernels: an option of the fine-tuned backbones only; the default adds none
    # (so the ava profile's configs, and their hashes, stay as they were)
    assert ft.model.options == {}
    frozen = kao.KaoSettings.from_settings({"kao_finetune_train_depthwise": False})
    t3f = kao.table3_configs(dataclasses.replace(WHOLE, finetune_train_depthwise=False), data,
                             backbones=("efficientnet_lite0",))
    assert not frozen.finetune_train_depthwise
    assert t3f[("MTRLCNN", "EfficientNet-Lite0 FT")].model.options == {"train_depthwise": False}
    assert t3f[("MTRLCNN", "MTCNN #1")].model.options == t3[("MTRLCNN", "MTCNN #1")].model.options
    with pytest.raises(ValueError, match="not fine-tuned"):
        kao.finetune_config(kao.KaoSettings(finetune_weights=None), data, backbone="alexnet")
    # the profile's kao_stem_shift reaches every Kao config's data.stem_shift (the trunks and the
    # fine-tuned nets alike); without a stem it is a config error, not a silent no-op
    shifted = kao.KaoSettings.from_settings({"stem": "efficientnet_lite0:16", "kao_stem_shift": 1})
    assert (shifted.stem, shifted.stem_shift) == ("efficientnet_lite0:16", 1)
    on_stem = dataclasses.replace(WHOLE, stem="efficientnet_lite0:16", stem_shift=1)
    assert {c.data.stem_shift for c in kao.table1_configs(on_stem, data).values()} == {1}
    assert kao.table3_configs(on_stem, data, backbones=("efficientnet_lite0",))[
        ("MTRLCNN", "EfficientNet-Lite0 FT")].data.stem_shift == 1
    assert {c.data.stem_shift for c in t1.values()} == {0}
    with pytest.raises(DataFormatError, match="stem_shift"):
        kao.table1_configs(dataclasses.replace(WHOLE, stem_shift=1), data)
    # the profile's kao_ema_epochs reaches every Kao config (trunks and fine-tuned nets); the
    # default leaves it off
    assert kao.KaoSettings.from_settings({"kao_ema_epochs": 1}).ema_epochs == 1
    averaged = dataclasses.replace(WHOLE, ema_epochs=1.0)
    assert {c.optim.ema_epochs for c in kao.table1_configs(averaged, data).values()} == {1.0}
    assert {c.optim.ema_epochs for c in kao.table3_configs(
        averaged, data, backbones=("efficientnet_lite0",)).values()} == {1.0}
    assert {c.optim.ema_epochs for c in t1.values()} == {0.0}
    # finetune_ema_epochs / transfer_ema_epochs override it for the fine-tuned and Table V runs
    trunks_only = dataclasses.replace(averaged, finetune_ema_epochs=0.0, transfer_ema_epochs=0.0)
    t3 = kao.table3_configs(trunks_only, data, backbones=("efficientnet_lite0",))
    assert {cfg.model.family: cfg.optim.ema_epochs for cfg in t3.values()} == {
        "mtcnn1": 1.0, "mtcnn_finetune": 0.0}
    target = kao.TargetData(tmp_path / "t.csv", tmp_path / "s.csv", tmp_path / "img")
    t5 = lambda s: kao.table5_configs(s, target, stcnn_source=tmp_path / "a",  # noqa: E731
                                      mtcnn_source=tmp_path / "b")
    assert {c.optim.ema_epochs for c in t5(trunks_only).values()} == {0.0}
    assert {c.optim.ema_epochs for c in t5(averaged).values()} == {1.0}
    # an override of 0 leaves those runs' config hashes as without any average (runs reused)
    plain = kao.table3_configs(WHOLE, data, backbones=("efficientnet_lite0",))
    assert [c.config_hash() for c in t3.values() if c.model.family == "mtcnn_finetune"] == \
        [c.config_hash() for c in plain.values() if c.model.family == "mtcnn_finetune"]
    assert t5(trunks_only)[("delta=0", "STCNN")].config_hash() == \
        t5(WHOLE)[("delta=0", "STCNN")].config_hash()
    # and the other way round: the fine-tuned nets averaged, the trunks not
    ft_only = dataclasses.replace(WHOLE, finetune_ema_epochs=1.0)
    assert {cfg.model.family: cfg.optim.ema_epochs for cfg in kao.table3_configs(
        ft_only, data, backbones=("efficientnet_lite0",)).values()} == {
        "mtcnn1": 0.0, "mtcnn_finetune": 1.0}
    read = kao.KaoSettings.from_settings({"kao_finetune_ema_epochs": 0, "kao_transfer_ema_epochs": 2})
    assert (read.finetune_ema_epochs, read.transfer_ema_epochs) == (0, 2)


def test_shared_runs_share_one_config_hash(tmp_path):
    data = _data29(tmp_path)
    h = lambda cfg: cfg.config_hash()  # noqa: E731
    s3 = dataclasses.replace(TINY, epochs=3)          # long enough for early stopping to act
    t1, t2 = kao.table1_configs(s3, data), kao.table2_configs(s3, data)
    t3, t4 = kao.table3_configs(s3, data), kao.table4_configs(s3, data)
    # a copy of the settings with equal values builds the same runs (notebooks 02, 03, 04)
    again = kao.table4_configs(kao.KaoSettings(**{**s3.__dict__}), data)
    for d in ("delta=0", "delta=1"):
        assert h(t1[(d, "lambda=0")]) == h(t4[(d, "STCNN")]) == h(again[(d, "STCNN")])
        assert h(t1[(d, "lambda=1/M")]) == h(t2[(d, "MTCNN #1")]) == h(t4[(d, "MTCNN #1")])
    assert h(t3[("MTCNN", "MTCNN #1")]) == h(t1[("delta=0", "lambda=1/M")])
    assert h(t3[("MTRLCNN", "MTCNN #1")]) != h(t3[("MTCNN", "MTCNN #1")])
    seeds = runner.with_seeds({"stcnn": t1[("delta=0", "lambda=0")]}, (s3.seed, s3.seed + 1))
    assert h(seeds[("stcnn", s3.seed)]) == h(t1[("delta=0", "lambda=0")])
    assert h(seeds[("stcnn", s3.seed + 1)]) != h(t1[("delta=0", "lambda=0")])
    assert seeds[("stcnn", s3.seed + 1)].name.endswith(f"-s{s3.seed + 1}")
    hashes = [h(c) for c in t1.values()]
    assert len(set(hashes)) == len(hashes)                # every Table I cell is its own run ...
    short = kao.table1_configs(dataclasses.replace(TINY, epochs=2), data)
    assert not kao.early_stop_can_act(dataclasses.replace(TINY, epochs=2))
    assert h(short[("delta=0", "early stopping")]) == h(short[("delta=0", "lambda=1")])  # ... unless
    assert kao.early_stop_can_act(dataclasses.replace(TINY, epochs=3))   # the rule cannot act


def test_kao_data_and_the_fine_tuning_subset(tiny_profile, tmp_path, monkeypatch):
    data = tiny_profile
    assert data.tag_columns == tuple(f"tag_{t}" for t in TAG_IDS) and data.num_tags == 3
    assert data.tag_names == ("abstract", "nature", "black and white")
    assert data.test.parent.name == "kao-delta0"
    with pytest.raises(IaaError, match="run notebook 01"):
        kao.kao_data("nope", data.image_dir)
    cfg = kao.finetune_config(TINY, data, backbone="resnet18")
    sub = pd.read_csv(cfg.data.train)
    assert len(sub) == TINY.finetune_train_size and sub["image_id"].is_monotonic_increasing
    assert set(sub["image_id"]) <= set(pd.read_csv(data.train[0.0])["image_id"])
    assert kao.finetune_config(TINY, data, backbone="resnet18").data.train == cfg.data.train


# ----------------------------------------------------------------------------- runs and tables
def test_run_all_tables_and_figure_data(tiny_profile, capsys):
    data = tiny_profile
    configs = kao.table1_configs(TINY, data, deltas=(0,), lambdas=(0, "1/M"))
    configs[("delta=0", "again")] = configs[("delta=0", "lambda=0")]
    runs = runner.run_grid(configs)
    assert runs[("delta=0", "again")].dir == runs[("delta=0", "lambda=0")].dir
    out = capsys.readouterr().out
    assert out.count("trained in") == 2 and "epoch" not in out      # one line per distinct run
    runner.run_grid(configs)
    assert capsys.readouterr().out.count("reused") == 2

    table = runner.grid_table({k: v for k, v in runs.items() if k[1] != "again"})
    assert list(table.index) == ["delta=0"] and list(table.columns) == ["lambda=0", "lambda=1/M"]
    for (r, c), run in runs.items():
        if c == "again":
            continue
        pred = run.predictions
        assert table.loc[r, c] == pytest.approx(100 * np.mean(pred["pred_label"] == pred["gt_label"]))
    assert len(table.attrs["runs"]) == 2

    per_tag = kao.per_tag_table({"STCNN": runs[("delta=0", "lambda=0")]}, data)
    pred = runs[("delta=0", "lambda=0")].predictions
    assert list(per_tag.index) == ["overall", *data.tag_names]
    for col, name in zip(data.tag_columns, data.tag_names):
        on_tag = pred[pred[f"gt_{col}"] == 1]
        expected = 100 * np.mean(on_tag["pred_label"] == on_tag["gt_label"]) if len(on_tag) else np.nan
        assert per_tag.loc[name, "STCNN"] == pytest.approx(expected, nan_ok=True)

    filters = kao.first_layer_filters(runs[("delta=0", "lambda=1/M")])
    model = runs[("delta=0", "lambda=1/M")].load_model()
    assert filters.shape == tuple(model.low[0].weight.shape) and filters.shape[1:] == (3, 11, 11)
    np.testing.assert_array_equal(filters, model.low[0].weight.detach().numpy())


def test_task_correlations_from_an_mtrl_run(tiny_profile):
    data = tiny_profile
    t3 = kao.table3_configs(TINY, data)
    run = runner.run_grid({("MTRLCNN", "MTCNN #1"): t3[("MTRLCNN", "MTCNN #1")]}, echo=None)[
        ("MTRLCNN", "MTCNN #1")]
    omega = run.omega()[-1]
    corr = kao.task_correlations(run, data)
    d = np.sqrt(np.diag(omega))
    np.testing.assert_allclose(corr.to_numpy(), omega / np.outer(d, d), atol=1e-12)
    assert list(corr.index) == ["low aesthetic", "high aesthetic", *data.tag_names]
    np.testing.assert_allclose(np.diag(corr), 1.0)
    fig9 = kao.fig9_table(corr)
    assert list(fig9.columns) == ["low aesthetic", "high aesthetic"] and len(fig9) == 2 + data.num_tags
    with pytest.raises(IaaError, match="not an MTRL run"):
        kao.task_correlations(runner.run_grid({0: t3[("MTCNN", "MTCNN #1")]}, echo=None)[0], data)


def test_compare_correlations_and_paper_next_to_ours():
    ref = pd.Series([0.5, -0.2, 0.1, -0.4], index=["a", "b", "c", "d"])
    ours = pd.Series([1.0, -0.4, 0.2, -0.8, 9.9], index=["a", "b", "c", "d", "extra"])
    r = kao.compare_correlations(ours, ref)
    assert r["n"] == 4 and r["pearson"] == pytest.approx(1.0) and r["sign_agreement"] == 1.0
    flipped = kao.compare_correlations(-ours, ref)
    assert flipped["spearman"] == pytest.approx(-1.0) and flipped["sign_agreement"] == 0.0
    paper = paper_table("kao", "table1")
    ours_t = pd.DataFrame({"lambda=0": [70.0], "lambda=9": [71.0]}, index=["delta=0"])
    side = paper_next_to_ours(ours_t, paper)
    assert side.loc["lambda=0", "paper"] == 72.19 and np.isnan(side.loc["lambda=9", "paper"])
    assert side["ours"].tolist() == [70.0, 71.0]


class _FakeRun:
    def __init__(self, predictions):
        self.predictions = predictions


def test_disagreements_by_hand():
    base = pd.DataFrame({"image_id": [1, 2, 3, 4, 5, 6], "gt_label": [1, 1, 1, 0, 0, 0],
                         "gt_mean": [6, 7, 5.5, 4, 3, 4.5]})
    right = _FakeRun(base.assign(pred_label=[1, 1, 0, 0, 0, 0], p_high=[0.6, 0.9, 0.4, 0.2, 0.45, 0.1]))
    wrong = _FakeRun(base.assign(pred_label=[0, 0, 0, 1, 0, 1], p_high=[0.4, 0.3, 0.2, 0.7, 0.3, 0.6]))
    got = kao.disagreements(right, wrong, n_per_class=5)
    # right and wrong: ids 1, 2 (high), 4, 6 (low); most confident first
    assert got["image_id"].tolist() == [2, 1, 6, 4]
    assert kao.disagreements(right, wrong, n_per_class=1)["image_id"].tolist() == [2, 6]


# ----------------------------------------------------------------------------- Table V
def test_synth_target_through_the_adapter_and_transfer(tiny_profile, tmp_path):
    from iaalib.data.ava import read_ava_txt

    data = tiny_profile
    source_ids = pd.read_csv(data.train[0.0])["image_id"]
    info = kao.synth_target_csv(tmp_path / "target" / "scores.csv", n=40, seed=7, short_edge=64,
                                exclude_ids=source_ids)
    table = pd.read_csv(info["csv"])
    assert list(table.columns) == ["id", "score"] and table["score"].between(1, 7).all()
    labels = read_ava_txt(info["synth_dir"] / "AVA.txt")
    assert len(table) + info["n_excluded"] == len(labels) == 40
    target = kao.prepare_target(info["csv"], tmp_path / "target", image_root=info["image_dir"],
                                test_size=10, seed=0)
    assert target.image_dir == info["image_dir"]          # integer ids: no links needed
    train, test = pd.read_csv(target.train), pd.read_csv(target.test)
    assert len(test) == 10 and len(train) == len(table) - 10
    assert not any(c.startswith("tag_") for c in train.columns)
    both = pd.concat([train, test]).merge(labels[["image_id", "mean"]], on="image_id",
                                          suffixes=("", "_synth"))
    assert len(both) == len(table)
    # 1-7 and back: the SynthAVA mean up to the CSV's rounding and the pseudo-vote quantum
    np.testing.assert_allclose(both["mean"], both["mean_synth"], atol=2e-3)
    assert (both["label"] == (both["mean_synth"] > 5)).all()

    source = runner.run_grid({0: kao.trunk_config(TINY, data, lam="1/M")}, echo=None)[0]
    t5 = kao.table5_configs(TINY, target, stcnn_source=source.dir, mtcnn_source=source.dir)
    assert t5[("delta=0", "STCNN")].model.init_from is None
    assert t5[("delta=0", "MTCNN #1 FT")].model.init_from == str(source.dir)
    assert all(c.loss.lam == 0 for c in t5.values())
    runs = runner.run_grid({k: v for k, v in t5.items() if k[1] != "STCNN FT"}, echo=None)
    ft = runs[("delta=0", "MTCNN #1 FT")]
    assert ft.record["init_from"]["copied"] > 0
    assert any("semantic_head" in k for k in ft.record["init_from"]["skipped"])
    assert ft.metrics["n_images"] == 10


def _with_rows(data: kao.KaoData, rows: dict) -> kao.KaoData:
    return dataclasses.replace(data, train_rows=rows)


def test_equal_steps_scale_the_delta1_epochs_and_schedule(tmp_path):
    data = _with_rows(_data29(tmp_path), {0.0: 2000, 1.0: 500})
    s = dataclasses.replace(TINY, epochs=8, schedule="step", step_size=6, equal_steps=True)
    assert kao.delta_steps_factor(s, data, 1) == pytest.approx(4.0)
    d1 = kao.trunk_config(s, data, lam="1/M", delta=1)
    assert d1.epochs == 32 and d1.optim.step_size == 24          # 8 x 2000/500, 6 x 4
    d0 = kao.trunk_config(s, data, lam="1/M", delta=0)
    assert d0.epochs == 8 and d0.optim.step_size == 6
    same = dataclasses.replace(s, equal_steps=False)
    assert kao.trunk_config(same, data, lam="1/M", delta=1).epochs == 8


def test_seeded_gives_the_other_delta_rows_fewer_seeds(tmp_path):
    data = _data29(tmp_path)
    s = dataclasses.replace(TINY, seeds=(0, 1, 2), other_delta_seeds=1)
    grid = kao.seeded(kao.table1_configs(s, data, deltas=[0, 1], lambdas=[0, "1/M", 1]), s)
    seeds = {}
    for (key, seed) in grid:
        seeds.setdefault(key, set()).add(seed)
    # δ = 1, λ = 1 is no claim's arm: one seed; the claim "λ = 1/M beats λ = 0 at δ = 1"
    # (paper_results.yaml) rests on the other two δ = 1 arms, so they get every seed
    assert seeds == {("delta=0", "lambda=0"): {0, 1, 2}, ("delta=0", "lambda=1/M"): {0, 1, 2},
                     ("delta=0", "lambda=1"): {0, 1, 2}, ("delta=1", "lambda=1"): {0},
                     ("delta=1", "lambda=0"): {0, 1, 2}, ("delta=1", "lambda=1/M"): {0, 1, 2}}
    assert {"delta=1 | lambda=0", "delta=1 | lambda=1/M"} <= kao.claim_arms()
    # keys that name no δ (Table III's rows) get every seed
    t3 = kao.seeded(kao.table3_configs(s, data), s)
    assert {seed for (_key, seed) in t3} == {0, 1, 2}
    every = kao.seeded(kao.table1_configs(s, data, deltas=[1], lambdas=[0]),
                       dataclasses.replace(s, other_delta_seeds=None))
    assert {seed for (_key, seed) in every} == {0, 1, 2}
    # 0: the δ = 1 cells no claim rests on are left out, the claims' arms keep every seed
    none = kao.seeded(kao.table1_configs(s, data, deltas=[0, 1], lambdas=[0, "1/M", 1]),
                      dataclasses.replace(s, other_delta_seeds=0))
    assert {k: {sd for (kk, sd) in none if kk == k} for (k, _s) in none} == \
        {k: v for k, v in seeds.items() if k != ("delta=1", "lambda=1")}
    with pytest.raises(IaaError, match="kao_other_delta_seeds"):
        kao.other_delta_seeds(dataclasses.replace(s, other_delta_seeds=-1))


def test_sharing_table_counts_what_both_tasks_train(tmp_path):
    data = _data29(tmp_path)
    pixels = kao.sharing_table(TINY, data)
    assert (pixels["shared by both tasks"] > 0).all()
    stem = kao.sharing_table(dataclasses.replace(TINY, stem="efficientnet_lite0:16"), data)
    # above a stride-16 stem MTCNN #3's shared conv1-2 are the frozen stem: nothing shared
    assert stem.at["MTCNN #3", "shared by both tasks"] == 0
    assert stem.at["MTCNN #1", "shared by both tasks"] > 0
    assert (stem["trained in total"] > stem["shared by both tasks"]).all()
