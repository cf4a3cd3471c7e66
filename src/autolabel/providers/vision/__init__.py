"""Helpers of the embedded image classifier (``autolabel.providers.vision_local``).

- ``torch_pickle``: reads a PyTorch ``.pth`` state dict into numpy arrays without torch.
- ``efficientnet``: builds the EfficientNet-Lite0 ONNX graph from those arrays; preprocessing.
- ``imagenet``: ImageNet-1k classes under WordNet, and the ontology-label -> classes mapping.
- ``imagenet_wordnet.json``: the data behind ``imagenet``
  (built by eval/data/make_imagenet_hierarchy.py).

Nothing here imports onnx/onnxruntime at import time: they live in the ``vision`` extra.
"""
