"""AspectRatioBucketSampler: coverage, bucketing, determinism, DDP shards, mid-epoch resume, and the
DataLoader path (workers vs main process, resume) end to end with AvaImageDataset."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from iaalib.data.images import AvaImageDataset, collate_batch, saf_transform
from iaalib.data.sampler import AspectRatioBucketSampler

COMMON = np.array([1.5, 4 / 3, 1.0, 2 / 3, 0.75, 1.4, 16 / 9, 0.5, 2.5])


def real_like_ratios(n, seed=0):
    """Mostly AVA's common ratios plus a continuum of cropped photos."""
    rng = np.random.default_rng(seed)
    ratios = rng.choice(COMMON, n)
    free = rng.random(n) < 0.3
    ratios[free] = np.exp(rng.uniform(np.log(0.4), np.log(3.0), free.sum()))
    return ratios


def flat(batches):
    return [i for b in batches for i in b]


@pytest.mark.parametrize("batch_size", [1, 3, 8, 64])
@pytest.mark.parametrize("shuffle", [True, False])
def test_every_index_once_per_epoch(batch_size, shuffle):
    ratios = real_like_ratios(503)
    sampler = AspectRatioBucketSampler(ratios, batch_size, shuffle=shuffle, seed=1)
    for epoch in range(2):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        assert len(batches) == len(sampler)
        assert sorted(flat(batches)) == list(range(503))
        assert all(1 <= len(b) <= batch_size for b in batches)
    if not shuffle:
        assert all(b == sorted(b) for b in batches)


def test_batch_members_share_a_bucket():
    ratios = real_like_ratios(1000)
    width = 0.05
    sampler = AspectRatioBucketSampler(ratios, 16, bucket_width=width)
    for batch in sampler:
        logs = np.log(ratios[batch])
        assert logs.max() - logs.min() <= width + 1e-12
        # same rounded bucket: round(log r / width) is one value
        assert len(set(np.rint(logs / width).astype(int))) == 1
    # wider buckets → fewer batches
    assert len(AspectRatioBucketSampler(ratios, 16, bucket_width=0.3)) < len(sampler)


def test_epoch_and_seed_determinism():
    ratios = real_like_ratios(300)
    a = AspectRatioBucketSampler(ratios, 8, seed=5)
    b = AspectRatioBucketSampler(ratios, 8, seed=5)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    a.set_epoch(0)
    assert list(a) == first
    assert list(AspectRatioBucketSampler(ratios, 8, seed=6)) != first


def test_deterministic_across_processes():
    ratios = real_like_ratios(200).tolist()
    code = ("import json, sys; from iaalib.data.sampler import AspectRatioBucketSampler as S; "
            "r = json.loads(sys.stdin.read()); s = S(r, 7, seed=11, num_replicas=3, rank=2); "
            "s.set_epoch(4); print(json.dumps(list(s)))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], input=json.dumps(ratios), env=env,
                         capture_output=True, text=True, check=True).stdout
    here = AspectRatioBucketSampler(ratios, 7, seed=11, num_replicas=3, rank=2)
    here.set_epoch(4)
    assert json.loads(out) == list(here)


@pytest.mark.parametrize("n,batch_size,replicas", [(240, 8, 3), (203, 8, 3), (50, 4, 4), (5, 4, 4)])
def test_rank_shards(n, batch_size, replicas):
    ratios = real_like_ratios(n)
    full = AspectRatioBucketSampler(ratios, batch_size, seed=2)
    full.set_epoch(3)
    all_batches = list(full)
    shards = []
    for rank in range(replicas):
        s = AspectRatioBucketSampler(ratios, batch_size, seed=2, num_replicas=replicas, rank=rank)
        s.set_epoch(3)
        shards.append(list(s))
        assert len(shards[-1]) == len(s)
    # Every rank the same number of batches; together they cover every index.
    assert len({len(s) for s in shards}) == 1
    assert sorted(set(flat(flat(shards)))) == list(range(n))
    # Padding repeats the first batches of the epoch's order, nothing else.
    pad = (-len(all_batches)) % replicas
    assert Counter(map(tuple, flat(shards))) == Counter(map(tuple, all_batches + [
        all_batches[i % len(all_batches)] for i in range(pad)]))
    if pad == 0:  # shards are disjoint
        assert len(flat(flat(shards))) == n
    # drop_last: full batches only, equal counts, disjoint shards
    dropped = [list(AspectRatioBucketSampler(ratios, batch_size, seed=2, drop_last=True,
                                             num_replicas=replicas, rank=r)) for r in range(replicas)]
    assert len({len(s) for s in dropped}) == 1
    members = flat(flat(dropped))
    assert len(members) == len(set(members))
    assert all(len(b) == batch_size for b in flat(dropped))


def test_set_start_batch_resumes_the_same_sequence():
    ratios = real_like_ratios(400)
    sampler = AspectRatioBucketSampler(ratios, 8, seed=9, num_replicas=2, rank=1)
    sampler.set_epoch(2)
    full = list(sampler)
    sampler.set_start_batch(10)
    assert len(sampler) == len(full) - 10
    assert list(sampler) == full[10:]
    assert list(sampler) == full[10:]  # every pass over this epoch (DataLoader iterates twice)
    sampler.set_epoch(2)
    assert list(sampler) == full[10:]  # same epoch: kept
    sampler.set_epoch(3)
    assert len(sampler) == len(full) and sorted(flat(sampler)) != sorted(flat(full[10:]))  # reset
    sampler.set_epoch(2)
    assert list(sampler) == full
    fresh = AspectRatioBucketSampler(ratios, 8, seed=9, num_replicas=2, rank=1)
    fresh.set_epoch(2)
    fresh.set_start_batch(len(full) + 5)
    assert len(fresh) == 0 and list(fresh) == []


def test_invalid_arguments():
    for bad in [dict(aspect_ratios=[1.0, 0.0], batch_size=2), dict(aspect_ratios=[1.0, np.nan], batch_size=2),
                dict(aspect_ratios=[1.0], batch_size=0), dict(aspect_ratios=[1.0], batch_size=2, rank=1),
                dict(aspect_ratios=[1.0], batch_size=2, bucket_width=0)]:
        with pytest.raises(ValueError):
            AspectRatioBucketSampler(**bad)


# ------------------------------------------------------------------ DataLoader, workers, resume
@pytest.fixture(scope="module")
def small_dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bucket_ds")
    rng = np.random.default_rng(0)
    sizes = [(200, 150), (150, 200), (160, 160), (210, 140), (200, 150), (150, 200), (170, 170),
             (203, 150), (150, 200), (300, 100), (200, 150), (160, 160)]
    ids = list(range(500, 500 + len(sizes)))
    for image_id, (w, h) in zip(ids, sizes):
        Image.fromarray(rng.integers(0, 255, (h, w, 3), dtype=np.uint8)).save(root / f"{image_id}.jpg")
    (root / "508.jpg").write_bytes(b"broken")  # one bad image: skipped and counted in every mode
    votes = rng.integers(1, 30, (len(ids), 10))
    frame = pd.DataFrame(votes, columns=[f"vote_{i}" for i in range(1, 11)])
    frame.insert(0, "image_id", ids)
    frame["mean"] = (votes / votes.sum(1, keepdims=True)) @ np.arange(1, 11)
    frame["label"] = (frame["mean"] > 5).astype(int)
    return frame, root


def _run(frame, root, *, workers, epoch=1, start=0):
    ds = AvaImageDataset(frame, root, saf_transform(True, short_edge=96), seed=7,
                         cache_dir=root / "cache")
    sampler = AspectRatioBucketSampler(ds.aspect_ratios(), 3, seed=7)
    ds.set_epoch(epoch)
    sampler.set_epoch(epoch)
    sampler.set_start_batch(start)
    loader = DataLoader(ds, batch_sampler=sampler, collate_fn=collate_batch, num_workers=workers)
    return list(loader)


def _same(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            if torch.is_tensor(x[key]):
                assert torch.equal(x[key], y[key]), key
            else:
                assert x[key] == y[key], key


def test_dataloader_workers_do_not_change_batches(small_dataset):
    frame, root = small_dataset
    main = _run(frame, root, workers=0)
    _same(main, _run(frame, root, workers=2))
    assert sum(b["n_skipped"] for b in main) == 1
    assert sum(len(b["index"]) for b in main) == len(frame) - 1
    for batch in main:  # bucketed whole images: short edge 96, tiny crop at most
        if len(batch["index"]):
            assert min(batch["image"].shape[-2:]) == 96
    other_epoch = _run(frame, root, workers=0, epoch=2)
    assert [b["index"].tolist() for b in other_epoch] != [b["index"].tolist() for b in main]


def test_resume_mid_epoch_sees_the_same_augmented_images(small_dataset):
    frame, root = small_dataset
    full = _run(frame, root, workers=0, epoch=3)
    _same(full[2:], _run(frame, root, workers=2, epoch=3, start=2))


def test_loader_workers_of_a_spawned_run_are_forked_not_reimported():
    """A grid's run trains in a worker of the runner's pool (fork server or spawn), whose children
    would start the same way (each loader worker importing torch again, every epoch); make_loader
    forks them
    (loaders.worker_start_method)."""
    from engine_helpers import loader_workers_share_the_parent_state

    from iaalib.studies import runner

    pool = runner._worker_pool(1)
    ours = pool.submit(loader_workers_share_the_parent_state, True).result()
    default = pool.submit(loader_workers_share_the_parent_state, False).result()
    assert ours == [1.0, 1.0]
    assert default == [0.0, 0.0]  # the control: a plain DataLoader there does not fork
