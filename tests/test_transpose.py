"""Transposed convolution against PyTorch float64 autograd, its adjoint identities, and its errors."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import convgrad as cg
from torch_ref import torch_conv_transpose


@st.composite
def transpose_configs(draw: Any, dims: tuple[int, ...] = (1, 2, 3)) -> dict[str, Any]:
    d = draw(st.sampled_from(dims))
    groups = draw(st.integers(1, 3))
    c_in = groups * draw(st.integers(1, 2))
    c_out = groups * draw(st.integers(1, 2))
    kernel = tuple(draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
    stride = tuple(draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
    dilation = tuple(draw(st.lists(st.integers(1, 3), min_size=d, max_size=d)))
    out_pad = tuple(draw(st.integers(0, max(s, dl) - 1)) for s, dl in zip(stride, dilation))
    size = tuple(draw(st.lists(st.integers(1, 4), min_size=d, max_size=d)))
    lo, hi = [], []
    for s, k, st_, dl, a in zip(size, kernel, stride, dilation, out_pad):
        full = (s - 1) * st_ + dl * (k - 1) + a + 1
        total = draw(st.integers(0, full - 1))  # keep the output size >= 1
        first = draw(st.integers(0, total))
        lo.append(first)
        hi.append(total - first)
    batched = draw(st.booleans())
    n = draw(st.integers(1, 3))
    return {
        "d": d, "groups": groups, "c_in": c_in, "c_out": c_out, "kernel": kernel, "stride": stride,
        "dilation": dilation, "output_padding": out_pad, "size": size, "lo": tuple(lo), "hi": tuple(hi),
        "batched": batched, "n": n, "use_output_shape": draw(st.booleans()),
    }


def _reference(cfg: dict[str, Any], x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray | None) -> tuple[Any, ...]:
    """Asymmetric padding for torch: transpose with padding 0, then crop (l, h) — autograd follows the crop."""
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    from torch_ref import _CONV_T

    yt = _CONV_T[cfg["d"]](
        xt if cfg["batched"] else xt[None], wt, bt, stride=cfg["stride"], padding=0,
        output_padding=cfg["output_padding"], dilation=cfg["dilation"], groups=cfg["groups"],
    )
    crop = tuple(slice(a, yt.shape[2 + i] - b_) for i, (a, b_) in enumerate(zip(cfg["lo"], cfg["hi"])))
    yt = yt[(slice(None), slice(None), *crop)]
    if not cfg["batched"]:
        yt = yt[0]
    if g is None:
        return (yt.detach().numpy(),)
    return (yt.detach().numpy(), *(t.numpy() for t in torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))))


@given(cfg=transpose_configs(), seed=st.integers(0, 2**32 - 1))
def test_conv_transpose_and_backward_match_torch(cfg: dict[str, Any], seed: int) -> None:
    rng = np.random.default_rng(seed)
    lead = (cfg["n"], cfg["c_in"]) if cfg["batched"] else (cfg["c_in"],)
    x = rng.standard_normal(lead + cfg["size"])
    w = rng.standard_normal((cfg["c_in"], cfg["c_out"] // cfg["groups"]) + cfg["kernel"])
    b = rng.standard_normal(cfg["c_out"])
    padding = tuple(zip(cfg["lo"], cfg["hi"]))
    y_ref = _reference(cfg, x, w, b, None)[0]
    kw: dict[str, Any] = {"stride": cfg["stride"], "padding": padding, "dilation": cfg["dilation"], "groups": cfg["groups"]}
    if cfg["use_output_shape"]:
        kw["output_shape"] = y_ref.shape[-cfg["d"]:]
    else:
        kw["output_padding"] = cfg["output_padding"]
    y = cg.conv_transpose(x, w, b, **kw)
    np.testing.assert_allclose(y, y_ref, rtol=1e-10, atol=1e-10)
    g = rng.standard_normal(y.shape)
    _, gx_ref, gw_ref, gb_ref = _reference(cfg, x, w, b, g)
    grads = cg.conv_transpose_backward(g, x, w, **kw)
    np.testing.assert_allclose(grads.input, gx_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads.weight, gw_ref, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(grads.bias, gb_ref, rtol=1e-10, atol=1e-10)
    assert cg.conv_transpose_output_shape(x.shape, w.shape, **{k: v for k, v in kw.items() if k != "output_shape"} | (
        {"output_padding": cfg["output_padding"]})) == y.shape


@given(cfg=transpose_configs(), seed=st.integers(0, 2**32 - 1))
def test_transposed_dot_product_and_identity_with_input_grad(cfg: dict[str, Any], seed: int) -> None:
    """⟨conv_transpose(x, w), g⟩ = ⟨x, conv(g, w)⟩ and conv_transpose(x, w) = conv_input_grad(x, w)."""
    rng = np.random.default_rng(seed)
    lead = (cfg["n"], cfg["c_in"]) if cfg["batched"] else (cfg["c_in"],)
    x = rng.standard_normal(lead + cfg["size"])
    w = rng.standard_normal((cfg["c_in"], cfg["c_out"] // cfg["groups"]) + cfg["kernel"])
    kw = {"stride": cfg["stride"], "padding": tuple(zip(cfg["lo"], cfg["hi"])), "dilation": cfg["dilation"], "groups": cfg["groups"]}
    y = cg.conv_transpose(x, w, output_padding=cfg["output_padding"], **kw)
    g = rng.standard_normal(y.shape)
    gx = cg.conv_transpose_backward(g, x, w, output_padding=cfg["output_padding"], **kw).input
    assert abs(np.vdot(y, g) - np.vdot(x, gx)) <= 1e-12 * max(1.0, float(np.abs(y).sum() * np.abs(g).max()))
    if all(a < s for a, s in zip(cfg["output_padding"], cfg["stride"])):
        # Then the forward conv of y's shape has exactly x's shape: conv_transpose is its input gradient.
        np.testing.assert_array_equal(y, cg.conv_input_grad(x, w, input_shape=y.shape, **kw))


def test_complex_transpose_matches_torch(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 4, 5)) + 1j * rng.standard_normal((2, 4, 5))
    w = rng.standard_normal((4, 3, 3)) + 1j * rng.standard_normal((4, 3, 3))
    b = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    kw = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}
    y = cg.conv_transpose(x, w, b, **kw)
    g = rng.standard_normal(y.shape) + 1j * rng.standard_normal(y.shape)
    ref = torch_conv_transpose(x, w, b, g, **kw)
    ours = (y, *cg.conv_transpose_backward(g, x, w, **kw))
    for a, r in zip(ours, ref):
        np.testing.assert_allclose(a, r, atol=1e-12)


def test_float32_transpose_stays_float32(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 4, 4)).astype(np.float32)
    w = rng.standard_normal((3, 2, 3, 3)).astype(np.float32)
    y = cg.conv_transpose(x, w, stride=2)
    assert y.dtype == np.float32
    assert {a.dtype for a in cg.conv_transpose_backward(np.ones_like(y), x, w, stride=2)} == {np.dtype(np.float32)}
    ref = torch_conv_transpose(x.astype(np.float64), w.astype(np.float64), None, None, stride=2)[0]
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-4)


X = np.zeros((2, 4, 5, 5))
W = np.zeros((4, 3, 3, 3))


@pytest.mark.parametrize(
    ("match", "kwargs", "args"),
    [
        (r"output_padding\[1\] must be >= 0; got -2", {"stride": 2, "output_padding": (0, -2)}, (X, W)),
        (r"output_shape \(14, 11\) is impossible in spatial dimension 0: valid sizes range from 11 to 12; got 14", {"stride": 2, "output_shape": (14, 11)}, (X, W)),
        (r"output_shape \(2, 3, 11, 10\) is impossible in spatial dimension 1: valid sizes range from 11 to 12; got 10", {"stride": 2, "output_shape": (2, 3, 11, 10)}, (X, W)),
        (r"output_shape must hold the 2 spatial sizes or the full output shape; got \(11,\)", {"stride": 2, "output_shape": (11,)}, (X, W)),
        (r"give either output_padding or output_shape, not both", {"stride": 2, "output_padding": 1, "output_shape": (11, 11)}, (X, W)),
        (r"w.shape\[0\] \(3\) must equal in_channels \(x.shape\[1\] = 4\) for a transposed convolution", {}, (X, np.zeros((3, 4, 3, 3)))),
        (r"groups=3 does not divide in_channels=4 \(x.shape\[1\]\)", {"groups": 3}, (X, W)),
        (r"padding must be an int, a tuple of 2 ints or of 2 \(before, after\) pairs for a transposed convolution; got the string 'same'", {"padding": "same"}, (X, W)),
        (r"output size would be -1 < 1 in spatial dimension 0: \(input 5 - 1\) \* stride 1 - padding 4 - 4 \+ dilation 1 \* \(kernel 3 - 1\) \+ output_padding 0 \+ 1", {"padding": (4, 0)}, (X, W)),
        (r"b must have shape \(out_channels,\) = \(3,\); got shape \(4,\)", {}, (X, W, np.zeros(4))),
    ],
)
def test_conv_transpose_errors(match: str, kwargs: dict[str, Any], args: tuple[Any, ...]) -> None:
    with pytest.raises(ValueError, match=match):
        cg.conv_transpose(*args, **kwargs)


def test_conv_transpose_backward_grad_output_shape() -> None:
    with pytest.raises(ValueError, match=r"grad_output.shape \(2, 3, 7, 7\) must equal the forward output shape \(2, 3, 11, 11\)"):
        cg.conv_transpose_backward(np.zeros((2, 3, 7, 7)), X, W, stride=2)
