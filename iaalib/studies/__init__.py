"""The papers' experiments as code: which runs each table needs, and how each claim is tested.

* ``paper``   — the numbers and claims printed in the papers (``paper_results.yaml``), as data.
* ``runner``  — one grid runner for both papers (checkpoint-or-train), seeds, tables, subsets.
* ``claims``  — every headline claim tested with a 95% interval (simultaneous per table): one
  table and its sentence.
* ``results`` — result and claims tables written with the provenance of every run behind them.
* ``kao``     — Kao et al.'s Tables I–V and figures as grids of experiment configs.
* ``saf``     — the SAF paper's Tables 2–5, ablations and visualisations as grids of configs.
* ``summary`` — the summary chapter: paper tables next to ours, every claim, provenance.
"""
