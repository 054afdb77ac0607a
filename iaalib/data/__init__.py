"""AVA / TID2013 / SynthAVA data: label parsing, paper protocols, manifests, images.

Label modules (``ava``, ``protocols``, ``manifests``, ``synth``) never import torch;
``images`` does.
"""
