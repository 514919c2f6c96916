"""The seed notebooks' deterministic numbers, reproduced exactly (shared/seeds/)."""

from __future__ import annotations

import numpy as np

import convgrad as cg

SOBEL = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]], dtype=np.float64).reshape(1, 1, 3, 3)
IMAGE_6x5 = np.array(
    [[1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [2, 2, 2, 2, 3], [3, 3, 3, 3, 3], [4, 4, 4, 4, 4]],
    dtype=np.float64,
).reshape(1, 1, 6, 5)


def test_seed000_1d_forward_and_gradient_footprint() -> None:
    x = np.arange(10.0, 15.0).reshape(1, 1, 5)
    w = np.array([[[1.0, 2.0, -1.0]]])
    np.testing.assert_array_equal(cg.conv(x, w, padding=1), [[[9, 20, 22, 24, 41]]])
    delta = np.zeros_like(x)
    delta[0, 0, 2] = 1.0
    # The footprint of x[2] on y is conv(delta, w) (conv is linear) = W @ delta.
    np.testing.assert_array_equal(cg.conv(delta, w, padding=1), [[[0, -1, 2, 1, 0]]])
    # ... which is also conv_transpose with the flipped kernel, as the seed found:
    np.testing.assert_array_equal(cg.conv_transpose(delta, w[..., ::-1], padding=1), [[[0, -1, 2, 1, 0]]])
    # and the input gradient for a one-hot upstream gradient reads the same row of Wᵀ:
    row = cg.conv_input_grad(delta, w, input_shape=x.shape, padding=1)
    np.testing.assert_array_equal(row, [[[0, 1, 2, -1, 0]]])


def test_seed000_2d_footprint_exact_where_float32_differences_were_not() -> None:
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    x = 10 * np.arange(25.0).reshape(1, 5, 5)
    delta = np.zeros_like(x)
    delta[0, 2, 2] = 1.0
    expected = [[[8, 7, 6], [5, 4, 3], [2, 1, 0]]]
    np.testing.assert_array_equal(cg.conv(delta, w), expected)
    # The seed's float32 finite difference gave 7.8125 for the 8: cancellation, not a wrong formula.
    # (The exact float32 value depends on the summation order; it is off by far more than 1e-2.)
    eps = 1e-3
    plus = cg.conv((x + eps * delta).astype(np.float32), w.astype(np.float32))
    minus = cg.conv((x - eps * delta).astype(np.float32), w.astype(np.float32))
    fd32 = (plus - minus) / 2 / np.float32(eps)
    assert abs(float(fd32[0, 0, 0]) - 8.0) > 1e-2
    fd64 = (cg.conv(x + eps * delta, w) - cg.conv(x - eps * delta, w)) / 2 / eps
    np.testing.assert_allclose(fd64, expected, atol=1e-9)


def test_seed001_sobel_gradients() -> None:
    x = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    y = cg.conv(x, SOBEL)
    np.testing.assert_array_equal(y, [[[[-8.0]]]])
    grads = cg.conv_backward(np.ones_like(y), x, SOBEL)
    np.testing.assert_array_equal(grads.input[0, 0], [[1, 0, -1], [2, 0, -2], [1, 0, -1]])
    np.testing.assert_array_equal(grads.weight[0, 0], [[1, 2, 3], [4, 5, 6], [7, 8, 9]])
    # conv_transpose of y itself (not of ones) is what the seed's tf.nn.conv2d_transpose printed:
    np.testing.assert_array_equal(cg.conv_transpose(y, SOBEL)[0, 0], [[-8, 0, 8], [-16, 0, 16], [-8, 0, 8]])


def test_seed002_2x2_kernel_sums() -> None:
    # The seed prints its random inputs to 4 decimals, so sums of four of them agree to ~2e-4.
    x = np.array([[1.8676, -0.2631, -0.2380], [1.0669, 0.5283, -1.2112], [1.1241, -0.1771, 1.3998]]).reshape(1, 1, 3, 3)
    w = np.array([[0.0848, -0.0717], [-0.2816, 0.3315]]).reshape(1, 1, 2, 2)
    grads = cg.conv_backward(np.ones((1, 1, 2, 2)), x, w)
    # weight gradient: each tap sees the sum of the 2×2 block it slides over, exactly
    np.testing.assert_array_equal(grads.weight[0, 0, 0, 0], x[0, 0, :2, :2].sum())
    np.testing.assert_array_equal(grads.weight[0, 0, 1, 1], x[0, 0, 1:, 1:].sum())
    np.testing.assert_allclose(grads.weight[0, 0], [[3.1998, -1.1840], [2.5423, 0.5398]], atol=2e-4)
    # input gradient: the sums of the kernel taps that touch each pixel
    assert grads.input[0, 0, 0, 1] == w[0, 0, 0, 0] + w[0, 0, 0, 1]
    np.testing.assert_allclose(
        grads.input[0, 0],
        [[0.0848, 0.0131, -0.0717], [-0.1968, 0.0630, 0.2598], [-0.2816, 0.0499, 0.3315]],
        atol=2e-4,
    )
    np.testing.assert_array_equal(grads.bias, [4.0])  # the number of output elements


def test_seed003_004_6x5_image() -> None:
    y = cg.conv(IMAGE_6x5, SOBEL)
    np.testing.assert_array_equal(y[0, 0], [[0, -4, -8], [0, -3, -7], [0, -1, -4], [0, 0, -1]])
    grads = cg.conv_backward(np.ones_like(y), IMAGE_6x5, SOBEL)
    np.testing.assert_array_equal(grads.weight[0, 0], [[15, 18, 25], [21, 23, 28], [30, 31, 34]])
    np.testing.assert_array_equal(
        grads.input[0, 0],
        [[1, 1, 0, -1, -1], [3, 3, 0, -3, -3], [4, 4, 0, -4, -4], [4, 4, 0, -4, -4], [3, 3, 0, -3, -3], [1, 1, 0, -1, -1]],
    )
    # The seed's hand recipe: full correlation of the zero-padded upstream gradient with the flipped kernel.
    full = cg.conv(np.pad(np.ones_like(y), ((0, 0), (0, 0), (2, 2), (2, 2))), SOBEL[..., ::-1, ::-1])
    np.testing.assert_array_equal(full, grads.input)
