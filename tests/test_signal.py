"""convgrad.signal against scipy.signal (the oracle), PyTorch autograd and the adjoint identity.

References:
* ``scipy.signal.correlate`` / ``convolve`` (SciPy >= 1.10), modes "full", "same", "valid":
  https://docs.scipy.org/doc/scipy/reference/generated/scipy.signal.correlate.html
* Seed 001 (``convolve2d_gradient``): its printed numbers are reproduced and its formulas
  checked against finite-difference-free exact gradients.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

from convgrad import signal

MODES = ("full", "same", "valid")
METHODS = ("auto", "direct", "fft")


# ----------------------------------------------------------------------------- strategies


@st.composite
def operand_shapes(draw: st.DrawFn, mode: str | None = None, max_d: int = 3, max_size: int = 6) -> tuple:
    """Two shapes of equal rank; for "valid", one covers the other (either way round)."""
    d = draw(st.integers(1, max_d))
    mode = mode or draw(st.sampled_from(MODES))
    s1 = tuple(draw(st.integers(1, max_size)) for _ in range(d))
    if mode == "valid":
        small = tuple(draw(st.integers(1, s)) for s in s1)
        if draw(st.booleans()):
            return mode, s1, small
        return mode, small, s1
    s2 = tuple(draw(st.integers(1, max_size)) for _ in range(d))
    return mode, s1, s2


def _randn(rng: np.random.Generator, shape: tuple) -> np.ndarray:
    return rng.standard_normal(shape)


def _jacobian_grads(fn, g: np.ndarray, a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact gradients of sum(g * fn(a, b)) from SciPy alone: fn is linear in each operand,
    so dL/da[i] = sum(g * fn(e_i, b)) and dL/db[j] = sum(g * fn(a, e_j))."""
    ga = np.zeros(a.shape)
    for idx in np.ndindex(a.shape):
        e = np.zeros(a.shape)
        e[idx] = 1.0
        ga[idx] = np.sum(g * fn(e, b))
    gb = np.zeros(b.shape)
    for idx in np.ndindex(b.shape):
        e = np.zeros(b.shape)
        e[idx] = 1.0
        gb[idx] = np.sum(g * fn(a, e))
    return ga, gb


# ----------------------------------------------------------------------------- forward against scipy


@given(cfg=operand_shapes(), seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["direct", "fft"]))
def test_correlate_and_convolve_match_scipy(cfg: tuple, seed: int, method: str) -> None:
    mode, s1, s2 = cfg
    rng = np.random.default_rng(seed)
    a, b = _randn(rng, s1), _randn(rng, s2)
    for ours, theirs in ((signal.correlate, scipy.signal.correlate), (signal.convolve, scipy.signal.convolve)):
        expected = theirs(a, b, mode=mode, method=method)
        got = ours(a, b, mode=mode, method=method)
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-10)


@given(cfg=operand_shapes(max_d=2, max_size=5), seed=st.integers(0, 2**32 - 1), method=st.sampled_from(["direct", "fft"]))
def test_complex_forward_matches_scipy(cfg: tuple, seed: int, method: str) -> None:
    mode, s1, s2 = cfg
    rng = np.random.default_rng(seed)
    a = _randn(rng, s1) + 1j * _randn(rng, s1)
    b = _randn(rng, s2) + 1j * _randn(rng, s2)
    np.testing.assert_allclose(
        signal.correlate(a, b, mode, method), scipy.signal.correlate(a, b, mode, method="direct"), rtol=1e-10, atol=1e-10
    )
    np.testing.assert_allclose(
        signal.convolve(a, b, mode, method), scipy.signal.convolve(a, b, mode, method="direct"), rtol=1e-10, atol=1e-10
    )


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("k", "start"), [(1, 0), (2, 0), (3, 1), (4, 1), (5, 2)])
def test_same_mode_centring_even_and_odd_kernels(mode: str, k: int, start: int) -> None:
    """SciPy's "same" is the full output from (K - 1) // 2 on; "full"/"valid" sizes."""
    a = np.arange(1.0, 8.0)
    b = np.arange(1.0, k + 1.0)
    full = scipy.signal.correlate(a, b, "full")
    got = signal.correlate(a, b, mode)
    if mode == "same":
        np.testing.assert_allclose(got, full[start : start + a.size])
    elif mode == "full":
        assert got.shape == (a.size + k - 1,)
    else:
        assert got.shape == (a.size - k + 1,)
    np.testing.assert_allclose(got, scipy.signal.correlate(a, b, mode))


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
def test_same_mode_differs_from_pytorch_for_even_kernels() -> None:
    """Even kernel: SciPy pads the extra zero before, PyTorch's padding='same' after."""
    a = np.array([1.0, 2.0, 3.0, 4.0])
    b = np.array([1.0, 0.0])
    ours = signal.correlate(a, b, "same")
    theirs = F.conv1d(torch.tensor(a).view(1, 1, -1), torch.tensor(b).view(1, 1, -1), padding="same").numpy().ravel()
    np.testing.assert_array_equal(ours, [0.0, 1.0, 2.0, 3.0])
    np.testing.assert_array_equal(theirs, [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(ours, scipy.signal.correlate(a, b, "same"))


def test_valid_mode_swaps_operands_like_scipy() -> None:
    small, large = np.array([1.0, 2.0]), np.array([1.0, 0.0, -1.0, 3.0])
    for fn, ref in ((signal.correlate, scipy.signal.correlate), (signal.convolve, scipy.signal.convolve)):
        np.testing.assert_array_equal(fn(small, large, "valid"), ref(small, large, "valid"))
    # correlate(a, b) is correlate(b, a) reversed; convolve is commutative.
    np.testing.assert_array_equal(
        signal.correlate(small, large, "valid"), signal.correlate(large, small, "valid")[::-1]
    )
    np.testing.assert_array_equal(signal.convolve(small, large, "valid"), signal.convolve(large, small, "valid"))


@pytest.mark.parametrize("mode", MODES)
def test_integer_and_bool_inputs_are_promoted_to_float64(mode: str) -> None:
    a = np.arange(12).reshape(3, 4)
    b = np.array([[1, 0], [2, 1]], dtype=np.int8)
    got = signal.convolve(a, b, mode)
    assert got.dtype == np.float64
    np.testing.assert_array_equal(got, scipy.signal.convolve(a, b, mode))
    gb = signal.correlate(a > 4, b.astype(bool), mode)
    assert gb.dtype == np.float64
    np.testing.assert_array_equal(gb, scipy.signal.correlate((a > 4).astype(float), b.astype(bool).astype(float), mode))


def test_float32_stays_float32() -> None:
    a = np.arange(6, dtype=np.float32)
    got = signal.correlate(a, np.ones(3, dtype=np.float32), "same")
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, scipy.signal.correlate(a, np.ones(3, dtype=np.float32), "same"), rtol=1e-6)


@pytest.mark.parametrize("mode", MODES)
def test_zero_dimensional_operands(mode: str) -> None:
    assert signal.correlate(np.array(3.0), np.array(2.0), mode) == scipy.signal.correlate(3.0, 2.0, mode)
    assert signal.correlate(np.array(3.0), np.array(2.0), mode).shape == ()
    g1, g2 = signal.correlate_backward(np.array(5.0), np.array(3.0), np.array(2.0), mode)
    assert (g1, g2) == (10.0, 15.0)
    assert g1.shape == () and g2.shape == ()


def test_results_are_fresh_arrays() -> None:
    a, b = np.ones(4), np.ones(1)
    for mode in MODES:
        out = signal.correlate(a, b, mode)
        assert not np.shares_memory(out, a) and not np.shares_memory(out, b)
        _, g2 = signal.convolve_backward(np.ones_like(out), a, b, mode)
        assert not np.shares_memory(g2, b) and g2.flags.writeable


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(("s1", "s2"), [((400,), (120,)), ((48, 40), (25, 31)), ((20, 30), (45, 33))])
def test_large_kernels_every_method_matches_scipy(mode: str, s1: tuple, s2: tuple) -> None:
    """Large kernels, where "auto" may take the core's FFT route; "valid" with in2 larger swaps."""
    if mode == "valid" and not (all(p >= q for p, q in zip(s1, s2)) or all(q >= p for p, q in zip(s1, s2))):
        s2 = tuple(min(p, q) for p, q in zip(s1, s2))
    rng = np.random.default_rng(len(s1) + len(mode))
    a, b = rng.standard_normal(s1), rng.standard_normal(s2)
    expected = scipy.signal.correlate(a, b, mode, method="direct")
    scale = np.abs(expected).max()
    for method in METHODS:
        got = signal.correlate(a, b, mode, method)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11 * scale)
        g = rng.standard_normal(got.shape)
        ga, gb = signal.correlate_backward(g, a, b, mode, method)
        lhs = float(np.vdot(expected, g))
        tol = 1e-11 * np.abs(expected).sum() * np.abs(g).max()
        assert abs(lhs - float(np.vdot(a, ga))) <= tol
        assert abs(lhs - float(np.vdot(b, gb))) <= tol


# ----------------------------------------------------------------------------- gradients


@given(cfg=operand_shapes(max_d=2, max_size=5), seed=st.integers(0, 2**32 - 1), method=st.sampled_from(METHODS))
def test_gradients_match_scipy_jacobian(cfg: tuple, seed: int, method: str) -> None:
    mode, s1, s2 = cfg
    rng = np.random.default_rng(seed)
    a, b = _randn(rng, s1), _randn(rng, s2)
    for fwd, bwd, ref in (
        (signal.correlate, signal.correlate_backward, scipy.signal.correlate),
        (signal.convolve, signal.convolve_backward, scipy.signal.convolve),
    ):
        g = _randn(rng, fwd(a, b, mode).shape)
        expected = _jacobian_grads(lambda p, q, ref=ref: ref(p, q, mode, method="direct"), g, a, b)
        got = bwd(g, a, b, mode, method)
        np.testing.assert_allclose(got.in1, expected[0], rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(got.in2, expected[1], rtol=1e-10, atol=1e-10)


@given(cfg=operand_shapes(max_d=3, max_size=6), seed=st.integers(0, 2**32 - 1), method=st.sampled_from(METHODS))
def test_dot_product_identity(cfg: tuple, seed: int, method: str) -> None:
    """<f(a, b), g> = <a, df/da^T g> = <b, df/db^T g> (f is bilinear)."""
    mode, s1, s2 = cfg
    rng = np.random.default_rng(seed)
    a, b = _randn(rng, s1), _randn(rng, s2)
    for fwd, bwd in ((signal.correlate, signal.correlate_backward), (signal.convolve, signal.convolve_backward)):
        y = fwd(a, b, mode, method)
        g = _randn(rng, y.shape)
        ga, gb = bwd(g, a, b, mode, method)
        lhs = float(np.vdot(y, g))
        scale = np.abs(y).sum() * np.abs(g).max() + 1.0
        assert abs(lhs - float(np.vdot(a, ga))) <= 1e-12 * scale
        assert abs(lhs - float(np.vdot(b, gb))) <= 1e-12 * scale


# ----------------------------------------------------------------------------- batched, multi-channel


@st.composite
def batched_config(draw: st.DrawFn) -> tuple:
    d = draw(st.integers(1, 3))
    mode = draw(st.sampled_from(MODES))
    n, c, o = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    size = st.integers(1, 5 if d < 3 else 4)
    s = tuple(draw(size) for _ in range(d))
    if mode == "valid":
        k = tuple(draw(st.integers(1, si)) for si in s)
    else:
        k = tuple(draw(size) for _ in range(d))
    return mode, (n, c, *s), (o, c, *k)


def _scipy_batched(x: np.ndarray, w: np.ndarray, mode: str, fn) -> np.ndarray:
    outs = []
    for n in range(x.shape[0]):
        outs.append([sum(fn(x[n, c], w[o, c], mode) for c in range(x.shape[1])) for o in range(w.shape[0])])
    return np.array(outs)


_TORCH_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}


@given(cfg=batched_config(), seed=st.integers(0, 2**32 - 1), method=st.sampled_from(METHODS))
def test_batched_forms_match_scipy_and_torch_autograd(cfg: tuple, seed: int, method: str) -> None:
    mode, xs, ws = cfg
    rng = np.random.default_rng(seed)
    x, w = _randn(rng, xs), _randn(rng, ws)
    d = len(xs) - 2
    for fwd, bwd, ref, flip in (
        (signal.correlate_batched, signal.correlate_batched_backward, scipy.signal.correlate, False),
        (signal.convolve_batched, signal.convolve_batched_backward, scipy.signal.convolve, True),
    ):
        y = fwd(x, w, mode, method)
        expected = _scipy_batched(x, w, mode, ref)
        np.testing.assert_allclose(y, expected, rtol=1e-10, atol=1e-10)
        # PyTorch autograd through an explicit zero pad: SciPy's window written from its
        # documented centring, full output cropped from (K - 1) // 2 for "same".
        xt = torch.tensor(x, requires_grad=True)
        wt = torch.tensor(w, requires_grad=True)
        k = ws[2:]
        if mode == "full":
            pads = [(ki - 1, ki - 1) for ki in k]
        elif mode == "same":
            pads = [(ki - 1 - (ki - 1) // 2, (ki - 1) // 2) for ki in k]
        else:
            pads = [(0, 0)] * d
        flat = [p for pair in reversed(pads) for p in pair]
        kernel = torch.flip(wt, dims=list(range(2, 2 + d))) if flip else wt
        yt = _TORCH_CONV[d](F.pad(xt, flat), kernel)
        np.testing.assert_allclose(yt.detach().numpy(), expected, rtol=1e-10, atol=1e-10)
        g = _randn(rng, y.shape)
        gx_t, gw_t = torch.autograd.grad(yt, (xt, wt), torch.tensor(g))
        gx, gw = bwd(g, x, w, mode, method)
        np.testing.assert_allclose(gx, gx_t.numpy(), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(gw, gw_t.numpy(), rtol=1e-10, atol=1e-10)


# ----------------------------------------------------------------------------- seed 001


def _seed_convolve2d_gradient(x: np.ndarray, w: np.ndarray, d: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Seed 001's formulas, retyped: dx = full conv of d with rot180(w), cropped; dw = valid conv of rot180(x) with d."""
    w_flipped = np.flip(np.flip(w, axis=0), axis=1)
    dx = scipy.signal.convolve2d(d, w_flipped, mode="full")[: x.shape[0], : x.shape[1]]
    dw = scipy.signal.convolve2d(np.flip(np.flip(x, axis=0), axis=1), d, mode="valid")
    return dx, dw


SEED_X = np.array([[1, 2, 3], [4, 5, 6], [7, 8, 9]])
SEED_W = np.array([[1, 0], [0, 1]])
SEED_D = np.array([[1, 2], [3, 4]])


def test_seed_001_printed_numbers_are_reproduced() -> None:
    dx, dw = _seed_convolve2d_gradient(SEED_X, SEED_W, SEED_D)
    np.testing.assert_array_equal(dx, [[1, 2, 0], [3, 5, 2], [0, 3, 4]])
    np.testing.assert_array_equal(dw, [[77, 67], [47, 37]])
    # convolve2d(x, w, 'valid') of a 3x3 input with a 2x2 kernel is 2x2.
    assert scipy.signal.convolve2d(SEED_X, SEED_W, mode="valid").shape == (2, 2)
    ours = signal.convolve_backward(SEED_D, SEED_X, SEED_W, mode="valid")
    np.testing.assert_array_equal(ours.in1, dx)
    np.testing.assert_array_equal(ours.in2, dw)
    expected = _jacobian_grads(lambda p, q: scipy.signal.convolve2d(p, q, "valid"), SEED_D, SEED_X, SEED_W)
    np.testing.assert_array_equal(ours.in1, expected[0])
    np.testing.assert_array_equal(ours.in2, expected[1])


@given(
    h=st.integers(2, 6), w_=st.integers(2, 6), kh=st.integers(1, 6), kw=st.integers(1, 6), seed=st.integers(0, 2**32 - 1)
)
def test_seed_001_formulas_are_right_for_convolution_when_x_covers_w(h: int, w_: int, kh: int, kw: int, seed: int) -> None:
    kh, kw = min(kh, h), min(kw, w_)
    rng = np.random.default_rng(seed)
    x, w = rng.standard_normal((h, w_)), rng.standard_normal((kh, kw))
    d = rng.standard_normal((h - kh + 1, w_ - kw + 1))
    dx, dw = _seed_convolve2d_gradient(x, w, d)
    truth = signal.convolve_backward(d, x, w, mode="valid")
    np.testing.assert_allclose(dx, truth.in1, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(dw, truth.in2, rtol=1e-10, atol=1e-10)


def test_seed_001_formulas_are_wrong_for_cross_correlation() -> None:
    """With a correlation forward pass (correlate2d, tf.nn.conv2d, torch conv2d) both are rotated by 180 degrees."""
    truth = signal.correlate_backward(SEED_D, SEED_X, SEED_W, mode="valid")
    dx, dw = _seed_convolve2d_gradient(SEED_X, SEED_W, SEED_D)
    np.testing.assert_array_equal(truth.in2, [[37, 47], [67, 77]])
    np.testing.assert_array_equal(truth.in2, np.rot90(dw, 2))
    assert not np.array_equal(truth.in2, dw)
    # dx agrees only because this w equals its own 180-degree rotation; a general w exposes it.
    np.testing.assert_array_equal(truth.in1, dx)
    w = np.array([[1, 2], [0, 3]])
    truth = signal.correlate_backward(SEED_D, SEED_X, w, mode="valid")
    dx, _ = _seed_convolve2d_gradient(SEED_X, w, SEED_D)
    expected = _jacobian_grads(lambda p, q: scipy.signal.correlate2d(p, q, "valid"), SEED_D, SEED_X, w)
    np.testing.assert_array_equal(truth.in1, expected[0])
    assert not np.array_equal(dx, truth.in1)


def test_seed_001_formulas_are_wrong_when_w_is_larger_than_x() -> None:
    """SciPy's 'valid' mode exchanges the operands; the seed's dx and dw are then wrong in value and shape."""
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((2, 2)), rng.standard_normal((3, 3))
    d = rng.standard_normal(scipy.signal.convolve2d(x, w, "valid").shape)
    dx, dw = _seed_convolve2d_gradient(x, w, d)
    truth = signal.convolve_backward(d, x, w, mode="valid")
    expected = _jacobian_grads(lambda p, q: scipy.signal.convolve2d(p, q, "valid"), d, x, w)
    np.testing.assert_allclose(truth.in1, expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(truth.in2, expected[1], rtol=1e-12, atol=1e-12)
    assert dw.shape == (1, 1) and truth.in2.shape == (3, 3)
    assert not np.allclose(dx, truth.in1)


# ----------------------------------------------------------------------------- errors


def test_error_unknown_mode() -> None:
    with pytest.raises(ValueError, match=r"mode must be one of \('full', 'same', 'valid'\); got 'circular'"):
        signal.correlate(np.ones(3), np.ones(2), "circular")
    with pytest.raises(ValueError, match=r"mode must be one of .*; got 'Full'"):
        signal.convolve_backward(np.ones(4), np.ones(3), np.ones(2), mode="Full")
    with pytest.raises(ValueError, match=r"mode must be one of .*; got 2"):
        signal.correlate_batched(np.ones((1, 1, 3)), np.ones((1, 1, 2)), mode=2)  # type: ignore[arg-type]


def test_error_unknown_method() -> None:
    with pytest.raises(ValueError, match=r"method must be one of \('auto', 'direct', 'fft', 'winograd'\).*got 'overlap-add'"):
        signal.convolve(np.ones(3), np.ones(2), method="overlap-add")


def test_error_different_dimensionality() -> None:
    with pytest.raises(ValueError, match=r"in1 and in2 must have the same number of dimensions; got in1.ndim=2 "):
        signal.correlate(np.ones((3, 3)), np.ones(2))


def test_error_empty_operand() -> None:
    with pytest.raises(ValueError, match=r"in2 must not be empty; got shape \(0,\)"):
        signal.convolve(np.ones(3), np.ones(0))


def test_error_valid_mode_neither_operand_covers_the_other() -> None:
    with pytest.raises(ValueError, match=r"mode='valid' needs one operand at least as large as the other .*\(2, 5\).*\(3, 3\)"):
        signal.correlate(np.ones((2, 5)), np.ones((3, 3)), "valid")
    with pytest.raises(ValueError, match=r"mode='valid' needs one operand"):
        signal.convolve_backward(np.ones((1, 3)), np.ones((2, 5)), np.ones((3, 3)), "valid")


def test_error_non_numeric() -> None:
    with pytest.raises(TypeError, match=r"in1 must have a numeric dtype .*got dtype <U1"):
        signal.correlate(np.array(["a", "b"]), np.ones(2))


def test_error_grad_output_shape() -> None:
    with pytest.raises(ValueError, match=r"grad_output.shape \(3,\) must equal the forward output shape \(4,\) .*mode='full'"):
        signal.correlate_backward(np.ones(3), np.ones(3), np.ones(2), "full")
    with pytest.raises(ValueError, match=r"grad_output.shape \(2,\) must equal the forward output shape \(3,\)"):
        signal.convolve_backward(np.ones(2), np.ones(2), np.ones(4), "valid")


def test_error_complex_gradient() -> None:
    with pytest.raises(TypeError, match=r"in2 must be real \(bool, integer or floating\) for the gradient; got dtype complex128"):
        signal.correlate_backward(np.ones(4), np.ones(3), np.ones(2) * 1j, "full")
    with pytest.raises(TypeError, match=r"grad_output must be real"):
        signal.correlate_batched_backward(np.ones((1, 1, 2), complex), np.ones((1, 1, 3)), np.ones((1, 1, 2)), "valid")


def test_error_batched_shapes() -> None:
    with pytest.raises(ValueError, match=r"x must be \(N, C, \*S\) and w \(O, C, \*K\) .*x.shape \(3, 4\)"):
        signal.correlate_batched(np.ones((3, 4)), np.ones((1, 3, 2)))
    with pytest.raises(ValueError, match=r"w.shape\[1\] \(2\) must equal the channels of x, x.shape\[1\] \(3\)"):
        signal.convolve_batched(np.ones((1, 3, 4)), np.ones((1, 2, 2)))
    with pytest.raises(ValueError, match=r"mode='valid' in the batched form needs x at least as large as w .*\(4,\) and \(5,\)"):
        signal.correlate_batched_backward(np.ones((1, 1, 1)), np.ones((1, 1, 4)), np.ones((1, 1, 5)), mode="valid")
    with pytest.raises(ValueError, match=r"grad_output.shape \(1, 1, 2\) must equal the forward output shape \(1, 1, 3\)"):
        signal.convolve_batched_backward(np.ones((1, 1, 2)), np.ones((1, 1, 4)), np.ones((1, 1, 2)), mode="valid")


# ----------------------------------------------------------------------------- integer exactness, namespace


@pytest.mark.parametrize("dtype", [np.int64, np.uint8])
@pytest.mark.parametrize("mode", MODES)
def test_integer_image_and_kernel_are_exact(mode: str, dtype: type) -> None:
    """A uint8-range image under a 31×31 integer kernel equals SciPy's direct (integer) sums exactly under every
    method: integers reach the core as integers, which never sends them to the FFT."""
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (64, 64)).astype(dtype)
    kernel = rng.integers(-5, 6, (31, 31))
    for ours, theirs in ((signal.convolve, scipy.signal.convolve), (signal.correlate, scipy.signal.correlate)):
        expected = theirs(image, kernel, mode, method="direct")
        assert expected.dtype.kind == "i"
        for method in METHODS:
            got = ours(image, kernel, mode, method)
            assert got.dtype == np.float64
            np.testing.assert_array_equal(got, expected)
    x, w = image.reshape(1, 1, 64, 64), np.stack([kernel, -kernel]).reshape(2, 1, 31, 31)
    batched = signal.convolve_batched(x, w, mode)
    np.testing.assert_array_equal(batched[0, 0], scipy.signal.convolve(image, kernel, mode, method="direct"))
    np.testing.assert_array_equal(batched[0, 1], scipy.signal.convolve(image, -kernel, mode, method="direct"))


def test_integer_gradients_are_exact() -> None:
    rng = np.random.default_rng(6)
    image, kernel = rng.integers(0, 256, (64, 64)), rng.integers(-5, 6, (31, 31))
    g = rng.integers(-3, 4, (34, 34))
    ga, gb = signal.convolve_backward(g, image, kernel, "valid")
    # convolve(image, kernel, "valid") = correlate(image, h, "valid") with h = kernel flipped: its adjoint in
    # image is the full convolution of g with h, its gradient in h correlate(image, g, "valid"), flipped back.
    np.testing.assert_array_equal(ga, scipy.signal.convolve(g, kernel[::-1, ::-1], "full", method="direct"))
    np.testing.assert_array_equal(gb, scipy.signal.correlate(image, g, "valid", method="direct")[::-1, ::-1])


def test_namespace_lists_only_the_public_names() -> None:
    assert dir(signal) == sorted(signal.__all__)
    assert set(signal.__all__) == {
        "SignalGrads", "correlate", "convolve", "correlate_backward", "convolve_backward", "correlate_batched",
        "convolve_batched", "correlate_batched_backward", "convolve_batched_backward",
    }
    for name in ("np", "conv", "conv_input_grad", "conv_weight_grad", "check_array", "MODES", "METHODS"):
        assert name not in dir(signal)
