"""The catalogue of known mistakes in hand-written convolution gradients.

Each :class:`Mistake` computes the *wrong* result from the right inputs (in
PyTorch's layout), explains in one paragraph why it is wrong, and gives the
correct recipe. :func:`convgrad.testing.check_implementation` names a mistake
when an implementation's wrong results equal the catalogued ones on every
failing configuration it checked. Most are the wrong turns of people deriving
the gradients by hand and comparing with autograd: right for one sample and
one channel, wrong for batches; right at stride 1, wrong at stride 2.

Every computation here uses convgrad's core, with one thing changed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from ._conv import conv, conv_backward, conv_input_grad, conv_weight_grad
from ._strategies import ConvConfig
from ._transpose import conv_transpose, conv_transpose_backward

Array = npt.NDArray[Any]
Variant = Callable[[ConvConfig, Array, Array, Optional[Array], Array], dict[str, Array]]
"""``variant(config, x, w, b, g) -> {function: wrong result}``; raises :class:`NotApplicable` where it has no result."""

FUNCTIONS = ("forward", "input_grad", "weight_grad", "bias_grad")


class NotApplicable(Exception):
    """The mistake has no result for this configuration (its recipe would not even run)."""


@dataclass(frozen=True)
class Mistake:
    """One known mistake: how to compute its wrong result, why it is wrong, and the correct recipe.

    Attributes
    ----------
    name : str
    title : str
        One line.
    explanation : str
        One paragraph: what was computed and why it differs.
    recipe : str
        The correct recipe.
    functions : tuple of str
        What it gets wrong, for a forward convolution (among ``"forward"``,
        ``"input_grad"``, ``"weight_grad"``, ``"bias_grad"``).
    transposed_functions : tuple of str
        What it gets wrong for a transposed convolution (empty: it has no
        transposed form).
    variants : tuple of callables
        ``variant(config, x, w, b, g) -> {function: wrong result}``: the ways
        of making the mistake; it is named when one of them matches
        everywhere.
    """

    name: str
    title: str
    explanation: str
    recipe: str
    functions: tuple[str, ...]
    transposed_functions: tuple[str, ...]
    variants: tuple[Variant, ...]

    def functions_for(self, config: ConvConfig) -> tuple[str, ...]:
        """The functions this mistake gets wrong for ``config`` (transposed or not)."""
        return self.transposed_functions if config.transposed else self.functions

    def wrong(self, config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array,
              variant: int = 0) -> dict[str, Array]:
        """The wrong results of one variant, in PyTorch's layout.

        Raises
        ------
        NotApplicable
            Where the mistaken recipe has no result for this configuration.

        Examples
        --------
        >>> import numpy as np
        >>> from convgrad.testing import ConvConfig, MISTAKES
        >>> config = ConvConfig.from_shapes((2, 1, 3), (1, 1, 2), bias=False)
        >>> x, w, _ = config.arrays(0)
        >>> g = np.ones(config.output_shape)
        >>> MISTAKES["batch_not_contracted"].wrong(config, x, w, None, g)["weight_grad"].shape
        (2, 2, 2)
        """
        if not self.functions_for(config):
            raise NotApplicable(f"{self.name} has no form for {config.operation}")
        try:
            return self.variants[variant](config, x, w, b, g)
        except NotApplicable:
            raise
        except (ValueError, TypeError, IndexError) as exc:  # the mistaken recipe cannot run here
            raise NotApplicable(str(exc)) from None


# ----------------------------------------------------------------------------- helpers


def _pairs(config: ConvConfig) -> tuple[tuple[int, int], ...]:
    return tuple(zip(config.lo, config.hi))


def _geometry(config: ConvConfig) -> dict[str, Any]:
    """convgrad keywords with the padding as pairs (so that a mistaken recipe can change one thing)."""
    kw: dict[str, Any] = {"stride": config.stride_t, "padding": _pairs(config), "dilation": config.dilation_t,
                          "groups": config.groups}
    if config.transposed:
        kw["output_padding"] = config.output_padding_t
    else:
        kw["padding_mode"] = config.padding_mode
    return kw


def _flip(a: Array) -> Array:
    """Rotate the spatial axes by 180° (every axis after the first two)."""
    return np.ascontiguousarray(np.flip(a, axis=tuple(range(2, a.ndim))))


def _batched(config: ConvConfig, a: Array) -> Array:
    return a if config.batched else a[np.newaxis]


def _unbatched(config: ConvConfig, a: Array) -> Array:
    return a if config.batched else a[0]


def _zeros_only(config: ConvConfig, name: str) -> None:
    if config.padding_mode != "zeros":
        raise NotApplicable(f"{name} is a zero-padding recipe")


def _forward_only(config: ConvConfig, name: str) -> None:
    if config.transposed:
        raise NotApplicable(f"{name} has no transposed form")


def _swap_groups(w: Array, groups: int) -> Array:
    """``w (A, B, *K)`` -> ``(G·B, A/G, *K)``: the first two axes exchanged within each group."""
    a, b = w.shape[:2]
    blocks = w.reshape((groups, a // groups, b) + w.shape[2:]).swapaxes(1, 2)
    return np.ascontiguousarray(blocks.reshape((groups * b, a // groups) + w.shape[2:]))


def _insert_zeros(g: Array, stride: tuple[int, ...]) -> Array:
    """``s − 1`` zeros between neighbouring entries of every spatial axis of ``g (N, O, *Q)``."""
    spatial = g.shape[2:]
    out = np.zeros(g.shape[:2] + tuple((q - 1) * s + 1 for q, s in zip(spatial, stride)), dtype=g.dtype)
    out[(slice(None), slice(None)) + tuple(slice(None, None, s) for s in stride)] = g
    return out


def _crop_kernel(gw: Array, kernel: tuple[int, ...]) -> Array:
    return gw[(slice(None), slice(None)) + tuple(slice(0, k) for k in kernel)]


# ----------------------------------------------------------------------------- the wrong results


def _forward_is_convolution(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    op = conv_transpose if config.transposed else conv
    return {"forward": op(x, _flip(w), b, **_geometry(config))}


def _kernel_not_rotated(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    _forward_only(config, "kernel_not_rotated")
    return {"input_grad": conv_input_grad(g, _flip(w), input_shape=x.shape, **_geometry(config))}


def _channels_not_swapped(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    _forward_only(config, "channels_not_swapped")
    if config.c_in != config.c_out:
        raise NotApplicable("the unswapped kernel only fits when in and out channels agree")
    unswapped = _swap_groups(w, config.groups)
    return {"input_grad": conv_input_grad(g, unswapped, input_shape=x.shape, **_geometry(config))}


def _padding_not_full(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    _forward_only(config, "padding_not_full")
    _zeros_only(config, "padding_not_full")
    spread = _insert_zeros(_batched(config, g), config.stride_t)
    # the forward padding l, h (+ the output padding a after), where δ(K − 1) − l and δ(K − 1) − h + a are needed
    pads = tuple((lo, hi + a) for lo, hi, a in zip(config.lo, config.hi, config.remainder))
    padded = np.pad(spread, ((0, 0), (0, 0)) + pads)
    kernel = _flip(_swap_groups(w, config.groups))
    gx = conv(padded, kernel, dilation=config.dilation_t, groups=config.groups)
    return {"input_grad": _unbatched(config, gx)}


def _output_padding_missing(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    kw: dict[str, Any] = {"stride": config.stride_t, "padding": _pairs(config), "dilation": config.dilation_t,
                          "groups": config.groups}
    if config.transposed:
        return {"forward": conv_transpose(x, w, b, **kw)}
    _zeros_only(config, "output_padding_missing")
    return {"input_grad": conv_transpose(g, w, **kw)}


def _batch_not_contracted(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    _forward_only(config, "batch_not_contracted")
    _zeros_only(config, "batch_not_contracted")
    gw = conv(_batched(config, x), _batched(config, g), stride=config.dilation_t, dilation=config.stride_t,
              padding=_pairs(config))
    return {"weight_grad": _crop_kernel(gw, config.kernel)}


def _weight_grad_sample(index: int) -> Variant:
    def variant(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
        if not config.batched or config.n < 2:
            raise NotApplicable("one sample is the whole batch")
        keep = slice(index, index + 1) if index >= 0 else slice(index, None)
        if config.transposed:
            grads = conv_transpose_backward(g[keep], x[keep], w, **_geometry(config))
        else:
            grads = conv_backward(g[keep], x[keep], w, **_geometry(config))
        return {"weight_grad": grads.weight}

    return variant


def _stride_dilation_not_exchanged(config: ConvConfig, x: Array, w: Array, b: Optional[Array],
                                   g: Array) -> dict[str, Array]:
    _forward_only(config, "stride_dilation_not_exchanged")
    _zeros_only(config, "stride_dilation_not_exchanged")
    xs, gs = _batched(config, x).swapaxes(0, 1), _batched(config, g).swapaxes(0, 1)
    cg_in, cg_out = config.c_in // config.groups, config.c_out // config.groups
    parts = []
    for group in range(config.groups):
        xg = np.ascontiguousarray(xs[group * cg_in:(group + 1) * cg_in])
        gg = np.ascontiguousarray(gs[group * cg_out:(group + 1) * cg_out])
        # the forward stride kept as the stride, the forward dilation as the dilation
        part = conv(xg, gg, stride=config.stride_t, dilation=config.dilation_t, padding=_pairs(config))
        parts.append(_crop_kernel(part.swapaxes(0, 1), config.kernel))
    return {"weight_grad": np.concatenate(parts, axis=0)}


def _gradients_rotated(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    _forward_only(config, "gradients_rotated")
    kw = _geometry(config)
    return {
        "input_grad": conv_input_grad(g, _flip(w), input_shape=x.shape, **kw),
        "weight_grad": _flip(conv_weight_grad(g, x, weight_shape=w.shape, **kw)),
    }


def _output_used_as_upstream_gradient(config: ConvConfig, x: Array, w: Array, b: Optional[Array],
                                      g: Array) -> dict[str, Array]:
    kw = _geometry(config)
    if config.transposed:
        y = conv_transpose(x, w, **kw)
        grads = conv_transpose_backward(y, x, w, **kw)
    else:
        y = conv(x, w, **kw)
        grads = conv_backward(y, x, w, **kw)
    return {"input_grad": grads.input, "weight_grad": grads.weight, "bias_grad": grads.bias}


def _spatial_axes(config: ConvConfig, g: Array) -> tuple[int, ...]:
    return tuple(range(g.ndim - config.d, g.ndim))


def _bias_per_sample(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    if not config.batched:
        raise NotApplicable("no batch axis to forget")
    return {"bias_grad": g.sum(axis=_spatial_axes(config, g))}


def _bias_first_sample(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    if not config.batched or config.n < 2:
        raise NotApplicable("one sample is the whole batch")
    return {"bias_grad": g[0].sum(axis=tuple(range(1, g.ndim - 1)))}


def _bias_batch_mean(config: ConvConfig, x: Array, w: Array, b: Optional[Array], g: Array) -> dict[str, Array]:
    if not config.batched or config.n < 2:
        raise NotApplicable("one sample is the whole batch")
    return {"bias_grad": g.sum(axis=_spatial_axes(config, g)).mean(axis=0)}


# ----------------------------------------------------------------------------- the catalogue


_CATALOGUE = (
    Mistake(
        name="forward_is_convolution",
        title="the forward pass flips the kernel (a true convolution)",
        explanation=(
            "The forward pass computes a true convolution, with the kernel rotated by 180°, as "
            "scipy.signal.convolve and numpy.convolve do. torch.nn.functional.conv*d, tf.nn.conv*d and every "
            "deep-learning convolution layer compute a cross-correlation: y[n, o, q] = b[o] + Σ_{c,k} "
            "pad(x)[n, γ(o)·C/G + c, q·s + k·δ] · w[o, c, k], with the kernel as it is. The two agree only for "
            "kernels that a 180° rotation leaves unchanged (such as 1×1)."
        ),
        recipe=(
            "Slide the kernel without flipping it: y = conv(x, w, b, stride, padding, dilation, groups) "
            "(scipy.signal.correlate, not convolve)."
        ),
        functions=("forward",),
        transposed_functions=("forward",),
        variants=(_forward_is_convolution,),
    ),
    Mistake(
        name="kernel_not_rotated",
        title="the input gradient uses the kernel without the 180° rotation",
        explanation=(
            "Input element p receives g[q]·w[k] from every window with q·s + k·δ = p + l, so the input gradient "
            "is the full correlation of the upstream gradient with the kernel read backwards: rotated by 180°. "
            "Without the rotation the result is the input gradient of a true convolution; it is right only for "
            "kernels that the rotation leaves unchanged."
        ),
        recipe=(
            "gx = conv_transpose(g, w, stride, padding, output_padding, dilation, groups) — explicitly, the full "
            "correlation of g (stride − 1 zeros inserted, padded by δ(K−1) − l before and δ(K−1) − h + a after) "
            "with w rotated by 180° and its in/out channels swapped per group."
        ),
        functions=("input_grad",),
        transposed_functions=(),
        variants=(_kernel_not_rotated,),
    ),
    Mistake(
        name="channels_not_swapped",
        title="the input gradient uses the kernel without swapping its in/out channels",
        explanation=(
            "In the input gradient each input channel c collects from the output channels o of its group through "
            "w[o, c]: the kernel of that correlation has its first two axes exchanged (within each group) as well "
            "as rotated. Using w's axes as they are mixes the channels up; it is right only with one channel per "
            "group on each side, and the shapes only fit when in and out channels agree."
        ),
        recipe=(
            "Swap the in/out axes of w per group before rotating it (PyTorch: w.view(G, O//G, C//G, *K)"
            ".transpose(1, 2).reshape(C, O//G, *K)), or let the transposed convolution do both: "
            "gx = conv_transpose(g, w, stride, padding, output_padding, dilation, groups)."
        ),
        functions=("input_grad",),
        transposed_functions=(),
        variants=(_channels_not_swapped,),
    ),
    Mistake(
        name="padding_not_full",
        title="the input gradient pads the upstream gradient by p instead of δ(K − 1) − p",
        explanation=(
            "The input gradient is a full correlation: every input element, the border included, is reached by "
            "every kernel tap whose window covers it, so the (zero-inserted) upstream gradient must be padded by "
            "δ(K − 1) − l before and δ(K − 1) − h + a after. Padding it by the forward padding instead gives a "
            "smaller or shifted result; the two agree only when l + h = δ(K − 1) ('same' padding)."
        ),
        recipe=(
            "Pad g by dilation·(K − 1) − padding on each side (negative: crop), then correlate with the rotated, "
            "channel-swapped kernel — or gx = conv_transpose(g, w, stride, padding, output_padding, dilation, "
            "groups), which pads correctly."
        ),
        functions=("input_grad",),
        transposed_functions=(),
        variants=(_padding_not_full,),
    ),
    Mistake(
        name="output_padding_missing",
        title="the transposed convolution is missing its output_padding (stride remainder lost)",
        explanation=(
            "With stride s > 1 the last (S + l + h − δ(K − 1) − 1) mod s padded rows (or columns) are read by no "
            "window, so several input sizes give the same output size. A transposed convolution returns the "
            "smallest of them unless output_padding is that remainder: without it the input gradient (or the "
            "transposed convolution's output) is short by the remainder — rows whose gradient is zero."
        ),
        recipe=(
            "gx = conv_transpose(g, w, stride=s, padding=p, output_padding=a, dilation=δ, groups=G) with "
            "a = S − ((Q − 1)·s − l − h + δ(K − 1) + 1); torch.nn.grad.conv2d_input(x.shape, w, g, ...) works it "
            "out from the input shape."
        ),
        functions=("input_grad",),
        transposed_functions=("forward",),
        variants=(_output_padding_missing,),
    ),
    Mistake(
        name="batch_not_contracted",
        title="the weight gradient is conv(x, g) without exchanging batch and channels",
        explanation=(
            "The weight gradient sums over the batch: gw[o, c, k] = Σ_{n,q} g[n, o, q] · pad(x)[n, c, q·s + k·δ]. "
            "Written as one convolution, the batch is the contracted (channel) axis and the channels are the batch: "
            "conv(x.swapaxes(0, 1), g.swapaxes(0, 1)).swapaxes(0, 1). conv(x, g) as it stands contracts over "
            "the channels instead and returns one row per sample; it is right only for N = C = O = 1."
        ),
        recipe=(
            "gw = conv(x.swapaxes(0, 1), g.swapaxes(0, 1), stride=δ, dilation=s, padding=(l, h)).swapaxes(0, 1)"
            "[..., :K] per group (PyTorch: F.conv2d(x.transpose(0, 1), g.transpose(0, 1), ...).transpose(0, 1))."
        ),
        functions=("weight_grad",),
        transposed_functions=(),
        variants=(_batch_not_contracted,),
    ),
    Mistake(
        name="weight_grad_one_sample",
        title="the weight gradient holds only one sample's contribution",
        explanation=(
            "The weight gradient is a sum over every sample of the batch; this one holds a single sample's "
            "contribution, as when a loop over the batch assigns instead of accumulating (gw = … instead of "
            "gw += …) or only x[0] is used. It is right only for N = 1."
        ),
        recipe=(
            "Accumulate over the batch: gw = Σ_n conv_weight_grad(g[n:n+1], x[n:n+1]), which one batched call "
            "computes: gw = conv_weight_grad(g, x, weight_shape=w.shape, ...)."
        ),
        functions=("weight_grad",),
        transposed_functions=("weight_grad",),
        variants=(_weight_grad_sample(0), _weight_grad_sample(-1)),
    ),
    Mistake(
        name="stride_dilation_not_exchanged",
        title="the weight gradient keeps stride s where it needs dilation s",
        explanation=(
            "Written as a convolution of x with g, the weight gradient reads pad(x) at q·s + k·δ with q now "
            "running over the kernel of that convolution (g) and k over its output: the forward stride becomes "
            "the dilation and the forward dilation becomes the stride. Keeping stride = s samples the wrong rows "
            "and gives the wrong size; it is right only when stride and dilation are both 1."
        ),
        recipe=(
            "gw = conv(x.swapaxes(0, 1), g.swapaxes(0, 1), stride=δ, dilation=s, padding=(l, h)).swapaxes(0, 1)"
            "[..., :K] per group."
        ),
        functions=("weight_grad",),
        transposed_functions=(),
        variants=(_stride_dilation_not_exchanged,),
    ),
    Mistake(
        name="gradients_rotated",
        title="true-convolution gradients applied to a cross-correlation (both rotated 180°)",
        explanation=(
            "These are the gradients of a true convolution (kernel flipped in the forward pass) applied to the "
            "cross-correlation that deep-learning layers compute: the input gradient uses the kernel unrotated "
            "and the weight gradient comes out rotated by 180°. A textbook derivation for y = x ∗ w carries over "
            "to cross-correlation only after rotating w."
        ),
        recipe=(
            "gx = conv_transpose(g, w, ...) (the full correlation with the rotated kernel); "
            "gw = conv(x.swapaxes(0, 1), g.swapaxes(0, 1), stride=δ, dilation=s, padding=(l, h)).swapaxes(0, 1)"
            "[..., :K] per group, not rotated."
        ),
        functions=("input_grad", "weight_grad"),
        transposed_functions=(),
        variants=(_gradients_rotated,),
    ),
    Mistake(
        name="output_used_as_upstream_gradient",
        title="the backward pass pulls back the output y instead of the upstream gradient g",
        explanation=(
            "The backward pass pulled back the forward output y where it should pull back the upstream gradient "
            "g = ∂L/∂y. That is the gradient of L = Σ y²/2 (for which ∂L/∂y = y), not of the loss whose gradient "
            "was given — for L = sum(y), g is all ones: conv2d_transpose(y, f, …) in place of "
            "conv2d_transpose(ones_like(y), f, …)."
        ),
        recipe=(
            "Pull back the upstream gradient: gx = conv_transpose(g, w, ...), gw from g and x, gb = g summed, with "
            "g = ∂L/∂y (torch.ones_like(y) for L = y.sum())."
        ),
        functions=("input_grad", "weight_grad", "bias_grad"),
        transposed_functions=("input_grad", "weight_grad", "bias_grad"),
        variants=(_output_used_as_upstream_gradient,),
    ),
    Mistake(
        name="bias_not_summed_over_batch",
        title="the bias gradient is not summed over the batch",
        explanation=(
            "The bias is added to every output element of every sample, so its gradient sums g over the batch "
            "and over every spatial position: gb[o] = Σ_{n,q} g[n, o, q]. This one leaves the batch out: "
            "per-sample sums (shape (N, O)), one sample's sum, or the batch mean."
        ),
        recipe="gb = g.sum(axis=(0, *spatial axes)) — g.sum(dim=(0, 2, 3)) in 2-d.",
        functions=("bias_grad",),
        transposed_functions=("bias_grad",),
        variants=(_bias_per_sample, _bias_first_sample, _bias_batch_mean),
    ),
)

MISTAKES: Mapping[str, Mistake] = {m.name: m for m in _CATALOGUE}
"""The catalogue, by name, in the order mistakes are preferred when several match."""
