"""Gradient recipes as code, with the numbers of one configuration filled in.

Each function returns the source of a snippet that computes one gradient
from arrays named ``x``, ``w`` and ``g`` (batched, channels first, as in
PyTorch) and leaves it in ``gx``, ``gw`` or ``gb``. The snippets are what
:func:`convgrad.explain` shows *and* what it executes to verify them, so the
code shown is the code checked.

Notation: the forward convolution ``A`` of the configuration (for a
transposed convolution, the convolution it is the adjoint of) has input
``a`` ``(N, Ca, *S)``, upstream gradient ``b`` ``(N, Cb, *Q)``, weight
``w`` ``(Cb, Ca / G, *K)``, stride ``s``, dilation ``δ``, padding ``(l, h)``
and remainder ``r = S + l + h − (Q − 1)·s − δ·(K − 1) − 1`` (the
``output_padding`` of its adjoint).
"""

from __future__ import annotations

from dataclasses import dataclass

from ._geometry import Geometry, out_size

NUMPY_PAD_MODE = {"reflect": "reflect", "replicate": "edge", "circular": "wrap"}


@dataclass(frozen=True)
class Numbers:
    """The per-dimension numbers of the forward convolution ``A``."""

    geom: Geometry

    @property
    def d(self) -> int:
        return self.geom.d

    @property
    def remainder(self) -> tuple[int, ...]:
        g = self.geom
        return tuple(p - ((q - 1) * s + sp) for p, q, s, sp in zip(g.padded_size, g.out_size, g.stride, g.span))

    @property
    def full_pads(self) -> tuple[tuple[int, int], ...]:
        """``(δ(K−1) − l, δ(K−1) − h + r)``: the padding that turns the adjoint into a full correlation."""
        g = self.geom
        return tuple(
            (sp - 1 - lo, sp - 1 - hi + r)
            for sp, lo, hi, r in zip(g.span, g.pad_lo, g.pad_hi, self.remainder)
        )

    @property
    def zero_inserted(self) -> tuple[int, ...]:
        """``(Q − 1)·s + 1``: the upstream gradient's size after zero insertion."""
        return tuple((q - 1) * s + 1 for q, s in zip(self.geom.out_size, self.geom.stride))

    @property
    def symmetric(self) -> bool:
        return self.geom.pad_lo == self.geom.pad_hi


# ----------------------------------------------------------------------------- formatting


def tup(values: tuple[int, ...]) -> str:
    """An int when all entries agree, else the tuple."""
    return str(values[0]) if len(set(values)) == 1 else str(tuple(values))


def padding_arg(geom: Geometry) -> str:
    """The ``padding=`` value convgrad accepts: an int, a tuple, or (before, after) pairs."""
    if geom.pad_lo == geom.pad_hi:
        return tup(geom.pad_lo)
    return str(tuple(zip(geom.pad_lo, geom.pad_hi)))


def kwargs(**items: str) -> str:
    """``k=v`` pairs, leaving out PyTorch's defaults (stride/dilation/groups 1, padding 0)."""
    defaults = {"stride": "1", "dilation": "1", "groups": "1", "padding": "0", "output_padding": "0"}
    return ", ".join(f"{k}={v}" for k, v in items.items() if defaults.get(k) != v)


def call(fn: str, args: str, kw: str) -> str:
    return f"{fn}({args}, {kw})" if kw else f"{fn}({args})"


def lead(d: int, rest: str) -> str:
    """``[:, :, <rest>]`` indexing of the spatial axes."""
    return f"[:, :, {rest}]"


def spatial_slices(starts: tuple[int, ...], stops: tuple[int, ...], steps: tuple[int, ...] | None = None) -> str:
    parts = []
    for i, (a, b) in enumerate(zip(starts, stops)):
        step = "" if steps is None or steps[i] == 1 else f":{steps[i]}"
        parts.append(f"{a}:{b}{step}")
    return ", ".join(parts)


def spatial_axes(d: int) -> str:
    return str(tuple(range(2, 2 + d))) if d > 1 else "2"


def batch_spatial_axes(d: int) -> str:
    return str((0, *range(2, 2 + d)))


def flip(d: int) -> str:
    return "[:, :, " + ", ".join(["::-1"] * d) + "]"


def fold_loop(geom: Geometry, var: str, new: str, framework: str) -> str:
    """Adjoint of a reflect / replicate / circular padding: add each padded entry back onto its source."""
    sizes = [(s, lo, hi) for s, lo, hi in zip(geom.in_size, geom.pad_lo, geom.pad_hi)]
    mode = NUMPY_PAD_MODE[geom.padding_mode]
    head = (
        f"for axis, (size, lo, hi) in enumerate({sizes}, start=2):  # adjoint of {geom.padding_mode!r} padding\n"
        f"    src = np.pad(np.arange(size), (lo, hi), mode={mode!r})  # padded position -> the input entry it copies\n"
    )
    if framework == "numpy":
        body = (
            f"    folded = np.zeros({var}.shape[:axis] + (size,) + {var}.shape[axis + 1:], dtype={var}.dtype)\n"
            f"    np.add.at(folded, (slice(None),) * axis + (src,), {var})\n"
            f"    {var} = folded\n"
        )
    elif framework == "torch":
        body = (
            f"    shape = list({var}.shape)\n"
            f"    shape[axis] = size\n"
            f"    {var} = torch.zeros(shape, dtype={var}.dtype).index_add_(axis, torch.from_numpy(src), {var})\n"
        )
    elif framework == "jax":
        body = (
            f"    shape = list({var}.shape)\n"
            f"    shape[axis] = size\n"
            f"    {var} = jnp.zeros(shape, {var}.dtype).at[(slice(None),) * axis + (src,)].add({var})\n"
        )
    else:  # tensorflow
        body = (
            f"    perm = [axis] + [i for i in range(len({var}.shape)) if i != axis]\n"
            f"    {var} = tf.transpose(tf.math.unsorted_segment_sum(tf.transpose({var}, perm), src, size), "
            f"np.argsort(perm))\n"
        )
    start = f"{var} = {new}\n" if new != var else ""
    return start + head + body


def pad_widths(pairs: tuple[tuple[int, int], ...]) -> str:
    return str(((0, 0), (0, 0), *pairs))


# ----------------------------------------------------------------------------- convgrad / NumPy forms


def adjoint_call(geom: Geometry, b: str, out: str) -> str:
    """Form 1 of ``Aᵀ b`` (the input gradient of a convolution): one ``conv_transpose`` call."""
    num = Numbers(geom)
    common = dict(
        stride=tup(geom.stride), output_padding=tup(num.remainder), dilation=tup(geom.dilation),
        groups=str(geom.groups),
    )
    if geom.padding_mode == "zeros":
        kw = kwargs(stride=common["stride"], padding=padding_arg(geom), output_padding=common["output_padding"],
                    dilation=common["dilation"], groups=common["groups"])
        return f"{out} = {call('cg.conv_transpose', f'{b}, w', kw)}\n"
    kw = kwargs(**common)
    tmp = f"{out}_padded"
    return (
        f"{tmp} = {call('cg.conv_transpose', f'{b}, w', kw)}  # gradient of the padded input\n"
        + fold_loop(geom, out, tmp, "numpy")
    )


def adjoint_flipped(geom: Geometry, b: str, out: str) -> str:
    """Form 2 of ``Aᵀ b``: zero insertion, pad/crop, flipped channel-swapped kernel, stride-1 correlation."""
    num = Numbers(geom)
    d, groups = geom.d, geom.groups
    og, cg_ = geom.c_out // groups, geom.c_in // groups
    zeros = geom.padding_mode == "zeros"
    pads = num.full_pads if zeros else tuple((sp - 1, sp - 1 + r) for sp, r in zip(geom.span, num.remainder))
    lines = []
    if any(s > 1 for s in geom.stride):
        lines.append(
            f"bd = np.zeros({b}.shape[:2] + {num.zero_inserted}, dtype={b}.dtype)  # insert stride − 1 zeros "
            f"between the entries of {b}"
        )
        lines.append(f"bd{lead(d, spatial_slices((0,) * d, num.zero_inserted, geom.stride))} = {b}")
        src = "bd"
    else:
        src = b
    grow = tuple((max(p, 0), max(q, 0)) for p, q in pads)
    crop_lo = tuple(max(-p, 0) for p, _ in pads)
    sizes = tuple(z + gl + gh for z, (gl, gh) in zip(num.zero_inserted, grow))
    crop_hi = tuple(size - max(-q, 0) for size, (_, q) in zip(sizes, pads))
    expr = src if all(p == (0, 0) for p in grow) else f"np.pad({src}, {pad_widths(grow)})"
    if any(crop_lo) or any(max(-q, 0) for _, q in pads):
        expr += lead(d, spatial_slices(crop_lo, crop_hi))
    what = "pad by dilation·(kernel − 1) − padding before, dilation·(kernel − 1) − padding + output_padding after"
    if not zeros:
        what = "pad by dilation·(kernel − 1) before, dilation·(kernel − 1) + output_padding after"
    lines.append(f"bp = {expr}  # {what} (negative: crop)")
    kernel = ", ".join(str(k) for k in geom.kernel)
    if groups == 1:
        lines.append(f"wf = w.swapaxes(0, 1){flip(d)}  # rotate 180°, swap in/out channels")
    else:
        lines.append(
            f"wf = w.reshape({groups}, {og}, {cg_}, {kernel}).swapaxes(1, 2).reshape({geom.c_in}, {og}, {kernel})"
            f"{flip(d)}  # rotate 180°, swap in/out channels within each group"
        )
    kw = kwargs(dilation=tup(geom.dilation), groups=str(groups))
    target = out if zeros else f"{out}_padded"
    lines.append(f"{target} = {call('cg.conv', 'bp, wf', kw)}  # valid correlation, stride 1")
    text = "\n".join(lines) + "\n"
    if not zeros:
        text += fold_loop(geom, out, target, "numpy")
    return text


def forward_crop(geom: Geometry) -> str:
    """``[:, :, 0:S, ...]`` when an ``output_padding >= stride`` leaves room for more windows than ``S``."""
    natural = tuple(out_size(p, sp, s) for p, sp, s in zip(geom.padded_size, geom.span, geom.stride))
    if natural == geom.out_size:
        return ""
    return lead(geom.d, spatial_slices((0,) * geom.d, geom.out_size))


def forward_call(geom: Geometry, b: str, out: str) -> str:
    """Form 1 of ``A b`` (the input gradient of a transposed convolution): one ``conv`` call."""
    kw = kwargs(stride=tup(geom.stride), padding=padding_arg(geom), dilation=tup(geom.dilation),
                groups=str(geom.groups))
    crop = forward_crop(geom)
    note = "  # output_padding >= stride: the extra windows belong to no input element" if crop else ""
    return f"{out} = {call('cg.conv', f'{b}, w', kw)}{crop}{note}\n"


def forward_explicit(geom: Geometry, b: str, out: str) -> str:
    """Form 2 of ``A b``: explicit zero padding, then a strided, dilated valid correlation (kernel not flipped)."""
    widths = tuple(zip(geom.pad_lo, geom.pad_hi))
    padded = b if not geom.has_padding else f"np.pad({b}, {pad_widths(widths)})"
    kw = kwargs(stride=tup(geom.stride), dilation=tup(geom.dilation), groups=str(geom.groups))
    return (
        f"bp = {padded}  # the padding of the transposed convolution, put back\n"
        f"{out} = {call('cg.conv', 'bp, w', kw)}{forward_crop(geom)}  # valid correlation with the same kernel, "
        f"not flipped\n"
    )


def weight_call(geom: Geometry, a: str, b: str, out: str) -> str:
    """Form 1 of the weight gradient: per group one ``conv`` with batch and channels swapped."""
    groups, d = geom.groups, geom.d
    kw = kwargs(stride=tup(geom.dilation), padding=padding_arg(geom), dilation=tup(geom.stride))
    if geom.padding_mode != "zeros" and geom.has_padding:
        kw += f", padding_mode={geom.padding_mode!r}"
    crop = lead(d, spatial_slices((0,) * d, geom.kernel))
    ca, cb = geom.c_in // groups, geom.c_out // groups
    if groups == 1:
        conv = call("cg.conv", f"{a}.swapaxes(0, 1), {b}.swapaxes(0, 1)", kw)
        return f"{out} = {conv}.swapaxes(0, 1){crop}\n"
    pair = f"{group_slice(a, ':', ca, groups)}.swapaxes(0, 1), {group_slice(b, ':', cb, groups)}.swapaxes(0, 1)"
    conv = call("cg.conv", pair, kw)
    return f"{out} = np.concatenate([{conv}.swapaxes(0, 1) for i in range({groups})]){crop}\n"


def weight_explicit(geom: Geometry, a: str, b: str, out: str) -> str:
    """Form 2 of the weight gradient: explicit padding and zero insertion, stride δ."""
    num = Numbers(geom)
    d, groups = geom.d, geom.groups
    lines = []
    widths = tuple(zip(geom.pad_lo, geom.pad_hi))
    if not geom.has_padding:
        lines.append(f"ap = {a}")
    elif geom.padding_mode == "zeros":
        lines.append(f"ap = np.pad({a}, {pad_widths(widths)})  # the forward padding")
    else:
        mode = NUMPY_PAD_MODE[geom.padding_mode]
        lines.append(
            f"ap = np.pad({a}, {pad_widths(widths)}, mode={mode!r})  # the forward {geom.padding_mode} padding"
        )
    if any(s > 1 for s in geom.stride):
        lines.append(
            f"bd = np.zeros({b}.shape[:2] + {num.zero_inserted}, dtype={b}.dtype)  # insert stride − 1 zeros "
            f"between the entries of {b}"
        )
        lines.append(f"bd{lead(d, spatial_slices((0,) * d, num.zero_inserted, geom.stride))} = {b}")
        bsrc = "bd"
    else:
        bsrc = b
    kw = kwargs(stride=tup(geom.dilation))
    crop = lead(d, spatial_slices((0,) * d, geom.kernel))
    ca, cb = geom.c_in // groups, geom.c_out // groups
    if groups == 1:
        conv = call("cg.conv", f"ap.swapaxes(0, 1), {bsrc}.swapaxes(0, 1)", kw)
        lines.append(f"{out} = {conv}.swapaxes(0, 1){crop}  # valid correlation; batch is the contracted axis")
    else:
        lhs, rhs = group_slice("ap", ":", ca, groups), group_slice(bsrc, ":", cb, groups)
        pair = f"{lhs}.swapaxes(0, 1), {rhs}.swapaxes(0, 1)"
        conv = call("cg.conv", pair, kw)
        lines.append(f"{out} = np.concatenate([{conv}.swapaxes(0, 1) for i in range({groups})]){crop}")
    return "\n".join(lines) + "\n"


def bias_call(d: int) -> str:
    return "gb = cg.conv_bias_grad(g)\n"


def bias_explicit(d: int) -> str:
    return f"gb = g.sum(axis={batch_spatial_axes(d)})  # one term per output element\n"


# ----------------------------------------------------------------------------- PyTorch


def _torch_pad_list(geom: Geometry) -> list[int]:
    out: list[int] = []
    for lo, hi in zip(reversed(geom.pad_lo), reversed(geom.pad_hi)):
        out += [lo, hi]
    return out


def torch_header(d: int) -> str:
    return (
        "import numpy as np\n"
        "import torch\n"
        "import torch.nn.functional as F\n"
        "# x, w, g: torch.float64 tensors, channels first (g = ∂L/∂y, shaped like y)\n"
    )


def torch_adjoint(geom: Geometry, b: str, out: str) -> str:
    num = Numbers(geom)
    d = geom.d
    fn = f"F.conv_transpose{d}d"
    common = dict(stride=tup(geom.stride), output_padding=tup(num.remainder), dilation=tup(geom.dilation),
                  groups=str(geom.groups))
    if geom.padding_mode == "zeros" and num.symmetric:
        kw = kwargs(stride=common["stride"], padding=tup(geom.pad_lo), output_padding=common["output_padding"],
                    dilation=common["dilation"], groups=common["groups"])
        return f"{out} = {call(fn, f'{b}, w', kw)}\n"
    kw = kwargs(**common)
    if geom.padding_mode == "zeros":
        crop = lead(d, spatial_slices(geom.pad_lo, tuple(lo + s for lo, s in zip(geom.pad_lo, geom.in_size))))
        return f"{out} = {call(fn, f'{b}, w', kw)}{crop}  # PyTorch pads symmetrically only: crop instead\n"
    return f"{out}_padded = {call(fn, f'{b}, w', kw)}\n" + fold_loop(geom, out, f"{out}_padded", "torch")


def torch_forward(geom: Geometry, b: str, out: str) -> str:
    d = geom.d
    fn = f"F.conv{d}d"
    if geom.pad_lo == geom.pad_hi:
        kw = kwargs(stride=tup(geom.stride), padding=tup(geom.pad_lo), dilation=tup(geom.dilation),
                    groups=str(geom.groups))
        return f"{out} = {call(fn, f'{b}, w', kw)}{forward_crop(geom)}\n"
    kw = kwargs(stride=tup(geom.stride), dilation=tup(geom.dilation), groups=str(geom.groups))
    return f"{out} = {call(fn, f'F.pad({b}, {_torch_pad_list(geom)}), w', kw)}{forward_crop(geom)}\n"


def torch_weight(geom: Geometry, a: str, b: str, out: str) -> str:
    d, groups = geom.d, geom.groups
    fn = f"F.conv{d}d"
    lines = []
    if geom.padding_mode != "zeros" and geom.has_padding:
        lines.append(f"ap = F.pad({a}, {_torch_pad_list(geom)}, mode={geom.padding_mode!r})")
        pad_kw = "0"
    elif geom.pad_lo != geom.pad_hi:
        lines.append(f"ap = F.pad({a}, {_torch_pad_list(geom)})  # PyTorch pads symmetrically only")
        pad_kw = "0"
    else:
        pad_kw = tup(geom.pad_lo)
    src = "ap" if lines else a
    kw = kwargs(stride=tup(geom.dilation), padding=pad_kw, dilation=tup(geom.stride))
    crop = lead(d, spatial_slices((0,) * d, geom.kernel))
    ca, cb = geom.c_in // groups, geom.c_out // groups
    if groups == 1:
        conv = call(fn, f"{src}.transpose(0, 1), {b}.transpose(0, 1)", kw)
        lines.append(f"{out} = {conv}.transpose(0, 1){crop}")
    else:
        pair = f"{group_slice(src, ':', ca, groups)}.transpose(0, 1), {group_slice(b, ':', cb, groups)}.transpose(0, 1)"
        conv = call(fn, pair, kw)
        lines.append(f"{out} = torch.cat([{conv}.transpose(0, 1) for i in range({groups})]){crop}")
    return "\n".join(lines) + "\n"


def torch_bias(d: int) -> str:
    return f"gb = g.sum(dim={batch_spatial_axes(d)})\n"


# ----------------------------------------------------------------------------- JAX


def jax_header(d: int) -> str:
    return (
        "import numpy as np\n"
        "import jax\n"
        "import jax.numpy as jnp\n"
        "from jax import lax\n"
        'jax.config.update("jax_enable_x64", True)\n'
        "# x, w, g: float64 jax arrays, channels first as in PyTorch (g = ∂L/∂y, shaped like y)\n"
    )


def jax_adjoint(geom: Geometry, b: str, out: str) -> str:
    num = Numbers(geom)
    d, groups = geom.d, geom.groups
    og, cg_ = geom.c_out // groups, geom.c_in // groups
    zeros = geom.padding_mode == "zeros"
    pads = num.full_pads if zeros else tuple((sp - 1, sp - 1 + r) for sp, r in zip(geom.span, num.remainder))
    config = [(0, 0, 0), (0, 0, 0)] + [(lo, hi, s - 1) for (lo, hi), s in zip(pads, geom.stride)]
    kernel = ", ".join(str(k) for k in geom.kernel)
    target = out if zeros else f"{out}_padded"
    swapped = (
        "w.swapaxes(0, 1)" if groups == 1
        else f"w.reshape({groups}, {og}, {cg_}, {kernel}).swapaxes(1, 2).reshape({geom.c_in}, {og}, {kernel})"
    )
    text = (
        f"bp = lax.pad({b}, jnp.zeros((), {b}.dtype), {config})  # (before, after, interior): zero insertion and "
        f"pad/crop\n"
        f"wf = jnp.flip({swapped}, axis={spatial_axes(d)})  # rotate 180°, swap in/out channels\n"
        f"{target} = lax.conv_general_dilated(bp, wf, window_strides={(1,) * d}, padding='VALID', "
        f"rhs_dilation={geom.dilation}, feature_group_count={groups})\n"
    )
    if not zeros:
        text += fold_loop(geom, out, target, "jax")
    return text


def jax_forward(geom: Geometry, b: str, out: str) -> str:
    pads = list(zip(geom.pad_lo, geom.pad_hi))
    return (
        f"{out} = lax.conv_general_dilated({b}, w, window_strides={geom.stride}, padding={pads}, "
        f"rhs_dilation={geom.dilation}, feature_group_count={geom.groups}){forward_crop(geom)}\n"
    )


def jax_weight(geom: Geometry, a: str, b: str, out: str) -> str:
    d, groups = geom.d, geom.groups
    widths = [(0, 0), (0, 0)] + list(zip(geom.pad_lo, geom.pad_hi))
    if geom.padding_mode != "zeros" and geom.has_padding:
        first = f"ap = jnp.pad({a}, {widths}, mode={NUMPY_PAD_MODE[geom.padding_mode]!r})\n"
    else:
        first = f"ap = jnp.pad({a}, {widths})\n" if geom.has_padding else f"ap = {a}\n"
    crop = lead(d, spatial_slices((0,) * d, geom.kernel))
    ca, cb = geom.c_in // groups, geom.c_out // groups
    if groups == 1:
        lhs, rhs = "ap.swapaxes(0, 1)", f"{b}.swapaxes(0, 1)"
    else:
        lhs, rhs = f"ap[:, {ca} * i:{ca} * (i + 1)].swapaxes(0, 1)", f"{b}[:, {cb} * i:{cb} * (i + 1)].swapaxes(0, 1)"
    conv = (
        f"lax.conv_general_dilated({lhs}, {rhs}, window_strides={geom.dilation}, padding='VALID', "
        f"rhs_dilation={geom.stride}).swapaxes(0, 1)"
    )
    if groups == 1:
        return first + f"{out} = {conv}{crop}  # batch and channels swapped\n"
    return first + f"{out} = jnp.concatenate([{conv} for i in range({groups})]){crop}\n"


def jax_bias(d: int) -> str:
    return f"gb = g.sum(axis={batch_spatial_axes(d)})\n"


# ----------------------------------------------------------------------------- TensorFlow


def _last(d: int) -> list[int]:
    return [0, *range(2, 2 + d), 1]


def _first(d: int) -> list[int]:
    return [0, d + 1, *range(1, d + 1)]


TF_INSERT_ZEROS = (
    "def insert_zeros(t, axis, s):  # s − 1 zeros between neighbours along axis\n"
    "    shape = t.shape.as_list()\n"
    "    t = tf.stack([t] + [tf.zeros_like(t)] * (s - 1), axis=axis + 1)\n"
    "    t = tf.reshape(t, shape[:axis] + [shape[axis] * s] + shape[axis + 1:])\n"
    "    return t[(slice(None),) * axis + (slice(0, (shape[axis] - 1) * s + 1),)]\n"
)


def group_slice(var: str, lead_axes: str, size: int, groups: int) -> str:
    """``var`` itself, or its channels of group ``i`` (``lead_axes`` index the axes before them)."""
    if groups == 1:
        return var
    prefix = f"{lead_axes}, " if lead_axes else ""
    return f"{var}[{prefix}{size} * i:{size} * (i + 1)]"


def tf_concat(expr: str, groups: int, axis: int) -> str:
    """``expr``, or the concatenation of ``expr`` over the groups ``i``."""
    if groups == 1:
        return expr
    return f"tf.concat([{expr} for i in range({groups})], axis={axis})"


def tf_header(d: int) -> str:
    return (
        "import numpy as np\n"
        "import tensorflow as tf\n"
        "# x, w, g: tf.float64 tensors, channels first as in PyTorch (g = ∂L/∂y, shaped like y);\n"
        "# TensorFlow's CPU convolutions want channels last, hence the transposes\n"
    )


def _tf_pad_or_gather(geom: Geometry, a: str) -> str:
    widths = [[0, 0], [0, 0]] + [[lo, hi] for lo, hi in zip(geom.pad_lo, geom.pad_hi)]
    if not geom.has_padding:
        return f"ap = {a}\n"
    if geom.padding_mode == "zeros":
        return f"ap = tf.pad({a}, {widths})\n"
    sizes = [(s, lo, hi) for s, lo, hi in zip(geom.in_size, geom.pad_lo, geom.pad_hi)]
    mode = NUMPY_PAD_MODE[geom.padding_mode]
    return (
        f"ap = {a}\n"
        f"for axis, (size, lo, hi) in enumerate({sizes}, start=2):  # {geom.padding_mode} padding as a gather\n"
        f"    ap = tf.gather(ap, np.pad(np.arange(size), (lo, hi), mode={mode!r}), axis=axis)\n"
    )


def tf_adjoint(geom: Geometry, b: str, out: str) -> str:
    num = Numbers(geom)
    d, groups = geom.d, geom.groups
    og, cg_ = geom.c_out // groups, geom.c_in // groups
    zeros = geom.padding_mode == "zeros"
    pads = num.full_pads if zeros else tuple((sp - 1, sp - 1 + r) for sp, r in zip(geom.span, num.remainder))
    lines = [TF_INSERT_ZEROS.rstrip("\n"), f"bd = {b}"]
    for axis, s in enumerate(geom.stride, start=2):
        if s > 1:
            lines.append(f"bd = insert_zeros(bd, {axis}, {s})")
    grow = [[0, 0], [0, 0]] + [[max(p, 0), max(q, 0)] for p, q in pads]
    crop_lo = tuple(max(-p, 0) for p, _ in pads)
    sizes = tuple(z + max(p, 0) + max(q, 0) for z, (p, q) in zip(num.zero_inserted, pads))
    crop_hi = tuple(size - max(-q, 0) for size, (_, q) in zip(sizes, pads))
    lines.append(
        f"bp = tf.pad(bd, {grow}){lead(d, spatial_slices(crop_lo, crop_hi))}  # pad (negative: crop)"
    )
    kernel = ", ".join(str(k) for k in geom.kernel)
    if groups == 1:
        swapped = f"tf.transpose(w, {[1, 0, *range(2, 2 + d)]})"
    else:
        swapped = (
            f"tf.reshape(tf.transpose(tf.reshape(w, [{groups}, {og}, {cg_}, {kernel}]), "
            f"{[0, 2, 1, *range(3, 3 + d)]}), [{geom.c_in}, {og}, {kernel}])"
        )
    lines.append(f"wf = tf.reverse({swapped}, axis={list(range(2, 2 + d))})  # rotate 180°, swap in/out channels")
    lines.append(f"bp = tf.transpose(bp, {_last(d)})  # channels last")
    kernel_perm = [*range(2, 2 + d), 1, 0]
    target = out if zeros else f"{out}_padded"
    conv = (
        f"tf.nn.convolution({group_slice('bp', '...', og, groups)}, "
        f"tf.transpose({group_slice('wf', '', cg_, groups)}, {kernel_perm}), padding='VALID', "
        f"dilations={list(geom.dilation)})"
    )
    lines.append(f"{target} = {tf_concat(conv, groups, -1)}")
    lines.append(f"{target} = tf.transpose({target}, {_first(d)})  # channels first")
    text = "\n".join(lines) + "\n"
    if not zeros:
        text += fold_loop(geom, out, target, "tensorflow")
    return text


def tf_forward(geom: Geometry, b: str, out: str) -> str:
    d, groups = geom.d, geom.groups
    cb, ca = geom.c_out // groups, geom.c_in // groups  # b has c_out channels per group here
    widths = [[0, 0], [0, 0]] + [[lo, hi] for lo, hi in zip(geom.pad_lo, geom.pad_hi)]
    stops = tuple((q - 1) * s + 1 for q, s in zip(geom.out_size, geom.stride))
    sub = "[:, " + ", ".join(f"0:{e}:{s}" if s > 1 else f"0:{e}" for e, s in zip(stops, geom.stride)) + "]"
    conv = (
        f"tf.nn.convolution({group_slice('bp', '...', ca, groups)}, "
        f"tf.transpose({group_slice('w', '', cb, groups)}, {[*range(2, 2 + d), 1, 0]}), padding='VALID', "
        f"dilations={list(geom.dilation)}){sub}"
    )
    padded = f"tf.pad({b}, {widths})" if geom.has_padding else b
    return (
        f"bp = tf.transpose({padded}, {_last(d)})  # padded, channels last\n"
        f"# stride 1, then every stride-th position: TensorFlow cannot combine stride and dilation\n"
        f"{out} = {tf_concat(conv, groups, -1)}\n"
        f"{out} = tf.transpose({out}, {_first(d)})  # channels first\n"
    )


def tf_weight(geom: Geometry, a: str, b: str, out: str) -> str:
    d, groups = geom.d, geom.groups
    ca, cb = geom.c_in // groups, geom.c_out // groups
    stops = tuple(dl * (k - 1) + 1 for k, dl in zip(geom.kernel, geom.dilation))
    sub = "[:, " + ", ".join(f"0:{e}:{dl}" if dl > 1 else f"0:{e}" for e, dl in zip(stops, geom.dilation)) + "]"
    lhs_perm = [1, *range(2, 2 + d), 0]
    rhs_perm = [*range(2, 2 + d), 0, 1]
    back = [d + 1, 0, *range(1, d + 1)]
    conv = (
        f"tf.transpose(tf.nn.convolution(tf.transpose({group_slice('ap', ':', ca, groups)}, {lhs_perm}), "
        f"tf.transpose({group_slice(b, ':', cb, groups)}, {rhs_perm}), padding='VALID', "
        f"dilations={list(geom.stride)}){sub}, {back})"
    )
    return _tf_pad_or_gather(geom, a) + (
        "# channels as batch, batch as channels; stride 1, then every dilation-th position\n"
        f"{out} = {tf_concat(conv, groups, 0)}\n"
    )


def tf_bias(d: int) -> str:
    return f"gb = tf.reduce_sum(g, axis={list((0, *range(2, 2 + d)))})\n"


# ----------------------------------------------------------------------------- the definition as loops


def naive_loop(geom: Geometry, transposed: bool, bias: bool) -> str:
    """The forward pass and the three gradients as nested loops, one multiply-add at a time.

    The code reads ``x``, ``w``, ``g`` (and ``b`` when ``bias``) and sets
    ``y``, ``gx``, ``gw`` and ``gb``. Only the stride, dilation, padding,
    groups (and ``output_padding``) are written into it; every size is read
    from the arrays, so the same code runs on any configuration of the same
    geometry.
    """
    d = geom.d
    pads = tuple(zip(geom.pad_lo, geom.pad_hi))
    head = (
        "# the definition, one multiply-add at a time (convgrad.reference does the same for every configuration)\n"
        f"stride, dilation, padding, groups = {geom.stride}, {geom.dilation}, {pads}, {geom.groups}\n"
    )
    if not transposed:
        if geom.padding_mode == "zeros":
            src = ("src = [[p if 0 <= p < size else -1 for p in range(-lo, size + hi)]  # padded position -> x "
                   "position (-1: a zero)\n       for size, (lo, hi) in zip(x.shape[2:], padding)]\n")
        else:
            mode = NUMPY_PAD_MODE[geom.padding_mode]
            src = (f"src = [np.pad(np.arange(size), (lo, hi), mode={mode!r})  # padded position -> the x position "
                   f"it copies\n       for size, (lo, hi) in zip(x.shape[2:], padding)]\n")
        body = (
            "out_size = [(len(m) - dl * (k - 1) - 1) // s + 1 for m, k, s, dl in zip(src, w.shape[2:], stride, "
            "dilation)]\n"
            "c_group, o_group = x.shape[1] // groups, w.shape[0] // groups\n"
            "y = np.zeros((x.shape[0], w.shape[0], *out_size))\n"
            "gx, gw, gb = np.zeros(x.shape), np.zeros(w.shape), np.zeros(w.shape[0])\n"
            "for n, o, *q in np.ndindex(*y.shape):\n"
            "    for c, *k in np.ndindex(*w.shape[1:]):\n"
            "        ci = o // o_group * c_group + c  # the c-th input channel of o's group\n"
            f"        i = [int(src[j][q[j] * stride[j] + k[j] * dilation[j]]) for j in range({d})]\n"
            "        if min(i) < 0:\n"
            "            continue  # the window reads a padded zero: no term\n"
            "        y[(n, o, *q)] += x[(n, ci, *i)] * w[(o, c, *k)]\n"
            "        gx[(n, ci, *i)] += g[(n, o, *q)] * w[(o, c, *k)]\n"
            "        gw[(o, c, *k)] += g[(n, o, *q)] * x[(n, ci, *i)]\n"
            "    gb[o] += g[(n, o, *q)]\n"
        )
    else:
        src = ""
        body = (
            f"output_padding = {Numbers(geom).remainder}\n"
            "out_size = [(q - 1) * s - lo - hi + dl * (k - 1) + a + 1 for q, k, s, dl, (lo, hi), a\n"
            "            in zip(x.shape[2:], w.shape[2:], stride, dilation, padding, output_padding)]\n"
            "i_group, o_group = x.shape[1] // groups, w.shape[1]\n"
            "y = np.zeros((x.shape[0], o_group * groups, *out_size))\n"
            "gx, gw, gb = np.zeros(x.shape), np.zeros(w.shape), np.zeros(o_group * groups)\n"
            "for n, i, *q in np.ndindex(*x.shape):  # every input element sends the kernel to the output\n"
            "    for c, *k in np.ndindex(*w.shape[1:]):\n"
            "        co = i // i_group * o_group + c  # the c-th output channel of i's group\n"
            f"        j = [q[t] * stride[t] + k[t] * dilation[t] - padding[t][0] for t in range({d})]\n"
            "        if min(j) < 0 or any(jt >= size for jt, size in zip(j, out_size)):\n"
            "            continue  # lands in the cropped padding: no term\n"
            "        y[(n, co, *j)] += x[(n, i, *q)] * w[(i, c, *k)]\n"
            "        gx[(n, i, *q)] += g[(n, co, *j)] * w[(i, c, *k)]\n"
            "        gw[(i, c, *k)] += x[(n, i, *q)] * g[(n, co, *j)]\n"
            f"gb = g.sum(axis={batch_spatial_axes(d)})\n"
        )
    tail = f"y += b.reshape(-1{', 1' * d})\n" if bias else ""
    return head + src + body + tail
