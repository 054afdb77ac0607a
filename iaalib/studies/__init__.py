"""The papers' experiments as code: which runs each table needs, and where the paper's own numbers live.

* ``paper``   — the numbers and claims printed in the papers (``paper_results.yaml``), as data.
* ``results`` — result tables written by the notebooks with the provenance of every run behind them.
* ``kao``     — Kao et al.'s Tables I–V and figures as grids of experiment configs.
* ``saf``     — the SAF paper's Tables 2–5, ablations and visualisations as grids of experiment configs.
"""
