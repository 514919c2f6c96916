"""convgrad.tensorflow against PyTorch float64 autograd and TensorFlow's documented formulas.

TensorFlow is not installed here; the oracles are:

* TensorFlow's documentation of the padding rules, "Notes on padding" of ``tf.nn``
  (https://www.tensorflow.org/api_docs/python/tf/nn#notes_on_padding): VALID output
  ``ceil((S − k_eff + 1) / s)``; SAME output ``ceil(S / s)`` with total padding
  ``max((ceil(S / s) − 1)·s + k_eff − S, 0)``, the extra element at the end (bottom/right);
  the same rule as ``GetWindowedOutputSizeVerbose`` in
  ``tensorflow/core/framework/kernel_shape_util.cc``. ``_tf_same`` below retypes it.
* The op definitions of ``tf.nn.conv2d`` (``output[b, i, j, k] = sum_{di, dj, q}
  input[b, strides[1]·i + di, strides[2]·j + dj, q] · filter[di, dj, q, k]``),
  ``tf.nn.depthwise_conv2d`` (output channel ``k·channel_multiplier + q``) and
  ``tf.nn.conv2d_transpose`` ("the transpose (gradient) of conv2d", computed by
  ``conv2d_backprop_input`` with ``input_sizes=output_shape``), on
  https://www.tensorflow.org/api_docs/python/tf/nn/.
* PyTorch 2.13 float64: ``torch.nn.functional.pad`` with the asymmetric pads, then
  ``conv{1,2,3}d``; gradients by ``torch.autograd.grad``.
* The printed numbers of seed 001 and of the ``tf.nn.depthwise_conv2d`` documentation.
* For integer inputs, SciPy's direct sums on int64 (``scipy.signal.correlate(..., method="direct")``): an exact
  reference.
"""

from __future__ import annotations

import inspect
import math

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import assume, given
from hypothesis import strategies as st

import convgrad
from convgrad import tensorflow as tfc

_TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_FORWARD = {1: tfc.conv1d, 2: tfc.conv2d, 3: tfc.conv3d}
_BACKWARD = {1: tfc.conv1d_backward, 2: tfc.conv2d_backward, 3: tfc.conv3d_backward}
_BP_INPUT = {1: tfc.conv1d_backprop_input, 2: tfc.conv2d_backprop_input, 3: tfc.conv3d_backprop_input}
_BP_FILTER = {1: tfc.conv1d_backprop_filter, 2: tfc.conv2d_backprop_filter, 3: tfc.conv3d_backprop_filter}
_TRANSPOSE = {1: tfc.conv1d_transpose, 2: tfc.conv2d_transpose, 3: tfc.conv3d_transpose}
_TRANSPOSE_BW = {
    1: tfc.conv1d_transpose_backward,
    2: tfc.conv2d_transpose_backward,
    3: tfc.conv3d_transpose_backward,
}
_FORMATS = {1: ("NWC", "NCW"), 2: ("NHWC", "NCHW"), 3: ("NDHWC", "NCDHW")}

TOL = {"rtol": 1e-10, "atol": 1e-10}


# ----------------------------------------------------------------------------- the documented formulas, retyped


def _tf_same(size: int, k: int, s: int, dl: int) -> tuple[int, int]:
    """TensorFlow's SAME padding (tf.nn "Notes on padding"): odd element at the end."""
    k_eff = (k - 1) * dl + 1
    out = math.ceil(size / s)
    total = max((out - 1) * s + k_eff - size, 0)
    return total // 2, total - total // 2


def _tf_valid_out(size: int, k: int, s: int, dl: int) -> int:
    """TensorFlow's VALID output size: ceil((S − k_eff + 1) / s)."""
    return math.ceil((size - ((k - 1) * dl + 1) + 1) / s)


# ----------------------------------------------------------------------------- a torch reference in TF layouts


def _to_nc(a: np.ndarray, channels_first: bool) -> np.ndarray:
    return a if channels_first else np.moveaxis(a, -1, 1)


def _from_nc(a: np.ndarray, channels_first: bool) -> np.ndarray:
    return a if channels_first else np.moveaxis(a, 1, -1)


def _torch_conv(x_nc: torch.Tensor, f_tf: torch.Tensor, pads: list, st: tuple, dl: tuple, groups: int) -> torch.Tensor:
    """Zero-pad (asymmetric, via F.pad) then PyTorch's convolution; f in TF layout [*K, C/G, O]."""
    d = len(st)
    w = f_tf.permute(d + 1, d, *range(d)).contiguous()  # PyTorch's CPU backward wants a contiguous weight
    flat = [p for pair in reversed(pads) for p in pair]
    return _TORCH_CONV[d](F.pad(x_nc, flat), w, stride=st, dilation=dl, groups=groups)


@st.composite
def tf_configs(draw: st.DrawFn, explicit: bool = True) -> dict:
    d = draw(st.integers(1, 3))
    channels_first = draw(st.booleans())
    groups = draw(st.integers(1, 2))
    c = groups * draw(st.integers(1, 2))
    o = groups * draw(st.integers(1, 2))
    n = draw(st.integers(1, 2))
    max_size = 7 if d < 3 else 5
    sizes = tuple(draw(st.integers(1, max_size)) for _ in range(d))
    kernel = tuple(draw(st.integers(1, 3)) for _ in range(d))
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    kinds = ["SAME", "VALID", "explicit"] if explicit else ["SAME", "VALID"]
    kind = draw(st.sampled_from(kinds))
    if kind == "SAME":
        pads = [_tf_same(*a) for a in zip(sizes, kernel, stride, dilation)]
        padding: object = "SAME"
    elif kind == "VALID":
        pads = [(0, 0)] * d
        padding = "VALID"
    else:
        pads = [(draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(d)]
        padding = [[0, 0], [0, 0], *map(list, pads)] if channels_first else [[0, 0], *map(list, pads), [0, 0]]
    for s, k, dl, (lo, hi) in zip(sizes, kernel, dilation, pads):
        assume(s + lo + hi >= (k - 1) * dl + 1)
    form = draw(st.sampled_from(["list_d", "list_d2", "int_if_equal"]))
    if form == "list_d2":
        strides: object = [1, 1, *stride] if channels_first else [1, *stride, 1]
        dilations: object = [1, 1, *dilation] if channels_first else [1, *dilation, 1]
    elif form == "int_if_equal" and len(set(stride)) == 1 and len(set(dilation)) == 1:
        strides, dilations = stride[0], dilation[0]
    else:
        strides, dilations = list(stride), list(dilation)
    shape_x = (n, c, *sizes) if channels_first else (n, *sizes, c)
    return {
        "d": d, "channels_first": channels_first, "groups": groups, "c": c, "o": o, "n": n, "sizes": sizes,
        "kernel": kernel, "stride": stride, "dilation": dilation, "pads": pads, "padding": padding,
        "strides": strides, "dilations": dilations, "x_shape": shape_x, "f_shape": (*kernel, c // groups, o),
        "data_format": _FORMATS[d][int(channels_first)],
    }


def _call_kwargs(cfg: dict) -> dict:
    return {"data_format": cfg["data_format"], "dilations": cfg["dilations"]}


# ----------------------------------------------------------------------------- forward and both gradients


@given(cfg=tf_configs(), seed=st.integers(0, 2**32 - 1))
def test_forward_and_gradients_match_torch(cfg: dict, seed: int) -> None:
    rng = np.random.default_rng(seed)
    d, cf = cfg["d"], cfg["channels_first"]
    x = rng.standard_normal(cfg["x_shape"])
    f = rng.standard_normal(cfg["f_shape"])
    y = _FORWARD[d](x, f, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))

    xt = torch.tensor(_to_nc(x, cf), requires_grad=True)
    ft = torch.tensor(f, requires_grad=True)
    yt = _torch_conv(xt, ft, cfg["pads"], cfg["stride"], cfg["dilation"], cfg["groups"])
    np.testing.assert_allclose(y, _from_nc(yt.detach().numpy(), cf), **TOL)
    assert y.flags.c_contiguous and y.flags.writeable

    g = rng.standard_normal(y.shape)
    gx_t, gf_t = torch.autograd.grad(yt, (xt, ft), torch.tensor(_to_nc(g, cf)))
    gx_ref, gf_ref = _from_nc(gx_t.numpy(), cf), gf_t.numpy()
    grads = _BACKWARD[d](g, x, f, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    np.testing.assert_allclose(grads.input, gx_ref, **TOL)
    np.testing.assert_allclose(grads.filters, gf_ref, **TOL)

    gx = _BP_INPUT[d](list(x.shape), f, g, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    gf = _BP_FILTER[d](x, list(f.shape), g, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    np.testing.assert_allclose(gx, gx_ref, **TOL)
    np.testing.assert_allclose(gf, gf_ref, **TOL)
    # input_sizes may also hold the spatial sizes only (then groups = 1 is implied).
    if cfg["groups"] == 1:
        gx_spatial = _BP_INPUT[d](list(cfg["sizes"]), f, g, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
        np.testing.assert_allclose(gx_spatial, gx_ref, **TOL)

    # The generic names agree with the d-specific ones.
    np.testing.assert_array_equal(
        tfc.convolution(x, f, cfg["strides"], cfg["padding"], **_call_kwargs(cfg)), y
    )
    gen = tfc.convolution_backward(g, x, f, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    np.testing.assert_array_equal(gen.input, grads.input)
    np.testing.assert_array_equal(gen.filters, grads.filters)


@given(cfg=tf_configs(), seed=st.integers(0, 2**32 - 1))
def test_dot_product_identity_for_forward_and_gradient_ops(cfg: dict, seed: int) -> None:
    """<conv(x, f), g> = <x, backprop_input(g, f)> = <f, backprop_filter(x, g)>."""
    rng = np.random.default_rng(seed)
    d = cfg["d"]
    x = rng.standard_normal(cfg["x_shape"])
    f = rng.standard_normal(cfg["f_shape"])
    y = _FORWARD[d](x, f, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    g = rng.standard_normal(y.shape)
    gx = _BP_INPUT[d](x.shape, f, g, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    gf = _BP_FILTER[d](x, f.shape, g, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    lhs = float(np.vdot(y, g))
    scale = np.abs(y).sum() * np.abs(g).max() + 1.0
    assert abs(lhs - float(np.vdot(x, gx))) <= 1e-12 * scale
    assert abs(lhs - float(np.vdot(f, gf))) <= 1e-12 * scale


# ----------------------------------------------------------------------------- TF's padding rules


@given(
    size=st.integers(1, 40), k=st.integers(1, 7), s=st.integers(1, 6), dl=st.integers(1, 4),
    kind=st.sampled_from(["SAME", "VALID"]),
)
def test_output_sizes_follow_the_documented_formulas(size: int, k: int, s: int, dl: int, kind: str) -> None:
    k_eff = (k - 1) * dl + 1
    assume(kind == "SAME" or size >= k_eff)
    y = tfc.conv1d(np.ones((1, size, 1)), np.ones((k, 1, 1)), s, kind, dilations=dl)
    expected = math.ceil(size / s) if kind == "SAME" else _tf_valid_out(size, k, s, dl)
    assert y.shape == (1, expected, 1)


@given(
    size=st.integers(1, 12), k=st.integers(1, 5), s=st.integers(1, 4), dl=st.integers(1, 3),
    seed=st.integers(0, 2**32 - 1),
)
def test_same_puts_the_odd_padding_element_at_the_end(size: int, k: int, s: int, dl: int, seed: int) -> None:
    """SAME equals the explicit padding [total // 2, total − total // 2], odd and even totals, stride > 1."""
    lo, hi = _tf_same(size, k, s, dl)
    rng = np.random.default_rng(seed)
    x, f = rng.standard_normal((1, size, 2)), rng.standard_normal((k, 2, 1))
    same = tfc.conv1d(x, f, s, "SAME", dilations=dl)
    explicit = tfc.conv1d(x, f, s, [[0, 0], [lo, hi], [0, 0]], dilations=dl)
    np.testing.assert_array_equal(same, explicit)


def test_same_padding_examples_from_the_formula() -> None:
    # in 5, k 2, stride 2: out 3, total max(2·2 + 2 − 5, 0) = 1 -> (0, 1): the zero row/column is at the end.
    y = tfc.conv2d(np.ones((1, 5, 5, 1)), np.ones((2, 2, 1, 1)), 2, "SAME")[0, :, :, 0]
    np.testing.assert_array_equal(y, [[4, 4, 2], [4, 4, 2], [2, 2, 1]])
    # in 4, k 3, stride 2: out 2, total max(2 + 3 − 4, 0) = 1 -> (0, 1).
    x = np.arange(4.0).reshape(1, 4, 1)
    np.testing.assert_array_equal(tfc.conv1d(x, np.ones((3, 1, 1)), 2, "SAME").ravel(), [3.0, 5.0])
    # in 4, k 4, stride 1: total 3 -> (1, 2).
    np.testing.assert_array_equal(tfc.conv1d(x, np.ones((4, 1, 1)), 1, "SAME").ravel(), [3.0, 6.0, 6.0, 5.0])
    # stride larger than the window: the clamp max(·, 0) means no padding at all.
    np.testing.assert_array_equal(tfc.conv1d(np.arange(5.0).reshape(1, 5, 1), np.ones((1, 1, 1)), 3, "SAME").ravel(), [0.0, 3.0])


@pytest.mark.parametrize("d", [1, 2, 3])
def test_every_strides_form_gives_the_same_result(d: int) -> None:
    rng = np.random.default_rng(d)
    sizes, kernel = (7,) * d, (3,) * d
    x_last = rng.standard_normal((2, *sizes, 3))
    f = rng.standard_normal((*kernel, 3, 2))
    ref = _FORWARD[d](x_last, f, [2] * d, "SAME", dilations=[1] * d)
    for strides in (2, [2], [2] * d, [1, *([2] * d), 1]):
        np.testing.assert_array_equal(_FORWARD[d](x_last, f, strides, "SAME"), ref)
    x_first = np.moveaxis(x_last, -1, 1)
    for strides in (2, [2] * d, [1, 1, *([2] * d)]):
        y = _FORWARD[d](x_first, f, strides, "SAME", data_format=_FORMATS[d][1])
        np.testing.assert_array_equal(np.moveaxis(y, 1, -1), ref)
        assert y.flags.c_contiguous


def test_explicit_padding_raw_ops_form_equals_list_form() -> None:
    rng = np.random.default_rng(3)
    x, f = rng.standard_normal((1, 5, 4, 2)), rng.standard_normal((2, 3, 2, 2))
    pairs = [[0, 0], [1, 0], [2, 1], [0, 0]]
    y = tfc.conv2d(x, f, 1, pairs)
    g = rng.standard_normal(y.shape)
    flat = [p for pair in pairs for p in pair]
    np.testing.assert_array_equal(
        tfc.conv2d_backprop_input(x.shape, f, g, [1, 1, 1, 1], "EXPLICIT", explicit_paddings=flat),
        tfc.conv2d_backprop_input(x.shape, f, g, [1, 1, 1, 1], pairs),
    )
    np.testing.assert_array_equal(
        tfc.conv2d_backprop_filter(x, f.shape, g, 1, "EXPLICIT", explicit_paddings=flat),
        tfc.conv2d_backward(g, x, f, 1, pairs).filters,
    )


# ----------------------------------------------------------------------------- transposed convolutions


@given(cfg=tf_configs(), seed=st.integers(0, 2**32 - 1), full_shape=st.booleans())
def test_transpose_is_the_gradient_of_the_forward_convolution(cfg: dict, seed: int, full_shape: bool) -> None:
    """conv*d_transpose(x, f, output_shape) = d<conv(z, f), x>/dz at z of output_shape (TF's definition)."""
    rng = np.random.default_rng(seed)
    d, cf = cfg["d"], cfg["channels_first"]
    f = rng.standard_normal(cfg["f_shape"])
    zt = torch.zeros(_to_nc(np.zeros(cfg["x_shape"]), cf).shape, dtype=torch.float64, requires_grad=True)
    ft = torch.tensor(f, requires_grad=True)
    fwd = _torch_conv(zt, ft, cfg["pads"], cfg["stride"], cfg["dilation"], cfg["groups"])
    x = rng.standard_normal(_from_nc(np.zeros(tuple(fwd.shape)), cf).shape)
    output_shape = list(cfg["x_shape"]) if full_shape or cfg["groups"] > 1 else list(cfg["sizes"])

    y = _TRANSPOSE[d](x, f, output_shape, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    (ref,) = torch.autograd.grad(fwd, zt, torch.tensor(_to_nc(x, cf)), create_graph=True)
    np.testing.assert_allclose(y, _from_nc(ref.detach().numpy(), cf), **TOL)
    np.testing.assert_array_equal(
        tfc.conv_transpose(x, f, output_shape, cfg["strides"], cfg["padding"], **_call_kwargs(cfg)), y
    )

    # Both gradients of the transpose: differentiate the torch reference once more.
    g = rng.standard_normal(y.shape)
    xt = torch.tensor(_to_nc(x, cf), requires_grad=True)
    (ref2,) = torch.autograd.grad(
        _torch_conv(zt, ft, cfg["pads"], cfg["stride"], cfg["dilation"], cfg["groups"]), zt, xt, create_graph=True
    )
    gx_t, gf_t = torch.autograd.grad(ref2, (xt, ft), torch.tensor(_to_nc(g, cf)))
    grads = _TRANSPOSE_BW[d](g, x, f, output_shape, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    np.testing.assert_allclose(grads.input, _from_nc(gx_t.numpy(), cf), **TOL)
    np.testing.assert_allclose(grads.filters, gf_t.numpy(), **TOL)
    gen = tfc.conv_transpose_backward(g, x, f, output_shape, cfg["strides"], cfg["padding"], **_call_kwargs(cfg))
    np.testing.assert_array_equal(gen.input, grads.input)
    np.testing.assert_array_equal(gen.filters, grads.filters)

    # Dot-product identity for the transpose and its two gradients.
    lhs = float(np.vdot(y, g))
    scale = np.abs(y).sum() * np.abs(g).max() + 1.0
    assert abs(lhs - float(np.vdot(x, grads.input))) <= 1e-12 * scale
    assert abs(lhs - float(np.vdot(f, grads.filters))) <= 1e-12 * scale


@pytest.mark.parametrize(("size", "k", "s"), [(5, 3, 2), (6, 3, 2), (7, 2, 3), (8, 4, 3), (9, 1, 4)])
def test_transpose_same_output_shape_decides_the_padding(size: int, k: int, s: int) -> None:
    """Several output sizes share one input size (ceil(S / s)); each gets its own SAME padding."""
    q = math.ceil(size / s)
    x = np.ones((1, q, 1))
    f = np.ones((k, 1, 1))
    y = tfc.conv1d_transpose(x, f, [1, size, 1], s, "SAME")
    lo, _ = _tf_same(size, k, s, 1)
    # Scatter by hand: input element i covers output positions i·s − lo + [0, k).
    expected = np.zeros(size)
    for i in range(q):
        for j in range(k):
            p = i * s - lo + j
            if 0 <= p < size:
                expected[p] += 1.0
    np.testing.assert_array_equal(y.ravel(), expected)
    assert y.shape == (1, size, 1)


# ----------------------------------------------------------------------------- depthwise


def _depthwise_reference(x: np.ndarray, f: np.ndarray, st: tuple, dl: tuple, pads: list) -> torch.Tensor:
    """tf.nn.depthwise_conv2d's formula: output channel k·M + q is filter[..., k, q] on input channel k."""
    kh, kw, c, m = f.shape
    w = np.zeros((c * m, 1, kh, kw))
    for k in range(c):
        for q in range(m):
            w[k * m + q, 0] = f[:, :, k, q]
    flat = [p for pair in reversed(pads) for p in pair]
    return F.conv2d(F.pad(torch.tensor(x), flat), torch.tensor(w), stride=st, dilation=dl, groups=c)


@given(
    c=st.integers(1, 3), m=st.integers(1, 3), size=st.tuples(st.integers(1, 7), st.integers(1, 7)),
    k=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.integers(1, 3), rate=st.integers(1, 2),
    padding=st.sampled_from(["SAME", "VALID"]), channels_first=st.booleans(), use_rate=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_depthwise_matches_the_documented_formula(
    c: int, m: int, size: tuple, k: tuple, stride: int, rate: int, padding: str, channels_first: bool,
    use_rate: bool, seed: int,
) -> None:
    if padding == "SAME":
        pads = [_tf_same(s, kk, stride, rate) for s, kk in zip(size, k)]
    else:
        pads = [(0, 0), (0, 0)]
    assume(all(s + lo + hi >= (kk - 1) * rate + 1 for s, kk, (lo, hi) in zip(size, k, pads)))
    rng = np.random.default_rng(seed)
    x_nc = rng.standard_normal((2, c, *size))
    f = rng.standard_normal((*k, c, m))
    fmt = "NCHW" if channels_first else "NHWC"
    x = _from_nc(x_nc, channels_first)
    strides = [1, 1, stride, stride] if channels_first else [1, stride, stride, 1]
    rate_kw = {"rate": [rate, rate]} if use_rate else {"dilations": rate}
    y = tfc.depthwise_conv2d(x, f, strides, padding, data_format=fmt, **rate_kw)
    xt = torch.tensor(x_nc, requires_grad=True)
    ft = torch.tensor(f, requires_grad=True)
    kh, kw = k
    wt = ft.permute(2, 3, 0, 1).contiguous().reshape(c * m, 1, kh, kw)
    flat = [p for pair in reversed(pads) for p in pair]
    yt = F.conv2d(F.pad(xt, flat), wt, stride=stride, dilation=rate, groups=c)
    ref = _depthwise_reference(x_nc, f, (stride, stride), (rate, rate), pads).numpy()
    np.testing.assert_allclose(yt.detach().numpy(), ref, **TOL)
    np.testing.assert_allclose(y, _from_nc(ref, channels_first), **TOL)

    g = rng.standard_normal(y.shape)
    gx_t, gf_t = torch.autograd.grad(yt, (xt, ft), torch.tensor(_to_nc(g, channels_first)))
    grads = tfc.depthwise_conv2d_backward(g, x, f, strides, padding, data_format=fmt, **rate_kw)
    np.testing.assert_allclose(grads.input, _from_nc(gx_t.numpy(), channels_first), **TOL)
    np.testing.assert_allclose(grads.filters, gf_t.numpy(), **TOL)
    dil = [1, 1, rate, rate] if channels_first else [1, rate, rate, 1]
    gx = tfc.depthwise_conv2d_backprop_input(x.shape, f, g, strides, padding, data_format=fmt, dilations=dil)
    gf = tfc.depthwise_conv2d_backprop_filter(x, f.shape, g, strides, padding, data_format=fmt, dilations=dil)
    np.testing.assert_allclose(gx, grads.input, **TOL)
    np.testing.assert_allclose(gf, grads.filters, **TOL)
    gx_spatial = tfc.depthwise_conv2d_backprop_input(list(size), f, g, strides, padding, data_format=fmt, dilations=dil)
    np.testing.assert_array_equal(gx_spatial, gx)


def test_depthwise_documentation_examples() -> None:
    """Both outputs printed in the tf.nn.depthwise_conv2d documentation (VALID and explicit padding)."""
    x = np.array([[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]], dtype=np.float32).reshape((1, 3, 2, 1))
    kernel = np.array([[1.0, 2.0], [3.0, 4.0]], dtype=np.float32).reshape((2, 1, 1, 2))
    valid = tfc.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding="VALID")
    np.testing.assert_array_equal(valid, [[[[10.0, 14.0], [14.0, 20.0]], [[18.0, 26.0], [22.0, 32.0]]]])
    assert valid.dtype == np.float32
    padded = tfc.depthwise_conv2d(x, kernel, strides=[1, 1, 1, 1], padding=[[0, 0], [1, 0], [1, 0], [0, 0]])
    np.testing.assert_array_equal(
        padded,
        [[[[0.0, 0.0], [3.0, 4.0], [6.0, 8.0]], [[0.0, 0.0], [10.0, 14.0], [14.0, 20.0]],
          [[0.0, 0.0], [18.0, 26.0], [22.0, 32.0]]]],
    )


# ----------------------------------------------------------------------------- seed 001


SEED_X = np.array([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0], [7.0, 8.0, 9.0]])
SEED_F = np.array([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]])


def test_seed_001_conv2d_and_gradient_tape() -> None:
    x, f = SEED_X.reshape(1, 3, 3, 1), SEED_F.reshape(3, 3, 1, 1)
    y = tfc.conv2d(x, f, strides=[1, 1, 1, 1], padding="VALID")
    np.testing.assert_array_equal(y, [[[[-8.0]]]])
    # tape.gradient(y, [x, f]) seeds the output gradient with ones (L = sum(y)).
    dx, df = tfc.conv2d_backward(np.ones_like(y), x, f, strides=[1, 1, 1, 1], padding="VALID")
    np.testing.assert_array_equal(dx.reshape(3, 3), SEED_F)
    np.testing.assert_array_equal(df.reshape(3, 3), SEED_X)


def test_seed_001_conv2d_transpose_is_the_gradient_of_y_not_of_sum_y() -> None:
    x, f = SEED_X.reshape(1, 3, 3, 1), SEED_F.reshape(3, 3, 1, 1)
    y = tfc.conv2d(x, f, strides=[1, 1, 1, 1], padding="VALID")
    # x_grad = tf.nn.conv2d_transpose(y, f, tf.shape(x), strides=[1, 1, 1, 1], padding='VALID'): tf.shape(x) = [3, 3].
    x_grad = tfc.conv2d_transpose(y, f, [3, 3], strides=[1, 1, 1, 1], padding="VALID")
    np.testing.assert_array_equal(x_grad[0, :, :, 0], [[-8, 0, 8], [-16, 0, 16], [-8, 0, 8]])
    assert x_grad.shape == (1, 3, 3, 1)
    # It is the input gradient for the upstream gradient y (of L = y²/2), i.e. y · dy/dx:
    np.testing.assert_array_equal(x_grad, tfc.conv2d_backprop_input([1, 3, 3, 1], f, y, 1, "VALID"))
    np.testing.assert_array_equal(x_grad, -8.0 * tfc.conv2d_backward(np.ones_like(y), x, f, 1, "VALID").input)
    # f_grad = tf.nn.conv2d(x, tf.transpose(y, perm=[1, 2, 0, 3]), ...) is likewise y · dy/df = -8 · x.
    f_grad = tfc.conv2d(x, np.transpose(y, (1, 2, 0, 3)), strides=[1, 1, 1, 1], padding="VALID")
    np.testing.assert_array_equal(f_grad[0, :, :, 0], -8.0 * SEED_X)
    np.testing.assert_array_equal(f_grad.reshape(3, 3), tfc.conv2d_backprop_filter(x, [3, 3, 1, 1], y, 1, "VALID").reshape(3, 3))


# ----------------------------------------------------------------------------- layouts, dtypes, freshness


def test_results_are_fresh_c_contiguous_arrays_in_tf_layout() -> None:
    rng = np.random.default_rng(0)
    x, f = rng.standard_normal((2, 5, 4, 3)), rng.standard_normal((3, 2, 3, 4))
    y = tfc.conv2d(x, f, 1, "SAME")
    g = tfc.conv2d_backward(np.ones_like(y), x, f, 1, "SAME")
    t = tfc.conv2d_transpose(y, f, x.shape, 1, "SAME")
    for out in (y, g.input, g.filters, t):
        assert out.flags.c_contiguous and out.flags.writeable
        assert not np.shares_memory(out, x) and not np.shares_memory(out, f)
    assert y.shape == (2, 5, 4, 4) and g.filters.shape == f.shape and t.shape == x.shape


def test_integer_inputs_are_promoted_to_float64() -> None:
    x = np.arange(9).reshape(1, 3, 3, 1)
    f = np.ones((2, 2, 1, 1), dtype=np.int32)
    y = tfc.conv2d(x, f, 1, "VALID")
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y[0, :, :, 0], [[8, 12], [20, 24]])


# ----------------------------------------------------------------------------- errors


def _xf() -> tuple[np.ndarray, np.ndarray]:
    return np.ones((1, 5, 5, 2)), np.ones((3, 3, 2, 4))


def test_error_data_format() -> None:
    x, f = _xf()
    with pytest.raises(ValueError, match=r"conv2d: data_format must be 'NHWC' \(channels last, the default\) or 'NCHW' .*got 'NHCW'"):
        tfc.conv2d(x, f, 1, "SAME", data_format="NHCW")
    with pytest.raises(ValueError, match=r"conv1d: data_format must be 'NWC' .* or 'NCW'.*got 'NHWC'"):
        tfc.conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 1)), 1, "SAME", data_format="NHWC")
    with pytest.raises(ValueError, match=r"convolution: data_format must be None \(channels last\) for 4 spatial dimensions; got 'NC'"):
        tfc.convolution(np.ones((1, 3, 3, 3, 3, 1)), np.ones((1, 1, 1, 1, 1, 1)), data_format="NC")


def test_error_strides_and_dilations() -> None:
    x, f = _xf()
    with pytest.raises(ValueError, match=r"conv2d: strides must be an int or a list of length 1, 2 or 4; got \[1, 1, 1\] of length 3"):
        tfc.conv2d(x, f, [1, 1, 1], "SAME")
    with pytest.raises(ValueError, match=r"conv2d: strides must be 1 in the batch and channel dimensions \(strides\[0\] and strides\[3\]\); got strides=\[1, 2, 2, 2\]"):
        tfc.conv2d(x, f, [1, 2, 2, 2], "SAME")
    with pytest.raises(ValueError, match=r"strides\[1\] must be >= 1; got 0"):
        tfc.conv2d(x, f, [1, 0], "SAME")
    with pytest.raises(TypeError, match=r"conv2d: strides must be an int or a list of ints; got '2'"):
        tfc.conv2d(x, f, "2", "SAME")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"conv2d: dilations must be 1 in the batch and channel dimensions \(dilations\[0\] and dilations\[1\]\)"):
        tfc.conv2d(np.ones((1, 2, 5, 5)), f, 1, "SAME", data_format="NCHW", dilations=[1, 2, 1, 1])
    with pytest.raises(ValueError, match=r"conv1d: stride must be an int or a list of length 1 or 3; got \[1, 1\] of length 2"):
        tfc.conv1d(np.ones((1, 5, 2)), np.ones((3, 2, 1)), [1, 1], "SAME")


def test_error_padding() -> None:
    x, f = _xf()
    with pytest.raises(ValueError, match=r"padding must be 'SAME', 'VALID' or a list of \[before, after\] pairs; got 'same' \(TensorFlow's names are upper-case\)"):
        tfc.conv2d(x, f, 1, "same")
    with pytest.raises(ValueError, match=r"padding must be 'SAME', 'VALID' or a list .*got 'FULL'$"):
        tfc.conv2d(x, f, 1, "FULL")
    with pytest.raises(TypeError, match=r"conv2d: padding must be 'SAME', 'VALID' or a list of \[before, after\] pairs; got 1"):
        tfc.conv2d(x, f, 1, 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"explicit padding must be a list of 4 \[before, after\] pairs, one per dimension"):
        tfc.conv2d(x, f, 1, [[1, 1], [1, 1]])
    with pytest.raises(ValueError, match=r"conv2d: padding\[1\] must be a \[before, after\] pair of ints; got \[1, 1, 1\]"):
        tfc.conv2d(x, f, 1, [[0, 0], [1, 1, 1], [1, 1], [0, 0]])
    with pytest.raises(ValueError, match=r"padding\[2\]\[0\] must be >= 0; got -1"):
        tfc.conv2d(x, f, 1, [[0, 0], [1, 1], [-1, 1], [0, 0]])
    with pytest.raises(ValueError, match=r"explicit padding must be \[0, 0\] in the batch and channel dimensions \(padding\[0\] and padding\[3\]\); got \[\[0, 0\], \[1, 1\], \[1, 1\], \[1, 0\]\]"):
        tfc.conv2d(x, f, 1, [[0, 0], [1, 1], [1, 1], [1, 0]])


def test_error_explicit_paddings_argument() -> None:
    x, f = _xf()
    g = np.ones((1, 5, 5, 4))
    with pytest.raises(ValueError, match=r"padding='EXPLICIT' needs explicit_paddings with 8 ints .*got None"):
        tfc.conv2d_backprop_input(x.shape, f, g, 1, "EXPLICIT")
    with pytest.raises(ValueError, match=r"padding='EXPLICIT' needs explicit_paddings with 8 ints .*got \[1, 1\]"):
        tfc.conv2d_backprop_filter(x, f.shape, g, 1, "EXPLICIT", explicit_paddings=[1, 1])
    with pytest.raises(ValueError, match=r"explicit_paddings is only used with padding='EXPLICIT'; got padding='SAME'"):
        tfc.conv2d_backprop_input(x.shape, f, g, 1, "SAME", explicit_paddings=[0] * 8)
    with pytest.raises(ValueError, match=r"must be \[0, 0\] in the batch and channel dimensions \(explicit_paddings\[0\]"):
        tfc.conv2d_backprop_input(x.shape, f, g, 1, "EXPLICIT", explicit_paddings=[1, 0, 1, 1, 1, 1, 0, 0])


def test_error_ranks_and_sizes() -> None:
    x, f = _xf()
    with pytest.raises(ValueError, match=r"conv2d: input must have 4 dimensions \(NHWC\); got shape \(5, 5, 2\)"):
        tfc.conv2d(x[0], f, 1, "SAME")
    with pytest.raises(ValueError, match=r"conv2d: filters must have 4 dimensions \(\[\*filter_size, in_channels, out_channels\]\); got shape \(3, 2, 4\)"):
        tfc.conv2d(x, f[0], 1, "SAME")
    with pytest.raises(ValueError, match=r"conv2d: every dimension of input must be >= 1; got shape \(0, 5, 5, 2\)"):
        tfc.conv2d(np.ones((0, 5, 5, 2)), f, 1, "SAME")
    with pytest.raises(ValueError, match=r"convolution: input must have at least 3 dimensions .*got shape \(5, 2\)"):
        tfc.convolution(np.ones((5, 2)), np.ones((3, 2, 1)))
    with pytest.raises(TypeError, match=r"input must have a numeric dtype"):
        tfc.conv2d(np.full((1, 5, 5, 2), "a"), f, 1, "SAME")


def test_error_channels_and_groups() -> None:
    with pytest.raises(ValueError, match=r"conv2d: the input channels \(3\) must be a multiple of filters.shape\[2\] \(2\), the filters' input depth"):
        tfc.conv2d(np.ones((1, 5, 5, 3)), np.ones((3, 3, 2, 4)), 1, "SAME")
    with pytest.raises(ValueError, match=r"conv2d: filters.shape\[3\] \(3 output channels\) must be divisible by the number of groups 2 \(= 4 input channels / filter depth 2\)"):
        tfc.conv2d(np.ones((1, 5, 5, 4)), np.ones((3, 3, 2, 3)), 1, "SAME")


def test_error_output_size_below_one() -> None:
    with pytest.raises(ValueError, match=r"conv2d: output size would be < 1 in spatial dimension 1: input size 2 \+ padding 0 \+ 0 is smaller than the dilated filter size 5 \(dilation 2 \* \(filter 3 - 1\) \+ 1\)"):
        tfc.conv2d(np.ones((1, 5, 2, 1)), np.ones((3, 3, 1, 1)), 1, "VALID", dilations=2)


def test_error_gradient_shapes() -> None:
    x, f = _xf()
    with pytest.raises(ValueError, match=r"conv2d_backward: grad_output.shape \(1, 5, 5, 4\) must equal \(1, 3, 3, 4\), the shape of the forward output"):
        tfc.conv2d_backward(np.ones((1, 5, 5, 4)), x, f, 1, "VALID")
    with pytest.raises(ValueError, match=r"conv2d_backprop_input: out_backprop.shape \(1, 3, 3, 4\) must equal \(1, 5, 5, 4\), the output shape of the forward convolution of input_sizes \[1, 5, 5, 2\]"):
        tfc.conv2d_backprop_input([1, 5, 5, 2], f, np.ones((1, 3, 3, 4)), 1, "SAME")
    with pytest.raises(ValueError, match=r"conv2d_backprop_filter: out_backprop.shape \(1, 5, 5, 4\) must equal \(1, 3, 3, 4\)"):
        tfc.conv2d_backprop_filter(x, [3, 3, 2, 4], np.ones((1, 5, 5, 4)), 1, "VALID")
    with pytest.raises(ValueError, match=r"conv2d_backprop_input: input_sizes must hold the 2 spatial sizes or the full 4-D shape; got \[1, 5, 5\]"):
        tfc.conv2d_backprop_input([1, 5, 5], f, np.ones((1, 5, 5, 4)), 1, "SAME")
    with pytest.raises(ValueError, match=r"conv2d_backprop_input: out_backprop must have 4 dimensions; got shape \(5, 5, 4\)"):
        tfc.conv2d_backprop_input([5, 5], f, np.ones((5, 5, 4)), 1, "SAME")
    with pytest.raises(ValueError, match=r"input_sizes\[1\] must be >= 0; got -5"):
        tfc.conv2d_backprop_input([1, -5, 5, 2], f, np.ones((1, 5, 5, 4)), 1, "SAME")


def test_error_transpose_shapes() -> None:
    f = np.ones((3, 3, 2, 4))  # transpose: 4 input channels -> 2 output channels
    with pytest.raises(ValueError, match=r"conv2d_transpose: input.shape \(1, 2, 2, 4\) must equal \(1, 3, 3, 4\), the output shape of the forward convolution of output_shape \[1, 5, 5, 2\] .*strides \(2, 2\)"):
        tfc.conv2d_transpose(np.ones((1, 2, 2, 4)), f, [1, 5, 5, 2], 2, "SAME")
    with pytest.raises(ValueError, match=r"conv2d_transpose_backward: grad_output.shape \(1, 4, 4, 2\) must equal \(1, 5, 5, 2\), output_shape"):
        tfc.conv2d_transpose_backward(np.ones((1, 4, 4, 2)), np.ones((1, 3, 3, 4)), f, [1, 5, 5, 2], 2, "SAME")
    with pytest.raises(ValueError, match=r"conv2d_transpose: filters must have 4 dimensions; got shape \(3, 2, 4\)"):
        tfc.conv2d_transpose(np.ones((1, 3, 3, 4)), f[0], [5, 5], 2, "SAME")


def test_error_depthwise() -> None:
    x = np.ones((1, 5, 5, 2))
    with pytest.raises(ValueError, match=r"depthwise_conv2d: give dilations or its older name rate, not both; got dilations=2, rate=2"):
        tfc.depthwise_conv2d(x, np.ones((3, 3, 2, 1)), 1, "SAME", dilations=2, rate=2)
    with pytest.raises(ValueError, match=r"depthwise_conv2d: filter.shape\[2\] \(3\) must equal the input channels \(2\)"):
        tfc.depthwise_conv2d(x, np.ones((3, 3, 3, 1)), 1, "SAME")
    with pytest.raises(ValueError, match=r"depthwise_conv2d_backward: filter must have 4 dimensions; got shape \(3, 3, 2\)"):
        tfc.depthwise_conv2d_backward(np.ones((1, 5, 5, 2)), x, np.ones((3, 3, 2)), 1, "SAME")
    with pytest.raises(ValueError, match=r"depthwise_conv2d_backprop_filter: filter_sizes must be \[kh, kw, in_channels, channel_multiplier\]; got \[3, 3, 2\]"):
        tfc.depthwise_conv2d_backprop_filter(x, [3, 3, 2], np.ones((1, 5, 5, 2)), 1, "SAME")
    with pytest.raises(ValueError, match=r"depthwise_conv2d_backprop_filter: filter_sizes\[2\] \(1\) must equal the input channels \(2\)"):
        tfc.depthwise_conv2d_backprop_filter(x, [3, 3, 1, 2], np.ones((1, 5, 5, 2)), 1, "SAME")
    with pytest.raises(ValueError, match=r"depthwise_conv2d_backprop_input: filter must have 4 dimensions; got shape \(3, 2, 1\)"):
        tfc.depthwise_conv2d_backprop_input([1, 5, 5, 2], np.ones((3, 2, 1)), np.ones((1, 5, 5, 2)), 1, "SAME")


# ----------------------------------------------------------------------------- integer exactness


def _correlate_channels(x: np.ndarray, f: np.ndarray, mode: str) -> np.ndarray:
    """Σ_c correlate(x[n, :, :, c], f[:, :, c, o]) in int64 (SciPy's direct sums: an exact reference)."""
    n, c, o = x.shape[0], x.shape[-1], f.shape[-1]
    return np.stack([
        np.stack([
            sum(scipy.signal.correlate(x[i, :, :, k].astype(np.int64), f[:, :, k, j].astype(np.int64), mode, method="direct") for k in range(c))
            for j in range(o)
        ], axis=-1)
        for i in range(n)
    ])


def test_integer_conv2d_and_its_gradients_are_exact() -> None:
    """uint8-range images under a large integer filter: every result equals the int64 reference exactly
    (the core never sends integer data to the FFT, whose rounding the float path shows here)."""
    rng = np.random.default_rng(11)
    x = rng.integers(0, 256, (2, 64, 64, 3), dtype=np.uint8)
    f = rng.integers(-5, 6, (31, 31, 3, 4))
    y = tfc.conv2d(x, f, 1, "VALID")
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, _correlate_channels(x, f, "valid"))
    same = tfc.conv2d(x, f, 1, "SAME")
    np.testing.assert_array_equal(same, _correlate_channels(x, f, "same"))  # odd filter: SAME is SciPy's "same"

    g = rng.integers(-3, 4, y.shape)
    grads = tfc.conv2d_backward(g, x, f, 1, "VALID")
    # dL/dx = Σ_o convolve(g[..., o], f[:, :, c, o], "full"); dL/df = Σ_n correlate(x[n, ..., c], g[n, ..., o], "valid").
    gx = np.stack([
        np.stack([sum(scipy.signal.convolve(g[i, :, :, j], f[:, :, k, j], "full", method="direct") for j in range(4)) for k in range(3)], axis=-1)
        for i in range(2)
    ])
    gf = np.stack([
        np.stack([sum(scipy.signal.correlate(x[i, :, :, k].astype(np.int64), g[i, :, :, j], "valid", method="direct") for i in range(2)) for j in range(4)], axis=-1)
        for k in range(3)
    ], axis=-2)
    np.testing.assert_array_equal(grads.input, gx)
    np.testing.assert_array_equal(grads.filters, gf)
    np.testing.assert_array_equal(tfc.conv2d_backprop_input(x.shape, f, g, 1, "VALID"), gx)
    np.testing.assert_array_equal(tfc.conv2d_backprop_filter(x, f.shape, g, 1, "VALID"), gf)


# ----------------------------------------------------------------------------- the namespace


TF_NAMES = {
    "TFGrads", "conv1d", "conv2d", "conv3d", "convolution", "depthwise_conv2d",
    "conv1d_transpose", "conv2d_transpose", "conv3d_transpose", "conv_transpose",
    "conv1d_backprop_input", "conv2d_backprop_input", "conv3d_backprop_input", "depthwise_conv2d_backprop_input",
    "conv1d_backprop_filter", "conv2d_backprop_filter", "conv3d_backprop_filter", "depthwise_conv2d_backprop_filter",
    "conv1d_backward", "conv2d_backward", "conv3d_backward", "convolution_backward", "depthwise_conv2d_backward",
    "conv1d_transpose_backward", "conv2d_transpose_backward", "conv3d_transpose_backward", "conv_transpose_backward",
}


def test_namespace_lists_only_tensorflow_names() -> None:
    assert set(tfc.__all__) == TF_NAMES and len(tfc.__all__) == len(TF_NAMES)
    assert dir(tfc) == sorted(tfc.__all__)
    for name in ("np", "dataclass", "check_array", "conv", "conv_input_grad", "conv_weight_grad"):
        assert name not in dir(tfc)
    for name in tfc.__all__:  # no PyTorch-convention function of the core under a TensorFlow name
        assert getattr(tfc, name) is not getattr(convgrad, name, None)


@pytest.mark.parametrize("name", sorted(TF_NAMES - {"TFGrads"}))
def test_every_function_has_its_signature_and_a_numpydoc_docstring(name: str) -> None:
    fn = getattr(tfc, name)
    params = inspect.signature(fn).parameters
    d = next((c for c in "123" if f"conv{c}d" in name), None)
    stride = "stride" if name in ("conv1d", "conv1d_backward") else "strides"
    assert stride in params and "padding" in params and "dilations" in params
    if d is not None and "depthwise" not in name:
        assert params["data_format"].default == _FORMATS[int(d)][0]
    doc = fn.__doc__
    for section in ("Parameters\n----------\n", "Returns\n-------\n", "Examples\n--------\n", "shape="):
        assert section in doc
    for p in params:
        assert p == "dilations" or f"\n{p} : " in doc or f"\n{p}, dilations : " in doc, p
    assert "\n>>> " in doc and "tfc." + name + "(" in doc
