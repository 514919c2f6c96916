"""Array type in = array type out: the generic array-API route against the tuned NumPy routes and PyTorch.

* the generic route forced on NumPy arrays against the tuned routes, over the
  whole configuration space (every dimension count, padding form and mode,
  groups, strides, dilations, transposed, input dilation and crops), float64
  and complex128, to 1e-12 relative;
* ``array_api_strict`` arrays (any NumPy-only call on them raises);
* torch CPU tensors against ``torch.autograd.grad``, type, dtype and device kept;
* NumPy calls never import ``array_api_compat``; mixed libraries are a TypeError.
"""

from __future__ import annotations

import contextlib
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad.engine import dispatch
from convgrad.testing import configs
from strategies import Config, conv_configs
from torch_ref import torch_conv, torch_conv_transpose

xs = pytest.importorskip("array_api_strict")
pytest.importorskip("array_api_compat")


def _close(ours: Any, ref: np.ndarray, rtol: float = 1e-12) -> None:
    """Agreement relative to the reference's scale."""
    ours = np.asarray(ours)
    assert ours.shape == ref.shape and ours.dtype == ref.dtype, (ours.shape, ref.shape, ours.dtype, ref.dtype)
    scale = max(1.0, float(np.abs(ref).max(initial=0.0)))
    np.testing.assert_allclose(ours, ref, rtol=0, atol=rtol * scale)


@contextlib.contextmanager
def _generic_route() -> Iterator[None]:
    """Every contraction on the generic route, NumPy arrays included (the engine calls ``dispatch.run``)."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(dispatch, "run", dispatch.run_generic)
        yield


@pytest.fixture
def generic() -> Iterator[None]:
    """Every contraction on the generic route, NumPy arrays included, for the test's duration."""
    with _generic_route():
        yield


def _all_results(cfg: Config, x: np.ndarray, w: np.ndarray, b: Any, g: np.ndarray) -> list[np.ndarray]:
    kw = cfg.kwargs()
    if cfg.transposed:
        y = cg.conv_transpose(x, w, b, **kw)
        return [y, *cg.conv_transpose_backward(g, x, w, **kw)]
    return [cg.conv(x, w, b, **kw), *cg.conv_backward(g, x, w, **kw),
            cg.conv_input_grad(g, w, input_shape=x.shape, **kw), cg.conv_weight_grad(g, x, weight_shape=w.shape, **kw)]


def _generic_against_tuned(cfg: Config, seed: int, complex_: bool) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    if complex_:
        x = x + 1j * rng.standard_normal(x.shape)
        w = w - 1j * rng.standard_normal(w.shape)
    out_shape = (cg.conv_transpose if cfg.transposed else cg.conv)(x, w, **cfg.kwargs()).shape
    g = rng.standard_normal(out_shape) + (1j * rng.standard_normal(out_shape) if complex_ else 0)
    tuned = _all_results(cfg, x, w, b, g)
    with _generic_route():
        generic = _all_results(cfg, x, w, b, g)
    for ours, ref in zip(generic, tuned):
        assert type(ours) is np.ndarray
        _close(ours, ref)


# ----------------------------------------------------------------------------- the generic route on NumPy


@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1), complex_=st.booleans())
def test_generic_route_matches_tuned_routes(cfg: Config, seed: int, complex_: bool) -> None:
    _generic_against_tuned(cfg, seed, complex_)


@settings(max_examples=25)
@given(cfg=configs(transposed=True, padding=("int", "asymmetric"), unbatched=True), seed=st.integers(0, 2**32 - 1))
def test_generic_route_matches_tuned_routes_transposed(cfg: Config, seed: int) -> None:
    _generic_against_tuned(cfg, seed, False)


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kw"),
    [
        ((2, 3, 9), (4, 3, 3), {"padding": ((-2, 1),)}),  # a crop
        ((2, 2, 5, 6), (2, 2, 2, 3), {"input_dilation": (2, 3), "padding": 1}),
        ((1, 2, 7, 4), (4, 1, 3, 2), {"input_dilation": 2, "padding": ((2, -1), (-1, 3)), "groups": 2, "stride": 2}),
        ((3, 4, 4, 4, 4), (4, 1, 2, 2, 2), {"groups": 4, "stride": 2, "padding": 1}),  # depthwise 3-d
        ((2, 6, 33), (6, 6, 15), {"padding": 7}),  # the FFT's territory on the tuned side
        ((2, 8, 5, 5), (4, 8, 1, 1), {}),  # pointwise
        ((0, 3, 6), (2, 3, 3), {"padding": 1}),  # an empty batch
    ],
)
def test_generic_route_on_edge_geometries(x_shape: Any, w_shape: Any, kw: dict[str, Any]) -> None:
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal(x_shape), rng.standard_normal(w_shape)
    g = rng.standard_normal(cg.conv(x, w, **kw).shape)
    tuned = [cg.conv(x, w, **kw), *cg.conv_backward(g, x, w, **kw)]
    with _generic_route():
        generic = [cg.conv(x, w, **kw), *cg.conv_backward(g, x, w, **kw)]
    for ours, ref in zip(generic, tuned):
        _close(ours, ref)


def test_generic_route_chunks_the_batch_within_the_budget(generic: None) -> None:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((5, 3, 8, 8)), rng.standard_normal((4, 3, 3, 3))
    g = rng.standard_normal((5, 4, 6, 6))
    whole = [cg.conv(x, w), *cg.conv_backward(g, x, w)]
    with cg.workspace_budget(3 * 27 * 36 * 8 * 2):  # two samples per chunk
        chunked = [cg.conv(x, w), *cg.conv_backward(g, x, w)]
    for a, b in zip(chunked, whole):
        _close(a, b, 1e-14)


def test_double_backward_and_batch_groups_on_the_generic_route() -> None:
    rng = np.random.default_rng(3)
    x, w, g = rng.standard_normal((2, 4, 7)), rng.standard_normal((6, 2, 3)), rng.standard_normal((2, 6, 5))
    ggx, ggw, ggb = rng.standard_normal(x.shape), rng.standard_normal(w.shape), rng.standard_normal(6)
    kw = {"stride": 2, "padding": 2, "groups": 2, "padding_mode": "reflect"}
    xb, wb = rng.standard_normal((4, 3, 6)), rng.standard_normal((4, 3, 2))
    gb = rng.standard_normal((2, 4, 5))

    def run() -> list[Any]:
        return [*cg.conv_double_backward(ggx, ggw, ggb, g, x, w, **kw),
                cg.conv_batch_grouped(xb, wb, batch_groups=2), *cg.conv_batch_grouped_backward(gb, xb, wb, batch_groups=2)]

    tuned = run()
    with _generic_route():
        generic = run()
    for a, b in zip(generic, tuned):
        _close(a, b)


# ----------------------------------------------------------------------------- array_api_strict


def _strict(a: np.ndarray | None) -> Any:
    return None if a is None else xs.asarray(a)


def _numpy(a: Any) -> np.ndarray:
    assert isinstance(a, xs.Array if hasattr(xs, "Array") else type(xs.asarray(0.0))), type(a)
    return np.from_dlpack(a)


@settings(max_examples=20)
@given(cfg=conv_configs(max_extra=3), seed=st.integers(0, 2**32 - 1))
def test_array_api_strict_arrays_stay_strict_and_match(cfg: Config, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    kw = cfg.kwargs()
    y = cg.conv(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    ref = [y, *cg.conv_backward(g, x, w, **kw)]
    ys = cg.conv(_strict(x), _strict(w), _strict(b), **kw)
    grads = cg.conv_backward(_strict(g), _strict(x), _strict(w), **kw)
    for ours, theirs in zip([ys, *grads], ref):
        assert ours.device == xs.asarray(0.0).device
        _close(_numpy(ours), theirs)


def test_array_api_strict_on_every_public_function() -> None:
    rng = np.random.default_rng(4)
    x, w, b = rng.standard_normal((2, 4, 6, 5)), rng.standard_normal((6, 2, 3, 2)), rng.standard_normal(6)
    kw: dict[str, Any] = {"stride": (2, 1), "padding": ((1, 2), (0, 1)), "dilation": (1, 2), "groups": 2}
    y = cg.conv(x, w, b, **kw)
    g = rng.standard_normal(y.shape)
    sx, sw, sb, sg = (xs.asarray(a) for a in (x, w, b, g))
    pairs = [
        (cg.conv_input_grad(sg, sw, input_shape=x.shape, **kw), cg.conv_input_grad(g, w, input_shape=x.shape, **kw)),
        (cg.conv_weight_grad(sg, sx, weight_shape=w.shape, **kw), cg.conv_weight_grad(g, x, weight_shape=w.shape, **kw)),
        (cg.conv_bias_grad(sg), cg.conv_bias_grad(g)),
        (cg.conv_bias_grad(sg[0, ...], unbatched=True), cg.conv_bias_grad(g[0], unbatched=True)),
        (cg.conv(sx[0, ...], sw, sb, **kw), cg.conv(x[0], w, b, **kw)),  # unbatched
    ]
    tk: dict[str, Any] = {"stride": 2, "padding": 1, "output_padding": 1, "groups": 2}
    wt = rng.standard_normal((4, 3, 3, 3))
    yt = cg.conv_transpose(x, wt, **tk)
    gt = rng.standard_normal(yt.shape)
    pairs.append((cg.conv_transpose(sx, xs.asarray(wt), **tk), yt))
    pairs += list(zip(cg.conv_transpose_backward(xs.asarray(gt), sx, xs.asarray(wt), **tk),
                      cg.conv_transpose_backward(gt, x, wt, **tk)))
    pairs += list(zip(cg.conv_double_backward(sx, sw, sb, sg, sx, sw, **kw), cg.conv_double_backward(x, w, b, g, x, w, **kw)))
    pairs += list(zip(cg.conv_transpose_double_backward(sx, None, None, xs.asarray(gt), sx, xs.asarray(wt), **tk),
                      cg.conv_transpose_double_backward(x, None, None, gt, x, wt, **tk)))
    for ours, theirs in pairs:
        _close(_numpy(ours), theirs)


def test_array_api_strict_dtypes() -> None:
    xi, wi = xs.asarray([[[1, 2, 3, 4]]]), xs.asarray([[[1, -1]]])
    y = cg.conv(xi, wi)
    assert y.dtype == xs.float64 and _numpy(y).tolist() == [[[-1.0, -1.0, -1.0]]]
    assert cg.conv(xs.astype(xi, xs.float32), xs.astype(wi, xs.float32)).dtype == xs.float32
    with pytest.raises(TypeError, match=r"no common dtype in their library"):  # the standard does not mix kinds
        cg.conv(xi, xs.astype(wi, xs.float64))


# ----------------------------------------------------------------------------- torch tensors


def _tensors(*arrays: np.ndarray | None) -> list[Any]:
    return [None if a is None else torch.from_numpy(a) for a in arrays]


@given(cfg=conv_configs(), seed=st.integers(0, 2**32 - 1))
def test_torch_tensors_match_torch_autograd(cfg: Config, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    y_ref = torch_conv(cfg, x, w, b)[0]
    g = rng.standard_normal(y_ref.shape)
    _, gx_ref, gw_ref, gb_ref = torch_conv(cfg, x, w, b, g)
    tx, tw, tb, tg = _tensors(x, w, b, g)
    y = cg.conv(tx, tw, tb, **cfg.kwargs())
    grads = cg.conv_backward(tg, tx, tw, **cfg.kwargs())
    for ours, ref in zip([y, *grads], [y_ref, gx_ref, gw_ref, gb_ref]):
        assert isinstance(ours, torch.Tensor) and ours.device == tx.device and ours.dtype == torch.float64
        _close(ours.numpy(), ref, 1e-10)


@settings(max_examples=20)
@given(cfg=configs(transposed=True, padding=("int", "asymmetric")), seed=st.integers(0, 2**32 - 1))
def test_torch_tensors_transposed_match_torch_autograd(cfg: Config, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x, w, b = cfg.arrays(rng)
    kw = cfg.kwargs()
    pads = cfg.lo  # symmetric or not, torch takes one padding per side only when it is symmetric
    if cfg.lo != cfg.hi:
        return
    tkw = {"stride": cfg.stride, "padding": pads, "output_padding": cfg.output_padding, "dilation": cfg.dilation,
           "groups": cfg.groups}
    y_ref = torch_conv_transpose(x, w, b, None, **tkw)[0]
    g = rng.standard_normal(y_ref.shape)
    refs = torch_conv_transpose(x, w, b, g, **tkw)
    tx, tw, tb, tg = _tensors(x, w, b, g)
    y = cg.conv_transpose(tx, tw, tb, **kw)
    grads = cg.conv_transpose_backward(tg, tx, tw, **kw)
    for ours, ref in zip([y, *grads], refs):
        assert isinstance(ours, torch.Tensor)
        _close(ours.numpy(), ref, 1e-10)


def test_torch_float32_complex_and_unbatched(rng: np.random.Generator) -> None:
    x, w = rng.standard_normal((3, 9, 8)), rng.standard_normal((4, 3, 3, 2))
    tx, tw = torch.from_numpy(x).float(), torch.from_numpy(w).float()
    y = cg.conv(tx, tw, padding=1)  # unbatched (C, H, W)
    assert y.dtype == torch.float32 and y.shape == (4, 9, 9)
    torch.testing.assert_close(y, torch.nn.functional.conv2d(tx, tw, padding=1), rtol=1e-5, atol=1e-5)
    xc = torch.randn(2, 3, 7, dtype=torch.complex128, requires_grad=True)
    wc = torch.randn(4, 3, 3, dtype=torch.complex128, requires_grad=True)
    yc = torch.nn.functional.conv1d(xc, wc, padding=2)
    gc = torch.randn_like(yc)
    refs = torch.autograd.grad(yc, (xc, wc), gc)
    grads = cg.conv_backward(gc, xc, wc, padding=2)
    torch.testing.assert_close(cg.conv(xc, wc, padding=2), yc.detach(), rtol=1e-12, atol=1e-12)
    for ours, ref in zip(grads[:2], refs):
        torch.testing.assert_close(ours, ref, rtol=1e-12, atol=1e-12)


def test_torch_dtype_rules() -> None:
    xi, wi = torch.tensor([[[1, 2, 3, 4]]]), torch.tensor([[[1, -1]]])
    y = cg.conv(xi, wi)  # integer tensors: float64 (torch has it on every device convgrad can reach)
    assert y.dtype == torch.float64 and y.tolist() == [[[-1.0, -1.0, -1.0]]]
    assert cg.conv(xi, wi.float()).dtype == torch.float32  # torch's own promotion: int with float32 is float32
    assert cg.conv(xi.bool(), wi.bool()).dtype == torch.float64
    half = cg.conv(xi.half(), wi.half())
    assert half.dtype == torch.float16 and half.tolist() == [[[-1.0, -1.0, -1.0]]]
    assert cg.conv_bias_grad(torch.ones(2, 3, 4, dtype=torch.int32)).dtype == torch.float64


def test_torch_inputs_untouched_results_not_sharing_memory(rng: np.random.Generator) -> None:
    x, w = torch.from_numpy(rng.standard_normal((2, 3, 8))), torch.from_numpy(rng.standard_normal((3, 3, 1)))
    x0, w0 = x.clone(), w.clone()
    y = cg.conv(x, w)  # a pointwise kernel without padding: the padding map is the identity
    g = torch.ones_like(y)
    grads = cg.conv_backward(g, x, w, padding=0)
    for a, before in ((x, x0), (w, w0)):
        assert torch.equal(a, before)
    for result in (y, *grads):
        for given_ in (x, w, g):
            assert result.untyped_storage().data_ptr() != given_.untyped_storage().data_ptr()


def test_mixed_libraries_are_a_type_error_naming_both() -> None:
    x, w = torch.zeros(1, 2, 5), np.zeros((1, 2, 3))
    with pytest.raises(TypeError, match=r"w is a numpy\.ndarray but x is a torch\.Tensor"):
        cg.conv(x, w)
    with pytest.raises(TypeError, match=r"x is a numpy\.ndarray but w is a torch\.Tensor"):
        cg.conv(np.zeros((1, 2, 5)), torch.zeros(1, 2, 3))
    with pytest.raises(TypeError, match=r"b is a list but x is a torch\.Tensor"):
        cg.conv(x, torch.zeros(1, 2, 3), [0.0])
    with pytest.raises(TypeError, match=r"w is a torch\.Tensor but x is an array_api_strict\.Array"):
        cg.conv(xs.zeros((1, 2, 5)), torch.zeros(1, 2, 3))
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        cg.conv_batch_grouped(x, w, batch_groups=1)


def test_geometry_errors_are_unchanged_for_other_libraries() -> None:
    x, w = torch.zeros(1, 4, 5), torch.zeros(2, 3, 3)
    with pytest.raises(ValueError) as numpy_error:
        cg.conv(x.numpy(), w.numpy(), groups=2)
    with pytest.raises(ValueError) as torch_error:
        cg.conv(x, w, groups=2)
    assert str(torch_error.value) == str(numpy_error.value)
    with pytest.raises(ValueError, match=r"grad_output\.shape \(1, 2, 4\) must equal the forward output shape"):
        cg.conv_backward(torch.zeros(1, 2, 4), torch.zeros(1, 3, 5), torch.zeros(2, 3, 3))


# ----------------------------------------------------------------------------- imports


def _run(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_numpy_calls_never_import_array_api_compat() -> None:
    done = _run("""
        import sys
        import numpy as np
        import convgrad as cg
        x, w, b = np.ones((2, 3, 6, 6)), np.ones((4, 3, 3, 3)), np.ones(4)
        y = cg.conv(x, w, b, padding=1)
        g = np.ones_like(y)
        cg.conv_backward(g, x, w, padding=1, padding_mode="reflect")
        cg.conv_bias_grad(g)
        cg.conv_transpose_backward(np.ones((2, 3, 8, 8)), np.ones((2, 4, 6, 6)), np.ones((4, 3, 3, 3)))
        cg.conv_double_backward(x, w, b, g, x, w, padding=1)
        cg.conv_batch_grouped(x, w, batch_groups=2)
        cg.conv([[[1.0, 2.0, 3.0]]], [[[1.0, 1.0]]])
        loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("array_api_compat", "dask", "torch"))
        print(loaded)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_missing_array_api_compat_is_one_line_naming_the_extra() -> None:
    done = _run("""
        import sys
        sys.modules["array_api_compat"] = None  # as if it were not installed
        import torch
        import convgrad as cg
        try:
            cg.conv(torch.zeros(1, 1, 3), torch.zeros(1, 1, 2))
        except ImportError as err:
            print(err)
    """)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "convgrad needs array-api-compat for non-NumPy arrays: pip install 'convgrad[array-api]'"


def test_jax_arrays_stay_jax_arrays() -> None:
    pytest.importorskip("jax")
    done = _run("""
        import numpy as np
        import jax
        jax.config.update("jax_enable_x64", True)
        import jax.numpy as jnp
        import convgrad as cg
        rng = np.random.default_rng(0)
        x, w, g = rng.standard_normal((2, 4, 7)), rng.standard_normal((6, 2, 3)), rng.standard_normal((2, 6, 4))
        kw = dict(stride=2, padding=((2, 1),), groups=2, padding_mode="circular")
        ours = [cg.conv(jnp.asarray(x), jnp.asarray(w), **kw), *cg.conv_backward(jnp.asarray(g), jnp.asarray(x), jnp.asarray(w), **kw)]
        ref = [cg.conv(x, w, **kw), *cg.conv_backward(g, x, w, **kw)]
        print(all(isinstance(a, jax.Array) for a in ours), max(float(np.abs(np.asarray(a) - b).max()) for a, b in zip(ours, ref)) < 1e-12)
    """)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True True"
