"""The generalised core against PyTorch where PyTorch can express it, against JAX where only JAX can.

What the core gained for JAX's ``conv_general_dilated``: negative ``(before, after)`` padding (a crop),
``input_dilation`` (JAX's ``lhs_dilation``), ``conv_transpose`` with any padding pairs and any output
padding, and batch groups (XLA's ``batch_group_count``). The oracles:

* PyTorch 2.13 float64/complex128 autograd on the definition written with PyTorch's own operations:
  input dilation as explicit zero insertion (``x_d[..., ::a] = x``), padding and cropping as ``F.pad``
  with positive and negative widths, then ``conv{1,2,3}d``; the transposed convolution as the
  unpadded ``conv_transpose{1,2,3}d`` cropped or zero-extended by ``F.pad``; batch groups as one
  ``conv`` per group of samples and output channels, concatenated. Gradients by ``torch.autograd.grad``
  (second order with ``create_graph=True``).
* JAX (``lax.conv_general_dilated`` with ``batch_group_count`` and its ``jax.vjp``), run in the worker
  process of ``tests/jax_worker.py``, for the batch-grouped convolution XLA defines.
* The adjoint (dot-product) identities, which need no reference at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convgrad as cg
from jax_worker import ABORTED, describe, jax_available, register_summary, shared_worker

TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
TORCH_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}
TOL = {"rtol": 1e-11, "atol": 1e-11}


@pytest.fixture(scope="module", autouse=True)
def _list_aborts(request: pytest.FixtureRequest) -> None:
    register_summary(request.config)


def _random(shape: tuple[int, ...], complex_: bool, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal(shape)
    return a + 1j * rng.standard_normal(shape) if complex_ else a


def _inner(a: np.ndarray, b: np.ndarray) -> complex:
    """``⟨a, b⟩ = Σ conj(a)·b``."""
    return complex(np.vdot(a.ravel(), b.ravel()))


# ----------------------------------------------------------------------------- the PyTorch definitions


def pad_crop(x: torch.Tensor, pads: Any) -> torch.Tensor:
    """Spatial ``(before, after)`` widths: positive ones add zeros, then negative ones cut from the padded result
    (``F.pad`` alone refuses a crop longer than the original side)."""
    flat = [max(p, 0) for pair in reversed(pads) for p in pair]
    out = F.pad(x, flat)
    index = [slice(None), slice(None)]
    for size, (lo, hi) in zip(out.shape[2:], pads):
        index.append(slice(max(-lo, 0), size - max(-hi, 0)))
    return out[tuple(index)]


def torch_conv(x: torch.Tensor, w: torch.Tensor, b: Any, stride: tuple[int, ...], pads: tuple[tuple[int, int], ...],
               dilation: tuple[int, ...], groups: int, input_dilation: tuple[int, ...]) -> torch.Tensor:
    """``conv(pad(dilate(x)), w)``: zeros inserted, then padded (or cropped where negative)."""
    d = x.ndim - 2
    if any(a > 1 for a in input_dilation):
        size = tuple((s - 1) * a + 1 for s, a in zip(x.shape[2:], input_dilation))
        xd = x.new_zeros(tuple(x.shape[:2]) + size)
        xd[(slice(None), slice(None)) + tuple(slice(None, None, a) for a in input_dilation)] = x
    else:
        xd = x
    return TORCH_CONV[d](pad_crop(xd, pads), w, b, stride=stride, dilation=dilation, groups=groups)


def torch_conv_transpose(x: torch.Tensor, w: torch.Tensor, b: Any, stride: tuple[int, ...],
                         pads: tuple[tuple[int, int], ...], output_padding: tuple[int, ...], dilation: tuple[int, ...],
                         groups: int) -> torch.Tensor:
    """The unpadded transposed convolution, ``before`` removed at the front, ``after − output_padding`` at the
    end (a negative width adds zeros), then the bias."""
    d = x.ndim - 2
    full = TORCH_CONV_T[d](x, w, None, stride=stride, dilation=dilation, groups=groups)
    y = pad_crop(full, [(-lo, a - hi) for (lo, hi), a in zip(pads, output_padding)])
    return y if b is None else y + b.reshape((-1,) + (1,) * d)


def torch_batch_grouped(x: torch.Tensor, w: torch.Tensor, b: Any, groups: int, **kw: Any) -> torch.Tensor:
    """Batch group ``γ`` (samples ``γ·N/B …``) under output channels ``γ·O/B …``, concatenated over channels."""
    nb, ob = x.shape[0] // groups, w.shape[0] // groups
    ys = [torch_conv(x[g * nb:(g + 1) * nb], w[g * ob:(g + 1) * ob], None, groups=1, **kw) for g in range(groups)]
    y = torch.cat(ys, dim=1)
    return y if b is None else y + b.reshape((-1,) + (1,) * (x.ndim - 2))


# ----------------------------------------------------------------------------- configurations


@st.composite
def conv_configs(draw: st.DrawFn, batch_groups: bool = False) -> dict[str, Any]:
    """Forward geometries with crops and input dilation, combined with strides, dilation and groups."""
    d = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 3))
    bg = draw(st.integers(2, 3)) if batch_groups else 1
    n = bg * draw(st.integers(1, 2)) if batch_groups else draw(st.integers(0, 2))
    c = (1 if batch_groups else groups) * draw(st.integers(1, 2))
    o = (bg if batch_groups else groups) * draw(st.integers(1, 2))
    sizes = [draw(st.integers(1, 6)) for _ in range(d)]
    kernel = [draw(st.integers(1, 3)) for _ in range(d)]
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    input_dilation = tuple(draw(st.integers(1, 3)) for _ in range(d))
    pads = tuple((draw(st.integers(-3, 3)), draw(st.integers(-3, 3))) for _ in range(d))
    for s, a, (lo, hi), k, dl in zip(sizes, input_dilation, pads, kernel, dilation):
        assume((s - 1) * a + 1 + lo + hi >= dl * (k - 1) + 1)  # at least one output
    complex_ = draw(st.booleans()) and not batch_groups
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _random((n, c, *sizes), complex_, rng)
    w = _random((o, c // (1 if batch_groups else groups), *kernel), complex_, rng)
    b = _random((o,), complex_, rng) if draw(st.booleans()) else None
    kw = {"stride": stride, "padding": pads, "dilation": dilation, "input_dilation": input_dilation}
    return {"x": x, "w": w, "b": b, "kw": kw, "groups": groups, "batch_groups": bg,
            "method": draw(st.sampled_from(["auto", "direct", "fft"]))}


@st.composite
def transpose_configs(draw: st.DrawFn) -> dict[str, Any]:
    """Transposed geometries with padding pairs of any sign and size and output padding of any size."""
    d = draw(st.integers(1, 3))
    groups = draw(st.integers(1, 2))
    n, c, m = draw(st.integers(1, 2)), groups * draw(st.integers(1, 2)), draw(st.integers(1, 2))
    sizes = [draw(st.integers(1, 5)) for _ in range(d)]
    kernel = [draw(st.integers(1, 3)) for _ in range(d)]
    stride = tuple(draw(st.integers(1, 3)) for _ in range(d))
    dilation = tuple(draw(st.integers(1, 2)) for _ in range(d))
    spans = [dl * (k - 1) + 1 for k, dl in zip(kernel, dilation)]
    pads = tuple((draw(st.integers(-3, sp + 2)), draw(st.integers(-3, sp + 2))) for sp in spans)
    output_padding = tuple(draw(st.integers(0, max(s, dl) + 3)) for s, dl in zip(stride, dilation))
    for s, st_, sp, (lo, hi), a in zip(sizes, stride, spans, pads, output_padding):
        assume((s - 1) * st_ - lo - hi + sp + a >= 1)
    complex_ = draw(st.booleans())
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = _random((n, c, *sizes), complex_, rng)
    w = _random((c, m, *kernel), complex_, rng)
    b = _random((m * groups,), complex_, rng) if draw(st.booleans()) else None
    return {"x": x, "w": w, "b": b, "groups": groups,
            "kw": {"stride": stride, "padding": pads, "output_padding": output_padding, "dilation": dilation}}


# ----------------------------------------------------------------------------- against PyTorch


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=60)
@given(conv_configs())
def test_crop_and_input_dilation_match_torch(cfg: dict[str, Any]) -> None:
    x, w, b, kw, groups = cfg["x"], cfg["w"], cfg["b"], cfg["kw"], cfg["groups"]
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = torch_conv(xt, wt, bt, kw["stride"], kw["padding"], kw["dilation"], groups, kw["input_dilation"])
    y = cg.conv(x, w, b, groups=groups, method=cfg["method"], **kw)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    assert cg.conv_output_shape(x.shape, w.shape, **kw) == y.shape
    g = _random(y.shape, np.iscomplexobj(x), np.random.default_rng(0))
    leaves = (xt, wt) if bt is None else (xt, wt, bt)
    expected = torch.autograd.grad(yt, leaves, torch.tensor(g))
    grads = cg.conv_backward(g, x, w, groups=groups, method=cfg["method"], **kw)
    np.testing.assert_allclose(grads.input, expected[0].numpy(), **TOL)
    np.testing.assert_allclose(grads.weight, expected[1].numpy(), **TOL)
    if bt is not None:
        np.testing.assert_allclose(grads.bias, expected[2].numpy(), **TOL)
    np.testing.assert_allclose(cg.conv_input_grad(g, w, input_shape=x.shape, groups=groups, **kw), grads.input, **TOL)
    np.testing.assert_allclose(cg.conv_weight_grad(g, x, weight_shape=w.shape, groups=groups, **kw), grads.weight,
                               **TOL)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=30)
@given(conv_configs())
def test_double_backward_with_crop_and_input_dilation_matches_torch(cfg: dict[str, Any]) -> None:
    x, w, kw, groups = cfg["x"], cfg["w"], cfg["kw"], cfg["groups"]
    assume(x.shape[0] > 0)
    rng = np.random.default_rng(1)
    cplx = np.iscomplexobj(x)
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    yt = torch_conv(xt, wt, None, kw["stride"], kw["padding"], kw["dilation"], groups, kw["input_dilation"])
    g = _random(tuple(yt.shape), cplx, rng)
    gt = torch.tensor(g, requires_grad=True)
    gx, gw = torch.autograd.grad(yt, (xt, wt), gt, create_graph=True)
    ggx, ggw = _random(x.shape, cplx, rng), _random(w.shape, cplx, rng)
    e_g, e_x, e_w = torch.autograd.grad((gx, gw), (gt, xt, wt), (torch.tensor(ggx), torch.tensor(ggw)),
                                        allow_unused=True)
    got = cg.conv_double_backward(ggx, ggw, None, g, x, w, groups=groups, **kw)
    np.testing.assert_allclose(got.grad_output, e_g.numpy(), **TOL)
    np.testing.assert_allclose(got.input, e_x.numpy(), **TOL)
    np.testing.assert_allclose(got.weight, e_w.numpy(), **TOL)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=60)
@given(transpose_configs())
def test_transposed_any_padding_and_output_padding_match_torch(cfg: dict[str, Any]) -> None:
    x, w, b, kw, groups = cfg["x"], cfg["w"], cfg["b"], cfg["kw"], cfg["groups"]
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = torch_conv_transpose(xt, wt, bt, kw["stride"], kw["padding"], kw["output_padding"], kw["dilation"], groups)
    y = cg.conv_transpose(x, w, b, groups=groups, **kw)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    assert cg.conv_transpose_output_shape(x.shape, w.shape, groups=groups, **kw) == y.shape
    g = _random(y.shape, np.iscomplexobj(x), np.random.default_rng(0))
    leaves = (xt, wt) if bt is None else (xt, wt, bt)
    expected = torch.autograd.grad(yt, leaves, torch.tensor(g))
    grads = cg.conv_transpose_backward(g, x, w, groups=groups, **kw)
    np.testing.assert_allclose(grads.input, expected[0].numpy(), **TOL)
    np.testing.assert_allclose(grads.weight, expected[1].numpy(), **TOL)
    if bt is not None:
        np.testing.assert_allclose(grads.bias, expected[2].numpy(), **TOL)


@pytest.mark.filterwarnings("ignore")
@settings(max_examples=40)
@given(conv_configs(batch_groups=True))
def test_batch_groups_match_torch_per_group(cfg: dict[str, Any]) -> None:
    x, w, b, kw, bg = cfg["x"], cfg["w"], cfg["b"], cfg["kw"], cfg["batch_groups"]
    xt, wt = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    bt = None if b is None else torch.tensor(b, requires_grad=True)
    yt = torch_batch_grouped(xt, wt, bt, bg, stride=kw["stride"], pads=kw["padding"], dilation=kw["dilation"],
                             input_dilation=kw["input_dilation"])
    y = cg.conv_batch_grouped(x, w, b, batch_groups=bg, method=cfg["method"], **kw)
    np.testing.assert_allclose(y, yt.detach().numpy(), **TOL)
    g = np.random.default_rng(0).standard_normal(y.shape)
    leaves = (xt, wt) if bt is None else (xt, wt, bt)
    expected = torch.autograd.grad(yt, leaves, torch.tensor(g))
    grads = cg.conv_batch_grouped_backward(g, x, w, batch_groups=bg, method=cfg["method"], **kw)
    np.testing.assert_allclose(grads.input, expected[0].numpy(), **TOL)
    np.testing.assert_allclose(grads.weight, expected[1].numpy(), **TOL)
    if bt is not None:
        np.testing.assert_allclose(grads.bias, expected[2].numpy(), **TOL)


# ----------------------------------------------------------------------------- adjoint identities


@settings(max_examples=40)
@given(conv_configs())
def test_adjoint_identities_with_crop_and_input_dilation(cfg: dict[str, Any]) -> None:
    """⟨conv(x, w), g⟩ = ⟨x, conv_input_grad(g, w)⟩ = ⟨w, conv_weight_grad(g, x)⟩ (conjugate-linear for complex)."""
    x, w, kw, groups = cfg["x"], cfg["w"], cfg["kw"], cfg["groups"]
    assume(x.shape[0] > 0)
    y = cg.conv(x, w, groups=groups, **kw)
    g = _random(y.shape, np.iscomplexobj(x), np.random.default_rng(2))
    lhs = _inner(y, g)
    scale = max(1.0, abs(lhs), float(np.abs(y).sum() * np.abs(g).max()))
    gx = cg.conv_input_grad(g, w, input_shape=x.shape, groups=groups, **kw)
    gw = cg.conv_weight_grad(g, x, weight_shape=w.shape, groups=groups, **kw)
    assert abs(lhs - _inner(x, gx)) <= 1e-12 * scale
    assert abs(lhs - _inner(w, gw)) <= 1e-12 * scale


@settings(max_examples=40)
@given(transpose_configs())
def test_adjoint_identity_of_the_transposed_convolution(cfg: dict[str, Any]) -> None:
    x, w, kw, groups = cfg["x"], cfg["w"], cfg["kw"], cfg["groups"]
    y = cg.conv_transpose(x, w, groups=groups, **kw)
    g = _random(y.shape, np.iscomplexobj(x), np.random.default_rng(3))
    grads = cg.conv_transpose_backward(g, x, w, groups=groups, **kw)
    lhs = _inner(y, g)
    scale = max(1.0, abs(lhs), float(np.abs(y).sum() * np.abs(g).max()))
    assert abs(lhs - _inner(x, grads.input)) <= 1e-12 * scale
    assert abs(lhs - _inner(w, grads.weight)) <= 1e-12 * scale


@settings(max_examples=25)
@given(conv_configs(batch_groups=True))
def test_adjoint_identities_of_batch_groups(cfg: dict[str, Any]) -> None:
    x, w, kw, bg = cfg["x"], cfg["w"], cfg["kw"], cfg["batch_groups"]
    y = cg.conv_batch_grouped(x, w, batch_groups=bg, **kw)
    g = np.random.default_rng(4).standard_normal(y.shape)
    grads = cg.conv_batch_grouped_backward(g, x, w, batch_groups=bg, **kw)
    lhs = _inner(y, g)
    scale = max(1.0, abs(lhs), float(np.abs(y).sum() * np.abs(g).max()))
    assert abs(lhs - _inner(x, grads.input)) <= 1e-12 * scale
    assert abs(lhs - _inner(w, grads.weight)) <= 1e-12 * scale


# ----------------------------------------------------------------------------- against JAX

JAX_BATCH_GROUPS = {
    # (x shape, w shape, batch groups, stride, padding, dilation, input dilation)
    "1d_two_groups": ((4, 3, 7), (4, 3, 2), 2, (1,), ((0, 0),), (1,), (1,)),
    "2d_three_groups_strided_cropped": ((6, 2, 5, 6), (3, 2, 2, 3), 3, (2, 1), ((-1, 1), (2, -2)), (1, 2), (1, 1)),
    "2d_input_dilation_and_strides": ((2, 1, 4, 3), (4, 1, 3, 2), 2, (2, 3), ((1, 0), (0, 2)), (1, 1), (2, 3)),
    "3d_groups_with_dilation": ((4, 2, 3, 4, 3), (2, 2, 2, 2, 1), 2, (1, 2, 1), ((1, 1), (0, 0), (-1, 0)), (2, 1, 1),
                                (1, 2, 1)),
}


@pytest.mark.skipif(not jax_available(), reason="jax is not installed (pip install 'jax[cpu]')")
@pytest.mark.parametrize("name", sorted(JAX_BATCH_GROUPS))
def test_batch_groups_match_jax(name: str) -> None:
    """``conv_batch_grouped`` is XLA's ``batch_group_count``: forward and vjp against JAX (NC…/OI… layouts)."""
    xs, ws, bg, stride, pads, dilation, input_dilation = JAX_BATCH_GROUPS[name]
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(xs), rng.standard_normal(ws)
    kw = {"stride": stride, "padding": pads, "dilation": dilation, "input_dilation": input_dilation}
    y = cg.conv_batch_grouped(x, w, batch_groups=bg, **kw)
    g = rng.standard_normal(y.shape)
    ours = cg.conv_batch_grouped_backward(g, x, w, batch_groups=bg, **kw)
    case = {"op": "conv_general_dilated", "lhs": x, "rhs": w, "g": g,
            "kwargs": {"window_strides": stride, "padding": pads, "lhs_dilation": input_dilation,
                       "rhs_dilation": dilation, "batch_group_count": bg}}
    answer = shared_worker().run([case])[0]
    if answer is ABORTED:
        answer = shared_worker().run([dict(case, g=None)])[0]
        if answer is ABORTED:
            pytest.skip(f"jaxlib aborted: {describe(case)}")
    assert answer[0] == "ok", answer
    np.testing.assert_allclose(y, answer[1], rtol=1e-12, atol=1e-12)
    if answer[2] is not None:
        np.testing.assert_allclose(ours.input, answer[2][0], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(ours.weight, answer[2][1], rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- errors of the new arguments

X2, W2 = np.ones((2, 2, 5, 5)), np.ones((4, 2, 3, 3))

ERRORS: list[tuple[str, Any, tuple[Any, ...], dict[str, Any], type, str]] = [
    ("crop_leaves_no_window", cg.conv, (X2, W2), {"padding": ((-2, -1), (0, 0))}, ValueError,
     "output size would be < 1 in spatial dimension 0: the padded input size 2 (input 5 + padding -2 + -1) is smaller "
     "than the dilated kernel size 3"),
    ("crop_with_reflect", cg.conv, (X2, W2), {"padding": ((-1, 0), (0, 0)), "padding_mode": "reflect"}, ValueError,
     "negative padding (a crop) needs padding_mode='zeros'; got padding_mode='reflect' with padding ((-1, 0), (0, 0))"),
    ("padding_pair_not_int", cg.conv, (X2, W2), {"padding": ((-1.0, 0), (0, 0))}, TypeError,
     "padding[0][0] must be an integer; got -1.0"),
    ("input_dilation_zero", cg.conv, (X2, W2), {"input_dilation": (1, 0)}, ValueError,
     "input_dilation[1] must be >= 1; got 0"),
    ("input_dilation_length", cg.conv, (X2, W2), {"input_dilation": (1, 2, 3)}, ValueError,
     "input_dilation must be an int or a tuple of 2 ints (one per spatial dimension); got (1, 2, 3) with 3 entries"),
    ("input_dilation_type", cg.conv, (X2, W2), {"input_dilation": "2"}, TypeError,
     "input_dilation must be an int or a tuple of 2 ints (one per spatial dimension); got '2'"),
    ("input_dilation_with_circular", cg.conv, (X2, W2), {"input_dilation": 2, "padding": 1, "padding_mode": "circular"},
     ValueError, "input_dilation needs padding_mode='zeros'; got padding_mode='circular'"),
    ("input_grad_input_dilation", cg.conv_input_grad, (np.ones((2, 4, 3, 3)), W2),
     {"input_shape": X2.shape, "input_dilation": 2}, ValueError,
     "grad_output.shape (2, 4, 3, 3) must equal the forward output shape (2, 4, 7, 7)"),
    ("output_shape_input_dilation", cg.conv_output_shape, ((2, 2, 5, 5), (4, 2, 3, 3)),
     {"input_dilation": 0}, ValueError, "input_dilation must be >= 1; got 0"),
    ("transpose_output_padding_negative", cg.conv_transpose, (X2, W2[:2]), {"output_padding": -1}, ValueError,
     "output_padding must be >= 0; got -1"),
    ("transpose_padding_too_large", cg.conv_transpose, (X2, W2[:2]), {"padding": ((5, 2), (0, 0))}, ValueError,
     "output size would be 0 < 1 in spatial dimension 0: (input 5 - 1) * stride 1 - padding 5 - 2 + dilation 1 * "
     "(kernel 3 - 1) + output_padding 0 + 1"),
    ("batch_groups_zero", cg.conv_batch_grouped, (X2, W2), {"batch_groups": 0}, ValueError,
     "batch_groups must be >= 1; got 0"),
    ("batch_groups_not_int", cg.conv_batch_grouped, (X2, W2), {"batch_groups": 2.0}, TypeError,
     "batch_groups must be an integer; got 2.0"),
    ("batch_groups_batch", cg.conv_batch_grouped, (np.ones((3, 2, 5, 5)), W2), {"batch_groups": 2}, ValueError,
     "batch_groups=2 does not divide the batch size 3 (x.shape[0])"),
    ("batch_groups_out_channels", cg.conv_batch_grouped, (X2, np.ones((3, 2, 3, 3))), {"batch_groups": 2}, ValueError,
     "batch_groups=2 does not divide out_channels=3 (w.shape[0])"),
    ("batch_groups_unbatched", cg.conv_batch_grouped, (np.ones((2, 5, 5)), W2), {"batch_groups": 1}, ValueError,
     "x must be batched, (N, C, *S) with 4 dimensions like w, for batch groups; got x.shape (2, 5, 5)"),
    ("batch_groups_backward_grad_shape", cg.conv_batch_grouped_backward, (np.ones((2, 4, 3, 3)), X2, W2),
     {"batch_groups": 2}, ValueError, "grad_output.shape (2, 4, 3, 3) must equal the forward output shape (1, 4, 3, 3)"),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "exc", "fragment"), [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_new_arguments_errors_name_the_argument_and_value(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any],
                                                         exc: type, fragment: str) -> None:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert fragment in str(info.value)
