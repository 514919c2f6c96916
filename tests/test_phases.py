"""Input dilation by the polyphase split: exact, no product on an inserted zero, no zero-inserted copy.

The oracles: the definition (zeros inserted explicitly, then an ordinary convolution of the core), a
brute-force count of the products the definition has on input entries and padding, JAX for the placement
of NaN where no padding lies on the input's lattice (XLA skips the inserted zeros, so a NaN weight tap meeting
only inserted zeros leaves a finite result), and tracemalloc for the memory a zero-inserted copy would need.
"""

from __future__ import annotations

import itertools
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad._geometry import conv_geometry
from convgrad.engine import phases
from jax_worker import ABORTED, jax_available, shared_worker


def _dilate(x: np.ndarray, a: tuple[int, ...]) -> np.ndarray:
    """``x`` with ``a − 1`` zeros between its spatial entries."""
    size = tuple((s - 1) * ai + 1 for s, ai in zip(x.shape[2:], a))
    xd = np.zeros(x.shape[:2] + size, dtype=x.dtype)
    xd[(slice(None), slice(None)) + tuple(slice(None, None, ai) for ai in a)] = x
    return xd


def _undilate_grad(gxd: np.ndarray, a: tuple[int, ...]) -> np.ndarray:
    return gxd[(slice(None), slice(None)) + tuple(slice(None, None, ai) for ai in a)]


@st.composite
def dilated_configs(draw: st.DrawFn) -> dict[str, Any]:
    d = draw(st.integers(1, 3))
    groups = draw(st.sampled_from([1, 2]))
    cfg: dict[str, Any] = {
        "n": draw(st.integers(1, 2)), "c": groups * draw(st.integers(1, 2)), "o": groups * draw(st.integers(1, 2)),
        "groups": groups,
        "size": tuple(draw(st.integers(1, 6 if d < 3 else 4)) for _ in range(d)),
        "kernel": tuple(draw(st.integers(1, 4)) for _ in range(d)),
        "stride": tuple(draw(st.integers(1, 4)) for _ in range(d)),
        "dilation": tuple(draw(st.integers(1, 3)) for _ in range(d)),
        "a": tuple(draw(st.integers(1, 4)) for _ in range(d)),
        "pads": tuple((draw(st.integers(-3, 4)), draw(st.integers(-3, 4))) for _ in range(d)),
    }
    span = [dl * (k - 1) + 1 for k, dl in zip(cfg["kernel"], cfg["dilation"])]
    padded = [(s - 1) * a + 1 + lo + hi for s, a, (lo, hi) in zip(cfg["size"], cfg["a"], cfg["pads"])]
    assume(all(p >= sp for p, sp in zip(padded, span)))
    return cfg


def _kw(cfg: dict[str, Any]) -> dict[str, Any]:
    return {"stride": cfg["stride"], "padding": cfg["pads"], "dilation": cfg["dilation"], "groups": cfg["groups"]}


@settings(max_examples=120, deadline=None)
@given(dilated_configs(), st.sampled_from(["float64", "complex128", "int64"]))
def test_split_equals_the_zero_inserted_definition(cfg: dict[str, Any], dtype: str) -> None:
    """Forward and all three gradients equal an ordinary convolution of the explicitly zero-inserted input."""
    rng = np.random.default_rng(0)

    def draw(shape: tuple[int, ...]) -> np.ndarray:
        if dtype == "int64":
            return rng.integers(-5, 6, shape)
        a = rng.standard_normal(shape)
        return a + 1j * rng.standard_normal(shape) if dtype == "complex128" else a

    x = draw((cfg["n"], cfg["c"]) + cfg["size"])
    w = draw((cfg["o"], cfg["c"] // cfg["groups"]) + cfg["kernel"])
    y = cg.conv(x, w, input_dilation=cfg["a"], **_kw(cfg))
    xd = _dilate(x, cfg["a"])
    y_ref = cg.conv(xd, w, **_kw(cfg))
    assert y.shape == y_ref.shape
    g = draw(y.shape)
    grads = cg.conv_backward(g, x, w, input_dilation=cfg["a"], **_kw(cfg))
    ref = cg.conv_backward(g, xd, w, **_kw(cfg))
    if dtype == "int64":  # integers are exact on both sides
        np.testing.assert_array_equal(y, y_ref)
        np.testing.assert_array_equal(grads.input, _undilate_grad(ref.input, cfg["a"]))
        np.testing.assert_array_equal(grads.weight, ref.weight)
    else:
        np.testing.assert_allclose(y, y_ref, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads.input, _undilate_grad(ref.input, cfg["a"]), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(grads.weight, ref.weight, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(grads.bias, ref.bias)


def _products_on_lattice(size: int, kernel: int, out: int, s: int, dl: int, a: int, lo: int) -> int:
    """Products at positions that are multiples of ``a`` (input entries, and padding on the input's lattice)."""
    return sum((q * s + k * dl - lo) % a == 0 for q, k in itertools.product(range(out), range(kernel)))


@settings(max_examples=200, deadline=None)
@given(dilated_configs())
def test_the_split_computes_no_product_on_an_inserted_zero(cfg: dict[str, Any]) -> None:
    """Σ over phases of (outputs × taps) is exactly the count of products on the input's lattice: every
    product the split computes reads an input entry or the zero padding on its lattice, never an inserted zero,
    and each output owns its taps once."""
    geom = conv_geometry((1, 1) + cfg["size"], (1, 1) + cfg["kernel"], stride=cfg["stride"], padding=cfg["pads"],
                         dilation=cfg["dilation"], input_dilation=cfg["a"])
    computed = sum(int(np.prod(p.geom.out_size)) * int(np.prod(p.geom.kernel)) for p in phases.phases(geom))
    per_axis = [
        _products_on_lattice(*args) for args in zip(geom.in_size, geom.kernel, geom.out_size, geom.stride,
                                                    geom.dilation, geom.input_dilation, geom.pad_lo)
    ]
    assert computed == int(np.prod(per_axis))
    definition = int(np.prod([k * q for k, q in zip(geom.kernel, geom.out_size)]))
    if any(a > 1 for a in cfg["a"]) and all(k > 1 for k in cfg["kernel"]):
        assert computed <= definition
    for p in phases.phases(geom):
        assert not p.geom.dilates_input


def test_the_split_skips_most_products_for_large_dilation() -> None:
    """``a = 4`` in 2-d at stride 1: a sixteenth of the definition's products (plus the lattice padding)."""
    geom = conv_geometry((1, 8, 32, 32), (8, 8, 4, 4), input_dilation=4, padding=3)
    computed = sum(int(np.prod(p.geom.out_size)) * int(np.prod(p.geom.kernel)) for p in phases.phases(geom))
    definition = int(np.prod(geom.out_size)) * int(np.prod(geom.kernel))
    assert computed * 16 == definition


def test_a_strided_read_of_a_dilated_input_allocates_no_zero_inserted_copy() -> None:
    """``input_dilation=4`` with ``stride=4``: the zero-inserted padded input would be 16× ``x`` (134 MB here);
    forward and both gradients stay within a few times the call's own arrays."""
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 4, 512, 512))  # 8 MiB
    w = rng.standard_normal((4, 4, 3, 3))
    kw = {"stride": 4, "padding": 1, "input_dilation": 4}
    tracemalloc.start()
    try:
        y = cg.conv(x, w, **kw)
        grads = cg.conv_backward(y, x, w, **kw)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    zero_inserted = x.shape[1] * ((512 - 1) * 4 + 3) ** 2 * 8
    assert y.shape == (1, 4, 512, 512)
    assert peak < 8 * x.nbytes < zero_inserted
    corner = cg.conv(_dilate(x[:, :, :8, :8], (4, 4)), w, stride=4, padding=1)  # the definition, on a corner
    np.testing.assert_allclose(y[:, :, :8, :8], corner, rtol=1e-12)
    assert grads.input.shape == x.shape


def test_each_phase_reads_only_its_taps_nan_placement() -> None:
    """A NaN weight tap that meets only inserted zeros in an output's window leaves that output finite (JAX's
    placement); outputs where the tap meets an input entry are NaN."""
    x = np.arange(1.0, 5.0).reshape(1, 1, 4)
    w = np.array([1.0, np.nan, 1.0]).reshape(1, 1, 3)
    y = cg.conv(x, w, input_dilation=2)
    np.testing.assert_array_equal(np.isnan(y[0, 0]), [False, True, False, True, False])
    np.testing.assert_array_equal(y[0, 0, ::2], x[0, 0, :-1] + x[0, 0, 1:])


@pytest.mark.skipif(not jax_available(), reason="jax is not installed (pip install 'jax[cpu]')")
@pytest.mark.parametrize("which", ["lhs", "rhs"])
def test_nan_placement_matches_jax(which: str) -> None:
    """NaN in the input or in the kernel lands where ``lax.conv_general_dilated`` with ``lhs_dilation`` puts it,
    forward and vjp, with padding (less than ``a`` on each side: none on the input's lattice), stride and kernel
    dilation."""
    rng = np.random.default_rng(3)
    x, w = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    if which == "lhs":
        x[1, 0, 2, 2] = np.nan
    else:
        w[0, 1, 1, 0] = np.nan
    kw = {"stride": (1, 2), "padding": ((1, 1), (2, 1)), "dilation": (1, 2), "input_dilation": (2, 3)}
    y = cg.conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    ours = cg.conv_backward(g, x, w, **kw)
    case = {"op": "conv_general_dilated", "lhs": x, "rhs": w, "g": g,
            "kwargs": {"window_strides": kw["stride"], "padding": kw["padding"], "lhs_dilation": kw["input_dilation"],
                       "rhs_dilation": kw["dilation"]}}
    answer = shared_worker().run([case])[0]
    if answer is ABORTED:
        pytest.skip("jaxlib aborted on this configuration")
    assert answer[0] == "ok", answer
    np.testing.assert_allclose(y, answer[1], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.input, answer[2][0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(ours.weight, answer[2][1], rtol=1e-12, atol=1e-12)
    assert np.isnan(y).any() and not np.isnan(y).all()


def test_outputs_that_read_only_inserted_zeros_are_zero() -> None:
    """Stride 2 with input dilation 2 and an odd offset: every window lands between the input's entries."""
    x = np.ones((1, 1, 6))
    w = np.ones((1, 1, 1))
    y = cg.conv(x, w, input_dilation=2, stride=2, padding=((-1, 0),))
    assert y.shape == (1, 1, 5)
    np.testing.assert_array_equal(y, 0)
    grads = cg.conv_backward(np.ones_like(y), x, w, input_dilation=2, stride=2, padding=((-1, 0),))
    np.testing.assert_array_equal(grads.input, 0)
    np.testing.assert_array_equal(grads.weight, 0)
    assert phases.phases(conv_geometry(x.shape, w.shape, input_dilation=2, stride=2, padding=((-1, 0),))) == ()


def test_padding_on_the_lattice_is_multiplied_as_in_a_padded_convolution() -> None:
    """Padding ``2 ≥ a = 2``: positions 0 and 6 of the padded, zero-inserted input lie on the input's lattice
    (``l + i·a`` for ``i = −1, 2``) and are multiplied (``0·NaN``), as PyTorch multiplies its padding; the
    inserted zero at 3 and the padding at 1 and 5 are not."""
    x = np.ones((1, 1, 2))
    w = np.array([np.nan]).reshape(1, 1, 1)
    y = cg.conv(x, w, input_dilation=2, padding=2)
    np.testing.assert_array_equal(np.isnan(y[0, 0]), [True, False, True, False, True, False, True])
    np.testing.assert_array_equal(y[0, 0, [1, 3, 5]], 0)


def test_array_api_input_gradient_with_input_dilation() -> None:
    """The phases' sum of input gradients in a strict array-API namespace (no partial indexing)."""
    xp = pytest.importorskip("array_api_strict")
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 2, 5, 4)), rng.standard_normal((3, 2, 3, 2))
    kw = {"stride": (2, 1), "padding": ((1, 0), (1, 2)), "input_dilation": (2, 3)}
    y = cg.conv(x, w, **kw)
    g = rng.standard_normal(y.shape)
    ours = cg.conv_backward(xp.asarray(g), xp.asarray(x), xp.asarray(w), **kw)
    ref = cg.conv_backward(g, x, w, **kw)
    np.testing.assert_allclose(np.asarray(ours.input), ref.input, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(ours.weight), ref.weight, rtol=1e-12)
    np.testing.assert_allclose(np.asarray(cg.conv(xp.asarray(x), xp.asarray(w), **kw)), y, rtol=1e-12)
