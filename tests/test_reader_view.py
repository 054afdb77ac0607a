"""iaalib.book.reader: which cells the rendered book removes or hides (the executed notebook keeps
them all)."""
from __future__ import annotations

import json

from iaalib.book import reader


def _code(source: str, *tags: str) -> dict:
    return {"cell_type": "code", "metadata": {"tags": list(tags)}, "source": source,
            "outputs": [], "execution_count": 1}


def test_injected_parameters_are_removed_and_the_parameters_cell_kept():
    assert reader.reader_tags(_code('profile = "smoke"\n', "injected-parameters")) == \
        ["injected-parameters", "remove-cell"]
    assert reader.reader_tags(_code('profile = "demo"\n', "parameters")) == ["parameters"]


def test_bookkeeping_only_cells_lose_their_input():
    glue_only = _code('glue("n", 3, display=False)\nglue("m", 4, display=False)\n')
    assert reader.reader_tags(glue_only) == ["remove-input"]
    styled = _code('table.style.format("{:.3f}").set_caption("x")\n')
    assert reader.reader_tags(styled) == ["remove-input"]
    md = _code('display(Markdown(claims.claims_box("kao", ["table1"])))\n')
    assert reader.reader_tags(md) == ["remove-input"]


def test_mostly_bookkeeping_cells_are_collapsed_unless_they_teach():
    mostly = _code('x = frame["a"].mean()\nglue("a", x, display=False)\n'
                   'frame.style.format("{:.2f}")\n')
    assert reader.reader_tags(mostly) == ["hide-input"]
    teaching = _code('runs = runner.run_grid(grid)\nglue("n", len(runs), display=False)\n'
                     'glue("m", 1, display=False)\n')
    assert reader.reader_tags(teaching) == []
    code = _code('runs = runner.run_grid(grid)\ntable = runner.metric_table(runs)\n')
    assert reader.reader_tags(code) == []
    # a styled table built by a teaching call keeps its code visible
    assert reader.reader_tags(_code('runner.run_grid(g)["a"].style.format("{}")\n')) == []


def test_own_tags_and_markdown_are_left_alone():
    assert reader.reader_tags(_code('glue("a", 1)\n', "hide-input")) == ["hide-input"]
    assert reader.reader_tags({"cell_type": "markdown", "metadata": {}, "source": "# t"}) == []
    # magics and a syntax error do not break the rules
    assert reader.reader_tags(_code('%matplotlib inline\nglue("a", 1)\n')) == ["remove-input"]
    assert reader.reader_tags(_code('def broken(:\n')) == []


def test_apply_rewrites_the_staged_copy(tmp_path):
    nb = {"cells": [_code('profile = "x"\n', "injected-parameters"), _code('glue("a", 1)\n'),
                    _code('runs = runner.run_grid(grid)\n')], "metadata": {}, "nbformat": 4,
          "nbformat_minor": 5}
    path = tmp_path / "nb.ipynb"
    path.write_text(json.dumps(nb))
    assert reader.apply_reader_tags(path) == {"remove-cell": 1, "remove-input": 1}
    cells = json.loads(path.read_text())["cells"]
    assert [c["metadata"]["tags"] for c in cells] == [["injected-parameters", "remove-cell"],
                                                     ["remove-input"], []]
