"""The training and evaluation engine: generic, for every model of both papers.

* ``config``      — ``ExperimentConfig``: one experiment as a plain, hashable config.
* ``trainer``     — ``train`` (checkpoint-or-train, exact resume, DDP) and the generic ``Trainer``;
  what is minimised comes from the family's task object (:mod:`iaalib.tasks`).
* ``evaluate``    — predictions and metrics of a run or checkpoint, TID2013 mode, scoring a folder.
* ``loaders``     — a config's transforms, datasets and DataLoaders.
* ``checkpoint``, ``runrecord``, ``distributed``, ``device`` — the pieces each of those uses.

The engine knows nothing of the studies, the book or the command line.
"""
