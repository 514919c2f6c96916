"""convgrad.onnx against ONNX's own operator test cases, the ONNX reference evaluator and PyTorch.

The oracles:

* every node test case ``onnx`` 1.23 generates in ``onnx.backend.test.case.node.conv``,
  ``.convtranspose``, ``.convinteger`` and ``.qlinearconv`` (the package generates them in code: each
  ``export*`` static method builds the node, its inputs and its expected outputs and hands them to
  ``expect``, which is replaced here by a function that records them), one test per case, by name;
* ``onnx.reference.ReferenceEvaluator`` on random configurations (Hypothesis), exact for the integer
  operators; where the reference evaluator itself deviates from the operator specification (below) the
  configurations are kept out of that comparison and checked against the specification's formulas;
* PyTorch 2.13 float64 autograd for the gradients, with the ONNX padding retyped from the specification
  (``F.pad`` with the begin/end pads, then ``conv{1,2,3}d``; for ``ConvTranspose`` the unpadded
  transposed convolution cropped or zero-extended by the pads and the output padding).

Deviations of ``onnx.reference`` 1.23 from the specification, found here: its ``ConvTranspose`` raises
for ``group > 1`` unless every group has one input and one output channel, and adds ``B[c]`` of the
first group to every group; with ``output_shape`` and ``auto_pad="NOTSET"`` it keeps the given (or zero)
pads instead of deriving them, and raises unless the derived total padding is 0 (or −1 with
``output_padding + 1 < stride``); it raises whenever ``output_padding >= stride`` (which the specification
allows with a larger dilation); its ``ConvInteger`` and ``QLinearConv`` broadcast per-channel zero points and scales for 2-D
convolutions only.
"""

from __future__ import annotations

import importlib
import inspect
import math
from typing import Any, Optional
from unittest import mock

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from convgrad import onnx as co

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


# ----------------------------------------------------------------------------- ONNX's node test cases


def _node_cases() -> list[tuple[str, Any, list[Any], list[Any]]]:
    """(name, node, inputs, outputs) of every case the four operator modules generate."""
    try:
        import onnx  # noqa: F401
    except ImportError:
        return []
    cases: list[tuple[str, Any, list[Any], list[Any]]] = []
    for module_name in ("conv", "convtranspose", "convinteger", "qlinearconv"):
        module = importlib.import_module(f"onnx.backend.test.case.node.{module_name}")
        for cls in vars(module).values():
            if not (inspect.isclass(cls) and cls.__module__ == module.__name__):
                continue
            for attr in sorted(vars(cls)):
                if not attr.startswith("export"):
                    continue

                def record(node: Any, inputs: list[Any], outputs: list[Any], name: str, **_: Any) -> None:
                    cases.append((name, node, list(inputs), list(outputs)))

                with mock.patch.object(module, "expect", record):
                    np.random.seed(0)  # noqa: NPY002 - the exports draw from NumPy's global state, seeded as onnx does
                    getattr(cls, attr)()
    return cases


NODE_CASES = _node_cases()
_OPS = {"Conv": co.conv, "ConvTranspose": co.conv_transpose, "ConvInteger": co.conv_integer,
        "QLinearConv": co.qlinear_conv}


def _call(node: Any, inputs: list[Any]) -> np.ndarray:
    """Run a node with this module: inputs by position (an empty name is an omitted optional input)."""
    from onnx import helper

    given = iter(inputs)
    args = [None if name == "" else next(given) for name in node.input]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    return _OPS[node.op_type](*args, **attrs)


def test_every_node_case_was_collected() -> None:
    pytest.importorskip("onnx")
    ops = sorted({node.op_type for _, node, _, _ in NODE_CASES})
    assert ops == ["Conv", "ConvInteger", "ConvTranspose", "QLinearConv"]
    assert len(NODE_CASES) >= 20


@pytest.mark.parametrize("case", NODE_CASES, ids=[c[0] for c in NODE_CASES])
def test_onnx_node_case(case: tuple[str, Any, list[Any], list[Any]]) -> None:
    _, node, inputs, outputs = case
    expected = np.asarray(outputs[0])
    got = _call(node, inputs)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    if expected.dtype.kind in "iu":
        np.testing.assert_array_equal(got, expected)
    else:
        np.testing.assert_allclose(got, expected, rtol=1e-6, atol=1e-6 * float(np.abs(expected).max()))


# ----------------------------------------------------------------------------- the reference evaluator


def _reference(op: str, inputs: dict[str, Optional[np.ndarray]], **attrs: Any) -> np.ndarray:
    from onnx import helper
    from onnx.reference import ReferenceEvaluator

    names = [k if v is not None else "" for k, v in inputs.items()]
    while names and names[-1] == "":
        names.pop()
    node = helper.make_node(op, names, ["Y"], **attrs)
    feeds = {k: v for k, v in inputs.items() if v is not None}
    return np.asarray(ReferenceEvaluator(node).run(None, feeds)[0])


@st.composite
def conv_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Conv arguments (float64) with every auto_pad, asymmetric pads, groups and bias."""
    d = draw(st.integers(1, 3))
    g = draw(st.integers(1, 2))
    n, c, m = draw(st.integers(1, 2)), g * draw(st.integers(1, 2)), g * draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(d)]
    strides = [draw(st.integers(1, 3)) for _ in range(d)]
    dilations = [draw(st.integers(1, 2)) for _ in range(d)]
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    pads = [draw(st.integers(0, 2)) for _ in range(2 * d)] if auto_pad == "NOTSET" else [0] * (2 * d)
    sizes = [draw(st.integers(1, 7)) for _ in range(d)]
    for i in range(d):
        if auto_pad in ("NOTSET", "VALID"):
            assume(sizes[i] + pads[i] + pads[i + d] >= dilations[i] * (kernel[i] - 1) + 1)
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    attrs: dict[str, Any] = {"strides": strides, "dilations": dilations, "group": g}
    if auto_pad == "NOTSET":
        attrs["pads"] = pads
    else:
        attrs["auto_pad"] = auto_pad
    if draw(st.booleans()):
        attrs["kernel_shape"] = kernel
    return {"X": rng.standard_normal((n, c, *sizes)), "W": rng.standard_normal((m, c // g, *kernel)),
            "B": rng.standard_normal(m) if draw(st.booleans()) else None, "attrs": attrs, "d": d}


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=40)
@given(conv_configs())
def test_conv_matches_reference_evaluator(cfg: dict[str, Any]) -> None:
    pytest.importorskip("onnx")
    ref = _reference("Conv", {"X": cfg["X"], "W": cfg["W"], "B": cfg["B"]}, **cfg["attrs"])
    np.testing.assert_allclose(co.conv(cfg["X"], cfg["W"], cfg["B"], **cfg["attrs"]), ref, rtol=1e-12, atol=1e-12)


@st.composite
def transpose_configs(draw: st.DrawFn, for_reference: bool = True) -> dict[str, Any]:
    """ConvTranspose arguments; ``for_reference`` keeps to what onnx.reference computes per the specification."""
    d = draw(st.integers(1, 3))
    g = draw(st.integers(1, 2))
    one_per_group = for_reference and g > 1  # what onnx.reference computes with groups
    mg = 1 if one_per_group else draw(st.integers(1, 2))
    n, c = draw(st.integers(1, 2)), g * (1 if one_per_group else draw(st.integers(1, 2)))
    kernel = [draw(st.integers(1, 3)) for _ in range(d)]
    strides = [draw(st.integers(1, 3)) for _ in range(d)]
    dilations = [draw(st.integers(1, 2)) for _ in range(d)]
    sizes = [draw(st.integers(1, 4)) for _ in range(d)]
    # onnx.reference's col2im needs output_padding < stride; the specification allows < max(stride, dilation)
    adj = [draw(st.integers(0, (s if for_reference else max(s, dl)) - 1)) for s, dl in zip(strides, dilations)]
    auto_pad = draw(st.sampled_from(["NOTSET", "NOTSET", "SAME_UPPER", "SAME_LOWER", "VALID"]))
    attrs: dict[str, Any] = {"strides": strides, "dilations": dilations, "group": g}
    if draw(st.booleans()):
        attrs["output_padding"] = adj
    else:
        adj = [0] * d
    natural = [(s - 1) * st_ + dl * (k - 1) + 1 + a for s, st_, dl, k, a in zip(sizes, strides, dilations, kernel, adj)]
    if draw(st.booleans()):  # output_shape: the pads are derived from it
        if auto_pad in ("NOTSET", "VALID") and for_reference:  # total padding 0, or -1 within the stride
            out = [t + (draw(st.integers(0, 1)) if a + 1 < st_ else 0) for t, st_, a in zip(natural, strides, adj)]
        else:
            out = [max(1, t + draw(st.integers(-3, 3))) for t in natural]
        attrs["output_shape"] = out
    elif auto_pad == "NOTSET":
        pads = [draw(st.integers(0, 2)) for _ in range(2 * d)]
        for i in range(d):
            assume(natural[i] - pads[i] - pads[i + d] >= 1)
        attrs["pads"] = pads
    if auto_pad != "NOTSET":
        attrs["auto_pad"] = auto_pad
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    with_bias = draw(st.booleans()) and not (for_reference and g > 1)
    return {"X": rng.standard_normal((n, c, *sizes)), "W": rng.standard_normal((c, mg, *kernel)),
            "B": rng.standard_normal(mg * g) if with_bias else None, "attrs": attrs, "d": d}


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=40)
@given(transpose_configs())
def test_conv_transpose_matches_reference_evaluator(cfg: dict[str, Any]) -> None:
    pytest.importorskip("onnx")
    ref = _reference("ConvTranspose", {"X": cfg["X"], "W": cfg["W"], "B": cfg["B"]}, **cfg["attrs"])
    ours = co.conv_transpose(cfg["X"], cfg["W"], cfg["B"], **cfg["attrs"])
    np.testing.assert_allclose(ours, ref, rtol=1e-12, atol=1e-12)


def _quantized(rng: np.random.Generator, dtype: Any, shape: tuple[int, ...]) -> np.ndarray:
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, shape, endpoint=True).astype(dtype)


@st.composite
def quantized_configs(draw: st.DrawFn) -> dict[str, Any]:
    """ConvInteger / QLinearConv arguments: int8 and uint8 in every combination, per-tensor and (2-D)
    per-output-channel zero points and scales, scales that make ties, bias, padding, groups."""
    d = draw(st.integers(1, 3))
    per_channel = d == 2 and draw(st.booleans())
    g = draw(st.integers(1, 2))
    n, c, m = draw(st.integers(1, 2)), g * draw(st.integers(1, 3)), g * draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(d)]
    sizes = [k + draw(st.integers(0, 3)) for k in kernel]
    x_type, w_type, y_type = (draw(st.sampled_from([np.int8, np.uint8])) for _ in range(3))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x, w = _quantized(rng, x_type, (n, c, *sizes)), _quantized(rng, w_type, (m, c // g, *kernel))
    x_zp = _quantized(rng, x_type, ())
    w_zp = _quantized(rng, w_type, (m,) if per_channel else ())
    scales = st.sampled_from([0.5, 0.25, 1.0, 2.0, 0.125, 0.0078125]) | st.floats(2.0**-13, 1.0, width=32)
    x_scale = np.float32(draw(scales))
    w_scale = np.array([draw(scales) for _ in range(m)], np.float32) if per_channel else np.float32(draw(scales))
    y_scale = np.float32(draw(st.sampled_from([1.0, 2.0, 64.0, 512.0]) | st.floats(1.0, 4096.0, width=32)))
    attrs: dict[str, Any] = {"group": g, "strides": [draw(st.integers(1, 2)) for _ in range(d)]}
    if draw(st.booleans()):
        attrs["pads"] = [draw(st.integers(0, 1)) for _ in range(2 * d)]
    bias = rng.integers(-(2**20), 2**20, m).astype(np.int32) if draw(st.booleans()) else None
    return {"x": x, "w": w, "x_zp": x_zp, "w_zp": w_zp, "x_scale": x_scale, "w_scale": w_scale,
            "y_scale": y_scale, "y_zp": _quantized(rng, y_type, ()), "B": bias, "attrs": attrs}


@settings(max_examples=40)
@given(quantized_configs())
def test_conv_integer_matches_reference_evaluator(cfg: dict[str, Any]) -> None:
    pytest.importorskip("onnx")
    inputs = {"x": cfg["x"], "w": cfg["w"], "x_zero_point": cfg["x_zp"], "w_zero_point": cfg["w_zp"]}
    ref = _reference("ConvInteger", inputs, **cfg["attrs"])
    ours = co.conv_integer(cfg["x"], cfg["w"], cfg["x_zp"], cfg["w_zp"], **cfg["attrs"])
    assert ours.dtype == np.int32
    np.testing.assert_array_equal(ours, ref)


@settings(max_examples=60)
@given(quantized_configs())
def test_qlinear_conv_matches_reference_evaluator(cfg: dict[str, Any]) -> None:
    pytest.importorskip("onnx")
    inputs = {"x": cfg["x"], "x_scale": cfg["x_scale"], "x_zero_point": cfg["x_zp"], "w": cfg["w"],
              "w_scale": cfg["w_scale"], "w_zero_point": cfg["w_zp"], "y_scale": cfg["y_scale"],
              "y_zero_point": cfg["y_zp"], "B": cfg["B"]}
    ref = _reference("QLinearConv", inputs, **cfg["attrs"])
    ours = co.qlinear_conv(cfg["x"], cfg["x_scale"], cfg["x_zp"], cfg["w"], cfg["w_scale"], cfg["w_zp"],
                           cfg["y_scale"], cfg["y_zp"], cfg["B"], **cfg["attrs"])
    assert ours.dtype == cfg["y_zp"].dtype
    # The evaluator rounds after adding y_zero_point, the specification before: they differ at exact ties only.
    acc = _reference("ConvInteger", {"x": cfg["x"], "w": cfg["w"], "x_zero_point": cfg["x_zp"],
                                     "w_zero_point": cfg["w_zp"]}, **cfg["attrs"]).astype(np.float64)
    if cfg["B"] is not None:
        acc += cfg["B"].reshape((-1,) + (1,) * (acc.ndim - 2))
    m = (np.float32(cfg["x_scale"]) * np.asarray(cfg["w_scale"], np.float32) / np.float32(cfg["y_scale"]))
    scaled = acc * m.astype(np.float64).reshape((-1,) + (1,) * (acc.ndim - 2))
    tie = np.abs(scaled - np.floor(scaled)) == 0.5
    np.testing.assert_array_equal(ours[~tie], ref[~tie])
    info = np.iinfo(cfg["y_zp"].dtype)
    spec = np.clip(np.rint(scaled) + int(cfg["y_zp"]), info.min, info.max)
    np.testing.assert_array_equal(ours[tie], spec[tie])


def test_qlinear_conv_rounds_before_adding_the_zero_point() -> None:
    """The specification's order (QuantizeLinear's): ``round_half_even(acc · M) + y_zp``; the reference
    evaluator of onnx 1.23 adds the zero point first and differs by one at this tie."""
    x = np.array([[[[2]]]], np.int8)
    w = np.array([[[[33]]]], np.int8)
    args = (np.int8(11), w, np.float32(0.5), np.int8(15), np.float32(1.0), np.int8(111))
    y = co.qlinear_conv(x, np.float32(0.5), *args)  # acc = (2 − 11)·(33 − 15) = −162, M = 0.25: −40.5
    assert y.item() == -40 + 111


# ----------------------------------------------------------------------------- exactness, by hand


def _integer_reference(x: np.ndarray, w: np.ndarray, x_zp: Any, w_zp: Any, stride: int) -> np.ndarray:
    """A 1-D grouped-free integer convolution summed in Python ints (no floating point anywhere)."""
    n, c, s = x.shape
    m, _, k = w.shape
    w_zp = np.broadcast_to(np.asarray(w_zp, dtype=np.int64), (m,))
    q = (s - k) // stride + 1
    out = np.zeros((n, m, q), dtype=object)
    for b in range(n):
        for o in range(m):
            for j in range(q):
                out[b, o, j] = sum((int(x[b, ch, j * stride + t]) - int(x_zp)) * (int(w[o, ch, t]) - int(w_zp[o]))
                                   for ch in range(c) for t in range(k))
    return out


def test_conv_integer_per_channel_1d_and_int32_wrap() -> None:
    """Per-output-channel zero points in 1-D (which the reference evaluator does not broadcast), and a
    sum beyond the int32 range wrapping as an int32 accumulator does."""
    rng = np.random.default_rng(4)
    x, w = _quantized(rng, np.uint8, (2, 3, 9)), _quantized(rng, np.int8, (4, 3, 3))
    w_zp = _quantized(rng, np.int8, (4,))
    got = co.conv_integer(x, w, np.uint8(17), w_zp, strides=[2])
    np.testing.assert_array_equal(got, _integer_reference(x, w, 17, w_zp, 2).astype(np.int64))
    big_x = np.full((1, 40000, 1), 255, np.uint8)
    big_w = np.full((1, 40000, 1), -128, np.int8)
    exact = 40000 * 255 * (-128) + 0  # -1 305 600 000: inside int32
    assert co.conv_integer(big_x, big_w)[0, 0, 0] == exact
    wrapped = co.conv_integer(big_x, big_w, np.uint8(0), np.int8(127))  # (255)(-255)·40000 < -2**31
    assert wrapped[0, 0, 0] == np.int64(40000 * 255 * -255 + 2**32)


def test_qlinear_conv_ties_round_half_to_even_and_saturate() -> None:
    x = np.array([[[1, 3, 5, 7, 9, 250]]], np.uint8)
    w = np.ones((2, 1, 1), np.int8)
    y = co.qlinear_conv(x, np.float32(0.5), np.uint8(0), w, np.array([1.0, 2.0], np.float32),
                        np.array([0, 0], np.int8), np.float32(1.0), np.uint8(3))
    np.testing.assert_array_equal(y[0, 0], [3, 5, 5, 7, 7, 128])  # 0.5, 1.5, 2.5, 3.5, 4.5 -> 0, 2, 2, 4, 4 (+3)
    np.testing.assert_array_equal(y[0, 1], [4, 6, 8, 10, 12, 253])  # per channel: multiplier 1
    low = co.qlinear_conv(x, np.float32(4.0), np.uint8(9), w, np.float32(1.0), np.int8(0), np.float32(1.0),
                          np.int8(0))
    np.testing.assert_array_equal(low[0, 0], [-32, -24, -16, -8, 0, 127])  # (x - 9)·4, saturated at 127


def test_qlinear_conv_per_channel_3d_against_integer_reference() -> None:
    rng = np.random.default_rng(6)
    x, w = _quantized(rng, np.int8, (1, 2, 4, 3, 3)), _quantized(rng, np.uint8, (3, 2, 2, 2, 2))
    w_zp, w_scale = _quantized(rng, np.uint8, (3,)), np.array([0.01, 0.02, 0.5], np.float32)
    b = np.array([-100, 0, 7000], np.int32)
    y = co.qlinear_conv(x, np.float32(0.02), np.int8(-3), w, w_scale, w_zp, np.float32(0.3), np.uint8(128), b)
    xc = x.astype(np.int64) + 3
    wc = w.astype(np.int64) - w_zp.astype(np.int64).reshape(3, 1, 1, 1, 1)
    # the exact accumulator by a plain loop over the 3 x 2 x 2 output positions
    out = np.zeros((1, 3, 3, 2, 2), np.int64)
    for o in range(3):
        for i in range(3):
            for j in range(2):
                for k in range(2):
                    out[0, o, i, j, k] = int((xc[0, :, i:i + 2, j:j + 2, k:k + 2] * wc[o]).sum()) + int(b[o])
    mult = (np.float32(0.02) * w_scale / np.float32(0.3)).astype(np.float32)
    expected = np.clip(np.rint(out * mult.astype(np.float64).reshape(1, 3, 1, 1, 1)) + 128, 0, 255)
    np.testing.assert_array_equal(y, expected.astype(np.uint8))


# ----------------------------------------------------------------------------- the specification's formulas


def _spec_conv_pads(sizes: list[int], kernel: list[int], strides: list[int], dilations: list[int],
                    auto_pad: str, pads: Optional[list[int]]) -> list[tuple[int, int]]:
    """Conv's padding as the operator specification states it (retyped, not convgrad's code)."""
    d = len(sizes)
    if auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        out = []
        for s, k, st_, dl in zip(sizes, kernel, strides, dilations):
            target = -(-s // st_)
            need = max(0, (target - 1) * st_ + (k - 1) * dl + 1 - s)
            head = need // 2 if auto_pad == "SAME_UPPER" else (need + 1) // 2
            out.append((head, need - head))
        return out
    if auto_pad == "VALID" or pads is None:
        return [(0, 0)] * d
    return [(pads[i], pads[i + d]) for i in range(d)]


def _spec_transpose_pads(sizes: list[int], kernel: list[int], attrs: dict[str, Any]) -> tuple[list[tuple[int, int]],
                                                                                             list[int]]:
    """ConvTranspose's (begin, end) pads and output padding from the specification's equations."""
    d = len(sizes)
    strides = attrs.get("strides", [1] * d)
    dilations = attrs.get("dilations", [1] * d)
    adj = attrs.get("output_padding", [0] * d)
    auto_pad = attrs.get("auto_pad", "NOTSET")
    target = attrs.get("output_shape")
    if target is None and auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        target = [s * st_ for s, st_ in zip(sizes, strides)]
    if target is None:
        pads = attrs.get("pads", [0] * (2 * d))
        return [(pads[i], pads[i + d]) for i in range(d)], adj
    pairs = []
    for s, k, st_, dl, a, t in zip(sizes, kernel, strides, dilations, adj, target):
        total = st_ * (s - 1) + a + ((k - 1) * dl + 1) - t
        if auto_pad == "SAME_UPPER":
            pairs.append((total // 2, total - total // 2))
        else:
            pairs.append((total - total // 2, total // 2))
    return pairs, adj


def test_conv_transpose_output_shape_follows_the_specification_where_the_reference_does_not() -> None:
    """NOTSET with an output_shape two longer than the natural size: begin = total − ⌊total/2⌋ = −1, so the
    output gains a leading zero (the reference evaluator raises here)."""
    x, w = np.array([[[1.0, 2.0]]]), np.array([[[1.0, 10.0]]])
    y = co.conv_transpose(x, w, strides=[2], output_shape=[6])  # natural size 4: total = -2 -> pads (-1, -1)
    np.testing.assert_array_equal(y, [[[0.0, 1.0, 10.0, 2.0, 20.0, 0.0]]])
    y = co.conv_transpose(x, w, strides=[2], output_shape=[3])  # total = 1 -> pads (1, 0)
    np.testing.assert_array_equal(y, [[[10.0, 2.0, 20.0]]])
    y = co.conv_transpose(x, w, strides=[2], output_shape=[3], auto_pad="SAME_UPPER")  # pads (0, 1)
    np.testing.assert_array_equal(y, [[[1.0, 10.0, 2.0]]])


# ----------------------------------------------------------------------------- gradients against PyTorch


def pad_crop(x: torch.Tensor, pads: Any) -> torch.Tensor:
    """Spatial ``(before, after)`` widths: positive ones add zeros, then negative ones cut from the padded result."""
    out = F.pad(x, [max(p, 0) for pair in reversed(pads) for p in pair])
    index = [slice(None), slice(None)]
    for size, (lo, hi) in zip(out.shape[2:], pads):
        index.append(slice(max(-lo, 0), size - max(-hi, 0)))
    return out[tuple(index)]


def _torch_conv(cfg: dict[str, Any]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    attrs, d = cfg["attrs"], cfg["d"]
    x = torch.tensor(cfg["X"], requires_grad=True)
    w = torch.tensor(cfg["W"], requires_grad=True)
    b = torch.zeros(cfg["W"].shape[0], dtype=torch.float64, requires_grad=True)
    pairs = _spec_conv_pads(list(cfg["X"].shape[2:]), list(cfg["W"].shape[2:]), attrs["strides"], attrs["dilations"],
                            attrs.get("auto_pad", "NOTSET"), attrs.get("pads"))
    flat = [p for pair in reversed(pairs) for p in pair]
    y = TORCH_CONV[d](F.pad(x, flat), w, b, stride=attrs["strides"], dilation=attrs["dilations"],
                      groups=attrs["group"])
    return y, (x, w, b)


def _torch_conv_transpose(cfg: dict[str, Any]) -> tuple[torch.Tensor, tuple[torch.Tensor, ...]]:
    attrs, d = cfg["attrs"], cfg["d"]
    x = torch.tensor(cfg["X"], requires_grad=True)
    w = torch.tensor(cfg["W"], requires_grad=True)
    b = torch.zeros(cfg["W"].shape[1] * attrs["group"], dtype=torch.float64, requires_grad=True)
    pairs, adj = _spec_transpose_pads(list(cfg["X"].shape[2:]), list(cfg["W"].shape[2:]), attrs)
    full = TORCH_CONV_T[d](x, w, None, stride=attrs["strides"], dilation=attrs["dilations"], groups=attrs["group"])
    y = pad_crop(full, [(-lo, a - hi) for (lo, hi), a in zip(pairs, adj)]) + b.reshape((-1,) + (1,) * d)
    return y, (x, w, b)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=40)
@given(conv_configs())
def test_conv_backward_matches_torch(cfg: dict[str, Any]) -> None:
    y, leaves = _torch_conv(cfg)
    np.testing.assert_allclose(co.conv(cfg["X"], cfg["W"], **cfg["attrs"]), y.detach().numpy(), rtol=1e-12,
                               atol=1e-12)
    g = np.random.default_rng(0).standard_normal(tuple(y.shape))
    expected = torch.autograd.grad(y, leaves, torch.tensor(g))
    got = co.conv_backward(g, cfg["X"], cfg["W"], **cfg["attrs"])
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=40)
@given(transpose_configs(for_reference=False))
def test_conv_transpose_backward_matches_torch(cfg: dict[str, Any]) -> None:
    y, leaves = _torch_conv_transpose(cfg)
    b = cfg["B"]
    forward = co.conv_transpose(cfg["X"], cfg["W"], b, **cfg["attrs"])
    bias = 0 if b is None else b.reshape((-1,) + (1,) * cfg["d"])
    np.testing.assert_allclose(forward, y.detach().numpy() + bias, rtol=1e-12, atol=1e-12)
    g = np.random.default_rng(1).standard_normal(tuple(y.shape))
    expected = torch.autograd.grad(y, leaves, torch.tensor(g))
    got = co.conv_transpose_backward(g, cfg["X"], cfg["W"], **cfg["attrs"])
    for ours, theirs in zip(got, expected):
        np.testing.assert_allclose(ours, theirs.numpy(), rtol=1e-12, atol=1e-12)


def test_conv_float32_stays_float32_and_accepts_attribute_bytes() -> None:
    x, w = np.ones((1, 2, 5, 5), np.float32), np.ones((3, 2, 3, 3), np.float32)
    y = co.conv(x, w, auto_pad=b"SAME_UPPER")
    assert y.dtype == np.float32 and y.shape == (1, 3, 5, 5) and y[0, 0, 2, 2] == 18.0


# ----------------------------------------------------------------------------- errors

X4, W4 = np.ones((1, 2, 5, 5)), np.ones((4, 2, 3, 3))
U8 = np.ones((1, 2, 5, 5), np.uint8)
WU8 = np.ones((4, 2, 3, 3), np.uint8)
QARGS = (U8, np.float32(0.1), np.uint8(0), WU8, np.float32(0.1), np.uint8(0), np.float32(0.2), np.uint8(0))

ERRORS: list[tuple[str, Any, tuple[Any, ...], dict[str, Any], type, str]] = [
    ("X_rank", co.conv, (np.ones((2, 5)), W4), {}, ValueError, "conv: X must have at least 3 dimensions (N, C, D1, …); got shape (2, 5)"),
    ("W_rank", co.conv, (X4, np.ones((4, 2, 3))), {}, ValueError, "conv: W must have as many dimensions as X (4); got W.shape (4, 2, 3)"),
    ("X_not_numeric", co.conv, (np.array([[["a"]]]), W4), {}, TypeError, "X must have a numeric dtype"),
    ("auto_pad", co.conv, (X4, W4), {"auto_pad": "SAME"}, ValueError, "conv: auto_pad must be one of ('NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'); got 'SAME'"),
    ("auto_pad_with_pads", co.conv, (X4, W4), {"auto_pad": "VALID", "pads": [0, 0, 0, 0]}, ValueError, "conv: pads cannot be used together with auto_pad='VALID'; got pads=[0, 0, 0, 0]"),
    ("pads_length", co.conv, (X4, W4), {"pads": [1, 1]}, ValueError, "conv: pads must have 4 entries; got [1, 1] with 2"),
    ("pads_negative", co.conv, (X4, W4), {"pads": [1, -1, 1, 1]}, ValueError, "pads[1] must be >= 0; got -1"),
    ("pads_type", co.conv, (X4, W4), {"pads": 1}, TypeError, "conv: pads must be a list of 4 ints; got 1"),
    ("strides_zero", co.conv, (X4, W4), {"strides": [1, 0]}, ValueError, "strides[1] must be >= 1; got 0"),
    ("strides_length", co.conv, (X4, W4), {"strides": [1]}, ValueError, "conv: strides must have 2 entries; got [1] with 1"),
    ("dilations_float", co.conv, (X4, W4), {"dilations": [1, 1.5]}, TypeError, "dilations[1] must be an integer; got 1.5"),
    ("kernel_shape", co.conv, (X4, W4), {"kernel_shape": [3, 2]}, ValueError, "conv: kernel_shape [3, 2] must equal W.shape[2:] (3, 3)"),
    ("group_zero", co.conv, (X4, W4), {"group": 0}, ValueError, "group must be >= 1; got 0"),
    ("group_divides", co.conv, (X4, np.ones((3, 1, 3, 3))), {"group": 2}, ValueError, "conv: group=2 must divide the input channels (X.shape[1] = 2) and the output channels (W.shape[0] = 3)"),
    ("group_channels", co.conv, (X4, W4), {"group": 2}, ValueError, "conv: W.shape[1] (2) must equal the input channels / group (X.shape[1] = 2, group = 2: 1)"),
    ("bias_shape", co.conv, (X4, W4, np.ones(3)), {}, ValueError, "conv: B must have shape (M,) = (4,), one per output channel; got shape (3,)"),
    ("output_too_small", co.conv, (X4, np.ones((4, 2, 7, 3))), {}, ValueError, "conv: output size would be < 1 in spatial dimension 0: X.shape[2] = 5 padded by (0, 0) is shorter than the dilated kernel"),
    ("backward_dY", co.conv_backward, (np.ones((1, 4, 2, 2)), X4, W4), {}, ValueError, "conv_backward: dY.shape (1, 4, 2, 2) must equal the forward output shape (1, 4, 3, 3)"),
    ("transpose_W_channels", co.conv_transpose, (X4, np.ones((3, 2, 3, 3))), {}, ValueError, "conv_transpose: W.shape[0] (3) must equal the input channels (X.shape[1] = 2)"),
    ("transpose_output_padding", co.conv_transpose, (X4, W4[:2]), {"strides": [2, 2], "output_padding": [0, 2]}, ValueError, "conv_transpose: output_padding[1] must be < max(strides[1], dilations[1]) = 2; got 2"),
    ("transpose_output_shape_length", co.conv_transpose, (X4, W4[:2]), {"output_shape": [7]}, ValueError, "conv_transpose: output_shape must hold the 2 spatial sizes (or the full shape (1, 2, …)); got [7]"),
    ("transpose_output_shape_type", co.conv_transpose, (X4, W4[:2]), {"output_shape": 7}, TypeError, "conv_transpose: output_shape must be a list of 2 ints; got 7"),
    ("transpose_output_shape_zero", co.conv_transpose, (X4, W4[:2]), {"output_shape": [7, 0]}, ValueError, "output_shape[1] must be >= 1; got 0"),
    ("transpose_too_small", co.conv_transpose, (X4, W4[:2]), {"pads": [4, 0, 4, 0]}, ValueError, "conv_transpose: output size would be -1 < 1 in spatial dimension 0"),
    ("transpose_bias", co.conv_transpose, (X4, W4[:2], np.ones(4)), {}, ValueError, "conv_transpose: B must have shape (M,) = (2,)"),
    ("transpose_backward_dY", co.conv_transpose_backward, (np.ones((1, 2, 7, 6)), X4, W4[:2]), {}, ValueError, "conv_transpose_backward: dY.shape (1, 2, 7, 6) must equal the forward output shape (1, 2, 7, 7)"),
    ("integer_x_type", co.conv_integer, (X4, WU8), {}, TypeError, "conv_integer: x must be int8 or uint8; got dtype float64"),
    ("integer_w_type", co.conv_integer, (U8, WU8.astype(np.int16)), {}, TypeError, "conv_integer: w must be int8 or uint8; got dtype int16"),
    ("integer_x_zero_point_type", co.conv_integer, (U8, WU8, np.int8(1)), {}, TypeError, "conv_integer: x_zero_point must have x's type uint8; got dtype int8"),
    ("integer_x_zero_point_range", co.conv_integer, (U8, WU8, 300), {}, ValueError, "conv_integer: x_zero_point must be within x's type uint8 [0, 255]; got 300"),
    ("integer_x_zero_point_shape", co.conv_integer, (U8, WU8, np.zeros(2, np.uint8)), {}, ValueError, "conv_integer: x_zero_point must be a scalar; got shape (2,)"),
    ("integer_w_zero_point_shape", co.conv_integer, (U8, WU8, None, np.zeros(3, np.uint8)), {}, ValueError, "conv_integer: w_zero_point must be a scalar or a 1-D array of the 4 output channels; got shape (3,)"),
    ("qlinear_B_type", co.qlinear_conv, (*QARGS, np.ones(4)), {}, TypeError, "qlinear_conv: B must be int32 (quantized with scale x_scale * w_scale, zero point 0); got dtype float64"),
    ("qlinear_B_shape", co.qlinear_conv, (*QARGS, np.ones(3, np.int32)), {}, ValueError, "qlinear_conv: B must have shape (M,) = (4,)"),
    ("qlinear_scale_zero", co.qlinear_conv, (*QARGS[:6], np.float32(0.0), QARGS[7]), {}, ValueError, "qlinear_conv: y_scale must be finite and > 0; got 0.0"),
    ("qlinear_scale_shape", co.qlinear_conv, (*QARGS[:4], np.ones(3, np.float32), *QARGS[5:]), {}, ValueError, "qlinear_conv: w_scale must be a scalar or a 1-D array of the 4 output channels; got shape (3,)"),
    ("qlinear_scale_type", co.qlinear_conv, (QARGS[0], 1 + 1j, *QARGS[2:]), {}, TypeError, "qlinear_conv: x_scale must be a real floating-point scale; got dtype complex128"),
    ("qlinear_y_zero_point_type", co.qlinear_conv, (*QARGS[:7], np.int32(0)), {}, TypeError, "qlinear_conv: y_zero_point must be int8 or uint8 (its type is the output's); got dtype int32"),
    ("qlinear_w_zero_point_type", co.qlinear_conv, (*QARGS[:5], np.int8(0), *QARGS[6:]), {}, TypeError, "qlinear_conv: w_zero_point must have w's type uint8; got dtype int8"),
    ("qlinear_pads", co.qlinear_conv, QARGS, {"pads": [1, 1, 1]}, ValueError, "qlinear_conv: pads must have 4 entries; got [1, 1, 1] with 3"),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "exc", "fragment"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_the_argument_and_value(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], exc: type,
                                             fragment: str) -> None:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert fragment in str(info.value)


def test_errors_come_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    import convgrad._conv as core
    import convgrad._transpose as transpose

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the core was called")

    for module, name in ((core, "conv"), (core, "conv_backward"), (transpose, "conv_transpose"),
                         (transpose, "conv_transpose_backward")):
        monkeypatch.setattr(module, name, boom)
    for _, fn, args, kwargs, exc, _ in ERRORS:
        with pytest.raises(exc):
            fn(*args, **kwargs)


def test_spec_padding_helpers_agree_with_the_module() -> None:
    """The retyped specification formulas and the module agree on a grid of sizes (SAME with any stride)."""
    for s in range(1, 9):
        for k in range(1, 4):
            for st_ in range(1, 4):
                for mode in ("SAME_UPPER", "SAME_LOWER"):
                    (lo, hi), = _spec_conv_pads([s], [k], [st_], [1], mode, None)
                    y = co.conv(np.ones((1, 1, s)), np.ones((1, 1, k)), auto_pad=mode, strides=[st_])
                    assert y.shape[-1] == math.ceil(s / st_)
                    assert y.shape[-1] == (s + lo + hi - k) // st_ + 1
