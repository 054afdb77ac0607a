"""iaalib — a thin library reproducing two papers on semantic information in image aesthetic assessment.

* Kao, He & Huang, "Deep Aesthetic Quality Assessment with Semantic Information" (MTCNN, MTRLCNN).
* "Semantic-Aesthetic Fusion" (SAF): an auto-encoder whose bottleneck is split into M groups.

Sub-packages are imported lazily: ``import iaalib`` does not import torch, so label-only commands
(``iaa data filter``) stay fast.
"""

__version__ = "0.1.0"
