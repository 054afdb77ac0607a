"""The training engine: run records, checkpoint-or-train, NaN stop, checkpoints, Kao's hooks."""
from __future__ import annotations

import pickle

import numpy as np
import pandas as pd
import pytest
import torch

import iaalib.engine.trainer as T
from engine_helpers import make_tiny_dataset, tiny_config
from iaalib._io import read_json, sha256_file
from iaalib.engine.checkpoint import load_checkpoint, save_checkpoint
from iaalib.engine.config import ExperimentConfig
from iaalib.errors import CheckpointError, IaaError, TrainingDivergedError
from iaalib.engine.evaluate import evaluate_run, load_model
from iaalib.models import mtrl
from iaalib.models.factory import build_model


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory):
    cfg = tiny_config(data, family="mtcnn1", epochs=2)
    out = tmp_path_factory.mktemp("runs") / "run"
    return cfg, T.train(cfg, out=out)


def test_run_directory_records_everything(data, finished):
    cfg, run = finished
    rec = read_json(run.dir / "run.json")
    assert rec["status"] == "finished" and rec["reason"] is None
    assert rec["config_hash"] == cfg.config_hash() and rec["seed"] == cfg.seed
    assert rec["manifest_sha256"] == {s: sha256_file(data[s]) for s in ("train", "val", "test")}
    assert set(rec["code"]) >= {"git_revision", "dirty", "iaalib_version"}
    assert rec["versions"]["torch"] == torch.__version__.split("+")[0] or rec["versions"]["torch"]
    assert ExperimentConfig.load(run.dir / "config.yaml") == cfg
    hist = run.history
    assert [h["epoch"] for h in hist] == [1, 2]
    assert all(h["lam"] == pytest.approx(1 / 3) for h in hist)  # "1/M" with the 3 tag columns
    assert all(np.isfinite(h["train_total"]) and 0 <= h["val_acc"] <= 1 for h in hist)
    assert (run.dir / "checkpoints" / "last.pt").is_file()
    assert (run.dir / "checkpoints" / "best.pt").is_file()


def _tensor_bytes(tree) -> int:
    if isinstance(tree, torch.Tensor):
        return tree.numel() * tree.element_size()
    if isinstance(tree, dict):
        return sum(_tensor_bytes(v) for v in tree.values())
    if isinstance(tree, (list, tuple)):
        return sum(_tensor_bytes(v) for v in tree)
    return 0


def test_finished_run_keeps_weights_not_optimiser_state(finished):
    """Issue 11: a finished run keeps what evaluation needs (weights, config, task state), not
    the optimiser, scheduler and RNG states that only resuming reads."""
    _, run = finished
    ckpt = run.dir / "checkpoints"
    for name in ("best.pt", "last.pt"):
        state = load_checkpoint(ckpt / name)
        assert not {"optimizer", "scheduler", "rng"} & set(state), name
        assert {"model", "config", "config_hash", "task", "epoch"} <= set(state)
    weights = _tensor_bytes(load_checkpoint(ckpt / "last.pt")["model"])
    assert (ckpt / "last.pt").stat().st_size < 1.25 * weights + 200_000


def test_unfinished_run_keeps_resume_state_and_best_is_light(data, tmp_path, monkeypatch):
    cfg = tiny_config(data, family="mtcnn1", epochs=2)
    monkeypatch.setattr(T.Trainer, "finish", lambda self: None)  # stop before finishing
    T.train(cfg, out=tmp_path / "run")
    last = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert {"optimizer", "rng", "scheduler"} <= set(last)
    best = load_checkpoint(tmp_path / "run" / "checkpoints" / "best.pt")
    assert "optimizer" not in best and best["model"].keys() == last["model"].keys()


def test_metrics_and_predictions_match_the_test_manifest(data, finished):
    _, run = finished
    test = pd.read_csv(data["test"])
    pred = run.predictions
    assert pred["image_id"].tolist() == test["image_id"].tolist()
    np.testing.assert_allclose(pred["gt_mean"], test["mean"])
    assert pred["gt_label"].tolist() == test["label"].tolist()
    m = run.metrics
    assert m["n_images"] == len(test) and m["n_skipped"] == 0
    assert m["acc"] == pytest.approx(np.mean(pred["pred_label"] == test["label"]))
    assert m["srcc_mean"] is None and m["emd"] is None  # a classifier predicts no distribution
    assert set(m["per_tag_acc"]) == {"tag_1", "tag_15", "tag_21"}
    hist = run.history
    vals = [h["val_acc"] for h in hist]
    assert m["best_epoch"] == 1 + int(np.argmax(vals))  # first epoch with the best val accuracy


def test_finished_run_is_reused_not_retrained(data, finished, monkeypatch):
    cfg, run = finished
    before = read_json(run.dir / "run.json")
    mtime = (run.dir / "checkpoints" / "last.pt").stat().st_mtime_ns

    def boom(self):
        raise AssertionError("fit() must not run for a finished run")

    monkeypatch.setattr(T.Trainer, "fit", boom)
    again = T.train(cfg.with_overrides({"quiet": False}), out=run.dir)  # presentation-only change
    assert again.dir == run.dir and read_json(run.dir / "run.json") == before
    assert (run.dir / "checkpoints" / "last.pt").stat().st_mtime_ns == mtime
    with pytest.raises(AssertionError, match="must not run"):
        T.train(cfg, out=run.dir, force=True)
    with pytest.raises(IaaError, match="another config"):
        T.train(cfg.with_overrides({"optim.lr": 0.5}), out=run.dir)


def test_default_run_dir_and_changed_manifest_retrains(data, tmp_path, monkeypatch):
    monkeypatch.setenv("IAA_HOME", str(tmp_path / "home"))
    train_csv = tmp_path / "train.csv"
    train_csv.write_bytes(data["train"].read_bytes())
    cfg = tiny_config({**data, "train": train_csv}, family="nima", epochs=1, val=False)
    run = T.train(cfg)
    assert run.dir == tmp_path / "home" / "runs" / f"tiny-nima-{cfg.config_hash()[:10]}"
    started = run.record["started"]
    # best = last without a validation manifest (Choice): one file on disk
    best, last = run.dir / "checkpoints" / "best.pt", run.dir / "checkpoints" / "last.pt"
    assert best.read_bytes() == last.read_bytes() and best.stat().st_ino == last.stat().st_ino
    df = pd.read_csv(train_csv).iloc[:-2]
    df.to_csv(train_csv, index=False)
    calls = []
    real_fit = T.Trainer.fit
    monkeypatch.setattr(T.Trainer, "fit", lambda self: calls.append(1) or real_fit(self))
    again = T.train(cfg)
    assert calls == [1]
    assert again.record["manifest_sha256"]["train"] == sha256_file(train_csv)
    assert again.record["started"] >= started


def test_nan_loss_stops_naming_step_and_term_and_keeps_last_good_checkpoint(data, tmp_path,
                                                                            monkeypatch):
    from iaalib.tasks.kao import KaoTask

    cfg = tiny_config(data, family="mtcnn1", epochs=2, checkpoint_every=1)
    real = KaoTask.loss
    calls = {"n": 0}

    def poisoned(self, *args, **kwargs):
        terms = real(self, *args, **kwargs)
        calls["n"] += 1
        if calls["n"] == 5:  # 24 training images / batch 8 = 3 steps per epoch: step 5 = epoch 2
            terms["semantic"] = terms["semantic"] * float("nan")
            terms["total"] = terms["aesthetic"] + terms["semantic"]
        return terms

    monkeypatch.setattr(KaoTask, "loss", poisoned)
    out = tmp_path / "run"
    with pytest.raises(TrainingDivergedError) as e:
        T.train(cfg, out=out)
    msg = str(e.value)
    assert "'semantic'" in msg and "step 5" in msg and "epoch 2" in msg
    rec = read_json(out / "run.json")
    assert rec["status"] == "diverged" and "'semantic' is nan at step 5" in rec["reason"]
    assert rec["diverged_at"] == {"step": 5, "epoch": 2, "batch": 1, "term": "semantic"}
    ckpt = load_checkpoint(out / "checkpoints" / "last.pt")
    assert ckpt["step"] == 4 and ckpt["epoch"] == 1 and ckpt["batch"] == 1
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())
    # Deterministic training would diverge again: the diverged run is a result, reused as such.
    calls["n"] = -10**6
    assert T.train(cfg, out=out).status == "diverged" and calls["n"] == -10**6


def test_foreign_files_are_refused_with_a_clear_error(tmp_path):
    text = tmp_path / "notes.pt"
    text.write_text("hello")
    plain = tmp_path / "plain.pt"
    torch.save({"weights": torch.zeros(2)}, plain)
    evil = tmp_path / "evil.pt"
    with open(evil, "wb") as fh:
        pickle.dump(ValueError("x"), fh)  # arbitrary objects are never unpickled
    for path, fragment in ((text, "not a readable iaalib checkpoint"),
                           (plain, "not an iaalib checkpoint"),
                           (evil, "not a readable iaalib checkpoint"),
                           (tmp_path / "missing.pt", "not found")):
        with pytest.raises(CheckpointError) as e:
            load_checkpoint(path)
        assert str(path) in str(e.value) and fragment in str(e.value)
    ours = tmp_path / "ours.pt"
    save_checkpoint(ours, {"model": {"w": torch.ones(1)}})
    assert load_checkpoint(ours)["format"] == "iaalib-checkpoint"


def test_mtrl_alternation_records_omega(data, tmp_path):
    cfg = tiny_config(data, family="mtcnn1", epochs=2, val=False,
                      loss={"mtrl": {"enabled": True, "update_every": 1}})
    run = T.train(cfg, out=tmp_path / "mtrl")
    omega = run.omega()
    assert omega.shape == (3, 5, 5)  # initial I/T + one update per epoch; T = 2 classes + 3 tags
    np.testing.assert_allclose(omega[0], np.eye(5) / 5)
    for om in omega:
        np.testing.assert_allclose(om, om.T, atol=1e-12)
        assert np.trace(om) == pytest.approx(1.0)
        assert np.linalg.eigvalsh(om).min() > -1e-12
    model, _, _ = load_model(run.dir / "checkpoints" / "last.pt")
    expected = mtrl.update_task_covariance(model.task_weights().detach(), eps=cfg.loss.mtrl.eps)
    np.testing.assert_allclose(omega[-1], expected.numpy(), rtol=1e-6, atol=1e-9)
    steps = read_json(run.dir / "omega_steps.json")
    assert [s["epoch"] for s in steps] == [0, 1, 2] and [s["step"] for s in steps] == [0, 3, 6]
    assert all(h["train_mtrl"] > 0 for h in run.history)


def test_semantic_early_stopping_sets_lambda_to_zero_after_a_plateau(data, tmp_path):
    # min_delta = 1: no epoch can improve by 100 %, so the loss "plateaus" after epoch 2.
    cfg = tiny_config(data, family="mtcnn1", epochs=3, val=False,
                      loss={"lam": 1, "semantic_early_stop": {"enabled": True, "patience": 1,
                                                              "min_delta": 1.0}})
    run = T.train(cfg, out=tmp_path / "es")
    hist = run.history
    assert [h["lam"] for h in hist] == [1.0, 1.0, 0.0]
    assert [h["semantic_stopped"] for h in hist] == [False, True, True]
    assert load_checkpoint(run.dir / "checkpoints" / "last.pt")["task"]["early_stop"][
        "stopped_after_epoch"] == 2


def test_nima_loss_is_the_per_sample_emd(data):
    from iaalib.metrics import emd
    from iaalib.tasks import build_task

    cfg = tiny_config(data, family="nima")
    logits = torch.randn(4, 10)
    dist = torch.softmax(torch.randn(4, 10), dim=1)
    terms = build_task(cfg, num_tags=0, num_train=4).loss({"dist_logits": logits}, {"dist": dist})
    assert float(terms["total"]) == pytest.approx(
        emd(torch.softmax(logits, 1).numpy(), dist.numpy()), rel=1e-5)


def test_checkpoints_every_n_steps_and_every_epoch_hold_the_resume_state(data, tmp_path, caplog,
                                                                         monkeypatch):
    import logging
    caplog.set_level(logging.DEBUG, logger="iaalib.engine.trainer")
    cfg = tiny_config(data, family="mtcnn1", epochs=2, checkpoint_every=2, val=False,
                      optim={"schedule": "step", "step_size": 1, "gamma": 0.5})
    monkeypatch.setattr(T.Trainer, "finish", lambda self: None)  # the state before finishing
    run = T.train(cfg, out=tmp_path / "ck")
    saved = [line for line in caplog.messages if line.startswith("checkpoint saved")]
    # 3 steps per epoch: mid-epoch at steps 2 and 4, the end of epoch 1 at step 3; the end of
    # the last epoch (step 6) writes no resume state: finish() replaces last.pt right after
    assert [s.split("step=")[1].split()[0] for s in saved] == ["2", "3", "4"]
    ckpt = load_checkpoint(run.dir / "checkpoints" / "last.pt")
    assert {"format", "format_version", "config", "config_hash", "model", "optimizer",
            "scheduler", "rng", "epoch", "batch", "step", "history", "running", "task",
            "best", "tag_columns"} <= set(ckpt)
    assert {"mtrl", "early_stop"} <= set(ckpt["task"])  # Kao's task state: Ω and early stopping
    assert set(ckpt["rng"]) >= {"torch", "numpy", "python"}
    assert (ckpt["epoch"], ckpt["batch"], ckpt["step"]) == (1, 1, 4)
    assert ckpt["scheduler"]["last_epoch"] == 1 and [h["lr"] for h in run.history] == [0.01, 0.005]
    assert ckpt["optimizer"]["state"]  # SGD momentum buffers


def test_max_steps_ends_the_run_early_and_closes_the_epoch_in_progress(data, tmp_path):
    """24 training images in batches of 8: 3 steps per epoch. max_steps 4 of 3 epochs: epoch 1
    whole, epoch 2 after one batch (evaluated and recorded as usual), epoch 3 never starts."""
    cfg = tiny_config(data, family="mtcnn1", epochs=3, max_steps=4, val=False)
    run = T.train(cfg, out=tmp_path / "capped")
    assert [(h["epoch"], h["step"], h["n_images"]) for h in run.history] == [(1, 3, 24), (2, 4, 8)]
    metrics = read_json(run.dir / "metrics.json")
    assert (metrics["steps"], metrics["epochs"], metrics["epochs_trained"]) == (4, 3, 2)
    rec = read_json(run.dir / "run.json")
    assert rec["status"] == "finished" and rec["best"]["epoch"] == 2
    import resource
    assert rec["peak_memory"]["kind"] == "process max RSS"  # this process: at least as much
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024    # MiB; run.json rounds to 0.1
    assert 0 < rec["peak_memory"]["mib"] <= round(peak, 1)
    assert cfg.config_hash() != tiny_config(data, family="mtcnn1", epochs=3, val=False).config_hash()
    with pytest.raises(Exception, match="max_steps"):
        tiny_config(data, family="mtcnn1", max_steps=-1)


def test_quiet_mode_prints_one_line_per_epoch(data, tmp_path, capsys):
    T.train(tiny_config(data, family="nima", epochs=2, val=False), out=tmp_path / "q", quiet=True)
    captured = capsys.readouterr()
    lines = [ln for ln in captured.out.splitlines() if ln.strip()]
    assert len(lines) == 2 and lines[0].startswith("epoch 1/2") and "img/s" in lines[0]
    assert "it/s" not in captured.err and "batch/s" not in captured.err  # no progress bars


def test_device_auto_prefers_cuda_then_mps_then_cpu(monkeypatch):
    from iaalib.engine import device
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert device.select_device("auto", local_rank=1) == torch.device("cuda", 1)
    assert device.use_amp(torch.device("cuda", 0), True)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    assert device.select_device("auto") == torch.device("mps")
    assert not device.use_amp(torch.device("mps"), True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: False)
    assert device.select_device("auto") == torch.device("cpu")
    assert not device.use_amp(torch.device("cpu"), True)


def test_cpu_threads_are_shared_between_local_ranks():
    from iaalib.engine import device
    before = torch.get_num_threads()
    try:
        n = device.configure_torch(torch.device("cpu"), deterministic=True, local_world_size=2)
        assert n == max(1, device.available_cpus() // 2)
        assert device.configure_torch(torch.device("cpu"), deterministic=True, num_threads=1) == 1
        assert torch.are_deterministic_algorithms_enabled()
    finally:
        torch.set_num_threads(before)


def test_bad_images_are_skipped_and_counted_but_an_epoch_without_images_is_an_error(data, tmp_path):
    images = tmp_path / "images"
    images.mkdir()
    train = pd.read_csv(data["train"])
    for k, image_id in enumerate(train["image_id"]):
        src = data["images"] / f"{image_id}.jpg"
        (images / src.name).write_bytes(src.read_bytes()[:200] if k < 3 else src.read_bytes())
    cfg = tiny_config({**data, "images": images}, family="nima", epochs=1, val=False)
    cfg = cfg.with_overrides({"data.test": None})
    run = T.train(cfg, out=tmp_path / "some-bad")
    assert run.history[0]["n_skipped"] == 3 and run.history[0]["n_images"] == len(train) - 3
    cfg = cfg.with_overrides({"data.image_dir": str(tmp_path / "nowhere")})
    with pytest.raises(IaaError, match="every training image was skipped"):
        T.train(cfg, out=tmp_path / "all-bad")
    assert read_json(tmp_path / "all-bad" / "run.json")["status"] == "failed"


def test_code_revision_falls_back_to_the_package_version_outside_git(monkeypatch):
    import subprocess

    from iaalib import __version__
    from iaalib import paths as runrecord  # code_revision lives in iaalib.paths

    def no_git(*args, **kwargs):
        raise FileNotFoundError("git")

    runrecord.code_revision.cache_clear()
    monkeypatch.setattr(subprocess, "run", no_git)
    try:
        assert runrecord.code_revision() == {"git_revision": None, "dirty": None,
                                             "iaalib_version": __version__}
    finally:
        runrecord.code_revision.cache_clear()
    monkeypatch.undo()
    rev = runrecord.code_revision()
    assert rev["iaalib_version"] == __version__
    if rev["git_revision"] is not None:  # a git checkout: a full commit hash and a dirty flag
        assert len(rev["git_revision"]) == 40 and isinstance(rev["dirty"], bool)


def test_pretrained_layers_learn_at_their_own_rate(data, tmp_path):
    """optim.pretrained_lr_mult: the fine-tuned backbone (the MTCNN's layers 1-6) gets
    lr × mult, the new head lr; one plain SGD step moves each by exactly -rate × gradient."""
    from torchvision import models as tvm

    torch.manual_seed(0)
    weights = tmp_path / "resnet18.pth"
    torch.save(tvm.resnet18(weights=None).state_dict(), weights)
    cfg = tiny_config(data, family="mtcnn_finetune", val=False, epochs=1,
                      model={"family": "mtcnn_finetune", "backbone": "resnet18", "fc_dim": 16,
                             "weights": str(weights), "dropout": 0.0},
                      optim={"lr": 0.1, "momentum": 0.0, "weight_decay": 0.0,
                             "pretrained_lr_mult": 0.01})
    assert cfg.with_overrides({"optim.pretrained_lr_mult": 1.0}).config_hash() != cfg.config_hash()
    model = build_model(cfg.model, num_tags=2)
    groups = T.parameter_groups(model, cfg)
    assert {id(p) for p in groups[1]["params"]} == {id(p) for p in model.low.parameters()}
    assert len(groups[0]["params"]) + len(groups[1]["params"]) == len(list(model.parameters()))
    opt = T.build_optimizer(cfg.optim, groups)
    assert [g["lr"] for g in opt.param_groups] == [0.1, pytest.approx(0.001)]
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.train()
    out = model(torch.randn(4, 3, 64, 64))
    (out["aesthetic_logits"].sum() + out["tag_logits"].sum()).backward()
    grads = {n: p.grad.detach().clone() for n, p in model.named_parameters()}
    opt.step()
    for name in ("low.conv1.weight", "aesthetic_head.weight"):
        rate = 0.001 if name.startswith("low.") else 0.1
        p = dict(model.named_parameters())[name]
        torch.testing.assert_close(p.detach(), before[name] - rate * grads[name])
    # one group when the mult is 1 or the network starts from scratch
    assert len(T.parameter_groups(model, cfg.with_overrides({"optim.pretrained_lr_mult": 1.0}))) == 1
    scratch = tiny_config(data, family="mtcnn1", optim={"pretrained_lr_mult": 0.1})
    assert len(T.parameter_groups(build_model(scratch.model, num_tags=2), scratch)) == 1


@pytest.mark.parametrize("name", ["adam", "sgd"])
def test_the_fused_optimiser_takes_the_textbook_step(name):
    """build_optimizer uses torch's fused kernel on a CPU; two steps equal Adam's (Kingma & Ba,
    Alg. 1, with L2 decay added to the gradient) or SGD with momentum's, computed by hand."""
    from iaalib.engine.config import OptimConfig
    torch.manual_seed(0)
    w = torch.nn.Parameter(torch.randn(5))
    grads = [torch.randn(5), torch.randn(5)]
    optim = OptimConfig(name=name, lr=0.1, momentum=0.9, weight_decay=0.01)
    opt = T.build_optimizer(optim, [w])
    assert opt.defaults["fused"] is True
    x, m, v, buf = w.detach().clone().double(), 0.0, 0.0, None
    for t, g in enumerate(grads, start=1):
        w.grad = g.clone()
        opt.step()
        g = g.double() + 0.01 * x
        if name == "adam":
            m = 0.9 * m + 0.1 * g
            v = 0.999 * v + 0.001 * g * g
            x = x - 0.1 * (m / (1 - 0.9 ** t)) / ((v / (1 - 0.999 ** t)).sqrt() + 1e-8)
        else:
            buf = g if buf is None else 0.9 * buf + g
            x = x - 0.1 * buf
    torch.testing.assert_close(w.detach().double(), x, rtol=1e-5, atol=1e-6)
    meta = torch.nn.Parameter(torch.randn(2, device="meta"))
    assert T._fused_ok([meta]) is None                           # no fused kernel: torch's default


def test_monitor_every_records_the_test_metrics_at_its_epochs_and_the_last(data, tmp_path,
                                                                          monkeypatch):
    """monitor_every 2 of 5 epochs: test metrics after epochs 2, 4 and 5; the last epoch's pass
    is the run's final evaluation (not repeated: the same metrics and one pass fewer)."""
    cfg = tiny_config(data, family="mtcnn1", epochs=5, val=False, monitor_test=True,
                      monitor_every=2)
    passes = []
    real = T.Trainer.evaluate

    def counting(self, dataset, **kw):
        passes.append(len(dataset))
        return real(self, dataset, **kw)

    monkeypatch.setattr(T.Trainer, "evaluate", counting)
    run = T.train(cfg, out=tmp_path / "m")
    assert [h["epoch"] for h in run.history if "test_acc" in h] == [2, 4, 5]
    assert len(passes) == 3                                   # no fourth pass in finish()
    last = run.history[-1]
    assert last["test_acc"] == run.metrics["acc"] and last["test_srcc_p_high"] == \
        pytest.approx(run.metrics["srcc_p_high"])
    # the predictions are those of the final weights: scoring the saved checkpoint agrees
    fresh = evaluate_run(run.dir, device="cpu", return_predictions=True)
    assert fresh["acc"] == run.metrics["acc"]
    by_id = fresh["predictions"].set_index("image_id")["p_high"]
    np.testing.assert_allclose(by_id.loc[run.predictions["image_id"]].to_numpy(),
                               run.predictions["p_high"].to_numpy(), atol=1e-6)
    with pytest.raises(IaaError, match="monitor_every"):
        cfg.with_overrides({"monitor_every": 0})


def test_channels_last_is_the_same_arithmetic_in_another_memory_format(data, tmp_path):
    """channels_last changes how the activations lie in memory, not what is computed: two runs
    that differ only in it agree to float rounding, and the model's conv weights really are in
    the format asked for. The field is part of the config's hash (the numbers differ in the last
    digits), so runs trained before it existed, in the contiguous format, are not reused."""
    base = tiny_config(data, family="mtcnn1", epochs=2, val=False)
    runs = {cl: T.train(base.with_overrides({"channels_last": cl}), out=tmp_path / str(cl))
            for cl in (True, False)}
    for a, b in zip(runs[True].history, runs[False].history):
        assert a["train_total"] == pytest.approx(b["train_total"], rel=1e-4)
    np.testing.assert_allclose(runs[True].predictions["p_high"], runs[False].predictions["p_high"],
                               atol=1e-4)
    trainer = T.Trainer(base, tmp_path / "t")
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert not conv.weight.is_contiguous()
    assert base.channels_last
    assert base.with_overrides({"channels_last": False}).config_hash() != base.config_hash()


def test_a_narrow_strided_1x1_convolution_trains_contiguous_on_a_cpu(data, tmp_path):
    """oneDNN's AVX2 channels-last kernel for the input gradient of a strided 1×1 convolution
    with fewer than 8 input channels corrupts the heap (torch 2.14.1): such a model trains
    contiguous on a CPU, with a warning, and run.json says so; 8 channels, stride 1 or a 3×3
    kernel keep channels-last, and so does any model on CUDA or a run that asked for contiguous."""
    from iaalib.engine import device

    cpu = torch.device("cpu")
    narrow = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Conv2d(4, 8, 1, stride=2))
    assert device.narrow_strided_1x1(narrow) == ["1"]
    with pytest.warns(RuntimeWarning, match="channels_last: 1 "):
        assert not device.use_channels_last(narrow, cpu, True)
    assert device.use_channels_last(narrow, torch.device("cuda", 0), True)
    assert not device.use_channels_last(narrow, cpu, False)
    for safe in (torch.nn.Conv2d(8, 8, 1, stride=2), torch.nn.Conv2d(4, 8, 1),
                 torch.nn.Conv2d(4, 8, 3, stride=2)):
        assert device.narrow_strided_1x1(safe) == [] and device.use_channels_last(safe, cpu, True)
    cfg = tiny_config(data, family="nima", epochs=1, val=False)  # ResNet-18 at width 1/16
    with pytest.warns(RuntimeWarning, match="trains contiguous"):
        run = T.train(cfg, out=tmp_path / "nima")
    assert cfg.channels_last and run.record["channels_last"] is False
    conv = next(m for m in load_model(run.dir)[0].modules() if isinstance(m, torch.nn.Conv2d))
    assert conv.weight.is_contiguous()


def test_cpu_amp_asks_for_native_bf16(monkeypatch):
    """cpu_amp adds the CPU to bf16 autocast only where the CPU computes bf16 in hardware;
    elsewhere it warns and stays fp32. Without cpu_amp a CPU is always fp32."""
    from iaalib.engine import device
    cpu = torch.device("cpu")
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: True)
    assert device.use_amp(cpu, True, cpu=True)
    assert not device.use_amp(cpu, True) and not device.use_amp(cpu, False, cpu=True)
    monkeypatch.setattr(device, "cpu_has_native_bf16", lambda: False)
    with pytest.warns(RuntimeWarning, match="no native bf16"):
        assert not device.use_amp(cpu, True, cpu=True)


@pytest.mark.skipif(not __import__("iaalib.engine.device", fromlist=["x"]).cpu_has_native_bf16(),
                    reason="this CPU has no native bf16")
def test_cpu_amp_trains_in_bf16_and_scores_in_fp32(data, tmp_path, monkeypatch):
    """Under cpu_amp the forward pass of training runs in bf16 (the weights and losses stay fp32,
    the first epoch's loss differs from fp32's by bf16 rounding, not more), run.json says so, and
    the run's test metrics are computed in fp32: scoring its checkpoint again reproduces them
    exactly. cpu_amp is part of the hash; False keeps the hash configs had before the field."""
    base = tiny_config(data, family="saf", epochs=1, val=False)
    runs = {amp: T.train(base.with_overrides({"cpu_amp": amp}), out=tmp_path / str(amp))
            for amp in (True, False)}
    assert read_json(runs[True].dir / "run.json")["amp"] is True
    assert read_json(runs[False].dir / "run.json")["amp"] is False
    bf, fp = runs[True].history[0]["train_total"], runs[False].history[0]["train_total"]
    assert bf != fp and bf == pytest.approx(fp, rel=0.05)
    assert all(p.dtype == torch.float32 for p in load_model(runs[True].dir / "checkpoints"
                                                            / "best.pt")[0].parameters())
    fresh = evaluate_run(runs[True].dir, device="cpu", return_predictions=True)
    np.testing.assert_array_equal(fresh["predictions"]["mean"].to_numpy(),
                                  runs[True].predictions["mean"].to_numpy())
    assert base.with_overrides({"cpu_amp": True}).config_hash() != base.config_hash()
    h = base.config_hash()
    before_the_field = {k: v for k, v in base.to_dict().items() if k != "cpu_amp"}
    monkeypatch.setattr(ExperimentConfig, "to_dict", lambda self: dict(before_the_field))
    assert base.config_hash() == h  # a run trained before cpu_amp existed keeps its directory


def _assert_saved_predictions_are_best_pt_s(run_dir) -> dict:
    """A run's predictions.csv equals a fresh evaluation of its best.pt; returns that evaluation."""
    fresh = evaluate_run(run_dir, device="cpu", return_predictions=True)
    pd.testing.assert_frame_equal(fresh["predictions"].drop(columns=["index"]),
                                  pd.read_csv(run_dir / "predictions.csv"),
                                  check_dtype=False, check_exact=False, rtol=1e-6)
    return fresh


def test_weight_average_is_the_closed_form_ema_and_is_what_the_run_reports(data, tmp_path,
                                                                          monkeypatch):
    """optim.ema_epochs e: decay d = 1 − 1/(e × steps per epoch); after n steps the averaged
    weights are Σₖ dⁿ⁻ᵏ·wₖ / Σₖ dⁿ⁻ᵏ of the trained weights wₖ after step k (batch-norm statistics
    alike; no start-up bias); best.pt, the test predictions and evaluate_run all read the average,
    and the default (0) leaves the hash alone."""
    d = 0.6  # 3 steps per epoch: 1 − 1/(3 × 5/6)
    model = {"family": "mtcnn1", "width_mult": 0.125, "fc_dim": 32, "dropout": 0.0,
             "options": {"batch_norm": True}}
    cfg = tiny_config(data, family="mtcnn1", epochs=2, val=False, optim={"ema_epochs": 5 / 6},
                      model=model)
    plain = tiny_config(data, family="mtcnn1", epochs=2, val=False, model=model)
    assert cfg.with_overrides({"optim.ema_epochs": 0.0}).config_hash() == plain.config_hash()
    assert cfg.config_hash() != plain.config_hash()
    trainer = T.Trainer(cfg, tmp_path / "ema")
    trainer.start(resume=False)
    seen = []
    trainer.optimizer.register_step_post_hook(lambda *_: seen.append(
        {k: v.detach().clone().double() for k, v in trainer.model.state_dict().items()
         if v.is_floating_point()}))
    trainer.fit()
    trainer.finish()
    assert len(seen) == 6  # 24 training images in batches of 8, 2 epochs
    n = len(seen)
    weights = [d ** (n - 1 - i) for i in range(n)]
    expected = {k: sum(c * w[k] for c, w in zip(weights, seen)) / sum(weights) for k in seen[0]}
    best = load_checkpoint(tmp_path / "ema" / "checkpoints" / "best.pt")["model"]
    assert any(k.endswith("running_var") for k in expected)  # batch-norm statistics averaged too
    for k, v in expected.items():
        torch.testing.assert_close(best[k].double(), v, rtol=1e-5, atol=1e-6)
    assert not all(torch.equal(best[k].double(), seen[-1][k]) for k in expected)  # not the last
    _assert_saved_predictions_are_best_pt_s(tmp_path / "ema")
    assert read_json(tmp_path / "ema" / "run.json")["ema_decay"] == pytest.approx(d)
    # a run trained before the field existed keeps its hash (and directory)
    h = plain.config_hash()
    before_the_field = plain.to_dict()
    del before_the_field["optim"]["ema_epochs"]
    with monkeypatch.context() as m:
        m.setattr(ExperimentConfig, "to_dict", lambda self: dict(before_the_field))
        assert plain.config_hash() == h
    assert (T.ema_decay(1.0, 40), T.ema_decay(0.5, 2), T.ema_decay(0.0, 40)) == (0.975, 0.0, 0.0)
    with pytest.raises(Exception, match="ema_epochs"):
        tiny_config(data, family="mtcnn1", optim={"ema_epochs": -1.0})


@pytest.mark.parametrize("ema_epochs", [0.0, 1.0])
def test_a_validation_picked_epoch_is_the_result_and_last_pt_the_last_weights(
        data, tmp_path, monkeypatch, ema_epochs):
    """With a validation set the best epoch's (averaged) weights, best.pt, are the result: the
    predictions of a run whose best epoch is not its last equal a fresh evaluation of best.pt,
    and last.pt keeps the last weights (it once held best.pt's: the state dict it was saved from
    shared its tensors with the model that best.pt was loaded into)."""
    cfg = tiny_config(data, family="mtcnn1", epochs=2, optim={"ema_epochs": ema_epochs})
    monkeypatch.setattr(T.Trainer, "_is_better", lambda self, value: self.state["epoch"] == 0)
    run = T.train(cfg, out=tmp_path / "val")
    assert run.record["best"]["epoch"] == 1
    best = _assert_saved_predictions_are_best_pt_s(run.dir)
    last = evaluate_run(run.dir, checkpoint="last", device="cpu", return_predictions=True)
    assert not np.allclose(last["predictions"]["p_high"], best["predictions"]["p_high"])
