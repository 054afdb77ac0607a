"""iaalib.studies.runner: one grid runner for both papers — seeds, reuse (the engine's own
checkpoint-or-train test), a diverged run recorded and passed over, tables averaged over seeds."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine_helpers import make_tiny_dataset, tiny_config
from iaalib._io import write_json
from iaalib.engine.runrecord import Run
from iaalib.errors import IaaError
from iaalib.studies import results, runner


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    root = tmp_path_factory.mktemp("runner-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("IAA_HOME", str(root))
        yield root


@pytest.fixture(scope="module")
def data(home):
    return make_tiny_dataset(home / "tiny", n=32, splits=(0.75, 0.0, 0.25))


def _fake(tmp_path, name, status="finished", **metrics) -> Run:
    d = tmp_path / name
    write_json(d / "run.json", {"status": status, "name": name})
    write_json(d / "metrics.json", metrics)
    return Run(d)


def test_with_seeds_reseeds_and_renames(data):
    cfg = tiny_config(data, family="mtcnn1", val=False, name="kao-stcnn-d0-lam0-s0")
    grid = runner.with_seeds({("delta=0", "lambda=0"): cfg}, [0, 3])
    assert list(grid) == [(("delta=0", "lambda=0"), 0), (("delta=0", "lambda=0"), 3)]
    assert grid[(("delta=0", "lambda=0"), 0)].config_hash() == cfg.config_hash()
    three = grid[(("delta=0", "lambda=0"), 3)]
    assert three.seed == 3 and three.name == "kao-stcnn-d0-lam0-s3"


def test_tables_are_means_over_seeds_and_skip_diverged_runs(tmp_path):
    runs = {(("delta=0", "a"), 0): _fake(tmp_path, "a0", acc=0.70, srcc_mean=0.4),
            (("delta=0", "a"), 1): _fake(tmp_path, "a1", acc=0.74, srcc_mean=0.5),
            (("delta=0", "b"), 0): _fake(tmp_path, "b0", acc=0.60, srcc_mean=0.1),
            (("delta=0", "b"), 1): _fake(tmp_path, "b1", status="diverged")}
    grouped = runner.by_key(runs)
    assert [r.dir.name for r in grouped[("delta=0", "a")]] == ["a0", "a1"]
    assert list(runner.arms(runs)) == ["delta=0 | a", "delta=0 | b"]
    assert runner.first_seed(runs)[("delta=0", "b")].dir.name == "b0"
    table = runner.metric_table(grouped, ["acc", "srcc_mean"])
    assert table.loc[("delta=0", "a"), "acc"] == pytest.approx(72.0)         # percent, mean
    assert table.loc[("delta=0", "a"), "srcc_mean"] == pytest.approx(0.45)
    assert table.loc[("delta=0", "b"), "acc"] == pytest.approx(60.0)         # the finished seed
    assert table.attrs["diverged"] == [("delta=0", "b")] and len(table.attrs["runs"]) == 3
    grid = runner.grid_table(grouped, "acc")
    assert list(grid.columns) == ["a", "b"] and grid.at["delta=0", "a"] == pytest.approx(72.0)
    seeds = runner.seed_table(runs, "acc")
    assert seeds.loc["delta=0 | a"].tolist() == pytest.approx([70.0, 74.0])
    assert np.isnan(seeds.loc["delta=0 | b", "seed 1"])
    assert runner.run_dirs(grouped) == [str(tmp_path / n) for n in ("a0", "a1", "b0")]


def test_run_grid_trains_once_records_a_divergence_and_goes_on(data, home, monkeypatch, capsys):
    from iaalib.tasks.distribution import NimaTask

    real = NimaTask.loss

    def nan_loss(self, outputs, batch):
        terms = real(self, outputs, batch)
        return {k: v * float("nan") for k, v in terms.items()}

    monkeypatch.setattr(NimaTask, "loss", nan_loss)
    good = tiny_config(data, family="mtcnn1", val=False, epochs=1)
    bad = tiny_config(data, family="nima", val=False, epochs=1)
    runs = runner.run_grid({"good": good, "same": good, "bad": bad})
    out = capsys.readouterr().out
    assert out.count("trained in") == 1 and "DIVERGED" in out and "is nan at step 1" in out
    assert runs["good"].dir == runs["same"].dir and runs["good"].status == "finished"
    assert runs["bad"].status == "diverged" and runs["bad"].record["diverged_at"]["step"] == 1
    assert runner.is_finished(good) and runner.is_finished(bad)    # a diverged run is a result
    runner.run_grid({"good": good, "bad": bad})
    assert capsys.readouterr().out.count("reused") == 2
    table = runner.metric_table({k: runs[k] for k in ("good", "bad")}, ["acc"])
    assert np.isfinite(table.at["good", "acc"]) and np.isnan(table.at["bad", "acc"])


def test_submitit_debug_executor_trains_the_grid_like_the_local_one(data, home, tmp_path,
                                                                    capsys):
    """executor="debug" is submitit's in-process executor: the same runs, records and metrics as
    the local executor, job logs in the profile's folder; a grid with nothing to train submits
    nothing."""
    pytest.importorskip("submitit")
    cfg = tiny_config(data, family="mtcnn1", val=False, epochs=1, seed=7)
    folder = tmp_path / "jobs"
    runs = runner.run_grid({"a": cfg}, executor="debug", slurm=[f"folder={folder}"])
    assert runs["a"].status == "finished" and "trained in" in capsys.readouterr().out
    assert any(folder.iterdir())                                   # submitit's job files
    local = runner.run_grid({"a": cfg})                            # reused, not retrained
    assert "reused" in capsys.readouterr().out and local["a"].dir == runs["a"].dir
    assert runner.run_grid({"a": cfg}, executor="debug")["a"].dir == runs["a"].dir


def test_slurm_parameters_read_name_value_strings_as_yaml():
    assert runner.slurm_parameters(["slurm_partition=gpu", "gpus_per_node=1",
                                    "timeout_min=720", "mem_gb=80.5"]) == \
        {"slurm_partition": "gpu", "gpus_per_node": 1, "timeout_min": 720, "mem_gb": 80.5}
    assert runner.slurm_parameters({"timeout_min": 5}) == {"timeout_min": 5}
    assert runner.slurm_parameters([]) == {} and runner.slurm_parameters(None) == {}
    with pytest.raises(IaaError, match="name=value"):
        runner.slurm_parameters(["gpus 1"])


def test_training_subset_is_seeded_ordered_and_stable(data):
    full = pd.read_csv(data["train"])
    path = runner.training_subset(data["train"], 10, seed=3)
    sub = pd.read_csv(path)
    assert path.parent == data["train"].parent / "subsets" and len(sub) == 10
    expected = np.sort(np.random.default_rng(3).choice(len(full), 10, replace=False))
    pd.testing.assert_frame_equal(sub, full.iloc[expected].reset_index(drop=True), check_dtype=False)
    mtime = path.stat().st_mtime_ns
    assert runner.training_subset(data["train"], 10, seed=3) == path
    assert path.stat().st_mtime_ns == mtime
    assert runner.training_subset(data["train"], 0) == data["train"]
    assert runner.training_subset(data["train"], 10_000) == data["train"]


def _curve_run(tmp_path, name, values) -> Run:
    run = _fake(tmp_path, name, srcc_mean=values[-1])
    with open(run.dir / "history.jsonl", "w") as fh:
        for epoch, v in enumerate(values, start=1):  # None: no test pass after this epoch
            fh.write(f'{{"epoch": {epoch}, "test_srcc_mean": {v}}}\n' if v is not None
                     else f'{{"epoch": {epoch}}}\n')
    return Run(run.dir)


def test_chance_of_moving_counts_the_sign_flips_by_hand_and_as_scipy_does(tmp_path):
    # last moves +0.03, +0.01, +0.02; finals 0.53, 0.51, 0.54 (SD 0.0153). The 8 sign patterns
    # give seed-mean moves |±3 ±1 ±2| / 300 = 0.0200 (twice), 0.0133 (twice), 0.0067 (twice) and
    # 0 (twice): only the two with every seed one way reach the SD -> 2 / 8
    runs = {("a", 0): _curve_run(tmp_path, "a0", [0.40, 0.50, 0.53]),
            ("a", 1): _curve_run(tmp_path, "a1", [0.40, 0.50, 0.51]),
            ("a", 2): _curve_run(tmp_path, "a2", [0.40, 0.52, 0.54])}
    table = runner.levelling(runs, "test_srcc_mean")
    sd = np.std([0.53, 0.51, 0.54], ddof=1)
    assert table.at["a", "move"] == pytest.approx(0.02) and not table.at["a", "levelled"]
    assert table.at["a", "p_chance"] == pytest.approx(2 / 8)
    # scipy's exact sign-flip null distribution of |mean| (a one-sample permutation test)
    stats = pytest.importorskip("scipy.stats")
    moves = np.array([0.03, 0.01, 0.02])
    for threshold in (sd, 0.01, 0.005, 0.025):
        null = stats.permutation_test((moves,), lambda x, axis: np.abs(np.mean(x, axis=axis)),
                                      permutation_type="samples", n_resamples=np.inf,
                                      vectorized=True).null_distribution
        tails = np.array([[0.50, 0.50, 0.52], [0.53, 0.51, 0.54]])
        assert runner.chance_of_moving(tails, threshold) == pytest.approx(
            np.mean(null >= threshold - 1e-12))
    # over three epochs the move is max - min of the flipped seed-mean path. Seed 0 goes out and
    # back (0, +.01, 0), seed 1 moves last (0, 0, +.01); the mean paths of the four patterns:
    # (+,+) 0 .005 .005 and (-,-) 0 -.005 -.005 move .005; (+,-) 0 .005 -.005 and (-,+) move .01
    tails = np.array([[0.50, 0.60], [0.51, 0.60], [0.50, 0.61]])
    assert runner.chance_of_moving(tails, 0.01) == pytest.approx(2 / 4)
    assert runner.chance_of_moving(tails, 0.006) == pytest.approx(2 / 4)
    assert runner.chance_of_moving(tails, 0.004) == pytest.approx(1.0)
    # a flipped seed also ends elsewhere, so each pattern has its own seed SD. Seeds from 0.50
    # and 0.52, moves +0.02 and 0: observed finals 0.52, 0.52 (SD 0) -> moving; with seed 0
    # flipped the finals are 0.48, 0.52 (SD 0.028) against a move of 0.01 -> not: 2 of 4
    tails = np.array([[0.50, 0.52], [0.52, 0.52]])
    assert runner.chance_of_moving(tails) == pytest.approx(2 / 4)
    assert runner.chance_of_moving(tails, 0.0) == pytest.approx(1.0)   # the observed SD for all
    with pytest.raises(ValueError, match="every seed"):
        runner.chance_of_moving(np.array([[0.5, 0.5], [0.52, np.nan]]))
    text = results.levelling_sentence(table, "SRCC")
    assert text.endswith("the check would call 0.2 of these 1 arms moving by chance, and pass "
                         "all 1 with probability 75%.")
    # a seed whose curve lacks the last epoch: no exact flips, so p_chance is not given
    ragged = {**runs, ("a", 3): _curve_run(tmp_path, "a3", [0.40, 0.50, None])}
    assert np.isnan(runner.levelling(ragged, "test_srcc_mean").at["a", "p_chance"])
    # a table saved before the column existed says nothing about chance
    assert "by chance" not in results.levelling_sentence(table.drop(columns="p_chance"), "SRCC")


def test_levelling_compares_the_last_move_with_the_seed_spread(tmp_path):
    # arm "flat": the seed mean moves 0.001 over the last 2 epochs, seeds end 0.50/0.52/0.54 (SD
    # 0.02) -> levelled; arm "rising": it still gains 0.05 per epoch -> not levelled
    runs = {("flat", 0): _curve_run(tmp_path, "f0", [0.30, 0.499, 0.50]),
            ("flat", 1): _curve_run(tmp_path, "f1", [0.31, 0.519, 0.52]),
            ("flat", 2): _curve_run(tmp_path, "f2", [0.32, 0.539, 0.54]),
            ("rising", 0): _curve_run(tmp_path, "r0", [0.30, 0.35, 0.40]),
            ("rising", 1): _curve_run(tmp_path, "r1", [0.31, 0.36, 0.41])}
    table = runner.levelling(runs, "test_srcc_mean")
    assert table.at["flat", "move"] == pytest.approx(0.001)
    assert table.at["flat", "seed_sd"] == pytest.approx(np.std([0.50, 0.52, 0.54], ddof=1))
    assert table.at["flat", "levelled"] and not table.at["rising", "levelled"]
    assert table.at["rising", "final"] == pytest.approx(0.405) and table.at["rising", "epochs"] == 3
    # each seed's own last step: flat +0.001 on all three, rising +0.05 on both
    assert (table.at["flat", "seeds_up"], table.at["flat", "seeds_down"]) == (3, 0)
    assert (table.at["rising", "seeds_up"], table.at["rising", "seeds_down"]) == (2, 0)
    text = results.levelling_sentence(table, "SRCC")
    assert text.startswith("1 of 2 arms have levelled off") and \
        "rising (moves 0.050, seed SD 0.007; rises on 2 of 2 seeds)" in text
    # seeds that disagree on the direction (-0.08, +0.13): a move, no trend named; both falling
    mixed = {("m", 0): _curve_run(tmp_path, "m0", [0.50, 0.60, 0.52]),
             ("m", 1): _curve_run(tmp_path, "m1", [0.50, 0.40, 0.53]),
             ("d", 0): _curve_run(tmp_path, "d0", [0.50, 0.60, 0.55]),
             ("d", 1): _curve_run(tmp_path, "d1", [0.50, 0.62, 0.56])}
    table = runner.levelling(mixed, "test_srcc_mean")
    assert (table.at["m", "seeds_up"], table.at["m", "seeds_down"]) == (1, 1)
    text = results.levelling_sentence(table, "SRCC")
    assert "m (moves 0.025, seed SD 0.007)" in text and "d (moves 0.055, seed SD 0.007; falls " \
        "on 2 of 2 seeds)" in text
    # a seed whose curve did not move at all (0.55 -> 0.55) breaks the trend of the other two
    tied = {("t", 0): _curve_run(tmp_path, "t0", [0.50, 0.60, 0.55]),
            ("t", 1): _curve_run(tmp_path, "t1", [0.50, 0.62, 0.56]),
            ("t", 2): _curve_run(tmp_path, "t2", [0.50, 0.55, 0.55])}
    table = runner.levelling(tied, "test_srcc_mean")
    assert table.loc["t", ["seeds_up", "seeds_down", "seeds"]].tolist() == [0, 2, 3]
    assert results.levelling_trend(table.loc["t"]) == ""
    # the same phrase from a levelling.json row (a dict); a row saved before the columns: none
    assert results.levelling_trend({"seeds_up": 0, "seeds_down": 3, "seeds": 3}) == \
        "; falls on 3 of 3 seeds"
    assert results.levelling_trend({"seeds_up": 0, "seeds_down": 2, "seeds": 3}) == ""
    assert results.levelling_trend({"seeds_up": 1, "seeds_down": 2}) == ""
    assert results.levelling_trend({"seeds_up": 0, "seeds_down": 3}) == "; falls on 3 of 3 seeds"
    assert results.levelling_trend({"move": 0.01}) == ""
    curves = runner.learning_curves(runs, "test_srcc_mean")
    assert list(curves.columns)[:2] == ["flat (seed 0)", "flat (seed 1)"]
    assert curves.loc[2, "rising (seed 1)"] == pytest.approx(0.36)
    one_seed = runner.levelling({("x", 0): runs[("flat", 0)]}, "test_srcc_mean")
    assert one_seed.at["x", "levelled"] is None
    assert "not assessed" in results.levelling_sentence(one_seed, "SRCC")
    # a one-epoch arm has no curve: not assessed, and named in the sentence
    short = {**runs, ("once", 0): _curve_run(tmp_path, "o0", [0.4]),
             ("once", 1): _curve_run(tmp_path, "o1", [0.5])}
    table = runner.levelling(short, "test_srcc_mean")
    assert table.at["once", "levelled"] is None and np.isnan(table.at["once", "move"])
    assert "Not assessed (one seed, or one epoch, so no curve): once." in \
        results.levelling_sentence(table, "SRCC")
    # epochs without a test pass (monitor_every > 1) are left out of the curve, not NaN
    sparse = {("s", 0): _curve_run(tmp_path, "s0", [0.3, None, 0.5, None, 0.6])}
    assert list(runner.learning_curves(sparse, "test_srcc_mean")["s (seed 0)"].dropna()) == \
        [0.3, 0.5, 0.6]


def test_describe_names_the_input_and_the_schedule(data):
    cfg = tiny_config(data, family="mtcnn1", val=False)
    text = runner.describe(cfg.with_overrides({"optim.schedule": "step", "optim.step_size": 6}))
    assert f"{cfg.epochs} epoch(s)" in text and "(×0.1 every 6 epochs)" in text
    assert cfg.with_overrides({"model.stem": "efficientnet_lite0:16"}).config_hash()[:10] in \
        runner.describe(cfg.with_overrides({"model.stem": "efficientnet_lite0:16"}))
    assert "above the frozen stem efficientnet_lite0:16" in runner.describe(
        cfg.with_overrides({"model.stem": "efficientnet_lite0:16"}))
    assert "cached, shifted up to 1 cell(s))" in runner.describe(
        cfg.with_overrides({"model.stem": "efficientnet_lite0:16", "data.stem_shift": 1}))
    assert "moving average" not in text
    assert "moving average of the weights over ~1 epoch(s)" in runner.describe(
        cfg.with_overrides({"optim.ema_epochs": 1.0}))


def test_a_pool_worker_survives_an_interrupt_and_keeps_serving():
    """Jupyter interrupts a kernel's whole process group (papermill at a notebook's end, "interrupt
    kernel"): a grid's worker ignores SIGINT, so it neither dies mid-run nor prints a traceback."""
    import os
    import signal
    import time

    pool = runner._worker_pool(1)
    pid = pool.submit(os.getpid).result()
    os.kill(pid, signal.SIGINT)
    time.sleep(0.5)
    assert pool.submit(os.getpid).result() == pid


def test_training_slots_let_at_most_their_number_of_runs_train_at_once(home):
    """Two holders of the two slots, then a third that must wait until one of them lets go (the
    locks are per open file, so threads of one process contend like processes do)."""
    import threading
    import time

    log = []

    def hold(name, seconds):
        with runner.training_slot(2, poll=0.02):
            log.append(("in", name, time.perf_counter()))
            time.sleep(seconds)
            log.append(("out", name, time.perf_counter()))

    first = [threading.Thread(target=hold, args=(n, 0.6)) for n in ("a", "b")]
    for t in first:
        t.start()
    time.sleep(0.2)
    late = threading.Thread(target=hold, args=("c", 0.0))
    late.start()
    for t in (*first, late):
        t.join()
    at = {(what, name): t for what, name, t in log}
    assert at[("in", "b")] < at[("out", "a")]                  # two at once
    assert at[("in", "c")] >= min(at[("out", "a")], at[("out", "b")])  # the third waited
    assert sorted(p.name for p in (home / "slots").iterdir()) == ["0.lock", "1.lock"]
    with runner.training_slot(0):                               # no slots: nothing to wait for
        pass


def test_longest_first_orders_runs_by_their_training_flops(data, caplog):
    """Three epochs cost three times one (the same network and manifests); a wider network costs
    more per image; a config whose manifest is missing leaves the grid's order, with a warning."""
    from iaalib.engine.cost import forward_flops, run_flops
    from iaalib.models.factory import build_model

    short = tiny_config(data, family="mtcnn1", epochs=1)
    long_ = short.with_overrides({"epochs": 3, "name": "long"})
    wide = short.with_overrides({"model.width_mult": 1.0, "name": "wide"})
    assert [c.name for c in runner.longest_first([short, long_, wide])][0] in {"long", "wide"}
    assert runner.longest_first([short, long_]) == [long_, short]
    assert runner.longest_first([long_, short]) == [long_, short]
    # run_flops = forward FLOPs × (3 × epochs × training rows + test passes × test rows)
    model = build_model(short.model, num_tags=3)
    fwd = forward_flops(model, (3, short.data.crop, short.data.crop))
    n_train = len(pd.read_csv(short.data.train))
    n_test = len(pd.read_csv(short.data.test))
    passes = 1 if not short.monitor_test else short.epochs
    assert run_flops(short) == pytest.approx(fwd * (3 * n_train + passes * n_test))
    assert run_flops(wide) > run_flops(short)
    broken = short.with_overrides({"data.train": str(data["train"]) + ".missing", "name": "b"})
    with caplog.at_level("WARNING"):
        assert runner.longest_first([short, broken, long_]) == [short, broken, long_]
    assert "cannot estimate the runs' cost" in caplog.text


def test_pool_workers_train_into_the_grid_home_not_the_one_they_started_with(data, tmp_path,
                                                                             monkeypatch):
    """A grid's workers (and the fork server they come from) keep the environment of their start;
    a later grid under another IAA_HOME (a notebook or test that sets it) must still put its runs,
    slots and caches there, not in the home the workers started with."""
    monkeypatch.setenv("IAA_HOME", str(tmp_path / "first"))
    runner._worker_pool(2).submit(int).result()  # the pool starts under the first home
    monkeypatch.setenv("IAA_HOME", str(tmp_path / "second"))
    cfg = tiny_config(data, family="mtcnn1", epochs=1, val=False)
    runs = runner.run_grid({"a": cfg, "b": cfg.with_overrides({"seed": 1})}, workers=2, echo=None)
    for run in runs.values():
        assert run.dir.parent == tmp_path / "second" / "runs" and (run.dir / "run.json").is_file()
    assert not (tmp_path / "first" / "runs").exists()


def test_levelling_checks_are_saved_and_gathered_once_per_arm(tmp_path, monkeypatch):
    import json

    from iaalib.book import pipeline
    from iaalib.studies import summary

    monkeypatch.setenv("IAA_HOME", str(tmp_path / "home"))
    # arm "a" (runs kao-a-s0/s1): the seed mean ends 0.50 -> 0.51, move 0.01; seeds end 0.49 and
    # 0.53, SD 0.0283 -> levelled. Arm "b": 0.40 -> 0.46, move 0.06; seeds end 0.45/0.47, SD
    # 0.0141 -> still moving. Arm "c" has one seed: not assessed.
    a = {("a", s): _curve_run(tmp_path, f"kao-a-s{s}", v)
         for s, v in enumerate([[0.30, 0.48, 0.49], [0.31, 0.52, 0.53]])}
    b = {("b", s): _curve_run(tmp_path, f"kao-b-s{s}", v)
         for s, v in enumerate([[0.20, 0.39, 0.45], [0.21, 0.41, 0.47]])}
    c = {("c", 0): _curve_run(tmp_path, "kao-c-s0", [0.1, 0.2])}
    first, second = runner.levelling({**a, **b}, "test_srcc_mean"), runner.levelling(
        {**a, **c}, "test_srcc_mean")
    assert first["run"].tolist() == ["kao-a", "kao-b"]
    results.save_levelling(first, "saf_table2", "demo", runs=runner.run_dirs({**a, **b}), metric="SRCC")
    results.save_levelling(second, "a_extra", "demo", runs=runner.run_dirs({**a, **c}), metric="SRCC")

    gathered = summary.levelling("demo")
    # arm "a" is in both tables (same runs): counted once, under the first in book order (the
    # book's tables by name, in chapter order, then others); the book's tables get their names
    assert gathered.index.tolist() == ["SAF Table 2: a", "SAF Table 2: b", "a_extra: c"]
    assert gathered["levelled"].tolist() == [True, False, None]
    assert gathered.at["SAF Table 2: b", "move"] == pytest.approx(0.06)
    assert gathered.at["SAF Table 2: a", "seed_sd"] == pytest.approx(np.std([0.49, 0.53], ddof=1))
    assert gathered.attrs["last"] == 2 and set(gathered["metric"]) == {"SRCC"}
    assert results.levelling_sentence(gathered, "test metric").startswith(
        "1 of 2 arms have levelled off")

    counts = pipeline.write_levelling(tmp_path / "levelling.json", "demo")
    rows = json.loads((tmp_path / "levelling.json").read_text())
    assert counts == {"assessed": 2, "levelled": 1}
    assert [(r["table"], r["arm"], r["levelled"]) for r in rows] == \
        [("saf_table2", "a", True), ("saf_table2", "b", False), ("a_extra", "c", None)]
    assert rows[2]["seed_sd"] is None and rows[0]["run"] == "kao-a"
    assert summary.levelling("other").empty
    # a chapter whose runs have no curve (monitor_test off, the rehearsal profile) saves an empty
    # table: gathered as nothing, not as a crash
    nothing = runner.levelling({("x", 0): _fake(tmp_path, "kao-x-s0")}, "test_srcc_mean")
    assert nothing.empty
    results.save_levelling(nothing, "kao_table1", "bare", runs=[], metric="SRCC")
    assert summary.levelling("bare").empty
    assert pipeline.write_levelling(tmp_path / "bare.json", "bare") == {"assessed": 0, "levelled": 0}
