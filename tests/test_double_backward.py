"""Second derivatives: ``conv_double_backward`` / ``conv_transpose_double_backward`` and ``gradgradcheck``.

References: PyTorch's own double backward (``torch.autograd.grad`` of the
first gradients with ``create_graph=True``), exact finite differences of the
core's first gradients (they are bilinear), and ``torch.autograd.gradgradcheck``
on the bridge.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import convgrad as cg
import convgrad.torch as cgt
from bridge_cases import Case, cases, reference

# Central differences of bilinear maps in float64 are exact up to rounding (~1e-10 here), so the
# checks can be far tighter than gradcheck's defaults (atol=1e-5, rtol=1e-3), which would let a
# 0.1% error in a second derivative through.
TIGHT: dict[str, float] = {"atol": 1e-8, "rtol": 1e-6}


def _numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().resolve_conj().numpy()


def _torch_double_backward(case: Case, dtype: torch.dtype, present: tuple[bool, bool, bool]) -> dict[str, Any]:
    """PyTorch's vector-Jacobian product of the first gradients, plus the arrays it used."""
    x, w = case.tensors(dtype)[:2]
    b = torch.randn(case.c_out, dtype=dtype, requires_grad=True)
    y = reference(case)(x, w, b)
    gen = torch.Generator().manual_seed(1)
    g = torch.randn(y.shape, dtype=dtype, generator=gen).requires_grad_()
    firsts = torch.autograd.grad(y, (x, w, b), g, create_graph=True)
    upstream = [torch.randn(f.shape, dtype=dtype, generator=gen) if keep else None for f, keep in zip(firsts, present)]
    outputs = [f for f, u in zip(firsts, upstream) if u is not None]
    kept = [u for u in upstream if u is not None]
    wrt = torch.autograd.grad(outputs, (g, x, w), kept, allow_unused=True) if outputs else (None, None, None)
    expected = [np.zeros(t.shape, dtype=_numpy(t).dtype) if r is None else _numpy(r) for r, t in zip(wrt, (g, x, w))]
    up = [None if u is None else _numpy(u) for u in upstream]
    return {"upstream": up, "g": _numpy(g), "x": _numpy(x), "w": _numpy(w), "expected": expected}


def _check_against_torch(case: Case, dtype: torch.dtype, present: tuple[bool, bool, bool]) -> None:
    ref = _torch_double_backward(case, dtype, present)
    function = cg.conv_transpose_double_backward if case.transposed else cg.conv_double_backward
    got = function(*ref["upstream"], ref["g"], ref["x"], ref["w"], **case.kwargs())
    for name, actual, expected in zip(("grad_output", "input", "weight"), got, ref["expected"]):
        assert actual.shape == expected.shape, name
        assert actual.dtype == expected.dtype, name
        np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-11, err_msg=name)


@given(
    case=cases(),
    complex_=st.booleans(),
    present=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_conv_double_backward_matches_torch(case: Case, complex_: bool, present: tuple[bool, bool, bool]) -> None:
    _check_against_torch(case, torch.complex128 if complex_ else torch.float64, present)


@given(
    case=cases(transposed=True),
    complex_=st.booleans(),
    present=st.tuples(st.booleans(), st.booleans(), st.booleans()),
)
def test_conv_transpose_double_backward_matches_torch(
    case: Case, complex_: bool, present: tuple[bool, bool, bool]
) -> None:
    _check_against_torch(case, torch.complex128 if complex_ else torch.float64, present)


@given(case=cases())
def test_conv_double_backward_is_the_derivative_of_conv_backward(case: Case) -> None:
    """No torch: the first gradients are bilinear, so a central difference is exact up to rounding."""
    rng = np.random.default_rng(7)
    x, w = rng.standard_normal(case.x_shape), rng.standard_normal(case.w_shape)
    g = rng.standard_normal(cg.conv_output_shape(case.x_shape, case.w_shape, **_shape_kwargs(case)))
    ggx, ggw, ggb = rng.standard_normal(x.shape), rng.standard_normal(w.shape), rng.standard_normal(case.c_out)
    dg, dx, dw = rng.standard_normal(g.shape), rng.standard_normal(x.shape), rng.standard_normal(w.shape)

    def objective(eps: float) -> float:
        gx, gw, gb = cg.conv_backward(g + eps * dg, x + eps * dx, w + eps * dw, **case.kwargs())
        return float(np.vdot(gx, ggx) + np.vdot(gw, ggw) + np.vdot(gb, ggb))

    numeric = (objective(1e-3) - objective(-1e-3)) / 2e-3
    dd = cg.conv_double_backward(ggx, ggw, ggb, g, x, w, **case.kwargs())
    analytic = float(np.vdot(dd.grad_output, dg) + np.vdot(dd.input, dx) + np.vdot(dd.weight, dw))
    assert analytic == pytest.approx(numeric, rel=1e-9, abs=1e-9)


def _shape_kwargs(case: Case) -> dict[str, Any]:
    return {"stride": case.stride, "padding": case.padding, "dilation": case.dilation}


@given(case=cases())
def test_gradgradcheck_conv(case: Case) -> None:
    inputs = case.tensors()

    def f(*args: torch.Tensor) -> torch.Tensor:
        return cgt.conv(*args, **case.kwargs())

    assert torch.autograd.gradgradcheck(f, inputs, **TIGHT)


@given(case=cases(transposed=True))
def test_gradgradcheck_conv_transpose(case: Case) -> None:
    inputs = case.tensors()

    def f(*args: torch.Tensor) -> torch.Tensor:
        return cgt.conv_transpose(*args, **case.kwargs())

    assert torch.autograd.gradgradcheck(f, inputs, **TIGHT)


@pytest.mark.parametrize("dtype", [torch.float64, torch.complex128])
def test_gradgradcheck_full_jacobian(dtype: torch.dtype) -> None:
    """The slow mode compares every entry of the Jacobians (one strided, grouped, reflect-padded case)."""
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(2, 4, 4, 3, dtype=dtype, generator=gen, requires_grad=True)
    w = torch.randn(4, 2, 2, 2, dtype=dtype, generator=gen, requires_grad=True)
    b = torch.randn(4, dtype=dtype, generator=gen, requires_grad=True)

    def f(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return cgt.conv(x, w, b, stride=(2, 1), padding=((1, 0), (1, 1)), groups=2, padding_mode="reflect")

    assert torch.autograd.gradgradcheck(f, (x, w, b), **TIGHT)


def test_third_derivative_matches_torch() -> None:
    """The Functions are closed under differentiation: the third derivative agrees too."""
    gen = torch.Generator().manual_seed(4)
    x = torch.randn(1, 2, 6, dtype=torch.float64, generator=gen, requires_grad=True)
    w = torch.randn(3, 2, 3, dtype=torch.float64, generator=gen, requires_grad=True)

    def third(conv: Any) -> torch.Tensor:
        y = conv(x, w)
        (gx,) = torch.autograd.grad(y.pow(3).sum(), x, create_graph=True)
        (gw,) = torch.autograd.grad(gx.square().sum(), w, create_graph=True)
        (gxx,) = torch.autograd.grad(gw.sum(), x)
        return gxx

    ours = third(lambda x, w: cgt.conv(x, w, stride=2, padding=1))
    theirs = third(lambda x, w: torch.nn.functional.conv1d(x, w, stride=2, padding=1))
    torch.testing.assert_close(ours, theirs, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- edge cases and errors


def test_no_upstream_gives_zeros_of_the_right_shapes_and_dtype() -> None:
    x, w, g = np.ones((2, 3, 5), np.float32), np.ones((4, 3, 2), np.float32), np.ones((2, 4, 4), np.float32)
    dd = cg.conv_double_backward(None, None, None, g, x, w)
    assert [a.shape for a in dd] == [g.shape, x.shape, w.shape]
    assert all(a.dtype == np.float32 and not a.any() for a in dd)


def test_float32_in_float32_out_and_unbatched() -> None:
    rng = np.random.default_rng(0)
    x, w = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal((2, 3, 2)).astype(np.float32)
    g = rng.standard_normal((2, 4)).astype(np.float32)
    dd = cg.conv_double_backward(x, w, np.ones(2, np.float32), g, x, w)
    batched = cg.conv_double_backward(x[None], w, np.ones(2, np.float32), g[None], x[None], w)
    assert all(a.dtype == np.float32 for a in dd)
    for a, b in zip(dd, batched):
        np.testing.assert_allclose(a, b[0] if a.ndim == 2 else b, rtol=1e-6)


_X, _W, _G = np.ones((1, 2, 5)), np.ones((3, 2, 2)), np.ones((1, 3, 4))


@pytest.mark.parametrize(
    ("args", "error", "match"),
    [
        ((np.ones((1, 2, 4)), None, None, _G, _X, _W), ValueError, r"ggx.shape \(1, 2, 4\) must equal x.shape \(1, 2, 5\)"),
        ((None, np.ones((3, 2, 3)), None, _G, _X, _W), ValueError, r"ggw.shape \(3, 2, 3\) must equal w.shape \(3, 2, 2\)"),
        ((None, None, np.ones(2), _G, _X, _W), ValueError, r"ggb.shape \(2,\) must equal \(out_channels,\) = \(3,\)"),
        ((np.array(["a"] * 10).reshape(1, 2, 5), None, None, _G, _X, _W), TypeError, "ggx must have a numeric dtype"),
        ((None, None, None, np.ones((1, 3, 5)), _X, _W), ValueError, r"grad_output.shape \(1, 3, 5\) must equal"),
        ((None, None, None, _G, np.ones((1, 4, 5)), _W), ValueError, r"w.shape\[1\] \(2\) must equal in_channels"),
    ],
)
def test_conv_double_backward_errors(args: tuple[Any, ...], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        cg.conv_double_backward(*args)


def test_conv_transpose_double_backward_errors() -> None:
    x, w, g = np.ones((1, 2, 3)), np.ones((2, 1, 2)), np.ones((1, 1, 6))
    with pytest.raises(ValueError, match=r"ggb.shape \(2,\) must equal \(out_channels,\) = \(1,\)"):
        cg.conv_transpose_double_backward(None, None, np.ones(2), g, x, w, stride=2)
    with pytest.raises(ValueError, match=r"ggx.shape \(1, 2, 6\) must equal x.shape \(1, 2, 3\)"):
        cg.conv_transpose_double_backward(np.ones((1, 2, 6)), None, None, g, x, w, stride=2)
    with pytest.raises(ValueError, match=r"grad_output.shape \(1, 1, 5\) must equal the forward output shape \(1, 1, 6\)"):
        cg.conv_transpose_double_backward(None, None, None, np.ones((1, 1, 5)), x, w, stride=2)
    with pytest.raises(ValueError, match=r"output_padding must be >= 0; got -1"):
        cg.conv_transpose_double_backward(None, None, None, g, x, w, stride=2, output_padding=-1)
