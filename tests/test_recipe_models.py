"""The TensorFlow and JAX recipe code, run against small NumPy models of the few APIs it calls.

TensorFlow and JAX are not installed here, so ``explain`` marks their code "not run". These models
implement the documented semantics of exactly the functions the code uses (channels-last
``tf.nn.convolution`` with ``[*K, in, out]`` filters; ``lax.pad`` with negative and interior padding;
``lax.conv_general_dilated`` with its default NC*/OI* layouts), so the index arithmetic of the generated
code — pad and crop amounts, permutations, group slices, zero insertion — is executed and compared with
PyTorch's autograd. They check convgrad's code, not the frameworks.
"""

from __future__ import annotations

import types
from typing import Any

import numpy as np
from hypothesis import given

import convgrad as cg
from convgrad._explain import run_recipe
from strategies import Config, conv_configs
from torch_ref import torch_conv
from trust_cases import TConfig, torch_conv_transpose_grads, transposed_configs

# ----------------------------------------------------------------------------- a model of jax / jax.numpy / lax


class JArray(np.ndarray):
    """An ndarray with JAX's functional ``a.at[idx].add(v)``."""

    @property
    def at(self) -> Any:
        base = self

        class _Index:
            def __getitem__(self, idx: Any) -> Any:
                class _Update:
                    def add(self, v: Any) -> JArray:
                        out = np.array(base)
                        np.add.at(out, idx, np.asarray(v))
                        return out.view(JArray)

                return _Update()

        return _Index()


def _j(a: Any) -> JArray:
    return np.asarray(a).view(JArray)


def _lax_pad(a: Any, value: Any, config: list[tuple[int, int, int]]) -> JArray:
    out = np.asarray(a)
    for axis, (lo, hi, interior) in enumerate(config):
        if interior:
            n = out.shape[axis]
            shape = list(out.shape)
            shape[axis] = (n - 1) * (interior + 1) + 1 if n else 0
            spread = np.full(shape, value, dtype=out.dtype)
            index: list[Any] = [slice(None)] * out.ndim
            index[axis] = slice(None, None, interior + 1)
            spread[tuple(index)] = out
            out = spread
        widths = [(0, 0)] * out.ndim
        widths[axis] = (max(lo, 0), max(hi, 0))
        out = np.pad(out, widths, constant_values=value)
        index = [slice(None)] * out.ndim
        index[axis] = slice(max(-lo, 0), out.shape[axis] - max(-hi, 0))
        out = out[tuple(index)]
    return _j(out)


def _conv_general_dilated(lhs: Any, rhs: Any, window_strides: Any, padding: Any, lhs_dilation: Any = None,
                          rhs_dilation: Any = None, feature_group_count: int = 1) -> JArray:
    lhs, rhs = np.asarray(lhs), np.asarray(rhs)
    d = lhs.ndim - 2
    pads = [(0, 0)] * d if padding == "VALID" else list(padding)
    interior = [0] * d if lhs_dilation is None else [s - 1 for s in lhs_dilation]
    config = [(0, 0, 0), (0, 0, 0)] + [(lo, hi, it) for (lo, hi), it in zip(pads, interior)]
    lp = np.asarray(_lax_pad(lhs, 0.0, config))
    return _j(cg.conv(lp, rhs, stride=tuple(window_strides), dilation=tuple(rhs_dilation or (1,) * d),
                      groups=feature_group_count))


jax = types.ModuleType("jax")
jax.config = types.SimpleNamespace(update=lambda *a: None)  # type: ignore[attr-defined]
jnp = types.SimpleNamespace(
    zeros=lambda shape, dtype=float: _j(np.zeros(shape, dtype)),
    flip=lambda a, axis: _j(np.flip(a, axis)),
    pad=lambda a, widths, mode="constant": _j(np.pad(a, widths, mode=mode)),
    concatenate=lambda arrays, axis=0: _j(np.concatenate(arrays, axis)),
)
lax = types.SimpleNamespace(pad=_lax_pad, conv_general_dilated=_conv_general_dilated)

# ----------------------------------------------------------------------------- a model of tensorflow


class _TensorShape(tuple):  # type: ignore[type-arg]
    def as_list(self) -> list[int]:
        return list(self)


class TArray(np.ndarray):
    """An ndarray whose ``shape`` has TensorFlow's ``as_list()``."""

    @property  # type: ignore[misc]
    def shape(self) -> _TensorShape:  # type: ignore[override]
        return _TensorShape(np.ndarray.shape.__get__(self))  # type: ignore[attr-defined]


def _t(a: Any) -> TArray:
    return np.ascontiguousarray(a).view(TArray)


def _tf_convolution(x: Any, filters: Any, padding: str = "VALID", dilations: Any = None) -> TArray:
    """Channels-last ``tf.nn.convolution``, stride 1: ``x (N, *S, C)``, ``filters (*K, C, O)``."""
    assert padding == "VALID"
    x, f = np.asarray(x), np.asarray(filters)
    d = x.ndim - 2
    xc = np.moveaxis(x, -1, 1)
    wc = np.moveaxis(np.moveaxis(f, -1, 0), -1, 1)  # (O, C, *K)
    assert wc.shape[1] == xc.shape[1], "grouped filters: the recipe slices groups itself"
    y = cg.conv(xc, wc, dilation=tuple(dilations or (1,) * d))
    return _t(np.moveaxis(y, 1, -1))


def _segment_sum(data: Any, ids: Any, num: int) -> TArray:
    out = np.zeros((num,) + np.asarray(data).shape[1:])
    np.add.at(out, np.asarray(ids), np.asarray(data))
    return _t(out)


tf = types.SimpleNamespace(
    transpose=lambda a, perm: _t(np.transpose(np.asarray(a), list(perm))),
    pad=lambda a, paddings: _t(np.pad(np.asarray(a), paddings)),
    reshape=lambda a, shape: _t(np.reshape(np.asarray(a), shape)),
    stack=lambda arrays, axis: _t(np.stack([np.asarray(a) for a in arrays], axis)),
    zeros_like=lambda a: _t(np.zeros_like(np.asarray(a))),
    reverse=lambda a, axis: _t(np.flip(np.asarray(a), axis)),
    concat=lambda arrays, axis: _t(np.concatenate([np.asarray(a) for a in arrays], axis)),
    gather=lambda a, idx, axis: _t(np.take(np.asarray(a), idx, axis=axis)),
    reduce_sum=lambda a, axis: _t(np.sum(np.asarray(a), axis=tuple(axis))),
    nn=types.SimpleNamespace(convolution=_tf_convolution),
    math=types.SimpleNamespace(unsorted_segment_sum=_segment_sum),
)

MODELS = {"jax": {"jax": jax, "jnp": jnp, "lax": lax}, "tensorflow": {"tf": tf}}
WRAP = {"jax": _j, "tensorflow": _t}
RESULT = {"input": 1, "weight": 2, "bias": 3}


def _strip_imports(code: str) -> str:
    """The models replace the imports; everything else runs as shown."""
    return "\n".join(line for line in code.split("\n") if not line.startswith(("import ", "from ")))


def _run_models(e: cg.Explanation, x: np.ndarray, w: np.ndarray, g: np.ndarray, ref: tuple[Any, ...]) -> None:
    for r in e.recipes:
        if r.form not in MODELS:
            continue
        wrap = WRAP[r.form]
        scope = {"np": np, **MODELS[r.form], "x": wrap(x), "w": wrap(w), "g": wrap(g)}
        value = run_recipe(_strip_imports(r.code), r.gradient, scope)
        np.testing.assert_allclose(value, ref[RESULT[r.gradient]], rtol=1e-10, atol=1e-10,
                                   err_msg=f"{r.gradient} {r.form}:\n{r.code}")


@given(conv_configs(dims=(1, 2, 3), max_extra=3, allow_unbatched=False))
def test_tensorflow_and_jax_forward_recipes(cfg: Config) -> None:
    rng = np.random.default_rng(20)
    x, w, b = cfg.arrays(rng)
    e = cg.explain(cfg.x_shape, cfg.w_shape, **cfg.kwargs())
    g = rng.standard_normal(cg.conv(x, w, **cfg.kwargs()).shape)
    _run_models(e, x, w, g, torch_conv(cfg, x, w, b, g))


@given(transposed_configs())
def test_tensorflow_and_jax_transposed_recipes(cfg: TConfig) -> None:
    rng = np.random.default_rng(21)
    x, w = rng.standard_normal(cfg.x_shape), rng.standard_normal(cfg.w_shape)
    e = cg.explain(cfg.x_shape, cfg.w_shape, transposed=True, **cfg.kwargs())
    g = rng.standard_normal(cg.conv_transpose_output_shape(cfg.x_shape, cfg.w_shape, **cfg.kwargs()))
    _run_models(e, x, w, g, torch_conv_transpose_grads(cfg, x, w, g))


def test_models_follow_the_documented_semantics() -> None:
    """Spot checks of the models themselves: lax.pad's interior/negative padding, NHWC convolution."""
    np.testing.assert_array_equal(_lax_pad(np.array([1.0, 2.0, 3.0]), 0.0, [(1, -1, 1)]), [0, 1, 0, 2, 0])
    np.testing.assert_array_equal(_lax_pad(np.array([1.0, 2.0]), 0.0, [(-1, 2, 0)]), [2, 0, 0])
    x = np.arange(5.0).reshape(1, 5, 1)
    np.testing.assert_array_equal(_tf_convolution(x, np.ones((2, 1, 1)), dilations=[2])[0, :, 0], [2, 4, 6])
    assert _t(np.zeros((2, 3))).shape.as_list() == [2, 3]
    np.testing.assert_array_equal(_j(np.zeros(3)).at[np.array([0, 0])].add(np.array([1.0, 2.0])), [3, 0, 0])
