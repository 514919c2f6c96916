"""conv_matrix: the explicit operator, against conv, its adjoint, conv_transpose and PyTorch."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from hypothesis import given

import convgrad as cg
from convgrad._matrix import check_budget
from strategies import Config, conv_configs
from trust_cases import TConfig, torch_conv_transpose_grads, transposed_configs

pytest.importorskip("scipy")
import scipy.sparse


def test_hand_built_3_tap_matrix() -> None:
    """The matrix one writes by hand for x of shape (1, 1, 5), w = [1, 2, -1], padding 1."""
    x = np.arange(10.0, 15.0).reshape(1, 1, 5)
    w = np.array([[[1.0, 2.0, -1.0]]])
    m = cg.conv_matrix(x.shape, w, padding=1)
    hand = np.array(
        [[2, -1, 0, 0, 0], [1, 2, -1, 0, 0], [0, 1, 2, -1, 0], [0, 0, 1, 2, -1], [0, 0, 0, 1, 2]], dtype=float
    )
    assert scipy.sparse.issparse(m) and m.format == "csr"
    np.testing.assert_array_equal(m.toarray(), hand)
    np.testing.assert_array_equal(m @ x.ravel(), [9.0, 20.0, 22.0, 24.0, 41.0])
    np.testing.assert_array_equal(cg.conv(x, w, padding=1).ravel(), [9.0, 20.0, 22.0, 24.0, 41.0])
    # a finite difference at x[2] reads the column of x[2]: the flipped kernel
    delta = np.zeros(5)
    delta[2] = 1.0
    np.testing.assert_array_equal(m @ delta, [0.0, -1.0, 2.0, 1.0, 0.0])


@given(conv_configs(dims=(1, 2, 3), max_extra=3))
def test_matrix_is_the_convolution_and_its_transpose_the_input_grad(cfg: Config) -> None:
    rng = np.random.default_rng(0)
    x, w, _ = cfg.arrays(rng)
    kw = cfg.kwargs()
    m = cg.conv_matrix(cfg.x_shape, w, **kw)
    y = cg.conv(x, w, **kw)
    assert m.shape == (y.size, x.size)
    np.testing.assert_allclose(m @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)
    g = rng.standard_normal(y.shape)
    gx = cg.conv_input_grad(g, w, input_shape=cfg.x_shape, **kw)
    np.testing.assert_allclose(m.T @ g.ravel(), gx.ravel(), rtol=1e-12, atol=1e-12)


@given(conv_configs(dims=(1, 2), max_extra=2, max_batch=2, modes=("reflect", "circular", "replicate")))
def test_matrix_matches_pytorch_on_padding_modes(cfg: Config) -> None:
    """An independent reference: PyTorch's forward, column by column of the identity."""
    from torch_ref import torch_conv

    rng = np.random.default_rng(1)
    x, w, _ = cfg.arrays(rng)
    m = cg.conv_matrix(cfg.x_shape, w, **cfg.kwargs())
    (y,) = torch_conv(cfg, x, w, None)
    np.testing.assert_allclose(m @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)


@given(transposed_configs())
def test_transposed_matrix(cfg: TConfig) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal(cfg.x_shape)
    w = rng.standard_normal(cfg.w_shape)
    m = cg.conv_matrix(cfg.x_shape, w, transposed=True, **cfg.kwargs())
    g = rng.standard_normal(cg.conv_transpose_output_shape(cfg.x_shape, cfg.w_shape, **cfg.kwargs()))
    y, gx, _, _ = torch_conv_transpose_grads(cfg, x, w, g)
    assert m.shape == (y.size, x.size)
    np.testing.assert_allclose(m @ x.ravel(), y.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.T @ g.ravel(), gx.ravel(), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(m.T @ g.ravel(), cg.conv_transpose_backward(g, x, w, **cfg.kwargs()).input.ravel(),
                               rtol=1e-12, atol=1e-12)


def test_complex_weight_adjoint_is_the_conjugate_transpose() -> None:
    rng = np.random.default_rng(3)
    w = rng.standard_normal((2, 3, 3)) + 1j * rng.standard_normal((2, 3, 3))
    x = rng.standard_normal((1, 3, 7)) + 1j * rng.standard_normal((1, 3, 7))
    m = cg.conv_matrix(x.shape, w, stride=2, padding=1)
    assert m.dtype == np.complex128
    np.testing.assert_allclose(m @ x.ravel(), cg.conv(x, w, stride=2, padding=1).ravel(), atol=1e-12)
    g = rng.standard_normal((1, 2, 4)) + 1j * rng.standard_normal((1, 2, 4))
    gx = cg.conv_input_grad(g, w, input_shape=x.shape, stride=2, padding=1)
    np.testing.assert_allclose(m.conj().T @ g.ravel(), gx.ravel(), atol=1e-12)


def test_unbatched_duplicates_and_dtypes() -> None:
    # reflect padding of a size-2 input reads the same element twice in one window: the entries add up
    w = np.array([[[1.0, 10.0, 100.0]]])
    m = cg.conv_matrix((1, 2), w, padding=1, padding_mode="reflect")
    np.testing.assert_array_equal(m.toarray(), [[10.0, 101.0], [101.0, 10.0]])  # [b, a, b, a] padded
    assert cg.conv_matrix((1, 1, 4), np.ones((1, 1, 2), dtype=np.int64)).dtype == np.float64
    assert cg.conv_matrix((1, 1, 4), np.ones((1, 1, 2), dtype=np.float32)).dtype == np.float32
    assert cg.conv_matrix((1, 1, 4), np.ones((1, 1, 2), dtype=np.float16)).dtype == np.float32
    # explicit zeros are not stored; batch blocks are repeated
    m2 = cg.conv_matrix((2, 1, 4), np.array([[[0.0, 1.0]]]))
    assert m2.nnz == 6
    np.testing.assert_array_equal(m2.toarray()[3:, 4:], m2.toarray()[:3, :4])


def test_matrix_budget_refusal_names_the_size() -> None:
    w = np.ones((1, 1, 3, 3))
    with cg.workspace_budget(1024), pytest.raises(
        ValueError, match=r"matrix would be 9 x 25 with up to 81 stored entries, needing about .* MiB to build, "
        r"more than the workspace budget of 0.0 MiB"
    ):
        cg.conv_matrix((1, 1, 5, 5), w)
    # within the budget it builds
    assert cg.conv_matrix((1, 1, 5, 5), w).nnz == 81


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "pattern"),
    [
        (((1, 1, 5), np.ones((1, 1, 3))), {"transposed": True, "padding_mode": "reflect"}, ValueError,
         r"padding_mode must be 'zeros' for a transposed convolution .* got 'reflect'"),
        (((1, 1, 5), np.ones((1, 1, 3))), {"output_padding": 1}, ValueError,
         r"output_padding applies to transposed convolutions only; got output_padding=1"),
        (((1, 1, 5), np.ones((1, 1, 3))), {"transposed": 1}, TypeError, r"transposed must be True or False; got 1"),
        (((1, 2, 5), np.ones((1, 1, 3))), {}, ValueError,
         r"w.shape\[1\] \(1\) must equal in_channels / groups \(input_shape\[1\] = 2"),
        (((1, 1, 2), np.ones((1, 1, 3))), {}, ValueError, r"output size would be < 1 in spatial dimension 0"),
        (("115", np.ones((1, 1, 3))), {}, TypeError, r"input_shape must be a tuple of ints; got '115'"),
        (((1, 1, 5), np.array(["a"])), {}, TypeError, r"w must have a numeric dtype"),
        (((1, 1, 5), np.ones((1, 1, 3))), {"stride": 2, "output_padding": -1, "transposed": True}, ValueError,
         r"output_padding must be >= 0; got -1"),
    ],
)
def test_conv_matrix_errors(args: tuple[Any, ...], kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        cg.conv_matrix(*args, **kwargs)


def test_missing_scipy_names_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    with pytest.raises(ImportError, match=r"pip install 'convgrad\[sparse\]'"):
        cg.conv_matrix((1, 1, 5), np.ones((1, 1, 3)))


def test_missing_scipy_is_one_line_in_a_fresh_process() -> None:
    code = (
        "import sys\n"
        "sys.modules['scipy'] = None\n"
        "import numpy as np\n"
        "import convgrad as cg\n"
        "try:\n"
        "    cg.conv_matrix((1, 1, 5), np.ones((1, 1, 3)))\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ImportError conv_matrix needs SciPy: pip install 'convgrad[sparse]'\n"


def test_budget_refusal_message() -> None:
    with pytest.raises(ValueError, match=r"^the thing, needing about 2.0 MiB to do it, more than the workspace budget "
                                         r"of 1.0 MiB \(raise it with convgrad.workspace_budget\)$"):
        check_budget(2 * 2**20, "the thing", "to do it", budget=2**20)
    check_budget(2**20, "the thing", "to do it", budget=2**20)
