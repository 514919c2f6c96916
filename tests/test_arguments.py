"""Odd argument types: accepted as PyTorch accepts them, or refused with the argument named, before any work."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convgrad as cg
from convgrad.engine import dispatch

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_T = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@pytest.fixture
def no_work(monkeypatch: pytest.MonkeyPatch) -> None:
    def forbidden(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("work started before the arguments were checked")

    monkeypatch.setattr(dispatch, "run", forbidden)


@pytest.mark.parametrize("d", [2, 3])
@pytest.mark.parametrize("name", ["stride", "padding", "dilation"])
def test_one_element_tuples_are_broadcast_like_pytorch(d: int, name: str) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((2, 2) + (7,) * d)
    w = rng.standard_normal((3, 2) + (3,) * d)
    value = {"stride": 2, "padding": 1, "dilation": 2}[name]
    y = cg.conv(x, w, **{name: (value,)})
    ref = _CONV[d](torch.tensor(x), torch.tensor(w), **{name: (value,)}).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(y, cg.conv(x, w, **{name: value}))
    g = rng.standard_normal(y.shape)
    for a, b in zip(cg.conv_backward(g, x, w, **{name: (value,)}), cg.conv_backward(g, x, w, **{name: value})):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("d", [2, 3])
def test_one_element_tuples_in_conv_transpose(d: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 2) + (4,) * d)
    w = rng.standard_normal((2, 3) + (3,) * d)
    kw = {"stride": (2,), "padding": (1,), "dilation": (2,), "output_padding": (1,)}
    y = cg.conv_transpose(x, w, **kw)
    ref = _CONV_T[d](torch.tensor(x), torch.tensor(w), **kw).numpy()
    np.testing.assert_allclose(y, ref, rtol=1e-12, atol=1e-12)


def test_zero_dimensional_arrays_are_ints() -> None:
    x, w = np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3))
    kw = {"stride": np.array(2), "padding": np.array(1), "dilation": np.int64(1)}
    np.testing.assert_array_equal(cg.conv(x, w, **kw), cg.conv(x, w, stride=2, padding=1))
    y = cg.conv_transpose(x, w, stride=np.array(2), output_padding=np.array(1))
    assert y.shape == cg.conv_transpose(x, w, stride=2, output_padding=1).shape


@pytest.mark.usefixtures("no_work")
@pytest.mark.parametrize(
    ("kw", "exc", "match"),
    [
        ({"padding": b"\x01\x00\x00\x00"}, TypeError, r"padding must be an int"),
        ({"stride": b"\x02\x02"}, TypeError, r"stride must be an int or a tuple"),
        ({"stride": 10**30}, ValueError, r"stride must be <= 2147483647; got 10{30}"),
        ({"padding": 2**62}, ValueError, r"padding must be <= 2147483647; got 4611686018427387904"),
        ({"padding": (1, 2**62)}, ValueError, r"padding\[1\] must be <= 2147483647"),
        ({"dilation": (1, 2**40)}, ValueError, r"dilation\[1\] must be <= 2147483647"),
        ({"stride": np.array([[1, 1]])}, TypeError, r"stride\[0\] must be an integer"),
        ({"stride": np.array(1.5)}, TypeError, r"stride must be an int"),
        ({"groups": np.array(1.0)}, TypeError, r"groups must be an integer"),
        ({"stride": 1.0}, TypeError, r"stride must be an int"),
        ({"stride": None}, TypeError, r"stride must be an int"),
    ],
)
def test_odd_geometry_arguments_are_refused_naming_the_argument(kw: dict[str, Any], exc: type, match: str) -> None:
    x, w = np.ones((1, 1, 8, 8)), np.ones((1, 1, 3, 3))
    with pytest.raises(exc, match=match):
        cg.conv(x, w, **kw)


@pytest.mark.usefixtures("no_work")
def test_huge_transposed_arguments_are_refused() -> None:
    x, w = np.ones((1, 1, 4)), np.ones((1, 1, 3))
    with pytest.raises(ValueError, match=r"output_padding must be <= 2147483647"):
        cg.conv_transpose(x, w, stride=2, output_padding=2**40)
    with pytest.raises(ValueError, match=r"stride must be <= 2147483647"):
        cg.conv_transpose(x, w, stride=99999999999999999999999)


def test_torch_tensors_with_requires_grad_come_back_as_detached_tensors() -> None:
    x = torch.randn(1, 2, 6, dtype=torch.float64, requires_grad=True)
    w = torch.randn(3, 2, 3, dtype=torch.float64, requires_grad=True)
    y = cg.conv(x, w, padding=1)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.float64 and not y.requires_grad
    torch.testing.assert_close(y, F.conv1d(x, w, padding=1).detach(), rtol=1e-12, atol=1e-12)
    g = torch.ones(y.shape, dtype=torch.float64)
    grads = cg.conv_backward(g, x, w, padding=1)
    assert isinstance(grads.input, torch.Tensor) and grads.input.shape == (1, 2, 6)
    assert x.grad is None and w.grad is None  # nothing flowed into autograd


def test_bfloat16_tensors_are_computed_in_float32_and_returned_as_bfloat16() -> None:
    x = torch.randn(1, 2, 6).to(torch.bfloat16)
    w = torch.randn(3, 2, 3).to(torch.bfloat16)
    y = cg.conv(x, w)
    assert isinstance(y, torch.Tensor) and y.dtype == torch.bfloat16
    expected = F.conv1d(x.float(), w.float()).to(torch.bfloat16)
    torch.testing.assert_close(y, expected, rtol=1e-2, atol=1e-2)
    # read as NumPy arrays (what the torch bridge does) bfloat16 is computed and returned in float32
    assert cg.conv(x.float().numpy(), w.float().numpy()).dtype == np.float32


def test_non_numeric_arrays_are_refused() -> None:
    with pytest.raises(TypeError, match=r"x must have a numeric dtype"):
        cg.conv(np.array([["a"]]), np.ones((1, 1, 1)))
    with pytest.raises(TypeError, match=r"w must be an array of numbers|w must have a numeric dtype"):
        cg.conv(np.ones((1, 1, 3)), [[[1.0, 2.0], [3.0]]])


def test_inputs_are_never_modified_and_results_never_alias_them() -> None:
    rng = np.random.default_rng(5)
    for w_shape, kw in [((3, 4, 1), {}), ((4, 4, 3), {"padding": 1}), ((4, 1, 3), {"groups": 4})]:
        x, w = rng.standard_normal((2, 4, 9)), rng.standard_normal(w_shape)
        x0, w0 = x.copy(), w.copy()
        y = cg.conv(x, w, **kw)
        g = rng.standard_normal(y.shape)
        g0 = g.copy()
        grads = cg.conv_backward(g, x, w, **kw)
        for a, before in ((x, x0), (w, w0), (g, g0)):
            np.testing.assert_array_equal(a, before)
        for result in (y, *grads):
            for given in (x, w, g):
                assert not np.shares_memory(result, given)
