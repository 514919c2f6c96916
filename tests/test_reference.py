"""convgrad.reference, the loop implementation, against the fast core (and the core against it)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad import reference, testing
from convgrad.testing import ConvConfig, conv_configs


def _close(ours: np.ndarray, theirs: np.ndarray) -> None:
    assert ours.shape == theirs.shape
    scale = max(1.0, float(np.max(np.abs(theirs)))) if theirs.size else 1.0
    np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-12 * scale)


def _against_core(config: ConvConfig, seed: int) -> None:
    x, w, b = config.arrays(seed)
    g = config.grad_output(seed)
    kw = config.kwargs()
    if config.transposed:
        _close(reference.conv_transpose(x, w, b, **kw), cg.conv_transpose(x, w, b, **kw))
        ours, core = reference.conv_transpose_backward(g, x, w, **kw), cg.conv_transpose_backward(g, x, w, **kw)
    else:
        _close(reference.conv(x, w, b, **kw), cg.conv(x, w, b, **kw))
        ours, core = reference.conv_backward(g, x, w, **kw), cg.conv_backward(g, x, w, **kw)
    for a, c in zip(ours, core):
        _close(a, c)


@settings(max_examples=60)
@given(conv_configs(dims=(1, 2), max_extra=3, max_batch=2, max_groups=2), st.integers(0, 2**32 - 1))
def test_matches_the_core_in_one_and_two_dimensions(config: ConvConfig, seed: int) -> None:
    """Every padding form and mode, groups, stride, dilation, unbatched inputs."""
    _against_core(config, seed)


@settings(max_examples=15)
@given(conv_configs(dims=(3, 4), max_kernel=2, max_extra=1, max_batch=1, max_groups=2, max_channels_per_group=1,
                    max_stride=2, max_dilation=2), st.integers(0, 2**32 - 1))
def test_matches_the_core_in_three_and_four_dimensions(config: ConvConfig, seed: int) -> None:
    _against_core(config, seed)


@settings(max_examples=40)
@given(testing.configs(transposed=True, ndim=(1, 2), max_size=4, max_channels=3, unbatched=True),
       st.integers(0, 2**32 - 1))
def test_transposed_matches_the_core(config: ConvConfig, seed: int) -> None:
    _against_core(config, seed)


@settings(max_examples=20)
@given(testing.configs(ndim=(1, 2), max_size=5, max_channels=3, dtype="complex128",
                       padding_modes=testing.MODES), st.integers(0, 2**32 - 1))
def test_complex_data_follows_the_core_conjugation(config: ConvConfig, seed: int) -> None:
    _against_core(config, seed)


@settings(max_examples=30)
@given(conv_configs(dims=(1, 2), max_extra=3, max_batch=2, max_groups=2), st.integers(0, 2**32 - 1))
def test_the_reference_gradients_are_adjoint_to_its_forward(config: ConvConfig, seed: int) -> None:
    """<conv(x, w), g> = <x, input_grad(g)> = <w, weight_grad(g)>, with no other implementation involved."""
    x, w, _ = config.arrays(seed)
    g = config.grad_output(seed)
    kw = config.kwargs()
    lhs = float(np.vdot(reference.conv(x, w, **kw), g))
    gx = reference.conv_input_grad(g, w, input_shape=x.shape, **kw)
    gw = reference.conv_weight_grad(g, x, weight_shape=w.shape, **kw)
    scale = max(1.0, abs(lhs))
    assert abs(lhs - float(np.vdot(x, gx))) <= 1e-12 * scale * x.size
    assert abs(lhs - float(np.vdot(w, gw))) <= 1e-12 * scale * x.size


def test_the_notebook_examples() -> None:
    """The 1-D example, the 5×5 image with a 3×3 kernel, the 6×5 image under a Sobel kernel."""
    x = np.arange(10.0, 15.0).reshape(1, 1, 5)
    w = np.array([[[1.0, 2.0, -1.0]]])
    np.testing.assert_array_equal(reference.conv(x, w, padding=1), [[[9.0, 20.0, 22.0, 24.0, 41.0]]])
    x = 10 * np.arange(25.0).reshape(1, 1, 5, 5)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    grads = reference.conv_backward(np.ones((1, 1, 3, 3)), x, w)
    assert grads.bias.tolist() == [9.0]
    np.testing.assert_array_equal(grads.weight[0, 0], [[540, 630, 720], [990, 1080, 1170], [1440, 1530, 1620]])
    sobel = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=float).reshape(1, 1, 3, 3)
    gx = reference.conv_input_grad(np.ones((1, 1, 4, 3)), sobel, input_shape=(1, 1, 6, 5))
    np.testing.assert_array_equal(gx[0, 0, 0], [1, 1, 0, -1, -1])


def test_reflect_and_replicate_send_the_border_gradient_home() -> None:
    x = np.arange(4.0).reshape(1, 1, 4)
    w = np.ones((1, 1, 3))
    g = np.ones((1, 1, 4))
    # reflect: padded [x1, x0, x1, x2, x3, x2]; x1 and x2 are read once more each
    np.testing.assert_array_equal(
        reference.conv_input_grad(g, w, input_shape=x.shape, padding=1, padding_mode="reflect"), [[[2, 4, 4, 2]]])
    np.testing.assert_array_equal(
        reference.conv_input_grad(g, w, input_shape=x.shape, padding=1, padding_mode="replicate"), [[[3, 3, 3, 3]]])


def test_bad_arguments_raise_the_core_errors() -> None:
    with pytest.raises(ValueError, match="groups=3 does not divide in_channels=4"):
        reference.conv(np.ones((1, 4, 5)), np.ones((3, 1, 3)), groups=3)
    with pytest.raises(ValueError, match=r"grad_output\.shape"):
        reference.conv_input_grad(np.ones((1, 1, 2)), np.ones((1, 1, 3)), input_shape=(1, 1, 5))
    with pytest.raises(ValueError, match=r"w\.shape\[0\] \(1\) must equal in_channels"):
        reference.conv_transpose(np.ones((1, 2, 3)), np.ones((1, 1, 2)))
