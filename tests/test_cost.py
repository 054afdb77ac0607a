"""iaalib.engine.cost: FLOPs per image against closed forms, and the GPU-time arithmetic by hand."""
from __future__ import annotations

import json

import pytest
from torch import nn

from iaalib.book import pages
from iaalib.engine.config import ExperimentConfig
from iaalib.engine.cost import forward_flops, input_shape, schedule_flops, summarise_costs


def test_forward_flops_of_a_conv_and_a_linear_layer_are_the_closed_form():
    """Conv 3→8, 3×3, padding 1 on 16×16: 2·3·8·9·16·16 FLOPs; then Linear 8·16·16 → 5."""
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1, bias=False), nn.Flatten(),
                          nn.Linear(8 * 16 * 16, 5, bias=False))
    model.train()
    assert forward_flops(model, (3, 16, 16)) == 2 * 3 * 8 * 9 * 256 + 2 * 8 * 256 * 5
    assert model.training                                     # the mode is restored


def test_input_shape_is_the_kao_crop_or_the_saf_short_edge_of_an_ava_photo():
    kao = ExperimentConfig.from_dict({"data": {"transform": "kao", "crop": 227}})
    saf = ExperimentConfig.from_dict({"data": {"transform": "saf", "short_edge": 256},
                                      "model": {"family": "saf"}})
    assert input_shape(kao) == (3, 227, 227)
    assert input_shape(saf) == (3, 256, round(256 * 720 / 509))      # 720 x 509 landscape
    assert input_shape(saf, size=(500, 750)) == (3, 384, 256)       # portrait


def test_schedule_flops_counts_three_passes_per_training_image_and_the_test_passes():
    assert schedule_flops(10.0, epochs=2, n_train=100, n_test=7, monitor_test=False) == \
        10.0 * (3 * 2 * 100 + 7)
    # monitored after both epochs; the last epoch's pass is the final one
    assert schedule_flops(10.0, epochs=2, n_train=100, n_test=7, monitor_test=True) == \
        10.0 * (3 * 2 * 100 + 2 * 7)
    # ... unless a validation set picks the checkpoint: one more pass at the end
    assert schedule_flops(10.0, epochs=2, n_train=100, n_test=7, monitor_test=True,
                          has_val=True) == 10.0 * (3 * 2 * 100 + 3 * 7)
    # every 4th epoch of 10 (4, 8) and the last (10)
    assert schedule_flops(10.0, epochs=10, n_train=100, n_test=7, monitor_test=True,
                          monitor_every=4) == 10.0 * (3 * 10 * 100 + 3 * 7)


def test_summarise_costs_by_hand_and_the_books_table(tmp_path):
    rows = [{"family": "saf", "cpu_s_per_image": 2.0, "peak_memory_mib": 900.0,
             "forward_gflops_per_image": 94.0, "ava_flops": 3.6e18},
            {"family": "saf", "cpu_s_per_image": 4.0, "peak_memory_mib": 1100.0,
             "forward_gflops_per_image": 94.0, "ava_flops": 3.6e18},
            {"family": "mtcnn1", "cpu_s_per_image": 0.5, "peak_memory_mib": None,
             "forward_gflops_per_image": 1.5, "ava_flops": 1.8e18}]
    s = summarise_costs(rows, seeds=3, gpu_tflops=1000.0, utilisation=0.5)
    saf = s["families"]["saf"]
    assert saf["runs_per_seed"] == 2 and saf["cpu_s_per_training_image"] == 3.0
    assert saf["peak_memory_mib_max"] == 1100.0 and s["families"]["mtcnn1"]["peak_memory_mib_max"] is None
    # 3 seeds x 7.2e18 FLOPs at 5e14 FLOP/s = 43,200 s = 12 h
    assert saf["ava_gpu_hours"] == pytest.approx(12.0)
    assert s["ava_gpu_hours_total"] == pytest.approx(15.0) and s["share_by_family"]["saf"] == 0.8
    report = {**s, "assumptions": {"gpu": "a GPU", "ava_seeds": 3, "flops": "f", "cpu_time": "c",
                                   "memory": "m"},
              "rehearsal_build": {"seconds": 400.0}, "measured": "today", "git_revision": "abc",
              "machine": {"cpus": 2}}
    path = tmp_path / "ava_estimate.json"
    path.write_text(json.dumps(report))
    md = pages.ava_estimate_markdown(path)
    path.unlink()
    assert "| saf | 2 | 3.000 | 94.0 | 1,100 | 12.00 | 80% |" in md
    assert "| mtcnn1 | 1 | 0.500 | 1.5 | — | 3.00 | 20% |" in md
    assert "about 15.0 GPU hours" in md and "took 400 s" in md
    assert "No rehearsal" in pages.ava_estimate_markdown(path)        # missing: says how to make it


def test_forward_flops_of_vgg16_match_the_known_count():
    """torchvision's VGG16 classifier at 224²: 15.5 GMACs, i.e. about 31 GFLOPs (its model card)."""
    from torchvision import models as tvm

    flops = forward_flops(tvm.vgg16(), (3, 224, 224))
    assert flops / 1e9 == pytest.approx(30.95, rel=0.01)
