"""Dtypes, empty batches, NaN/inf, views, aliasing, and the workspace budget."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import convgrad as cg

KW = {"stride": (2, 1), "padding": ((1, 0), (2, 1)), "dilation": (1, 2), "groups": 2}


def _arrays(rng: np.random.Generator, dtype: Any = np.float64) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    x = rng.standard_normal((3, 4, 9, 8)).astype(dtype)
    w = rng.standard_normal((6, 2, 3, 2)).astype(dtype)
    b = rng.standard_normal(6).astype(dtype)
    g = rng.standard_normal(cg.conv_output_shape(x.shape, w.shape, stride=(2, 1), padding=KW["padding"], dilation=(1, 2))).astype(dtype)
    return x, w, b, g


def _all_results(x: np.ndarray, w: np.ndarray, b: np.ndarray, g: np.ndarray) -> list[np.ndarray]:
    return [
        cg.conv(x, w, b, **KW),
        *cg.conv_backward(g, x, w, **KW),
        cg.conv_input_grad(g, w, input_shape=x.shape, **KW),
        cg.conv_weight_grad(g, x, weight_shape=w.shape, **KW),
        cg.conv_bias_grad(g),
    ]


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, np.complex64, np.complex128])
def test_dtype_is_preserved_end_to_end(rng: np.random.Generator, dtype: Any) -> None:
    for result in _all_results(*_arrays(rng, dtype)):
        assert result.dtype == dtype


def test_float32_never_passes_through_float64(rng: np.random.Generator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every matmul of a float32 call runs in float32."""
    seen: list[np.dtype[Any]] = []
    real_matmul = np.matmul

    def spy(*args: Any, **kwargs: Any) -> Any:
        seen.extend(np.asarray(a).dtype for a in args[:2])
        return real_matmul(*args, **kwargs)

    import convgrad.engine.gemm as core

    monkeypatch.setattr(core.np, "matmul", spy)
    _all_results(*_arrays(rng, np.float32))
    monkeypatch.undo()
    assert seen and set(seen) == {np.dtype(np.float32)}


def test_mixed_dtypes_follow_numpy_promotion(rng: np.random.Generator) -> None:
    x, w, _, g = _arrays(rng)
    assert cg.conv(x.astype(np.float32), w, **KW).dtype == np.float64
    assert cg.conv(x.astype(np.float32), w.astype(np.float16), **KW).dtype == np.float32
    assert cg.conv(x.astype(np.float32), w.astype(np.complex64), **KW).dtype == np.complex64
    assert cg.conv_backward(g.astype(np.float32), x.astype(np.float32), w, **KW).input.dtype == np.float64


def test_integer_and_bool_inputs_promote_to_float64_exactly() -> None:
    x = np.arange(25, dtype=np.int64).reshape(1, 1, 5, 5)
    w = np.array([[[[1, 0, -1], [2, 0, -2], [1, 0, -1]]]], dtype=np.int32)
    y = cg.conv(x, w, padding=1)
    assert y.dtype == np.float64
    ref = cg.conv(x.astype(np.float64), w.astype(np.float64), padding=1)
    np.testing.assert_array_equal(y, ref)
    assert cg.conv(x.astype(np.uint8), w.astype(np.bool_)).dtype == np.float64
    assert cg.conv_bias_grad(np.ones((2, 3, 4), dtype=np.int16)).dtype == np.float64
    # An integer upstream gradient with float32 data promotes like NumPy (int64 + float32 -> float64).
    assert cg.conv_backward(np.ones((1, 1, 5, 5), dtype=np.int64), x.astype(np.float32), w.astype(np.float32), padding=1).weight.dtype == np.float64


def test_array_likes_are_accepted() -> None:
    y = cg.conv([[[1.0, 2.0, 3.0, 4.0]]], [[[1.0, -1.0]]])
    np.testing.assert_array_equal(y, [[[-1.0, -1.0, -1.0]]])


def test_empty_batch_gives_empty_results_of_the_right_shape(rng: np.random.Generator) -> None:
    x, w, b, g = _arrays(rng)
    x0, g0 = x[:0], g[:0]
    y = cg.conv(x0, w, b, **KW)
    assert y.shape == (0,) + g.shape[1:]
    grads = cg.conv_backward(g0, x0, w, **KW)
    assert grads.input.shape == x0.shape
    np.testing.assert_array_equal(grads.weight, np.zeros_like(w))
    np.testing.assert_array_equal(grads.bias, np.zeros(6))
    xt = rng.standard_normal((0, 6, 4, 4))
    wt = rng.standard_normal((6, 2, 3, 3))
    assert cg.conv_transpose(xt, wt, stride=2, groups=2).shape == (0, 4, 9, 9)
    x_padded = F.pad(torch.zeros(0, 4, 9, 8, dtype=torch.float64), [2, 1, 1, 0])
    ref = F.conv2d(x_padded, torch.tensor(w), stride=(2, 1), dilation=(1, 2), groups=2)
    assert y.shape == tuple(ref.shape)


def test_nan_and_inf_propagate_like_torch(rng: np.random.Generator) -> None:
    x = rng.standard_normal((2, 2, 7, 7))
    w = rng.standard_normal((3, 2, 3, 3))
    x[0, 1, 3, 3] = np.nan
    x[1, 0, 0, 6] = np.inf
    kw = {"stride": 2, "padding": 1}
    y = cg.conv(x, w, **kw)
    ref = F.conv2d(torch.tensor(x), torch.tensor(w), **kw).numpy()
    np.testing.assert_array_equal(np.isnan(y), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(y), np.isinf(ref))
    assert np.isnan(y).any() and np.isinf(y).any()
    finite = np.isfinite(ref)
    np.testing.assert_allclose(y[finite], ref[finite], atol=1e-12)
    g = np.ones_like(y)
    g[0, 0, 0, 0] = np.nan
    grads = cg.conv_backward(g, np.nan_to_num(x), w, **kw)
    assert np.isnan(grads.input[0]).any() and not np.isnan(grads.input[1]).any()
    assert np.isnan(grads.weight[0]).any() and not np.isnan(grads.weight[1]).any()
    assert np.isnan(grads.bias[0]) and not np.isnan(grads.bias[1:]).any()


@pytest.mark.parametrize(
    "make_view",
    [
        lambda a: a[..., ::-1],  # negative stride (flipped)
        lambda a: np.asfortranarray(a),  # column-major
        lambda a: np.repeat(a, 2, axis=-1)[..., ::2],  # non-contiguous, positive strides
        lambda a: np.ascontiguousarray(np.swapaxes(a, 0, 1)).swapaxes(0, 1),  # transposed memory order
    ],
)
def test_views_give_the_same_result_as_contiguous_copies(rng: np.random.Generator, make_view: Callable[[np.ndarray], np.ndarray]) -> None:
    x, w, b, g = _arrays(rng)
    xv, wv, gv = make_view(x), make_view(w), make_view(g)
    xc, wc, gc = (np.ascontiguousarray(a) for a in (xv, wv, gv))
    for got, want in zip(_all_results(xv, wv, b, gv), _all_results(xc, wc, b, gc)):
        np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-13)  # only the summation order may differ


def test_inputs_are_never_modified_and_results_never_alias_them(rng: np.random.Generator) -> None:
    x, w, b, g = _arrays(rng)
    for a in (x, w, b, g):
        a.flags.writeable = False  # any write would raise
    copies = [a.copy() for a in (x, w, b, g)]
    results = _all_results(x, w, b, g)
    results.append(cg.conv(x[0], w, b, **KW))  # unbatched
    wt = rng.standard_normal((4, 3, 1, 1))
    xt = rng.standard_normal((1, 4, 5, 5))
    results.append(cg.conv_transpose(xt, wt))
    results.append(cg.conv(xt, np.ones((4, 4, 1, 1))))  # 1×1, no padding: the easiest place to alias
    for before, after in zip(copies, (x, w, b, g)):
        np.testing.assert_array_equal(before, after)
    for r in results:
        for a in (x, w, b, g, xt, wt):
            assert not np.shares_memory(r, a)
        assert r.flags.writeable


@pytest.mark.parametrize("budget", [1, 4096, 10**6])
def test_workspace_budget_chunks_the_batch_without_changing_results(rng: np.random.Generator, budget: int) -> None:
    x, w, b, g = _arrays(rng)
    expected = _all_results(x, w, b, g)
    with cg.workspace_budget(budget):
        got = _all_results(x, w, b, g)
    for e, r in zip(expected, got):
        np.testing.assert_allclose(r, e, rtol=1e-13, atol=1e-13)
    assert cg.get_workspace_budget() == 256 * 1024 * 1024


def test_workspace_budget_must_be_positive() -> None:
    with pytest.raises(ValueError, match=r"nbytes must be a positive integer number of bytes; got 0"):
        cg.set_workspace_budget(0)
    with pytest.raises(ValueError, match=r"got 1.5"):
        cg.set_workspace_budget(1.5)  # type: ignore[arg-type]
