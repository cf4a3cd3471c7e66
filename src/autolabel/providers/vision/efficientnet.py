"""EfficientNet-Lite0 as an ONNX graph built from its weights, and its image preprocessing.

Why build the graph by hand: the weights ship as a PyTorch ``.pth`` and exporting through
torch would need torch (~800 MB) for one export. Lite0 is a plain network (no squeeze-excite,
ReLU6 everywhere), so the graph is ~70 ONNX ops written from the architecture table of
``efficientnet-lite-pytorch`` 0.1.0 (Apache-2.0, itself from the TensorFlow reference):
batch norms are folded into the convolutions, TensorFlow "same" padding is made explicit
(static for a 224x224 input, so asymmetric on stride-2 layers).

Preprocessing follows the TensorFlow-Lite reference the weights come from: short side to 256
(224 / 0.875), centre crop 224, ``(pixel - 127) / 128``. On eval/data/images it gives 54%
top-1 against 52% with torchvision's mean/std scaling (one photo apart; bench/vision.py).
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np

from autolabel.errors import InputError

INPUT_SIZE = 224
RESIZE_TO = 256
BN_EPS = 1e-3
# (repeats, kernel, stride, expand ratio, in channels, out channels) of EfficientNet-Lite0.
BLOCKS = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]
# Bumped whenever the graph changes, so cached exports are rebuilt.
GRAPH_VERSION = 1


def build_onnx(weights: dict[str, np.ndarray], size: int = INPUT_SIZE) -> bytes:
    """Serialised ONNX model: input ``input`` [batch, 3, size, size] -> ``logits`` [batch, 1000]."""
    from onnx import TensorProto, checker, helper, numpy_helper

    nodes: list[Any] = []
    inits: list[Any] = []

    def const(name: str, array: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.asarray(array, dtype=np.float32), name))
        return name

    def conv_bn(
        x: str, conv: str, bn: str, kernel: int, stride: int, groups: int, hw: int, act: bool = True
    ) -> tuple[str, int]:
        scale = weights[bn + ".weight"] / np.sqrt(weights[bn + ".running_var"] + BN_EPS)
        w = weights[conv + ".weight"] * scale[:, None, None, None]
        b = weights[bn + ".bias"] - weights[bn + ".running_mean"] * scale
        out_hw = -(-hw // stride)
        pad = max((out_hw - 1) * stride + kernel - hw, 0)
        before, after = pad // 2, pad - pad // 2
        y = conv + ".out"
        nodes.append(
            helper.make_node(
                "Conv",
                [x, const(conv + ".w", w), const(conv + ".b", b)],
                [y],
                kernel_shape=[kernel, kernel],
                strides=[stride, stride],
                pads=[before, before, after, after],
                group=groups,
            )
        )
        if act:  # ReLU6
            nodes.append(helper.make_node("Clip", [y, "zero", "six"], [y + ".relu6"]))
            y += ".relu6"
        return y, out_hw

    const("zero", np.array(0.0))
    const("six", np.array(6.0))
    x, hw = conv_bn("input", "_conv_stem", "_bn0", 3, 2, 1, size)
    index = 0
    for repeats, kernel, stride, expand, cin, cout in BLOCKS:
        for r in range(repeats):
            block_in, s, ci = x, (stride if r == 0 else 1), (cin if r == 0 else cout)
            p = f"_blocks.{index}"
            if expand != 1:
                x, _ = conv_bn(x, p + "._expand_conv", p + "._bn0", 1, 1, 1, hw)
            x, hw = conv_bn(x, p + "._depthwise_conv", p + "._bn1", kernel, s, ci * expand, hw)
            x, _ = conv_bn(x, p + "._project_conv", p + "._bn2", 1, 1, 1, hw, act=False)
            if s == 1 and ci == cout:  # identity skip
                nodes.append(helper.make_node("Add", [x, block_in], [p + ".add"]))
                x = p + ".add"
            index += 1
    x, _ = conv_bn(x, "_conv_head", "_bn1", 1, 1, 1, hw)
    nodes.append(helper.make_node("GlobalAveragePool", [x], ["pool"]))
    nodes.append(helper.make_node("Flatten", ["pool"], ["features"], axis=1))
    fc_w, fc_b = const("fc.w", weights["_fc.weight"]), const("fc.b", weights["_fc.bias"])
    nodes.append(helper.make_node("Gemm", ["features", fc_w, fc_b], ["logits"], transB=1))
    graph = helper.make_graph(
        nodes,
        "efficientnet_lite0",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 3, size, size])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", 1000])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8  # readable by every onnxruntime >= 1.10
    checker.check_model(model)
    return model.SerializeToString()


def preprocess(image: bytes, size: int = INPUT_SIZE) -> np.ndarray:
    """Encoded image bytes -> float32 [3, size, size] as the network expects."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(image)) as opened:
            picture = opened.convert("RGB")
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise InputError(f"not a readable image: {exc}") from exc
    w, h = picture.size
    scale = RESIZE_TO * size / INPUT_SIZE / min(w, h)
    nw, nh = max(size, round(w * scale)), max(size, round(h * scale))
    picture = picture.resize((nw, nh), Image.Resampling.BILINEAR)
    left, top = (nw - size) // 2, (nh - size) // 2
    picture = picture.crop((left, top, left + size, top + size))
    array = (np.asarray(picture, dtype=np.float32) - 127.0) / 128.0
    return np.ascontiguousarray(array.transpose(2, 0, 1))
