"""convgrad.testing: correct implementations pass in every convention; every catalogued mistake is caught,
shrunk and named; the implementation's misbehaviour never crashes the kit."""

from __future__ import annotations

import subprocess
import sys
import time
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import convgrad as cg
from convgrad import testing
from convgrad._geometry import Geometry, conv_geometry
from convgrad._mistakes import NotApplicable
from convgrad.testing import MISTAKES, ConvConfig

EXAMPLES = 100

# ----------------------------------------------------------------------------- hand-written recipes
# Implementations of the gradients the way people write them by hand: zero insertion, padding, a flipped
# kernel with swapped channels, batch and channels exchanged. Each flag plants one catalogued mistake.


def _geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], kw: dict[str, Any]) -> Geometry:
    return conv_geometry(x_shape, w_shape, **kw)


def _crop(a: np.ndarray, sizes: tuple[int, ...]) -> np.ndarray:
    return a[(slice(None), slice(None)) + tuple(slice(0, k) for k in sizes)]


def _swap(w: np.ndarray, groups: int) -> np.ndarray:
    a, b = w.shape[:2]
    blocks = w.reshape((groups, a // groups, b) + w.shape[2:]).swapaxes(1, 2)
    return blocks.reshape((groups * b, a // groups) + w.shape[2:])


def input_grad_recipe(g: np.ndarray, w: np.ndarray, geom: Geometry, *, rotate: bool = True, swap: bool = True,
                      full: bool = True, output_padding: bool = True) -> np.ndarray:
    """The full correlation of the zero-inserted, padded g with the rotated, channel-swapped kernel."""
    q = g.shape[2:]
    spread = np.zeros(g.shape[:2] + tuple((n - 1) * s + 1 for n, s in zip(q, geom.stride)))
    spread[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in geom.stride)] = g
    pads = []
    for s, k, st_, dl, lo, hi in zip(geom.in_size, geom.kernel, geom.stride, geom.dilation, geom.pad_lo, geom.pad_hi):
        a = (s + lo + hi - dl * (k - 1) - 1) % st_ if output_padding else 0
        before = dl * (k - 1) - lo if full else lo
        after = (dl * (k - 1) - hi if full else hi) + a
        pads.append((before, after))
    for axis, (before, after) in enumerate(pads, start=2):  # negative padding crops
        spread = np.pad(spread, [(0, 0)] * axis + [(max(before, 0), max(after, 0))] + [(0, 0)] * (spread.ndim - axis - 1))
        stop = spread.shape[axis] - max(-after, 0)
        spread = spread[(slice(None),) * axis + (slice(max(-before, 0), stop),)]
    kernel = _swap(w, geom.groups) if swap else w
    if rotate:
        kernel = np.flip(kernel, axis=tuple(range(2, w.ndim)))
    return cg.conv(spread, np.ascontiguousarray(kernel), dilation=geom.dilation, groups=geom.groups)


def weight_grad_recipe(g: np.ndarray, x: np.ndarray, geom: Geometry, *, contract_batch: bool = True,
                       exchange: bool = True) -> np.ndarray:
    """conv(x.swapaxes(0, 1), g.swapaxes(0, 1), stride=δ, dilation=s).swapaxes(0, 1) per group, cropped to K."""
    pads = tuple(zip(geom.pad_lo, geom.pad_hi))
    stride, dilation = (geom.dilation, geom.stride) if exchange else (geom.stride, geom.dilation)
    if not contract_batch:
        return _crop(cg.conv(x, g, stride=stride, dilation=dilation, padding=pads), geom.kernel)
    cin, cout = geom.c_in // geom.groups, geom.c_out // geom.groups
    parts = []
    for group in range(geom.groups):
        xg = x[:, group * cin:(group + 1) * cin].swapaxes(0, 1)
        gg = g[:, group * cout:(group + 1) * cout].swapaxes(0, 1)
        parts.append(_crop(cg.conv(xg, gg, stride=stride, dilation=dilation, padding=pads).swapaxes(0, 1), geom.kernel))
    return np.concatenate(parts, axis=0)


def recipe_backward(*, rotate: bool = True, swap: bool = True, full: bool = True, output_padding: bool = True,
                    contract_batch: bool = True, exchange: bool = True, one_sample: str = "", rotate_gw: bool = False,
                    pull_back_y: bool = False, bias: str = "sum") -> Any:
    """A torch-convention backward built from the hand-written recipes, with the mistakes the flags plant."""

    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> tuple[np.ndarray, ...]:
        geom = _geometry(x.shape, w.shape, kw)
        if pull_back_y:
            g = cg.conv(x, w, **kw)
        gx = input_grad_recipe(g, w, geom, rotate=rotate, swap=swap, full=full, output_padding=output_padding)
        if one_sample == "first":
            gw = weight_grad_recipe(g[:1], x[:1], geom, contract_batch=contract_batch, exchange=exchange)
        elif one_sample == "last":
            for n in range(x.shape[0]):  # '=' where '+=' was meant
                gw = weight_grad_recipe(g[n:n + 1], x[n:n + 1], geom)
        else:
            gw = weight_grad_recipe(g, x, geom, contract_batch=contract_batch, exchange=exchange)
        if rotate_gw:
            gw = np.flip(gw, axis=tuple(range(2, gw.ndim)))
        spatial = tuple(range(2, g.ndim))
        gb = {"sum": g.sum(axis=(0, *spatial)), "per sample": g.sum(axis=spatial),
              "mean": g.sum(axis=spatial).mean(axis=0), "first": g[0].sum(axis=tuple(range(1, g.ndim - 1)))}[bias]
        return gx, gw, gb

    return backward


def convgrad_forward(x: np.ndarray, w: np.ndarray, b: Any, **kw: Any) -> np.ndarray:
    return cg.conv(x, w, b, **kw)


def convgrad_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> Any:
    return cg.conv_backward(g, x, w, **kw)


# ----------------------------------------------------------------------------- PyTorch autograd


def _torch_pad_list(lo: tuple[int, ...], hi: tuple[int, ...]) -> list[int]:
    out: list[int] = []
    for a, b in zip(reversed(lo), reversed(hi)):
        out += [a, b]
    return out


def torch_forward_and_grads(x: np.ndarray, w: np.ndarray, b: Any, g: Any, kw: dict[str, Any]) -> tuple[Any, ...]:
    """y and, when g is given, (gx, gw, gb) from torch.nn.functional and torch.autograd.grad in float64."""
    import torch
    import torch.nn.functional as F

    d = w.ndim - 2
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b if b is not None else np.zeros(w.shape[0]), requires_grad=True)
    mode = kw.get("padding_mode", "zeros")
    geom = conv_geometry(x.shape, w.shape, **kw)
    conv = (F.conv1d, F.conv2d, F.conv3d)[d - 1]
    if mode != "zeros" or geom.pad_lo != geom.pad_hi:
        padded = F.pad(xt, _torch_pad_list(geom.pad_lo, geom.pad_hi),
                       mode="constant" if mode == "zeros" else mode)
        padding: Any = 0
    else:
        padded, padding = xt, geom.pad_lo
    yt = conv(padded, wt, bt, stride=geom.stride, padding=padding, dilation=geom.dilation, groups=geom.groups)
    if g is None:
        return (yt.detach(),)
    return torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g))


def torch_forward(x: np.ndarray, w: np.ndarray, b: Any, **kw: Any) -> Any:
    return torch_forward_and_grads(x, w, b, None, kw)[0]  # a torch tensor: the kit converts it


def torch_backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> Any:
    return torch_forward_and_grads(x, w, None, g, kw)


def torch_transpose_forward_and_grads(x: np.ndarray, w: np.ndarray, b: Any, g: Any, kw: dict[str, Any]) -> Any:
    import torch
    import torch.nn.functional as F

    d = w.ndim - 2
    cfg = ConvConfig.from_shapes(x.shape, w.shape, bias=b is not None, transposed=True, **kw)
    xt = torch.tensor(x, requires_grad=True)
    wt = torch.tensor(w, requires_grad=True)
    bt = torch.tensor(b if b is not None else np.zeros(cfg.c_out), requires_grad=True)
    conv = (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[d - 1]
    full = conv(xt, wt, bt, stride=cfg.stride_t, padding=0, output_padding=cfg.output_padding_t,
                dilation=cfg.dilation_t, groups=cfg.groups)
    yt = full[(slice(None), slice(None)) + tuple(slice(lo, n - hi) for lo, hi, n in
                                                 zip(cfg.lo, cfg.hi, full.shape[2:]))]
    if g is None:
        return yt.detach().numpy()
    return tuple(t.numpy() for t in torch.autograd.grad(yt, (xt, wt, bt), torch.tensor(g)))


# ----------------------------------------------------------------------------- TensorFlow-convention adapters


def _tf_to_torch_kw(x_shape: tuple[int, ...], k: tuple[int, ...], strides: Any, padding: Any,
                    dilations: Any) -> dict[str, Any]:
    """Read TensorFlow's keywords back as PyTorch's (SAME by TensorFlow's own rule, for any stride)."""
    s, dl = tuple(strides[1:-1]), tuple(dilations[1:-1])
    if padding == "VALID":
        pads: Any = 0
    elif padding == "SAME":
        pads = []
        for size, kk, st_, d_ in zip(x_shape, k, s, dl):
            total = max((-(-size // st_) - 1) * st_ + d_ * (kk - 1) + 1 - size, 0)
            pads.append((total // 2, total - total // 2))
        pads = tuple(pads)
    else:
        pads = tuple(tuple(p) for p in padding[1:-1])
    return {"stride": s, "padding": pads, "dilation": dl}


def tf_adapter(torch_forward_fn: Any, torch_backward_fn: Any) -> tuple[Any, Any]:
    """Wrap NCHW/OIHW implementations as NHWC/HWIO ones taking strides, padding and dilations."""

    def to_nchw(a: np.ndarray) -> np.ndarray:
        return np.moveaxis(a, -1, 1)

    def to_oihw(f: np.ndarray) -> np.ndarray:
        d = f.ndim - 2
        return f.transpose((d + 1, d, *range(d)))

    def kw_for(x: np.ndarray, f: np.ndarray, strides: Any, padding: Any, dilations: Any) -> dict[str, Any]:
        kw = _tf_to_torch_kw(x.shape[1:-1], f.shape[:-2], strides, padding, dilations)
        kw["groups"] = x.shape[-1] // f.shape[-2]
        return kw

    def forward(x: np.ndarray, f: np.ndarray, b: Any, *, strides: Any, padding: Any, dilations: Any) -> Any:
        y = np.asarray(torch_forward_fn(to_nchw(x), to_oihw(f), b, **kw_for(x, f, strides, padding, dilations)))
        return np.moveaxis(y, 1, -1)

    def backward(g: np.ndarray, x: np.ndarray, f: np.ndarray, *, strides: Any, padding: Any, dilations: Any) -> Any:
        gx, gw, gb = (np.asarray(a) for a in torch_backward_fn(to_nchw(g), to_nchw(x), to_oihw(f),
                                                             **kw_for(x, f, strides, padding, dilations)))
        d = gw.ndim - 2
        return np.moveaxis(gx, 1, -1), gw.transpose((*range(2, d + 2), 1, 0)), gb

    return forward, backward


# ----------------------------------------------------------------------------- correct implementations pass


def test_convgrad_passes_in_the_torch_convention() -> None:
    report = testing.check_implementation(convgrad_forward, convgrad_backward)
    assert report.passed, report
    assert report.functions == ("forward", "input_grad", "weight_grad", "bias_grad")
    assert all(n == 200 for n in report.examples.values())
    for feature in ("batch>1", "groups>1", "stride>1", "stride remainder", "dilation>1", "asymmetric padding",
                    "even kernel", "1-d", "2-d", "3-d", "bias"):
        assert report.coverage[feature].examples > 0
        assert report.coverage[feature].passed == report.coverage[feature].examples
    assert "PASSED" in str(report)
    report.raise_on_failure()


def test_convgrad_passes_on_padding_modes_unbatched_and_float32() -> None:
    space = testing.configs(padding_modes=testing.MODES, unbatched=True, dtype=("float64", "float32"))
    report = testing.check_implementation(convgrad_forward, convgrad_backward, configs=space,
                                          max_examples=EXAMPLES, rtol=1e-4, atol=1e-5)
    assert report.passed, report
    assert {"padding_mode=reflect", "padding_mode=circular", "unbatched"} <= set(report.coverage)


def test_hand_written_recipes_pass() -> None:
    report = testing.check_implementation(backward=recipe_backward(), max_examples=EXAMPLES)
    assert report.passed, report


def test_torch_autograd_passes_in_the_torch_convention() -> None:
    pytest.importorskip("torch")
    space = testing.configs(padding_modes=testing.MODES)
    report = testing.check_implementation(torch_forward, torch_backward, configs=space, max_examples=EXAMPLES)
    assert report.passed, report


def test_transposed_convolutions_pass() -> None:
    space = testing.configs(transposed=True)

    def forward(x: np.ndarray, w: np.ndarray, b: Any, **kw: Any) -> np.ndarray:
        return cg.conv_transpose(x, w, b, **kw)

    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> Any:
        return cg.conv_transpose_backward(g, x, w, **kw)

    report = testing.check_implementation(forward, backward, configs=space, max_examples=EXAMPLES)
    assert report.passed, report
    assert report.coverage["output_padding>0"].examples > 0
    pytest.importorskip("torch")
    report = testing.check_implementation(
        lambda x, w, b, **kw: torch_transpose_forward_and_grads(x, w, b, None, kw),
        lambda g, x, w, **kw: torch_transpose_forward_and_grads(x, w, None, g, kw),
        configs=space, max_examples=EXAMPLES)
    assert report.passed, report


def test_tensorflow_convention_convgrad_and_torch_pass() -> None:
    forward, backward = tf_adapter(convgrad_forward, convgrad_backward)
    report = testing.check_implementation(forward, backward, convention="tensorflow", max_examples=EXAMPLES)
    assert report.passed, report
    pytest.importorskip("torch")
    forward, backward = tf_adapter(torch_forward, lambda g, x, w, **kw: [t.numpy() for t in torch_backward(g, x, w, **kw)])
    report = testing.check_implementation(forward, backward, convention="tensorflow", max_examples=EXAMPLES)
    assert report.passed, report


def test_tensorflow_convention_writes_same_and_strides_as_tensorflow_does() -> None:
    conv = testing.get_convention("tensorflow")
    config = ConvConfig.from_shapes((1, 3, 7, 6), (4, 3, 3, 2), stride=2, padding=((1, 1), (0, 0)))
    assert conv.keywords(config) == {"strides": [1, 2, 2, 1], "padding": "SAME", "dilations": [1, 1, 1, 1]}
    x = np.zeros(config.input_shape)
    assert conv.to_layout(x, "x", config).shape == (1, 7, 6, 3)
    assert conv.shape(config.weight_shape, "w", config) == (3, 2, 3, 4)
    asym = config.replace(padding=((2, 0), (1, 1)))
    assert conv.keywords(asym)["padding"] == [[0, 0], [2, 0], [1, 1], [0, 0]]
    assert "TensorFlow pads with zeros only" in (conv.problem(config.replace(padding_mode="reflect")) or "")
    assert "strides=[1, 2, 2, 1]" in conv.call_text(config, "forward")


def test_scipy_convention_passes_with_scipy_and_convgrad_signal() -> None:
    signal = pytest.importorskip("scipy.signal")
    from convgrad import signal as cgs

    def forward(x: np.ndarray, w: np.ndarray, *, mode: str) -> np.ndarray:
        return signal.correlate(x, w, mode=mode)

    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, *, mode: str) -> Any:
        grads = cgs.correlate_backward(g, x, w, mode=mode)
        return grads[0], grads[1]

    report = testing.check_implementation(forward, backward, convention="scipy", max_examples=EXAMPLES)
    assert report.passed, report
    assert report.functions == ("forward", "input_grad", "weight_grad")
    assert "bias_grad" in report.not_checked
    report = testing.check_implementation(
        lambda x, w, *, mode: cg.conv(x[None, None], w[None, None], padding=_scipy_pads(w, mode))[0, 0],
        convention="scipy", max_examples=EXAMPLES)
    assert report.passed, report


def _scipy_pads(w: np.ndarray, mode: str) -> Any:
    if mode == "valid":
        return 0
    if mode == "full":
        return tuple((k - 1, k - 1) for k in w.shape)
    return tuple((k - 1 - (k - 1) // 2, (k - 1) // 2) for k in w.shape)


# ----------------------------------------------------------------------------- every mistake: caught, shrunk, named

Planted = tuple[Any, Any, tuple[str, ...]]


def _flipped_forward(x: np.ndarray, w: np.ndarray, b: Any, **kw: Any) -> np.ndarray:
    return cg.conv(x, np.flip(w, axis=tuple(range(2, w.ndim))), b, **kw)


PLANTED: dict[str, Planted] = {
    "forward_is_convolution": (_flipped_forward, None, ("forward",)),
    "kernel_not_rotated": (None, recipe_backward(rotate=False), ("input_grad",)),
    "channels_not_swapped": (None, recipe_backward(swap=False), ("input_grad",)),
    "padding_not_full": (None, recipe_backward(full=False), ("input_grad",)),
    "output_padding_missing": (None, recipe_backward(output_padding=False), ("input_grad",)),
    "batch_not_contracted": (None, recipe_backward(contract_batch=False), ("weight_grad",)),
    "weight_grad_one_sample": (None, recipe_backward(one_sample="last"), ("weight_grad",)),
    "stride_dilation_not_exchanged": (None, recipe_backward(exchange=False), ("weight_grad",)),
    "gradients_rotated": (None, recipe_backward(rotate=False, rotate_gw=True), ("input_grad", "weight_grad")),
    "output_used_as_upstream_gradient": (None, recipe_backward(pull_back_y=True),
                                         ("input_grad", "weight_grad", "bias_grad")),
    "bias_not_summed_over_batch": (None, recipe_backward(bias="mean"), ("bias_grad",)),
}


def _minimal(config: ConvConfig) -> None:
    """A shrunk configuration: one spatial dimension, no groups, sizes no larger than a failure needs."""
    assert config.d == 1 and config.groups == 1 and not config.bias, config
    assert config.n <= 2 and config.c_in <= 2 and config.c_out <= 2, config
    assert max(config.kernel) <= 3 and max(config.size) <= 4, config


def test_the_catalogue_has_the_named_mistakes() -> None:
    assert set(PLANTED) == set(MISTAKES)
    for m in MISTAKES.values():
        assert m.title and m.explanation and m.recipe and m.variants
        assert set(m.functions) <= set(testing.FUNCTIONS)


def _named(report: testing.Report, functions: tuple[str, ...], name: str) -> list[testing.Failure]:
    """The failures of the planted functions, each naming the mistake; any other failure is the recipe raising
    where its shapes do not fit (which breaks the whole backward pass)."""
    named = [f for f in report.failures if f.function in functions]
    assert [f.function for f in named] == list(functions), report
    for failure in named:
        assert failure.mistake == name and failure.kind != "error", failure
    for failure in report.failures:
        if failure.function not in functions:
            assert failure.kind == "error" and failure.mistake is None, failure
    return named


@pytest.mark.parametrize("name", list(PLANTED))
def test_every_planted_mistake_is_caught_shrunk_and_named(name: str) -> None:
    forward, backward, functions = PLANTED[name]
    report = testing.check_implementation(forward, backward, max_examples=EXAMPLES)
    assert not report.passed
    for failure in _named(report, functions, name):
        assert failure.checked >= 3
        _minimal(failure.config)
        assert failure.explanation == MISTAKES[name].explanation
        text = str(failure)
        assert name in text and str(failure.config) in text and failure.function in text


def test_shrunk_configurations_and_features_are_the_expected_ones() -> None:
    def failure(name: str, function: str) -> testing.Failure:
        forward, backward, _ = PLANTED[name]
        f = testing.check_implementation(forward, backward, max_examples=EXAMPLES).failure(function)
        assert f is not None
        return f

    f = failure("batch_not_contracted", "weight_grad")
    assert (f.config.n, f.config.c_in, f.config.c_out) == (2, 1, 1)
    assert f.features == ("batch>1",)
    assert f.kind == "shape" and "shape (2, 2, 1) instead of (1, 1, 1)" in f.message
    f = failure("weight_grad_one_sample", "weight_grad")
    assert (f.config.n, f.config.c_in, f.config.c_out) == (2, 1, 1) and f.features == ("batch>1",)
    f = failure("output_padding_missing", "input_grad")
    assert set(f.features) == {"stride>1", "stride remainder"} and f.config.stride_t == (2,)
    f = failure("channels_not_swapped", "input_grad")
    assert (f.config.c_in, f.config.c_out, f.config.groups) == (2, 2, 1) and f.features == ("channels>1",)
    f = failure("forward_is_convolution", "forward")
    assert f.config.kernel == (2,) and "kernel>1" in f.features
    f = failure("stride_dilation_not_exchanged", "weight_grad")
    assert set(f.features) <= {"stride>1", "dilation>1"} and f.features
    f = failure("bias_not_summed_over_batch", "bias_grad")
    assert f.config.n == 2 and f.features == ("batch>1",)


@pytest.mark.parametrize("bias, variant", [("per sample", "shape"), ("first", "value")])
def test_other_variants_of_a_mistake_are_named_too(bias: str, variant: str) -> None:
    report = testing.check_implementation(backward=recipe_backward(bias=bias), max_examples=EXAMPLES)
    f = report.failure("bias_grad")
    assert f is not None and f.mistake == "bias_not_summed_over_batch" and f.kind == variant
    report = testing.check_implementation(backward=recipe_backward(one_sample="first"), max_examples=EXAMPLES)
    f = report.failure("weight_grad")
    assert f is not None and f.mistake == "weight_grad_one_sample"


@pytest.mark.parametrize("name", ["batch_not_contracted", "kernel_not_rotated", "output_padding_missing",
                                  "forward_is_convolution", "bias_not_summed_over_batch"])
def test_planted_mistakes_in_the_tensorflow_convention(name: str) -> None:
    forward, backward, functions = PLANTED[name]
    tf_forward, tf_backward = tf_adapter(forward or convgrad_forward, backward or convgrad_backward)
    report = testing.check_implementation(tf_forward if forward else None, tf_backward if backward else None,
                                          convention="tensorflow", max_examples=EXAMPLES)
    for f in _named(report, functions, name):
        assert f.convention == "tensorflow" and "strides=" in f.call


@pytest.mark.parametrize("name", ["kernel_not_rotated", "padding_not_full", "forward_is_convolution"])
def test_planted_mistakes_in_the_scipy_convention(name: str) -> None:
    signal = pytest.importorskip("scipy.signal")
    from convgrad import signal as cgs

    def forward(x: np.ndarray, w: np.ndarray, *, mode: str) -> np.ndarray:
        return signal.convolve(x, w, mode=mode) if name == "forward_is_convolution" else signal.correlate(x, w, mode)

    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, *, mode: str) -> Any:
        gw = cgs.correlate_backward(g, x, w, mode=mode)[1]
        pads = _scipy_pads(w, mode)
        geom = _geometry((1, 1) + x.shape, (1, 1) + w.shape, {"padding": pads})
        full = name != "padding_not_full"
        planted = input_grad_recipe(g[None, None], w[None, None], geom, rotate=name != "kernel_not_rotated", full=full)
        return planted[0, 0], gw

    report = testing.check_implementation(forward, backward, convention="scipy", max_examples=EXAMPLES)
    function = "forward" if name == "forward_is_convolution" else "input_grad"
    (failure,) = _named(report, (function,), name)
    assert "mode=" in failure.call


def test_planted_mistakes_in_transposed_convolutions() -> None:
    space = testing.configs(transposed=True)

    def forward(x: np.ndarray, w: np.ndarray, b: Any, **kw: Any) -> np.ndarray:
        kw = dict(kw, output_padding=0)
        return cg.conv_transpose(x, w, b, **kw)

    report = testing.check_implementation(forward, configs=space, max_examples=EXAMPLES)
    f = report.failure("forward")
    assert f is not None and f.mistake == "output_padding_missing" and "output_padding>0" in f.features

    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> Any:
        grads = cg.conv_transpose_backward(g, x, w, **kw)
        return grads.input, cg.conv_transpose_backward(g[:1], x[:1], w, **kw).weight, grads.bias

    report = testing.check_implementation(backward=backward, configs=space, max_examples=EXAMPLES)
    f = report.failure("weight_grad")
    assert f is not None and f.mistake == "weight_grad_one_sample" and f.config.n == 2


def test_an_unknown_mistake_is_reported_without_a_name() -> None:
    def forward(x: np.ndarray, w: np.ndarray, b: Any, **kw: Any) -> np.ndarray:
        return cg.conv(x, w, b, **kw) * 1.01

    report = testing.check_implementation(forward, max_examples=EXAMPLES)
    f = report.failure("forward")
    assert f is not None and f.mistake is None and f.kind == "value"
    assert "none of the catalogued mistakes matches" in str(f)


# ----------------------------------------------------------------------------- misbehaviour is a failure, not a crash


def _backward_returning(value: Any) -> Any:
    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> Any:
        return value(g, x, w, kw) if callable(value) else value

    return backward


@pytest.mark.parametrize(
    "result, kind, words",
    [
        (lambda g, x, w, kw: 1 / 0, "error", "raised ZeroDivisionError: division by zero"),
        (None, "error", "returned NoneType; expected (gx, gw) or (gx, gw, gb)"),
        (lambda g, x, w, kw: (None, None), "error", "returned None"),
        (lambda g, x, w, kw: (x, w, None, None), "error", "of length 4"),
        (lambda g, x, w, kw: ("gx", "gw"), "error", "not numbers"),
        (lambda g, x, w, kw: (x[..., :-1] if x.shape[-1] > 1 else x[..., :0], w), "shape", "instead of"),
        (lambda g, x, w, kw: tuple(a.astype(np.float32) for a in cg.conv_backward(g, x, w, **kw)), "dtype",
         "dtype float32 instead of float64"),
        (lambda g, x, w, kw: tuple(np.full_like(a, np.nan) for a in cg.conv_backward(g, x, w, **kw)), "value",
         "NaN or infinite"),
        (lambda g, x, w, kw: tuple(a.tolist() for a in cg.conv_backward(g, x, w, **kw)), None, ""),
    ],
)
def test_misbehaviour_is_recorded_never_raised(result: Any, kind: Any, words: str) -> None:
    report = testing.check_implementation(backward=_backward_returning(result), max_examples=30)
    if kind is None:
        assert report.passed, report
        return
    f = report.failure("input_grad")
    assert f is not None and f.kind == kind and words in f.message, report
    assert str(report)


def test_torch_tensors_and_exceptions_on_some_configs() -> None:
    torch = pytest.importorskip("torch")

    def forward(x: np.ndarray, w: np.ndarray, b: Any, **kw: Any) -> Any:
        if kw["groups"] > 1:
            raise NotImplementedError("groups")
        return torch.tensor(cg.conv(x, w, b, **kw), requires_grad=True)  # a tensor that needs grad

    report = testing.check_implementation(forward, max_examples=EXAMPLES)
    f = report.failure("forward")
    assert f is not None and f.kind == "error" and f.message == "forward raised NotImplementedError: groups"
    assert f.config.groups == 2 and f.config.c_in == 2 and f.config.c_out == 2
    assert f.features == ("groups>1",)
    report = testing.check_implementation(forward, configs=testing.configs(groups=False), max_examples=EXAMPLES)
    assert report.passed, report


def test_a_wrong_value_is_preferred_to_an_exception_and_both_are_reported() -> None:
    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: Any) -> Any:
        if kw["groups"] > 1:
            raise NotImplementedError("groups")
        return recipe_backward(contract_batch=False)(g, x, w, **kw)

    report = testing.check_implementation(backward=backward, max_examples=EXAMPLES)
    f = report.failure("weight_grad")
    assert f is not None and f.mistake == "batch_not_contracted"
    assert "raised NotImplementedError: groups" in f.note


def test_backward_without_a_bias_gradient_leaves_it_unchecked() -> None:
    report = testing.check_implementation(backward=lambda g, x, w, **kw: cg.conv_backward(g, x, w, **kw)[:2],
                                          max_examples=20)
    assert report.passed and "bias_grad" in report.not_checked
    assert report.functions == ("input_grad", "weight_grad")


# ----------------------------------------------------------------------------- the report


def test_the_report_is_readable() -> None:
    forward, backward, _ = PLANTED["batch_not_contracted"]
    report = testing.check_implementation(forward, backward, max_examples=EXAMPLES)
    text = str(report)
    for words in ("FAILED", "weight_grad", "conv(x: (2, 1, 1), w: (1, 1, 1))", "batch>1", "passes without batch>1",
                  "batch_not_contracted", "The weight gradient sums over the batch", "correct recipe",
                  "gw = cg.conv(x.swapaxes(0, 1), g.swapaxes(0, 1))", "reproduce", "Coverage",
                  "backward(g: (2, 1, 1), x: (2, 1, 1), w: (1, 1, 1), stride=1, padding=0, dilation=1, groups=1)"):
        assert words in text, words
    with pytest.raises(AssertionError, match="batch_not_contracted"):
        report.raise_on_failure()
    f = report.failures[0]
    config = eval(repr(f.config), {"ConvConfig": ConvConfig})
    assert config == f.config


def test_the_same_seed_gives_the_same_report_and_a_random_seed_is_recorded() -> None:
    forward, backward, _ = PLANTED["stride_dilation_not_exchanged"]
    a = testing.check_implementation(forward, backward, max_examples=EXAMPLES, seed=3)
    b = testing.check_implementation(forward, backward, max_examples=EXAMPLES, seed=3)
    assert [(f.config, f.first_config, f.message) for f in a.failures] == \
           [(f.config, f.first_config, f.message) for f in b.failures]
    c = testing.check_implementation(forward, backward, max_examples=20, seed=None)
    assert 0 <= c.seed < 2**32


def test_check_implementation_refuses_bad_arguments() -> None:
    with pytest.raises(ValueError, match="give forward, backward or both"):
        testing.check_implementation()
    with pytest.raises(ValueError, match="unknown convention 'mxnet'; known: jax, onnx, scipy, tensorflow, torch"):
        testing.check_implementation(convgrad_forward, convention="mxnet")
    with pytest.raises(TypeError, match="forward must be callable"):
        testing.check_implementation(3)
    for bad in ({"max_examples": 0}, {"seed": -1}, {"rtol": -1.0}, {"atol": float("nan")}):
        with pytest.raises(ValueError):
            testing.check_implementation(convgrad_forward, **bad)
    with pytest.raises(TypeError, match="Hypothesis strategy"):
        testing.check_implementation(convgrad_forward, configs=[1, 2])
    with pytest.raises(ValueError, match="can express"):
        testing.check_implementation(convgrad_forward, convention="scipy",
                                     configs=testing.configs(groups=False).map(lambda c: c.replace(n=2)),
                                     max_examples=5)


def test_without_hypothesis_one_line_names_the_extra() -> None:
    code = (
        "import sys; sys.modules['hypothesis'] = None\n"
        "import convgrad.testing as t\n"
        "for call in (lambda: t.configs(), lambda: t.check_implementation(print)):\n"
        "    try:\n"
        "        call()\n"
        "    except ImportError as e:\n"
        "        print(repr(str(e)), e.__cause__, e.__suppress_context__)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.splitlines()
    expected = "\"convgrad.testing needs Hypothesis: pip install 'convgrad[testing]'\" None True"
    assert out == [expected, expected]


def test_two_hundred_examples_of_a_numpy_implementation_take_under_ten_seconds() -> None:
    start = time.perf_counter()
    report = testing.check_implementation(convgrad_forward, convgrad_backward, max_examples=200)
    elapsed = time.perf_counter() - start
    assert report.passed
    assert elapsed < 10, f"{elapsed:.1f} s"


# ----------------------------------------------------------------------------- configurations


@settings(max_examples=60)
@given(testing.configs(max_batch=2, max_channels=3, max_size=5, padding=testing.PADDING_FORMS,
                       padding_modes=testing.MODES, unbatched=True))
def test_configs_are_valid_and_within_their_bounds(config: ConvConfig) -> None:
    config.validate()
    assert config.n <= 2 and config.c_in <= 3 and config.c_out <= 3 and max(config.size) <= 5
    x, w, b = config.arrays(1)
    y = cg.conv(x, w, b, **config.kwargs())
    assert y.shape == config.output_shape == config.grad_output(1).shape


@settings(max_examples=40)
@given(testing.configs(transposed=True, max_size=4))
def test_transposed_configs_are_valid(config: ConvConfig) -> None:
    x, w, b = config.arrays(0)
    assert cg.conv_transpose(x, w, b, **config.kwargs()).shape == config.output_shape
    assert "transposed" in config.features()


@settings(max_examples=30)
@given(testing.configs(ndim=2, groups=False, stride=False, dilation=False, padding="valid", bias=False))
def test_narrowed_configs_stay_narrow(config: ConvConfig) -> None:
    assert config.d == 2 and config.groups == 1 and config.stride_t == (1, 1) and config.dilation_t == (1, 1)
    assert config.padding == "valid" and not config.bias


def test_configs_refuse_bad_bounds() -> None:
    for bad in ({"ndim": 0}, {"ndim": ()}, {"max_size": 0}, {"padding": "full"}, {"padding_modes": "mirror"},
                {"dtype": "int8"}, {"transposed": True, "padding_modes": ("reflect",)},
                {"transposed": True, "padding": ("same",)}):
        with pytest.raises(ValueError):
            testing.configs(**bad)


def test_conv_config_prints_as_its_call_and_rebuilds_from_its_repr() -> None:
    config = ConvConfig.from_shapes((2, 4, 7, 6), (6, 2, 3, 2), groups=2, stride=(2, 1), padding=((1, 0), (0, 2)),
                                    bias=False)
    assert str(config) == "conv(x: (2, 4, 7, 6), w: (6, 2, 3, 2), stride=(2, 1), padding=((1, 0), (0, 2)), groups=2)"
    assert eval(repr(config), {"ConvConfig": ConvConfig}) == config
    assert config.lo == (1, 0) and config.hi == (0, 2) and config.output_shape == (2, 6, 3, 7)
    x1, w1, b1 = config.arrays(5)
    x2, w2, _ = config.arrays(np.random.default_rng(5))
    assert b1 is None and np.array_equal(x1, x2) and np.array_equal(w1, w2)
    t = ConvConfig.from_shapes((1, 2, 3), (2, 3, 2), transposed=True, stride=2, output_padding=1, groups=1)
    assert str(t) == "conv_transpose(x: (1, 2, 3), w: (2, 3, 2), b: (3,), stride=2, output_padding=1)"
    assert t.output_shape == (1, 3, 7)
    with pytest.raises(ValueError, match="groups=3 does not divide"):
        ConvConfig.from_shapes((1, 4, 5), (3, 1, 3), groups=3)
    with pytest.raises(ValueError, match="means lo="):
        ConvConfig(1, 1, True, 1, 1, 1, (3,), (5,), 1, 1, "same", (0,), (0,))


@settings(max_examples=30)
@given(testing.configs(max_size=5), st.sampled_from(list(MISTAKES)))
def test_every_mistake_differs_from_the_right_result_somewhere_or_is_not_applicable(config: ConvConfig,
                                                                                   name: str) -> None:
    """The catalogue computes something for the functions it names, with the layout of the arrays it is given."""
    mistake = MISTAKES[name]
    x, w, b = config.arrays(0)
    g = config.grad_output(0)
    right = testing.expected_results(config, x, w, b, g)
    for variant in range(len(mistake.variants)):
        try:
            wrong = mistake.wrong(config, x, w, b, g, variant)
        except NotApplicable:
            continue
        assert set(wrong) == set(mistake.functions_for(config))
        for function, value in wrong.items():
            assert value.ndim == right[function].ndim or function == "bias_grad"


def test_explain_mistake() -> None:
    text = testing.explain_mistake("padding_not_full")
    assert text.startswith("padding_not_full: ") and "Correct: " in text
    with pytest.raises(ValueError, match="unknown mistake"):
        testing.explain_mistake("nope")


def test_compare() -> None:
    e = np.arange(6.0).reshape(2, 3)
    assert testing.compare(e.copy(), e).passed
    c = testing.compare(e + np.eye(2, 3) * 1e-3, e)
    assert c.kind == "value" and c.index == (0, 0) and c.max_error == pytest.approx(1e-3)
    assert testing.compare(e.astype(np.int64), e).kind == "dtype"
    assert testing.compare(object(), e).kind == "error"
    assert testing.compare(e[:1], e).message == "shape (1, 3) instead of (2, 3)"


# ----------------------------------------------------------------------------- the JAX and ONNX conventions


def test_convgrad_lax_passes_in_the_jax_convention() -> None:
    from convgrad import lax

    report = testing.check_implementation(
        forward=lambda x, w, **kw: lax.conv_general_dilated(x, w, **kw),
        backward=lambda g, x, w, **kw: tuple(lax.conv_general_dilated_backward(g, x, w, **kw)),
        convention="jax", max_examples=60, seed=1)
    assert report.passed, str(report)


def test_convgrad_onnx_passes_in_the_onnx_convention() -> None:
    from convgrad import onnx

    report = testing.check_implementation(
        forward=lambda x, w, b, **kw: onnx.conv(x, w, b, **kw),
        backward=lambda g, x, w, **kw: tuple(onnx.conv_backward(g, x, w, **kw)),
        convention="onnx", max_examples=60, seed=2)
    assert report.passed, str(report)


def test_a_planted_mistake_is_named_in_the_jax_convention() -> None:
    """The weight gradient of one sample only, written with convgrad.lax: caught, shrunk to two samples."""
    from convgrad import lax

    def backward(g: np.ndarray, x: np.ndarray, w: np.ndarray, **kw: object) -> tuple[np.ndarray, np.ndarray]:
        grads = lax.conv_general_dilated_backward(g, x, w, **kw)  # type: ignore[arg-type]
        one = lax.conv_general_dilated_backward(g[:1], x[:1], w, **kw)  # type: ignore[arg-type]
        return grads.lhs, one.rhs

    report = testing.check_implementation(backward=backward, convention="jax", max_examples=100, seed=3)
    failure = report.failure("weight_grad")
    assert failure is not None and failure.mistake == "weight_grad_one_sample"
    assert failure.config.n == 2
