"""Synthetic datasets in the real file formats, so the same code serves the demo and real data.

* ``ava``     — SynthAVA: AVA.txt, tags.txt, challenges.txt and procedural JPEGs (``iaa data synth``).
* ``quality`` — SynthAVA's documented mean-score function of latent photographic properties.
* ``motifs``  — one procedural motif per semantic tag, composition and aspect ratios.
* ``tid``     — SynthTID: distorted references in TID2013's layout (``iaa data synth-tid``).

The generators write files that :mod:`iaalib.data` reads (``read_ava_txt``, ``read_tid``); they
import the data readers, never the other way round. None of them imports torch.
"""
