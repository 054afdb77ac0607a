"""The book: papermill-executed notebooks rendered by Jupyter Book 1 (``iaa book``).

* ``pipeline``  — ``run_book``: data, notebooks in order, staging, HTML, ``book-run.json``.
* ``notebooks`` — finding, ordering and executing the chapters' notebooks (papermill).
* ``staging``   — the staged sources and the Jupyter Book 1 HTML build.
* ``pages``     — generated pages: the "Choices" chapter, the profiles table, module docs.
"""
