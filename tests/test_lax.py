"""convgrad.lax against JAX itself (``jax[cpu]``, float64 enabled), forward and ``jax.vjp`` gradients.

Every JAX computation runs in a worker process (``tests/jax_worker.py``): jaxlib 0.10.2 aborts the
whole process on some valid convolutions, and such a configuration is listed as skipped in the
terminal summary instead of taking the test run down. The oracles:

* ``jax.lax.conv_general_dilated`` / ``conv_transpose`` and ``jax.vjp(f, lhs, rhs)[1](g)``, float64
  and complex128, to 1e-12 of the largest entry; JAX's dimension-number helpers and its argument
  errors;
* PyTorch's complex autograd, for the statement that JAX's vjp is ``conj(torch_grad(conj(g)))``.

Hypothesis draws layouts (random letter orders for ``dimension_numbers``, given as strings or as a
``ConvDimensionNumbers``, 0 to 3 spatial dimensions), and each of the five capability rows of the issue
has its own strategy: batch groups, cropping, input dilation with strides, transposed convolutions
whose padding exceeds the kernel span, and transposed convolutions whose output padding is at least
``max(stride, dilation)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import assume, given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad import lax
from jax_worker import ABORTED, describe, jax_available, register_summary, shared_worker

needs_jax = pytest.mark.skipif(not jax_available(), reason="jax is not installed (pip install 'jax[cpu]')")

LETTERS = "HWDXYZ"
TOL = 1e-12


@pytest.fixture(scope="module", autouse=True)
def _list_aborts(request: pytest.FixtureRequest) -> None:
    register_summary(request.config)


# ----------------------------------------------------------------------------- configurations


@dataclass
class Config:
    """One lax call: the operation, the shapes in JAX's layout and the keyword arguments."""

    op: str
    lhs_shape: tuple[int, ...]
    rhs_shape: tuple[int, ...]
    kwargs: dict[str, Any]
    dtype: str = "float64"
    seed: int = 0

    def for_jax(self) -> dict[str, Any]:
        kw = dict(self.kwargs)
        dn = kw.get("dimension_numbers")
        if isinstance(dn, lax.ConvDimensionNumbers):
            kw["dimension_numbers"] = ("dn", *dn)
        return kw


def _random(shape: tuple[int, ...], dtype: str, rng: np.random.Generator) -> np.ndarray:
    a = rng.standard_normal(shape)
    if dtype == "complex128":
        a = a + 1j * rng.standard_normal(shape)
    return a.astype(dtype)


def _layout(canonical: tuple[int, ...], spec: str, pair: str, spatial: str) -> tuple[int, ...]:
    """Sizes given in the canonical order (pair letters, then spatial letters in rhs order) -> spec's order."""
    index = {pair[0]: 0, pair[1]: 1, **{c: 2 + i for i, c in enumerate(spatial)}}
    return tuple(canonical[index[c]] for c in spec)


@st.composite
def _specs(draw: st.DrawFn, d: int) -> tuple[str, str, str, str]:
    """Random letter orders: (lhs_spec, rhs_spec, out_spec, spatial letters in rhs order)."""
    letters = "".join(draw(st.permutations(LETTERS))[:d])
    lhs = "".join(draw(st.permutations("NC" + letters)))
    rhs = "".join(draw(st.permutations("OI" + letters)))
    out = "".join(draw(st.permutations("NC" + letters)))
    return lhs, rhs, out, "".join(c for c in rhs if c not in "OI")


def _dimension_numbers(draw: st.DrawFn, d: int, default: Optional[tuple[str, str, str]]) -> tuple[Any, tuple[str, ...]]:
    """(the dimension_numbers argument, the specs it means)."""
    form = draw(st.sampled_from(["none", "strings", "strings", "object"]))
    lhs, rhs, out, spatial = draw(_specs(d))
    if form == "none":
        if default is None:
            letters = LETTERS[:d]
            return None, ("NC" + letters, "OI" + letters, "NC" + letters, letters)
        lhs, rhs, out = default
        return None, (lhs, rhs, out, "".join(c for c in rhs if c not in "OI"))
    if form == "object":
        return lax.conv_dimension_numbers((1,) * (d + 2), (1,) * (d + 2), (lhs, rhs, out)), (lhs, rhs, out, spatial)
    return (lhs, rhs, out), (lhs, rhs, out, spatial)


@st.composite
def general_configs(draw: st.DrawFn, row: str = "any") -> Config:
    """``conv_general_dilated`` configurations; ``row`` forces one capability of the issue's table."""
    d = draw(st.sampled_from([0, 1, 1, 2, 2, 3] if row == "any" else [1, 1, 2, 2, 3]))
    dtype = draw(st.sampled_from(["float64", "float64", "complex128"]))
    groups = draw(st.sampled_from(["none", "none", "feature", "batch"]))
    if row == "batch_groups":
        groups = "batch"
    fgc = draw(st.integers(2, 3)) if groups == "feature" else 1
    bgc = draw(st.integers(2, 3)) if groups == "batch" else 1
    n, i = bgc * draw(st.integers(1, 2)), draw(st.integers(1, 2))
    o = fgc * bgc * draw(st.integers(1, 2))
    dilate_input = row == "lhs_dilation_strided" or draw(st.booleans())
    sizes = [draw(st.integers(1, 6)) for _ in range(d)]
    kernel = [draw(st.integers(1, 3)) for _ in range(d)]
    strides = [draw(st.integers(1, 3)) for _ in range(d)]
    rhs_dil = [draw(st.integers(1, 2)) for _ in range(d)]
    lhs_dil = [draw(st.integers(1, 3)) if dilate_input else 1 for _ in range(d)]
    if row == "lhs_dilation_strided":
        j = draw(st.integers(0, d - 1))
        lhs_dil[j], strides[j] = draw(st.integers(2, 3)), draw(st.integers(2, 3))
    padding: Any
    if all(a == 1 for a in lhs_dil) and row not in ("crop",) and draw(st.booleans()):
        padding = draw(st.sampled_from(["SAME", "SAME_LOWER", "VALID", "same", "valid"]))
    else:
        pairs = [[draw(st.integers(-3, 3)), draw(st.integers(-3, 3))] for _ in range(d)]
        if row == "crop":
            j, side = draw(st.integers(0, d - 1)), draw(st.integers(0, 1))
            pairs[j][side] = draw(st.integers(-3, -1))
        for s, a, (lo, hi) in zip(sizes, lhs_dil, pairs):
            assume((s - 1) * a + 1 + lo + hi >= 0)  # JAX rejects a crop longer than the dimension
        padding = tuple(tuple(p) for p in pairs)
    dn, (lhs_spec, rhs_spec, _, spatial) = _dimension_numbers(draw, d, None)
    lhs_shape = _layout((n, fgc * i, *sizes), lhs_spec, "NC", spatial)
    rhs_shape = _layout((o, i, *kernel), rhs_spec, "OI", spatial)
    kwargs: dict[str, Any] = {"window_strides": tuple(strides), "padding": padding}
    if draw(st.booleans()) or any(a != 1 for a in lhs_dil):
        kwargs["lhs_dilation"] = tuple(lhs_dil)
    if draw(st.booleans()) or any(r != 1 for r in rhs_dil):
        kwargs["rhs_dilation"] = tuple(rhs_dil)
    kwargs.update({"dimension_numbers": dn, "feature_group_count": fgc, "batch_group_count": bgc})
    return Config("conv_general_dilated", lhs_shape, rhs_shape, kwargs, dtype, draw(st.integers(0, 2**32 - 1)))


@st.composite
def transpose_configs(draw: st.DrawFn, row: str = "any") -> Config:
    """``conv_transpose`` configurations; ``row``: ``"wide_padding"`` (padding beyond the kernel span) or
    ``"large_output_padding"`` (PyTorch's output padding ``>= max(stride, dilation)``)."""
    d = draw(st.sampled_from([1, 1, 2, 2, 3]))
    dtype = draw(st.sampled_from(["float64", "float64", "complex128"]))
    n, c, o = draw(st.integers(1, 2)), draw(st.integers(1, 3)), draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 5)) for _ in range(d)]
    kernel = [draw(st.integers(1, 3)) for _ in range(d)]
    strides = [draw(st.integers(1, 3)) for _ in range(d)]
    rhs_dil = [draw(st.integers(1, 2)) for _ in range(d)]
    spans = [r * (k - 1) + 1 for k, r in zip(kernel, rhs_dil)]
    consistent = row == "any" and draw(st.booleans())
    padding: Any
    if row == "large_output_padding":  # PyTorch's (padding p, output padding a) -> the dilated input's pairs
        pairs = []
        for sp, s, r in zip(spans, strides, rhs_dil):
            p = draw(st.integers(0, sp - 1))
            a = draw(st.integers(max(s, r), max(s, r) + 2))
            pairs.append((sp - 1 - p, sp - 1 - p + a))
        padding = tuple(pairs)
    elif row == "wide_padding":
        pairs = [[draw(st.integers(-2, sp + 2)), draw(st.integers(-2, sp + 2))] for sp in spans]
        j, side = draw(st.integers(0, d - 1)), draw(st.integers(0, 1))
        pairs[j][side] = spans[j] + draw(st.integers(0, 3))  # more zeros than dilation·(K − 1)
        padding = tuple(tuple(p) for p in pairs)
    elif draw(st.booleans()):
        padding = draw(st.sampled_from(["SAME", "VALID"]))
    else:
        padding = tuple((draw(st.integers(-2, 4)), draw(st.integers(-2, 4))) for _ in range(d))
    if not isinstance(padding, str):
        for s, st_, sp, pair in zip(sizes, strides, spans, padding):
            lo, hi = (sp - 1 - pair[0], sp - 1 - pair[1]) if consistent else pair
            assume((s - 1) * st_ + 1 + lo + hi >= 0)
    transpose_kernel = draw(st.booleans())
    default = {3: ("NHC", "HIO", "NHC"), 4: ("NHWC", "HWIO", "NHWC"), 5: ("NHWDC", "HWDIO", "NHWDC")}[d + 2]
    dn, (lhs_spec, rhs_spec, _, spatial) = _dimension_numbers(draw, d, default)
    lhs_shape = _layout((n, c, *sizes), lhs_spec, "NC", spatial)
    rhs_shape = _layout(((c, o) if transpose_kernel else (o, c)) + tuple(kernel), rhs_spec, "OI", spatial)
    kwargs: dict[str, Any] = {"strides": tuple(strides), "padding": padding, "dimension_numbers": dn,
                              "transpose_kernel": transpose_kernel}
    if draw(st.booleans()) or any(r != 1 for r in rhs_dil):
        kwargs["rhs_dilation"] = tuple(rhs_dil)
    if consistent:
        kwargs["use_consistent_padding"] = True
    return Config("conv_transpose", lhs_shape, rhs_shape, kwargs, dtype, draw(st.integers(0, 2**32 - 1)))


# ----------------------------------------------------------------------------- comparison


def assert_close(ours: np.ndarray, theirs: np.ndarray, what: str) -> None:
    assert ours.shape == theirs.shape, f"{what}: shape {ours.shape} != JAX's {theirs.shape}"
    assert ours.dtype == theirs.dtype, f"{what}: dtype {ours.dtype} != JAX's {theirs.dtype}"
    scale = max(1.0, float(np.abs(theirs).max(initial=0.0)))
    np.testing.assert_allclose(ours, theirs, rtol=TOL, atol=TOL * scale, err_msg=what)


def compare(cfg: Config, grads: bool = True) -> str:
    """Run ``cfg`` here and in JAX; compare the forward and (unless ``grads=False``) the vjp.

    Returns ``"ok"``, ``"forward only"`` (the vjp aborted jaxlib; the forward was compared) or
    ``"aborted"``."""
    rng = np.random.default_rng(cfg.seed)
    lhs, rhs = _random(cfg.lhs_shape, cfg.dtype, rng), _random(cfg.rhs_shape, cfg.dtype, rng)
    y = getattr(lax, cfg.op)(lhs, rhs, **cfg.kwargs)
    g = _random(y.shape, cfg.dtype, rng) if grads else None
    case = {"op": cfg.op, "lhs": lhs, "rhs": rhs, "g": g, "kwargs": cfg.for_jax()}
    answer = shared_worker().run([case])[0]
    status = "ok"
    if answer is ABORTED and grads:
        answer, status = shared_worker().run([dict(case, g=None)])[0], "forward only"
    if answer is ABORTED:
        return "aborted"
    assert answer[0] == "ok", f"JAX raised {answer[1]}: {answer[2]}\n  for {describe(case)}"
    assert_close(y, answer[1], f"forward of {describe(case)}")
    if answer[2] is not None:
        ours = getattr(lax, cfg.op + "_backward")(g, lhs, rhs, **cfg.kwargs)
        assert_close(ours.lhs, answer[2][0], f"lhs gradient of {describe(case)}")
        assert_close(ours.rhs, answer[2][1], f"rhs gradient of {describe(case)}")
    return status


# ----------------------------------------------------------------------------- hypothesis against JAX


@needs_jax
@settings(max_examples=30)
@given(general_configs())
def test_conv_general_dilated_matches_jax(cfg: Config) -> None:
    compare(cfg)


ROWS = ["batch_groups", "crop", "lhs_dilation_strided"]


@needs_jax
@pytest.mark.parametrize("row", ROWS)
@settings(max_examples=12)
@given(data=st.data())
def test_capability_row_conv_general_dilated(row: str, data: st.DataObject) -> None:
    """The first three rows of the issue's table: batch_group_count, cropping, lhs_dilation with strides."""
    compare(data.draw(general_configs(row)))


@needs_jax
@settings(max_examples=25)
@given(transpose_configs())
def test_conv_transpose_matches_jax(cfg: Config) -> None:
    compare(cfg)


@needs_jax
@pytest.mark.parametrize("row", ["wide_padding", "large_output_padding"])
@settings(max_examples=12)
@given(data=st.data())
def test_capability_row_conv_transpose(row: str, data: st.DataObject) -> None:
    """The last two rows: padding beyond dilation·(K − 1), output padding >= max(stride, dilation)."""
    compare(data.draw(transpose_configs(row)))


# ----------------------------------------------------------------------------- named cases against JAX

NAMED = {
    # the configuration the issue reports aborting jaxlib's vjp
    "issue_abort_vjp": Config("conv_general_dilated", (3, 1, 3, 6), (1, 1, 3, 2),
                              {"window_strides": (2, 2), "padding": ((1, 1), (1, 1))}),
    "nhwc_hwio_same_strided": Config("conv_general_dilated", (2, 7, 6, 3), (3, 2, 3, 4),
                                     {"window_strides": (2, 3), "padding": "SAME",
                                      "dimension_numbers": ("NHWC", "HWIO", "NHWC")}),
    "weight_grad_as_xla_writes_it": Config("conv_general_dilated", (2, 4, 5), (2, 6, 2),
                                           {"window_strides": (1,), "padding": ((1, 1),), "batch_group_count": 2,
                                            "dimension_numbers": ("CNW", "IOW", "CNW")}),
    "crop_both_ends": Config("conv_general_dilated", (1, 2, 9), (2, 2, 3),
                             {"window_strides": (2,), "padding": ((-2, -3),)}),
    "lhs_dilation_with_strides_3d": Config("conv_general_dilated", (1, 2, 3, 2, 4), (2, 1, 2, 1, 3),
                                           {"window_strides": (2, 1, 3), "padding": ((1, 0), (0, 0), (2, -1)),
                                            "lhs_dilation": (3, 2, 2), "feature_group_count": 2}),
    "transpose_wide_padding": Config("conv_transpose", (1, 3, 2), (2, 2, 3),
                                     {"strides": (2,), "padding": ((4, 5),)}),
    "transpose_output_padding_4": Config("conv_transpose", (1, 4, 1), (3, 1, 2),
                                         {"strides": (2,), "padding": ((2, 6),), "rhs_dilation": (1,)}),
    "transpose_kernel_same": Config("conv_transpose", (2, 5, 4, 3), (3, 3, 2, 3),
                                    {"strides": (2, 2), "padding": "SAME", "transpose_kernel": True}),
    "transpose_consistent_padding": Config("conv_transpose", (1, 2, 5), (2, 3, 3),
                                           {"strides": (3,), "padding": ((1, 2),), "use_consistent_padding": True,
                                            "dimension_numbers": ("NCH", "IOH", "NCH")}),
    "complex128_grouped": Config("conv_general_dilated", (2, 4, 5), (4, 2, 3),
                                 {"window_strides": (2,), "padding": ((1, -1),), "feature_group_count": 2},
                                 "complex128"),
    "no_spatial_dimensions": Config("conv_general_dilated", (3, 4), (2, 4), {"window_strides": (), "padding": ()}),
    "empty_output": Config("conv_general_dilated", (1, 1, 2), (1, 1, 4), {"window_strides": (1,), "padding": "VALID"}),
    "empty_batch": Config("conv_general_dilated", (0, 2, 4), (3, 2, 2), {"window_strides": (1,), "padding": "SAME"}),
    "no_input_features": Config("conv_general_dilated", (2, 0, 4), (3, 0, 2),
                                {"window_strides": (1,), "padding": ((1, 1),)}),
}


@needs_jax
@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_case_matches_jax(name: str) -> None:
    status = compare(NAMED[name])
    if status == "aborted":
        pytest.skip(f"jaxlib aborted on {name}")


@needs_jax
def test_issue_abort_case_is_survived_and_checked_against_torch() -> None:
    """The vjp that aborts jaxlib: the worker survives it, and the gradients are checked against PyTorch."""
    cfg = NAMED["issue_abort_vjp"]
    status = compare(cfg)
    assert status in ("ok", "forward only")
    rng = np.random.default_rng(1)
    lhs, rhs = rng.standard_normal(cfg.lhs_shape), rng.standard_normal(cfg.rhs_shape)
    xt, wt = torch.tensor(lhs, requires_grad=True), torch.tensor(rhs, requires_grad=True)
    yt = F.conv2d(xt, wt, stride=2, padding=1)
    g = rng.standard_normal(yt.shape)
    gx, gw = torch.autograd.grad(yt, (xt, wt), torch.tensor(g))
    ours = lax.conv_general_dilated_backward(g, lhs, rhs, (2, 2), ((1, 1), (1, 1)))
    np.testing.assert_allclose(ours.lhs, gx.numpy(), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours.rhs, gw.numpy(), rtol=TOL, atol=TOL)
    assert shared_worker().run([{"fn": "padtype_to_pads", "args": ((3,), (2,), (1,), "SAME")}])[0][1] == ((0, 1),)


# ----------------------------------------------------------------------------- dtypes against JAX


@needs_jax
@pytest.mark.parametrize(
    ("lhs_dtype", "preferred"),
    [("int8", None), ("int8", "int32"), ("uint8", "uint16"), ("int16", "float64"), ("bool", None),
     ("float32", "float64"), ("complex64", "complex128")],
)
def test_dtypes_and_preferred_element_type_match_jax(lhs_dtype: str, preferred: Optional[str]) -> None:
    rng = np.random.default_rng(3)
    if lhs_dtype == "bool":
        lhs, rhs = rng.random((2, 3, 6)) < 0.3, rng.random((2, 3, 3)) < 0.5
    elif lhs_dtype.startswith(("int", "uint")):
        info = np.iinfo(lhs_dtype)
        lhs = rng.integers(info.min, info.max, (2, 3, 6), endpoint=True).astype(lhs_dtype)
        rhs = rng.integers(info.min, info.max, (2, 3, 3), endpoint=True).astype(lhs_dtype)
    else:
        lhs, rhs = _random((2, 3, 6), "complex128" if "complex" in lhs_dtype else "float64", rng), None
        rhs = _random((2, 3, 3), "complex128" if "complex" in lhs_dtype else "float64", rng)
        lhs, rhs = lhs.astype(lhs_dtype), rhs.astype(lhs_dtype)
    kwargs: dict[str, Any] = {"window_strides": (2,), "padding": ((1, 2),), "preferred_element_type": preferred}
    ours = lax.conv_general_dilated(lhs, rhs, **kwargs)
    answer = shared_worker().run([{"op": "conv_general_dilated", "lhs": lhs, "rhs": rhs, "g": None,
                                   "kwargs": kwargs}])[0]
    if answer is ABORTED:
        pytest.skip("jaxlib aborted")
    assert answer[0] == "ok", answer
    theirs = answer[1]
    assert ours.dtype == theirs.dtype
    if ours.dtype.kind in "biu":
        np.testing.assert_array_equal(ours, theirs)  # integer sums wrap as JAX's do
    else:  # JAX accumulates float32 inputs in its own order; convgrad widens first
        np.testing.assert_allclose(ours, theirs, rtol=1e-6, atol=1e-6 * float(np.abs(theirs).max()))


# ----------------------------------------------------------------------------- the complex convention


@needs_jax
def test_complex_vjp_is_jax_convention_not_torch() -> None:
    """JAX's vjp is the unconjugated transpose: jax_vjp(g) = conj(torch_grad(conj(g)))."""
    rng = np.random.default_rng(5)
    lhs, rhs = _random((2, 2, 7), "complex128", rng), _random((3, 2, 3), "complex128", rng)
    kwargs = {"window_strides": (2,), "padding": ((2, 1),), "rhs_dilation": (2,)}
    y = lax.conv_general_dilated(lhs, rhs, **kwargs)
    g = _random(y.shape, "complex128", rng)
    ours = lax.conv_general_dilated_backward(g, lhs, rhs, **kwargs)
    answer = shared_worker().run([{"op": "conv_general_dilated", "lhs": lhs, "rhs": rhs, "g": g, "kwargs": kwargs}])[0]
    if answer is not ABORTED:
        assert_close(ours.lhs, answer[2][0], "lhs")
        assert_close(ours.rhs, answer[2][1], "rhs")
    xt, wt = torch.tensor(lhs, requires_grad=True), torch.tensor(rhs, requires_grad=True)
    yt = F.conv1d(F.pad(xt, (2, 1)), wt, stride=2, dilation=2)
    gx, gw = torch.autograd.grad(yt, (xt, wt), torch.tensor(np.conj(g)))
    np.testing.assert_allclose(ours.lhs, np.conj(gx.numpy()), rtol=TOL, atol=TOL)
    np.testing.assert_allclose(ours.rhs, np.conj(gw.numpy()), rtol=TOL, atol=TOL)
    torch_style = cg.conv_backward(g, lhs, rhs, stride=2, padding=((2, 1),), dilation=2)
    assert not np.allclose(torch_style.input, ours.lhs)  # the two conventions differ for complex data


# ----------------------------------------------------------------------------- dimension numbers and padding


@needs_jax
@settings(max_examples=20)
@given(d=st.integers(0, 4), data=st.data())
def test_dimension_numbers_match_jax(d: int, data: st.DataObject) -> None:
    lhs, rhs, out, _ = data.draw(_specs(d))
    shape = (1,) * (d + 2)
    cases = [{"fn": "conv_dimension_numbers", "args": (shape, shape, (lhs, rhs, out))},
             {"fn": "conv_general_permutations", "args": ((lhs, rhs, out),)}]
    answers = shared_worker().run(cases)
    assert tuple(lax.conv_dimension_numbers(shape, shape, (lhs, rhs, out))) == answers[0][1]
    assert lax.conv_general_permutations((lhs, rhs, out)) == answers[1][1]


@needs_jax
@settings(max_examples=20)
@given(st.lists(st.tuples(st.integers(0, 9), st.integers(0, 5), st.integers(1, 4)), min_size=1, max_size=3),
       st.sampled_from(["SAME", "SAME_LOWER", "VALID", "same"]))
def test_padtype_to_pads_matches_jax(dims: list[tuple[int, int, int]], padding: str) -> None:
    sizes, windows, strides = (tuple(v) for v in zip(*dims))
    answer = shared_worker().run([{"fn": "padtype_to_pads", "args": (sizes, windows, strides, padding)}])[0]
    assert tuple(lax.padtype_to_pads(sizes, windows, strides, padding)) == answer[1]


def test_jax_conv_dimension_numbers_object_is_accepted() -> None:
    """A ConvDimensionNumbers from JAX (any object with the three fields) is read as this module's."""

    @dataclass
    class Foreign:
        lhs_spec: tuple[int, ...]
        rhs_spec: tuple[int, ...]
        out_spec: tuple[int, ...]

    dn = lax.conv_dimension_numbers((1, 2, 3), (1, 2, 3), Foreign((0, 2, 1), (2, 1, 0), (0, 2, 1)))
    assert dn == lax.ConvDimensionNumbers((0, 2, 1), (2, 1, 0), (0, 2, 1))


def test_transposed_route_equals_input_dilation_route() -> None:
    """conv_general_dilated with lhs_dilation at unit stride goes through cg.conv_transpose; the core's
    input_dilation gives the same numbers (groups and crops included)."""
    rng = np.random.default_rng(9)
    x, w = rng.standard_normal((2, 4, 5, 3)), rng.standard_normal((6, 2, 3, 2))
    pads = ((-1, 4), (2, -2))
    y = lax.conv_general_dilated(x, w, (1, 1), pads, lhs_dilation=(3, 2), rhs_dilation=(2, 1), feature_group_count=2)
    ref = cg.conv(x, w, padding=pads, input_dilation=(3, 2), dilation=(2, 1), groups=2)
    np.testing.assert_allclose(y, ref, rtol=1e-13, atol=1e-13)
    g = rng.standard_normal(y.shape)
    ours = lax.conv_general_dilated_backward(g, x, w, (1, 1), pads, lhs_dilation=(3, 2), rhs_dilation=(2, 1),
                                             feature_group_count=2)
    ref_g = cg.conv_backward(g, x, w, padding=pads, input_dilation=(3, 2), dilation=(2, 1), groups=2)
    np.testing.assert_allclose(ours.lhs, ref_g.input, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(ours.rhs, ref_g.weight, rtol=1e-13, atol=1e-13)


def test_results_are_new_contiguous_arrays_and_precision_has_no_effect() -> None:
    rng = np.random.default_rng(2)
    x, w = rng.standard_normal((1, 5, 5, 2)).astype(np.float32), rng.standard_normal((3, 3, 2, 4)).astype(np.float32)
    dn = ("NHWC", "HWIO", "NHWC")
    y = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn)
    assert y.flags.c_contiguous and y.dtype == np.float32 and not np.shares_memory(y, x)
    for precision in ("highest", "bfloat16", ("high", "default"), "F32_F32_F32"):
        same = lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dn, precision=precision)
        np.testing.assert_array_equal(same, y)


# ----------------------------------------------------------------------------- errors

X3, W3 = np.ones((2, 4, 6)), np.ones((6, 4, 3))
F_ = lax.conv_general_dilated
T_ = lax.conv_transpose

ERRORS: list[tuple[str, Any, tuple[Any, ...], dict[str, Any], type, str, bool]] = [
    # (id, function, args, kwargs, exception, message fragment, JAX rejects it too)
    ("lhs_not_numeric", F_, (np.array([["a"]]), W3, (1,), "VALID"), {}, TypeError, "lhs must have a numeric dtype", False),
    ("ndim_mismatch", F_, (np.ones((1, 1, 5)), np.ones((1, 1, 2, 2)), (1,), "VALID"), {}, ValueError,
     "lhs and rhs must have the same number of dimensions; got lhs.shape (1, 1, 5) and rhs.shape (1, 1, 2, 2)", True),
    ("ndim_below_2", F_, (np.ones(5), np.ones(2), (), ()), {}, ValueError, "at least 2 dimensions (batch and feature); got lhs.shape (5,)", True),
    ("window_strides_int", F_, (X3, W3, 1, "VALID"), {}, TypeError, "window_strides must be a sequence of 1 ints (one per spatial dimension); got 1", True),
    ("window_strides_length", F_, (X3, W3, (1, 1), "VALID"), {}, ValueError, "window_strides must have one entry per spatial dimension (1); got (1, 1) with 2 entries", True),
    ("window_strides_zero", F_, (X3, W3, (0,), "VALID"), {}, ValueError, "window_strides[0] must be >= 1; got 0", False),
    ("padding_unknown_string", F_, (X3, W3, (1,), "FULL"), {}, ValueError, "got the unknown string 'FULL'", True),
    ("padding_not_pairs", F_, (X3, W3, (1,), 3), {}, TypeError, "padding must be 'SAME', 'SAME_LOWER', 'VALID' or a sequence of 1 (low, high) pairs; got 3", True),
    ("padding_count", F_, (X3, W3, (1,), ((1, 1), (1, 1))), {}, ValueError, "one (low, high) pair per spatial dimension (1); got ((1, 1), (1, 1)) with 2 entries", True),
    ("padding_pair_shape", F_, (X3, W3, (1,), ((1,),)), {}, ValueError, "padding[0] must be a (low, high) pair of ints; got (1,)", True),
    ("padding_not_int", F_, (X3, W3, (1,), ((1.5, 0),)), {}, TypeError, "padding[0][0] must be an integer; got 1.5", True),
    ("padding_crop_too_long", F_, (X3, W3, (1,), ((-4, -3),)), {}, ValueError, "spatial dimension 0 of size 6 (lhs_dilation 1) with padding (-4, -3) would be -1 long", True),
    ("string_padding_with_lhs_dilation", F_, (X3, W3, (1,), "SAME"), {"lhs_dilation": (2,)}, ValueError, "string padding ('SAME') is not defined with lhs_dilation (2,)", True),
    ("lhs_dilation_zero", F_, (X3, W3, (1,), "VALID"), {"lhs_dilation": (0,)}, ValueError, "lhs_dilation[0] must be >= 1; got 0", True),
    ("rhs_dilation_length", F_, (X3, W3, (1,), "VALID"), {"rhs_dilation": (1, 2)}, ValueError, "rhs_dilation must have one entry per spatial dimension (1); got (1, 2) with 2 entries", False),
    ("rhs_dilation_int", F_, (X3, W3, (1,), "VALID"), {"rhs_dilation": 2}, TypeError, "rhs_dilation must be a sequence of 1 ints (one per spatial dimension); got 2", True),
    ("feature_group_count_zero", F_, (X3, W3, (1,), "VALID"), {"feature_group_count": 0}, ValueError, "feature_group_count must be >= 1; got 0", True),
    ("feature_group_count_not_int", F_, (X3, W3, (1,), "VALID"), {"feature_group_count": 2.0}, TypeError, "feature_group_count must be an integer; got 2.0", False),
    ("feature_group_count_divides_lhs", F_, (np.ones((2, 3, 6)), np.ones((6, 1, 3)), (1,), "VALID"), {"feature_group_count": 2}, ValueError, "feature_group_count=2 must divide the lhs feature dimension (lhs.shape[1] = 3)", True),
    ("feature_group_count_rhs_in", F_, (X3, np.ones((6, 4, 3)), (1,), "VALID"), {"feature_group_count": 2}, ValueError, "(lhs.shape[1] = 4, feature_group_count = 2: 2) must equal the rhs input feature dimension (rhs.shape[1] = 4)", True),
    ("feature_group_count_rhs_out", F_, (X3, np.ones((5, 2, 3)), (1,), "VALID"), {"feature_group_count": 2}, ValueError, "the rhs output feature dimension (rhs.shape[0] = 5) must be a multiple of feature_group_count=2", True),
    ("batch_group_count_divides_batch", F_, (np.ones((3, 2, 6)), np.ones((6, 2, 3)), (1,), "VALID"), {"batch_group_count": 2}, ValueError, "batch_group_count=2 must divide the lhs batch dimension (lhs.shape[0] = 3)", True),
    ("batch_group_count_rhs_out", F_, (np.ones((4, 2, 6)), np.ones((3, 2, 3)), (1,), "VALID"), {"batch_group_count": 2}, ValueError, "the rhs output feature dimension (rhs.shape[0] = 3) must be a multiple of batch_group_count=2", True),
    ("both_group_counts", F_, (np.ones((4, 4, 6)), np.ones((4, 2, 3)), (1,), "VALID"), {"batch_group_count": 2, "feature_group_count": 2}, ValueError, "got batch_group_count=2 and feature_group_count=2", True),
    ("dimension_numbers_type", F_, (X3, W3, (1,), "VALID"), {"dimension_numbers": 5}, TypeError, "dimension_numbers must be None, a ConvDimensionNumbers or three strings; got 5", True),
    ("dimension_numbers_count", F_, (X3, W3, (1,), "VALID"), {"dimension_numbers": ("NCH", "OIH")}, TypeError, "three strings (lhs_spec, rhs_spec, out_spec); got ('NCH', 'OIH')", True),
    ("dimension_numbers_length", F_, (X3, W3, (1,), "VALID"), {"dimension_numbers": ("NCHW", "OIH", "NCH")}, TypeError, "dimension_numbers[0] must have one letter per dimension (3, the ndim of lhs and rhs); got 'NCHW'", True),
    ("dimension_numbers_letters", F_, (X3, W3, (1,), "VALID"), {"dimension_numbers": ("NXH", "OIH", "NCH")}, TypeError, "dimension_numbers[0] must contain the letters 'N' and 'C' exactly once; got 'NXH'", True),
    ("dimension_numbers_repeated", F_, (X3, W3, (1,), "VALID"), {"dimension_numbers": ("NCH", "OII", "NCH")}, TypeError, "dimension_numbers[1] must contain the letters 'O' and 'I' exactly once; got 'OII'", True),
    ("dimension_numbers_spatial", F_, (X3, W3, (1,), "VALID"), {"dimension_numbers": ("NCH", "OIW", "NCH")}, TypeError, "must name the same spatial letters in all three specs; got ('NCH', 'OIW', 'NCH')", True),
    ("dimension_numbers_not_permutation", F_, (X3, W3, (1,), "VALID"), {"dimension_numbers": lax.ConvDimensionNumbers((0, 1, 1), (0, 1, 2), (0, 1, 2))}, ValueError, "dimension_numbers.lhs_spec must be a permutation of the 3 axes 0 … 2; got (0, 1, 1)", False),
    ("preferred_not_dtype", F_, (X3, W3, (1,), "VALID"), {"preferred_element_type": "float99"}, TypeError, "preferred_element_type must be None or a dtype; got 'float99'", True),
    ("preferred_narrower", F_, (X3, W3, (1,), "VALID"), {"preferred_element_type": np.float32}, TypeError, "preferred_element_type=float32 must not be narrower than the inputs' dtype float64", True),
    ("preferred_float_to_int", F_, (X3, W3, (1,), "VALID"), {"preferred_element_type": np.int64}, TypeError, "preferred_element_type=int64 is incompatible with the inputs' dtype float64", True),
    ("preferred_signedness", F_, (X3.astype(np.int8), W3.astype(np.int8), (1,), "VALID"), {"preferred_element_type": np.uint16}, TypeError, "preferred_element_type=uint16 must be signed like the inputs' dtype int8", True),
    ("precision_bad_type", F_, (X3, W3, (1,), "VALID"), {"precision": 5}, TypeError, "precision must be None, one of", True),
    ("precision_bad_string", F_, (X3, W3, (1,), "VALID"), {"precision": "ultra"}, TypeError, "got 'ultra'", True),
    ("backward_g_shape", lax.conv_general_dilated_backward, (np.ones((2, 6, 3)), X3, W3, (1,), "VALID"), {}, ValueError, "conv_general_dilated_backward: g.shape (2, 6, 3) must equal the forward output shape (2, 6, 4)", False),
    ("transpose_strides", T_, (np.ones((1, 4, 2)), np.ones((3, 2, 2)), (1, 1), "VALID"), {}, ValueError, "strides must have one entry per spatial dimension (1); got (1, 1) with 2 entries", True),
    ("transpose_string_padding_strided", T_, (np.ones((1, 4, 2)), np.ones((3, 2, 2)), (2,), "SAME_LOWER"), {}, ValueError, "padding must be 'SAME', 'VALID' or (low, high) pairs with strides (2,); got 'SAME_LOWER'", True),
    ("transpose_consistent_bad_string", T_, (np.ones((1, 4, 2)), np.ones((3, 2, 2)), (2,), "FULL"), {"use_consistent_padding": True}, ValueError, "with use_consistent_padding=True; got 'FULL'", True),
    ("transpose_kernel_not_bool", T_, (np.ones((1, 4, 2)), np.ones((3, 2, 2)), (2,), "VALID"), {"transpose_kernel": "yes"}, TypeError, "transpose_kernel must be a bool; got 'yes'", False),
    ("transpose_consistent_not_bool", T_, (np.ones((1, 4, 2)), np.ones((3, 2, 2)), (2,), "VALID"), {"use_consistent_padding": 1}, TypeError, "use_consistent_padding must be a bool; got 1", False),
    ("conv_padding_string", lax.conv, (X3, W3, (1,), "FULL"), {}, ValueError, "conv: padding must be 'SAME', 'SAME_LOWER', 'VALID' or a sequence of (low, high) pairs; got the unknown string 'FULL'", False),
    ("general_padding_lhs_dilation", lax.conv_with_general_padding, (X3, W3, (1,), ((0, 0),), (0,), None), {}, ValueError, "lhs_dilation[0] must be >= 1; got 0", False),
    ("transpose_no_default_layout", T_, (np.ones((1,) * 6), np.ones((1,) * 6), (1,) * 4, "VALID"), {}, ValueError, "dimension_numbers has no default for 6-dimensional lhs and rhs", True),
    ("transpose_features", T_, (np.ones((1, 4, 3)), np.ones((3, 2, 2)), (2,), "VALID"), {}, ValueError, "must equal the rhs input feature dimension (rhs.shape[1] = 2)", True),
    ("transpose_backward_g_shape", lax.conv_transpose_backward, (np.ones((1, 4, 3)), np.ones((1, 4, 2)), np.ones((3, 2, 2)), (2,), "VALID"), {}, ValueError, "conv_transpose_backward: g.shape (1, 4, 3) must equal the forward output shape (1, 9, 2)", False),
    ("padtype_unknown", lax.padtype_to_pads, ((5,), (3,), (1,), "FULL"), {}, ValueError, "got the unknown string 'FULL'", True),
    ("padtype_strides", lax.padtype_to_pads, ((5,), (3,), (0,), "SAME"), {}, ValueError, "window_strides[0] must be >= 1; got 0", False),
    ("dimension_numbers_shapes", lax.conv_dimension_numbers, ((1, 2, 3), (1, 2), None), {}, TypeError, "lhs and rhs must have the same number of dimensions; got shapes (1, 2, 3) and (1, 2)", True),
    ("dimension_numbers_shape_type", lax.conv_dimension_numbers, (5, (1, 2), None), {}, TypeError, "lhs_shape must be a sequence of ints; got 5", True),
]


@pytest.mark.parametrize(("fn", "args", "kwargs", "exc", "fragment"), [e[1:6] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_errors_name_the_argument_and_value(fn: Any, args: tuple[Any, ...], kwargs: dict[str, Any], exc: type,
                                             fragment: str) -> None:
    with pytest.raises(exc) as info:
        fn(*args, **kwargs)
    assert fragment in str(info.value)


def test_errors_come_before_any_work(monkeypatch: pytest.MonkeyPatch) -> None:
    """A rejected call never reaches the core."""
    import convgrad._batch_groups as batch_groups
    import convgrad._conv as core
    import convgrad._transpose as transpose

    def boom(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("the core was called")

    for module, name in ((core, "conv"), (core, "conv_backward"), (transpose, "conv_transpose"),
                         (transpose, "conv_transpose_backward"), (batch_groups, "conv_batch_grouped"),
                         (batch_groups, "conv_batch_grouped_backward")):
        monkeypatch.setattr(module, name, boom)
    for _, fn, args, kwargs, exc, _, _ in ERRORS:
        with pytest.raises(exc):
            fn(*args, **kwargs)


_JAX_NAMES = {lax.conv_general_dilated: "conv_general_dilated", lax.conv_transpose: "conv_transpose",
              lax.padtype_to_pads: "padtype_to_pads", lax.conv_dimension_numbers: "conv_dimension_numbers"}


@needs_jax
def test_jax_rejects_the_same_calls() -> None:
    """Every call rejected above that JAX defines as an error is rejected by JAX too (one batched request)."""
    cases, ids = [], []
    for name, fn, args, kwargs, _, _, jax_rejects in ERRORS:
        if not jax_rejects or fn not in _JAX_NAMES:
            continue
        if fn in (lax.padtype_to_pads, lax.conv_dimension_numbers):
            cases.append({"fn": _JAX_NAMES[fn], "args": args})
        else:
            kw = dict(kwargs)
            if fn is lax.conv_general_dilated:
                kw.update(window_strides=args[2], padding=args[3])
            else:
                kw.update(strides=args[2], padding=args[3])
            cases.append({"op": _JAX_NAMES[fn], "lhs": args[0], "rhs": args[1], "g": None, "kwargs": kw})
        ids.append(name)
    answers = shared_worker().run(cases)
    accepted = [i for i, a in zip(ids, answers) if a is not ABORTED and a[0] == "ok"]
    assert not accepted, f"JAX accepts calls convgrad.lax rejects: {accepted}"
