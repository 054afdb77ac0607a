"""iaalib.viz: each plot draws exactly the data it is given (checked against numpy/scipy references
and hand-computed examples), and bad input gives a clear error."""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import PathCollection
from matplotlib.colors import to_hex
from matplotlib.figure import Figure
from PIL import Image

from iaalib import viz


def _bars(ax):
    return [p for p in ax.patches if p.__class__.__name__ == "Rectangle"]


def test_tag_histogram_sorts_colours_and_draws_threshold():
    counts = {"Sky": 5, "Floral": 40, "Macro": 12, "Nude": 1}
    fig = viz.tag_histogram(counts, threshold=10, kept=["Floral", "Macro"])
    assert isinstance(fig, Figure)
    ax = fig.axes[0]
    heights = [b.get_height() for b in _bars(ax)]
    assert heights == [40, 12, 5, 1]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["Floral", "Macro", "Sky", "Nude"]
    colours = [to_hex(b.get_facecolor()) for b in _bars(ax)]
    assert colours == [viz.KEPT_COLOUR, viz.KEPT_COLOUR, viz.DROPPED_COLOUR, viz.DROPPED_COLOUR]
    (line,) = ax.get_lines()
    assert set(line.get_ydata()) == {10}
    assert "2 of 4 tags kept" in ax.get_title()
    with pytest.raises(ValueError):
        viz.tag_histogram({})


def test_score_histogram_counts_match_numpy_and_marks_delta():
    rng = np.random.default_rng(0)
    means = np.clip(rng.normal(5.4, 0.7, 1000), 1, 10)
    fig = viz.score_histogram(means, bins=30, delta=1.0)
    ax = fig.axes[0]
    expected, _ = np.histogram(means, bins=np.linspace(1, 10, 31))
    assert [b.get_height() for b in _bars(ax)] == list(expected)
    assert sorted(line.get_xdata()[0] for line in ax.get_lines()) == [4.0, 5.0, 6.0]


def test_score_histogram_overlay_is_a_density_per_dataset():
    a, b = np.linspace(2, 8, 100), np.linspace(4, 6, 300)
    fig = viz.score_histogram({"a": a, "b": b}, bins=18)
    bars = _bars(fig.axes[0])
    assert len(bars) == 36
    width = 9 / 18
    for chunk in (bars[:18], bars[18:]):
        assert sum(r.get_height() for r in chunk) * width == pytest.approx(1.0)


def test_votes_per_image_counts_every_image():
    votes = np.array([78, 100, 210, 210, 549])
    fig = viz.votes_per_image(votes, bins=10)
    assert sum(b.get_height() for b in _bars(fig.axes[0])) == len(votes)
    assert "mean 229.4" in fig.axes[0].get_legend().get_texts()[0].get_text()


def test_sd_vs_mean_bins_every_point_and_checks_lengths():
    rng = np.random.default_rng(1)
    mean, sd = rng.uniform(3, 7, 500), rng.uniform(1, 2, 500)
    fig = viz.sd_vs_mean(mean, sd, gridsize=10)
    hexbin = fig.axes[0].collections[0]
    assert hexbin.get_array().sum() == 500
    with pytest.raises(ValueError, match="500 values, sd has 3"):
        viz.sd_vs_mean(mean, sd[:3])


def test_score_distribution_marks_the_mean():
    votes = [0, 0, 0, 1, 2, 1, 0, 0, 0, 0]  # mean = (4 + 10 + 6) / 4 = 5.0
    fig = viz.score_distribution(votes)
    ax = fig.axes[0]
    assert [b.get_height() for b in _bars(ax)] == votes
    (line,) = ax.get_lines()
    assert line.get_xdata()[0] == pytest.approx(5.0)
    assert fig.axes[1].get_ylim()[1] == pytest.approx(ax.get_ylim()[1] / 4)
    with pytest.raises(ValueError):
        viz.score_distribution([1, 2, 3])


def test_correlation_heatmap_draws_the_matrix():
    m = np.array([[1.0, 0.3, -0.2], [0.3, 1.0, 0.5], [-0.2, 0.5, 1.0]])
    fig = viz.correlation_heatmap(m, ["aesthetic", "Landscape", "Floral"])
    mesh = fig.axes[0].collections[0]
    np.testing.assert_allclose(np.asarray(mesh.get_array()).reshape(3, 3), m)
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == ["aesthetic", "Landscape", "Floral"]
    with pytest.raises(ValueError):
        viz.correlation_heatmap(m, ["a", "b"])


def test_per_tag_accuracy_draws_one_bar_per_tag_and_method():
    table = pd.DataFrame({"λ=0": [72.2, 70.0], "λ=1/29": [76.2, 74.0]}, index=["Overall", "Landscape"])
    fig = viz.per_tag_accuracy(table)
    heights = [b.get_height() for b in _bars(fig.axes[0])]
    assert heights == [72.2, 70.0, 76.2, 74.0]


def test_normalise_filters_by_hand():
    w = np.zeros((2, 3, 2, 2))
    w[0, 0] = [[0.0, 1.0], [2.0, 3.0]]  # min 0 (other channels), max 3
    w[1] = 7.0  # constant filter
    tiles = viz.normalise_filters(w)
    assert tiles.shape == (2, 2, 2, 3)
    np.testing.assert_allclose(tiles[0, :, :, 0], [[0, 1 / 3], [2 / 3, 1]])
    np.testing.assert_allclose(tiles[0, :, :, 1], 0.0)
    np.testing.assert_allclose(tiles[1], 0.5)
    grey = viz.normalise_filters(np.arange(8.0).reshape(2, 1, 2, 2))
    assert grey.shape == (2, 2, 2, 3) and np.allclose(grey[..., 0], grey[..., 2])
    # above a frozen stem the first trained layer reads C_in activation maps: the L2 norm over
    # the inputs, by hand: (3, 4) -> 5 and (0, 1) -> 1, min-max scaled to 1 and 0
    stem = np.zeros((1, 2, 1, 2))
    stem[0, :, 0, 0], stem[0, :, 0, 1] = [3.0, 4.0], [0.0, 1.0]
    np.testing.assert_allclose(viz.normalise_filters(stem)[0, 0, :, 0], [1.0, 0.0])
    with pytest.raises(ValueError):
        viz.normalise_filters(np.zeros((4, 5, 3)))


def test_filter_grid_shows_each_filter_once():
    w = np.random.default_rng(0).normal(size=(10, 3, 5, 5))
    fig = viz.filter_grid(w, ncols=4)
    images = [ax.images[0].get_array() for ax in fig.axes if ax.images]
    assert len(images) == 10 and len(fig.axes) == 12
    np.testing.assert_allclose(np.asarray(images[3]), viz.normalise_filters(w)[3])


def test_image_grid_from_arrays_and_files(tmp_path):
    a = np.zeros((4, 6, 3), dtype=np.uint8)
    a[:, :3] = 255
    path = tmp_path / "x.png"
    Image.fromarray(a).save(path)
    chw = np.transpose(a.astype(float) / 255.0, (2, 0, 1))
    fig = viz.image_grid([a, path, chw], titles=["a", "b", "c"], ncols=2)
    shown = [np.asarray(ax.images[0].get_array()) for ax in fig.axes if ax.images]
    assert len(shown) == 3
    np.testing.assert_array_equal(shown[0], a)
    np.testing.assert_array_equal(shown[1], a)
    np.testing.assert_allclose(shown[2], a / 255.0)
    with pytest.raises(ValueError, match="3 images but 2 titles"):
        viz.image_grid([a, a, a], titles=["a", "b"])


def test_tsne_embedding_separates_clusters_and_is_seeded():
    rng = np.random.default_rng(0)
    x = np.vstack([rng.normal(0, 0.1, (30, 8)), rng.normal(5, 0.1, (30, 8))])
    e1 = viz.tsne_embedding(x, seed=3)
    e2 = viz.tsne_embedding(x, seed=3)
    assert e1.shape == (60, 2)
    np.testing.assert_allclose(e1, e2)
    c1, c2 = e1[:30].mean(0), e1[30:].mean(0)
    spread = max(np.linalg.norm(e1[:30] - c1, axis=1).max(), np.linalg.norm(e1[30:] - c2, axis=1).max())
    assert np.linalg.norm(c1 - c2) > 2 * spread
    assert viz.tsne_embedding(x[:8]).shape == (8, 2)  # perplexity capped for tiny sets


def test_tsne_scatter_colours_points_by_value():
    pts = np.array([[0.0, 0.0], [1.0, 1.0], [2.0, 0.5]])
    vals = np.array([3.0, 5.0, 7.0])
    fig = viz.tsne_scatter({"truth": (pts, vals), "predicted": (pts, vals + 1)})
    scatters = [c for ax in fig.axes for c in ax.collections if isinstance(c, PathCollection)]
    assert len(scatters) == 2
    np.testing.assert_allclose(scatters[0].get_offsets(), pts)
    np.testing.assert_allclose(scatters[1].get_array(), vals + 1)
    assert scatters[0].get_clim() == (3.0, 8.0)  # one shared colour scale
    with pytest.raises(ValueError):
        viz.tsne_scatter(pts, vals[:2])


def test_gradcam_overlay_resizes_maps_and_adds_rows_per_model():
    imgs = np.zeros((2, 8, 8, 3))
    cams = {"AE": np.ones((2, 2, 2)) * 0.25, "SAF": np.ones((2, 4, 4))}
    fig = viz.gradcam_overlay(imgs, cams, titles=["a", "b"])
    axes = np.array(fig.axes).reshape(3, 2)
    assert len(axes[0, 0].images) == 1 and len(axes[1, 0].images) == 2
    cam = np.asarray(axes[1, 1].images[1].get_array())
    assert cam.shape == (8, 8) and np.allclose(cam, 0.25)  # a constant map stays constant
    assert axes[2, 0].get_ylabel() == "SAF"
    with pytest.raises(ValueError):
        viz.gradcam_overlay(imgs, np.ones((3, 8, 8)))


def test_levelling_table_shows_three_decimals_and_a_dash_where_not_assessed():
    t = pd.DataFrame({"final": [0.61234, 0.5], "move": [0.00444, np.nan],
                      "seed_sd": [0.00101, np.nan], "levelled": [False, None]},
                     index=["MTCNN #3", "one seed"])
    html = viz.levelling_table(t, caption="Levelled?").to_html()
    for text in ("0.612", "0.004", "0.001", "0.500", "—", "Levelled?"):
        assert text in html
    assert "0.61234" not in html and "caption" not in viz.levelling_table(t).to_html()
    html = viz.levelling_table(t.assign(p_chance=[0.25, np.nan])).to_html()
    assert ">0.25<" in html and ">0.250<" not in html


def test_paper_vs_ours_adds_delta_and_shades_by_tolerance():
    t = pd.DataFrame({"paper": [76.15, 72.19, np.nan], "ours": [76.0, 60.0, 70.0],
                      "profile": ["demo"] * 3}, index=["a", "b", "c"])
    styler = viz.paper_vs_ours(t, rel_tol=0.01)
    df = styler.data
    np.testing.assert_allclose(df["Δ (ours − paper)"].to_numpy()[:2], [-0.15, -12.19])
    html = styler.to_html()
    assert html.count("#d9f2d9") >= 1 and html.count("#fde9c8") >= 1
    assert "—" in html  # the missing paper number
    assert "Δ (ours − paper)" not in viz.paper_vs_ours(t, show_delta=False).data.columns
    with pytest.raises(KeyError):
        viz.paper_vs_ours(t, paper="missing")
