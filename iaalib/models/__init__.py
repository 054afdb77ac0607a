"""Models of both papers, one module per family (in the style of ``torchvision.models``).

* ``backbones`` — torchvision AlexNet/VGG16/ResNet and EfficientNet-Lite0, with a width knob.
* ``mtcnn``     — Kao et al. MTCNN #1/#2/#3/enhanced and fine-tuned variants (Sec. III-D, III-E).
* ``mtrl``      — task covariance Ω and the trace regulariser of Eq. (11).
* ``spp``       — spatial pyramid pooling (SAF, "Prediction Module").
* ``saf``       — the SAF auto-encoder, group average pooling, split regressor.
* ``nima``      — the NIMA baseline.
"""
