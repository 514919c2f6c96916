"""Differential tests: convgrad against PyTorch float64 autograd over the configuration space."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import convgrad as cg
from strategies import Config, conv_configs
from torch_ref import torch_conv


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    """max |a − b| / max(1, max |b|)."""
    assert a.shape == b.shape, (a.shape, b.shape)
    if a.size == 0:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(1.0, float(np.max(np.abs(b)))))


def check_against_torch(cfg: Config, seed: int, dtype: type = np.float64, tol: float = 1e-10) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    y_ref = torch_conv(cfg, x, w, b)[0]
    g = rng.standard_normal(y_ref.shape)
    _, gx_ref, gw_ref, gb_ref = torch_conv(cfg, x, w, b, g)
    xd, wd, bd, gd = (a.astype(dtype) for a in (x, w, b, g))
    y = cg.conv(xd, wd, bd, **cfg.kwargs())
    grads = cg.conv_backward(gd, xd, wd, **cfg.kwargs())
    for name, ours, ref in [
        ("y", y, y_ref),
        ("gx", grads.input, gx_ref),
        ("gw", grads.weight, gw_ref),
        ("gb", grads.bias, gb_ref),
    ]:
        assert ours.dtype == dtype, name
        err = rel_err(ours.astype(np.float64), ref)
        assert err <= tol, f"{name}: relative error {err:.3g} > {tol:g} for {cfg}"
    # The single-gradient functions agree with conv_backward bit for bit; the bias gradient to rounding (a depthwise
    # layer's conv_backward sums g in the compiled kernels' float64 partial sums, conv_bias_grad by NumPy).
    kw = cfg.kwargs()
    np.testing.assert_array_equal(cg.conv_input_grad(gd, wd, input_shape=x.shape, **kw), grads.input)
    np.testing.assert_array_equal(cg.conv_weight_grad(gd, xd, weight_shape=w.shape, **kw), grads.weight)
    alone = cg.conv_bias_grad(gd, unbatched=not cfg.batched)
    assert alone.dtype == grads.bias.dtype
    if not cfg.groups == cfg.c_in == cfg.c_out > 1:
        np.testing.assert_array_equal(alone, grads.bias)
    np.testing.assert_allclose(alone, grads.bias, rtol=1e-13 if dtype == np.float64 else 1e-5,
                               atol=(1e-13 if dtype == np.float64 else 1e-5) * max(1.0, float(np.abs(alone).max())))


@given(cfg=conv_configs(modes=("zeros",)), seed=st.integers(0, 2**32 - 1))
def test_zeros_padding_float64_matches_torch(cfg: Config, seed: int) -> None:
    check_against_torch(cfg, seed)


@given(cfg=conv_configs(modes=("reflect", "replicate", "circular")), seed=st.integers(0, 2**32 - 1))
def test_padding_modes_float64_match_torch(cfg: Config, seed: int) -> None:
    check_against_torch(cfg, seed)


@given(cfg=conv_configs(max_extra=3), seed=st.integers(0, 2**32 - 1))
def test_float32_matches_torch_within_1e_4(cfg: Config, seed: int) -> None:
    check_against_torch(cfg, seed, dtype=np.float32, tol=1e-4)


@given(cfg=conv_configs(dims=(1, 2), modes=("zeros",), max_groups=1), seed=st.integers(0, 2**32 - 1))
def test_depthwise_matches_torch(cfg: Config, seed: int) -> None:
    """groups = in_channels = out_channels (and channel multipliers)."""
    c = cfg.c_in
    cfg.groups, cfg.c_out = c, c * (1 + seed % 2)
    check_against_torch(cfg, seed)


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation"),
    [
        ((5, 5), (5, 5), 1, 0, 1),  # kernel equal to the input: output 1×1
        ((3, 3), (5, 5), 1, 1, 1),  # kernel equal to the padded input
        ((7,), (3,), 3, 0, 3),  # dilated kernel spans the whole input
        ((8, 9), (3, 2), (3, 2), (1, 0), 1),  # (P − δ(K−1) − 1) mod s ≠ 0: floor remainder
        ((10, 7, 6), (3, 1, 2), (2, 3, 1), ((2, 0), (0, 1), (1, 1)), (1, 2, 2)),  # 3-D, asymmetric
    ],
)
def test_edge_geometries_match_torch(
    size: tuple[int, ...], kernel: tuple[int, ...], stride: object, padding: object, dilation: object
) -> None:
    d = len(size)
    if isinstance(padding, tuple) and isinstance(padding[0], tuple):
        lo = tuple(p[0] for p in padding)
        hi = tuple(p[1] for p in padding)
    else:
        lo = hi = padding if isinstance(padding, tuple) else (padding,) * d  # type: ignore[assignment]
    cfg = Config(d, 2, True, 1, 3, 4, kernel, size, stride, dilation, padding, lo, hi, "zeros")  # type: ignore[arg-type]
    check_against_torch(cfg, seed=7)


def test_complex_matches_torch_conjugation_convention(rng: np.random.Generator) -> None:
    """Complex data: no conjugation forward; gradients as torch.autograd (conjugate Wirtinger)."""
    x = rng.standard_normal((2, 4, 7, 6)) + 1j * rng.standard_normal((2, 4, 7, 6))
    w = rng.standard_normal((6, 2, 3, 2)) + 1j * rng.standard_normal((6, 2, 3, 2))
    b = rng.standard_normal(6) + 1j * rng.standard_normal(6)
    kw = {"stride": (2, 1), "padding": 1, "dilation": (1, 2), "groups": 2}
    xt, wt, bt = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    yt = F.conv2d(xt, wt, bt, **kw)
    g = rng.standard_normal(yt.shape) + 1j * rng.standard_normal(yt.shape)
    gx, gw, gb = torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))
    y = cg.conv(x, w, b, **kw)
    ours = cg.conv_backward(g, x, w, **kw)
    assert y.dtype == np.complex128
    np.testing.assert_allclose(y, yt.detach().numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.input, gx.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.weight, gw.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.bias, gb.numpy(), atol=1e-12)


def test_float16_is_preserved_and_close_to_torch(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 3, 9, 9)).astype(np.float16)
    w = rng.standard_normal((4, 3, 3, 3)).astype(np.float16)
    y = cg.conv(x, w, padding=1)
    assert y.dtype == np.float16
    ref = F.conv2d(torch.tensor(x.astype(np.float64)), torch.tensor(w.astype(np.float64)), padding=1).numpy()
    np.testing.assert_allclose(y.astype(np.float64), ref, atol=2e-2, rtol=2e-2)
    grads = cg.conv_backward(np.ones_like(y), x, w, padding=1)
    assert {a.dtype for a in grads} == {np.dtype(np.float16)}


def test_unbatched_matches_torch_unbatched(rng: np.random.Generator) -> None:
    x = rng.standard_normal((3, 8))
    w = rng.standard_normal((5, 3, 3))
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = F.conv1d(xt, wt, stride=2, padding=2)
    g = rng.standard_normal(yt.shape)
    gx, gw = torch.autograd.grad(yt, (xt, wt), torch.tensor(g))
    assert cg.conv(x, w, stride=2, padding=2).shape == yt.shape == (5, 5)
    ours = cg.conv_backward(g, x, w, stride=2, padding=2)
    np.testing.assert_allclose(ours.input, gx.numpy(), atol=1e-12)
    np.testing.assert_allclose(ours.weight, gw.numpy(), atol=1e-12)
