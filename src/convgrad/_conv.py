"""Convolution and its exact gradients: three contractions over one window map.

Notation (see the README's glossary): ``x (N, C, *S)``, ``w (O, C/G, *K)``,
``y (N, O, *Q)``, ``g`` the upstream gradient shaped like ``y``; ``U`` the
windows of the padded input, ``U[n, c, q, k] = pad(x)[n, c, q·s + k·δ]``.
Within group ``γ`` write ``j = (c, k)`` for a (channel, kernel offset) pair.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple, Optional

import numpy as np
import numpy.typing as npt

from . import _config
from ._config import batch_chunks
from ._fast import (
    check_method,
    depthwise_input_grad,
    pointwise_forward,
    pointwise_input_grad,
    pointwise_weight_grad,
    route,
)
from ._fft import fft_forward, fft_input_grad, fft_weight_grad
from ._grid import grid_depthwise_weight_grad, grid_forward, grid_input_grad, grid_weight_grad
from ._padding import pad, pad_adjoint
from ._validate import (
    Geometry,
    IntOrTuple,
    PaddingArg,
    check_array,
    check_bias,
    check_grad_output_shape,
    compute_dtype,
    conv_geometry,
    normalize_shape,
    prod,
    result_dtype,
)
from ._windows import fold, im2col

ArrayLike = npt.ArrayLike
Array = npt.NDArray[Any]


class Grads(NamedTuple):
    """The three gradients of a convolution.

    Attributes
    ----------
    input : numpy.ndarray
        Gradient with respect to the input, shaped like ``x``.
    weight : numpy.ndarray
        Gradient with respect to the weight, shaped like ``w``.
    bias : numpy.ndarray
        Gradient with respect to the bias, shape ``(out_channels,)``.
    """

    input: Array
    weight: Array
    bias: Array


# ----------------------------------------------------------------------------- the checked geometry, memoised

_GEOMETRIES: dict[tuple[Any, ...], Geometry] = {}


def _exact_key(value: object) -> object:
    """A hashable key that tells ``2`` from ``2.0`` and ``True``; TypeError for anything but ints, strs, tuples."""
    if type(value) in (int, str):
        return (type(value), value)
    if type(value) in (tuple, list):
        return (type(value), tuple(_exact_key(v) for v in value))  # type: ignore[attr-defined]
    raise TypeError(value)


def checked_geometry(x_shape: tuple[int, ...], w_shape: tuple[int, ...], **kwargs: Any) -> Geometry:
    """:func:`conv_geometry`, remembered for plain arguments (it costs ~15 µs of Python per call).

    Only successful checks are remembered, keyed by the exact types and
    values of the arguments, so every invalid call still raises from the
    validation layer; arguments of other types are checked every time.
    """
    try:
        key = (x_shape, w_shape, tuple((name, _exact_key(v)) for name, v in sorted(kwargs.items())))
    except TypeError:
        return conv_geometry(x_shape, w_shape, **kwargs)
    geom = _GEOMETRIES.get(key)
    if geom is None:
        geom = conv_geometry(x_shape, w_shape, **kwargs)
        if len(_GEOMETRIES) >= 512:
            _GEOMETRIES.clear()
        _GEOMETRIES[key] = geom
    return geom


# ----------------------------------------------------------------------------- batching and chunks


def as_batched(a: Array, geom: Geometry) -> Array:
    """``(C, *S)`` -> ``(1, C, *S)`` for unbatched geometries."""
    return a if geom.batched else a[np.newaxis]


def finish(a: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """Cast to the result dtype and drop the batch axis of unbatched calls."""
    a = a.astype(dtype, copy=False)
    return a if geom.batched else a[0]


def _per_sample_bytes(geom: Geometry, dtype: np.dtype[Any]) -> int:
    """Bytes of one sample's windows: ``C·K·Q`` elements."""
    return geom.c_in * prod(geom.kernel) * prod(geom.out_size) * dtype.itemsize


def _cols(xp: Array, geom: Geometry, dtype: np.dtype[Any]) -> Array:
    """im2col of a chunk into the workspace, viewed as ``(G, (C/G)·K, nb·Q)`` matrices."""
    nb = xp.shape[0]
    cols = _config.scratch((geom.c_in,) + geom.kernel + (nb,) + geom.out_size, dtype)
    im2col(xp, geom, cols)
    return cols.reshape(geom.groups, -1, nb * prod(geom.out_size))


def _weight_matrices(w: Array, geom: Geometry) -> Array:
    """``w (O, C/G, *K)`` -> ``(G, O/G, (C/G)·K)``, a view."""
    return w.reshape(geom.groups, geom.c_out // geom.groups, -1)


def _group_rows(g: Array, geom: Geometry) -> Array:
    """``g (nb, O, *Q)`` -> ``(G, O/G, nb·Q)``: a copy that makes each group's rows contiguous."""
    nb, og = g.shape[0], geom.c_out // geom.groups
    rows = g.reshape(nb, geom.groups, og, -1).transpose(1, 2, 0, 3)
    return np.ascontiguousarray(rows).reshape(geom.groups, og, -1)


# ----------------------------------------------------------------------------- the general route: im2col + GEMM
#
# One chunk of nb samples at a time, m = (n, q) running over nb·Q, j = (c, k) over (C/G)·K:
#   cols[γ, j, m] = U[n, γ·C/G + c, q, k]                      (im2col, the one big copy)
#   forward       y[γ, o, m]  = Σ_j w[γ, o, j] · cols[γ, j, m]
#   weight grad   gwᵀ[γ, j, o] = Σ_m cols[γ, j, m] · g[γ, o, m]
#   input grad    Z[γ, j, m]  = Σ_o w[γ, o, j] · g[γ, o, m],  then gx = pad_adjoint(fold(Z))
# Each is one GEMM per group whose long side is nb·Q; these orientations measured fastest with OpenBLAS.
# The forward result is written with m = (n, q) last, so putting it in place is one contiguous copy
# per (n, o) row; the transposed product yᵀ[γ, m, o] needed a transposing copy as slow as the GEMM
# (first layer N=8 3→64 224² k7 s2: 135 -> 66 ms for the forward pass).


def gemm_forward(x: Array, w: Array, geom: Geometry) -> Array:
    """``y = conv(x, w)`` by im2col and one GEMM per group and chunk."""
    n, og = x.shape[0], geom.c_out // geom.groups
    dtype = np.result_type(x, w)
    y = np.empty((n, geom.c_out) + geom.out_size, dtype=dtype)
    w_mat = _weight_matrices(w, geom)  # (G, O/G, j)
    for n0, n1 in batch_chunks(n, _per_sample_bytes(geom, dtype)):
        nb = n1 - n0
        cols = _cols(pad(x[n0:n1], geom), geom, dtype)
        # (G, O/G, j) @ (G, j, m) -> (G, O/G, m)
        y_g = np.matmul(w_mat, cols).reshape(geom.groups, og, nb, -1)
        # (G, O/G, nb, Q) -> (nb, G, O/G, Q)
        y[n0:n1].reshape(nb, geom.groups, og, -1)[...] = y_g.transpose(2, 0, 1, 3)
    return y


def gemm_weight_grad(g: Array, x: Array, geom: Geometry) -> Array:
    """``gw[o, c, k] = Σ_{n,q} g[n, o, q] · U[n, c, q, k]`` by im2col and one GEMM per group and chunk."""
    dtype = np.result_type(g, x)
    gw_t = np.zeros((geom.groups, (geom.c_in // geom.groups) * prod(geom.kernel), geom.c_out // geom.groups), dtype)
    for n0, n1 in batch_chunks(x.shape[0], _per_sample_bytes(geom, dtype)):
        cols = _cols(pad(x[n0:n1], geom), geom, dtype)
        # (G, j, m) @ (G, m, O/G) -> (G, j, O/G)
        gw_t += np.matmul(cols, _group_rows(g[n0:n1], geom).swapaxes(1, 2))
    return np.ascontiguousarray(gw_t.swapaxes(1, 2)).reshape(geom.weight_shape)


def gemm_input_grad(g: Array, w: Array, geom: Geometry) -> Array:
    """``gx = pad_adjoint(fold(Z))``, ``Z = wᵀ g`` per group, by one GEMM per group and chunk."""
    n = g.shape[0]
    dtype = np.result_type(g, w)
    gx = np.empty((n, geom.c_in) + geom.in_size, dtype=dtype)
    w_t = _weight_matrices(w, geom).swapaxes(1, 2)  # (G, j, O/G)
    for n0, n1 in batch_chunks(n, _per_sample_bytes(geom, dtype)):
        nb = n1 - n0
        z = _config.scratch((geom.c_in,) + geom.kernel + (nb,) + geom.out_size, dtype)
        # (G, j, O/G) @ (G, O/G, m) -> (G, j, m)
        np.matmul(w_t, _group_rows(g[n0:n1], geom), out=z.reshape(geom.groups, -1, nb * prod(geom.out_size)))
        gx[n0:n1] = pad_adjoint(fold(z, geom), geom)
    return gx


# ----------------------------------------------------------------------------- the three contractions


_KERNELS: dict[str, dict[str, Callable[[Array, Array, Geometry], Array]]] = {
    "forward": {"fft": fft_forward, "pointwise": pointwise_forward, "grid": grid_forward, "gemm": gemm_forward},
    "weight": {
        "fft": fft_weight_grad, "pointwise": pointwise_weight_grad, "depthwise": grid_depthwise_weight_grad,
        "grid": grid_weight_grad, "gemm": gemm_weight_grad,
    },
    "input": {
        "fft": fft_input_grad, "pointwise": pointwise_input_grad, "grid": grid_input_grad,
        "depthwise": depthwise_input_grad, "gemm": gemm_input_grad,
    },
}
"""Each contraction's implementation on every route :func:`route` can pick for it."""


def _run(op: str, a: Array, b: Array, geom: Geometry, method: str) -> Array:
    """Contraction ``op`` of ``a`` and ``b`` by the route :func:`route` picks."""
    return _KERNELS[op][route(geom, np.result_type(a, b), method, op)](a, b, geom)


def forward_batched(x: Array, w: Array, geom: Geometry, *, method: str = "auto") -> Array:
    """``y = conv(x, w)`` for batched ``x`` already in the compute dtype, by the route :func:`route` picks."""
    return _run("forward", x, w, geom, method)


def weight_grad_batched(g: Array, x: Array, geom: Geometry, *, method: str = "auto") -> Array:
    """``gw[o, c, k] = Σ_{n,q} g[n, o, q] · U[n, c, q, k]`` (no conjugation)."""
    return _run("weight", g, x, geom, method)


def input_grad_batched(g: Array, w: Array, geom: Geometry, *, method: str = "auto") -> Array:
    """``gx = pad_adjoint(fold(Z))``, ``Z[n, c, k, q] = Σ_o g[n, o, q] · w[o, c, k]`` (no conjugation)."""
    return _run("input", g, w, geom, method)


def bias_grad_batched(g: Array) -> Array:
    """``gb[o] = Σ_{n,q} g[n, o, q]``."""
    total: Array = g.sum(axis=(0,) + tuple(range(2, g.ndim)))
    return total


def _conj(a: Array) -> Array:
    return np.conj(a) if a.dtype.kind == "c" else a


def with_bias(
    contraction: Callable[..., Array], x: Array, w: Array, b: Optional[Array], geom: Geometry, method: str
) -> Array:
    """``contraction(x, w) + b`` in the compute dtype, returned in the result dtype (``conv``, ``conv_transpose``)."""
    dtype = result_dtype(x, w, *([] if b is None else [b]))
    work = compute_dtype(dtype)
    y = contraction(as_batched(x, geom).astype(work, copy=False), w.astype(work, copy=False), geom, method=method)
    if b is not None:
        y += b.astype(work, copy=False).reshape((-1,) + (1,) * geom.d)
    return finish(y, geom, dtype)


# ----------------------------------------------------------------------------- the public API


def conv_output_shape(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
) -> tuple[int, ...]:
    """Shape of ``conv(x, w)`` for ``x.shape == input_shape``, ``w.shape == weight_shape``.

    Per spatial dimension ``Q = floor((S + l + h − δ·(K − 1) − 1) / s) + 1``
    (Dumoulin & Visin, arXiv:1603.07285, relationship 15). The number of
    groups is ``input_shape[1] / weight_shape[1]``.

    Parameters
    ----------
    input_shape : tuple of int
        ``(N, C, *S)``, or ``(C, *S)`` unbatched.
    weight_shape : tuple of int
        ``(O, C / groups, *K)``.
    stride, padding, dilation
        As for :func:`conv`.

    Returns
    -------
    tuple of int
        ``(N, O, *Q)``, or ``(O, *Q)`` unbatched.

    Raises
    ------
    ValueError
        For inconsistent shapes or an output size below 1.

    Examples
    --------
    >>> import convgrad as cg
    >>> cg.conv_output_shape((8, 3, 224, 224), (64, 3, 7, 7), stride=2, padding=3)
    (8, 64, 112, 112)
    >>> cg.conv_output_shape((1, 6, 5), (3, 2, 3), padding=((2, 0),))  # groups = 6 / 2
    (1, 3, 5)
    """
    input_shape = normalize_shape(input_shape, "input_shape")
    weight_shape = normalize_shape(weight_shape, "weight_shape")
    groups = 1
    if len(weight_shape) >= 3 and len(input_shape) in (len(weight_shape), len(weight_shape) - 1):
        c_in = input_shape[-len(weight_shape) + 1]
        if weight_shape[1] > 0 and c_in % weight_shape[1] == 0 and c_in // weight_shape[1] > 0:
            groups = c_in // weight_shape[1]
    geom = conv_geometry(
        input_shape,
        weight_shape,
        stride=stride,
        padding=padding,
        dilation=dilation,
        groups=groups,
        x_name="input_shape",
        w_name="weight_shape",
    )
    return geom.output_shape


def conv(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike] = None,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> Array:
    """N-dimensional convolution (cross-correlation), as ``torch.nn.functional.conv*d``.

    ``y[n, o, q] = b[o] + Σ_{c, k} pad(x)[n, γ(o)·C/G + c, q·s + k·δ] · w[o, c, k]``
    — a cross-correlation: the kernel is not flipped.

    Parameters
    ----------
    x : array_like, shape=(N, C, *S) or (C, *S)
        Input; the number of spatial dimensions ``d = w.ndim − 2`` is any ``d ≥ 1``.
    w : array_like, shape=(O, C / groups, *K)
        Weight.
    b : array_like, shape=(O,), optional
        Bias.
    stride, dilation : int or tuple of d ints, each ≥ 1
    padding : int, tuple of d ints, tuple of d (before, after) pairs, "valid" or "same"
        ``"same"`` pads ``dilation·(K − 1)`` in total, the odd one after
        (stride 1 only, as PyTorch).
    groups : int
        Must divide both ``C`` and ``O``.
    padding_mode : {"zeros", "reflect", "replicate", "circular"}
        How the border is filled (``torch.nn.Conv*d`` semantics).
    method : {"auto", "direct", "fft"}
        How it is computed, not what: ``"direct"`` sums over the kernel
        offsets (im2col + GEMM, or the pointwise / depthwise routes);
        ``"fft"`` multiplies transforms block by block (overlap-save), which
        is faster for large kernels and agrees to rounding; ``"auto"``
        (default) picks FFT when its estimated cost is lower, as
        ``scipy.signal.choose_conv_method`` does. See the README's
        performance section for the rule and its measured constants.

    Returns
    -------
    numpy.ndarray, shape=(N, O, *Q) or (O, *Q)
        A new array; ``Q`` is given by :func:`conv_output_shape`. The dtype is
        NumPy's promotion of the inputs, with integers and bools promoted to
        float64 and float16 computed in float32 and returned as float16.

    Raises
    ------
    ValueError, TypeError
        For inconsistent shapes, bad geometry or non-numeric dtypes, before any work.

    Notes
    -----
    Complex inputs are supported without conjugation in the forward pass, as
    in PyTorch. The batch is processed in chunks so that the im2col workspace
    stays within :func:`get_workspace_budget`.

    Examples
    --------
    Seed 000's 1-D example:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.arange(10.0, 15.0).reshape(1, 1, 5)
    >>> w = np.array([[[1.0, 2.0, -1.0]]])
    >>> cg.conv(x, w, padding=1)
    array([[[ 9., 20., 22., 24., 41.]]])
    """
    x_arr, w_arr = check_array(x, "x"), check_array(w, "w")
    b_arr = None if b is None else check_array(b, "b")
    check_method(method)
    geom = checked_geometry(
        x_arr.shape, w_arr.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode,
    )
    if b_arr is not None:
        check_bias(b_arr.shape, geom.c_out)
    return with_bias(forward_batched, x_arr, w_arr, b_arr, geom, method)


def conv_input_grad(
    grad_output: ArrayLike,
    w: ArrayLike,
    /,
    *,
    input_shape: tuple[int, ...],
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> Array:
    """Gradient of :func:`conv` with respect to its input.

    ``gx = pad_adjoint(fold(Z))`` with ``Z[n, c, q, k] = Σ_{o ∈ γ(c)} g[n, o, q] · conj(w[o, c, k])``:
    every output gradient is spread back over the window it was computed
    from. This is exactly :func:`conv_transpose` of ``grad_output`` with the
    same ``w`` (for real data) and the ``output_padding`` that recovers
    ``input_shape``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
        Upstream gradient; must have the forward output's shape.
    w : array_like, shape=(O, C / groups, *K)
        The weight of the forward convolution.
    input_shape : tuple of int
        Shape of the forward input ``x``. It is needed because, with stride
        > 1, several input sizes give the same output size.
    stride, padding, dilation, groups, padding_mode, method
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray, shape=input_shape

    Examples
    --------
    Seed 003's 6×5 image under a 3×3 Sobel kernel, loss ``y.sum()``:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> w = np.array([[1, 0, -1], [2, 0, -2], [1, 0, -1]]).reshape(1, 1, 3, 3)
    >>> cg.conv_input_grad(np.ones((1, 1, 4, 3)), w, input_shape=(1, 1, 6, 5))[0, 0]
    array([[ 1.,  1.,  0., -1., -1.],
           [ 3.,  3.,  0., -3., -3.],
           [ 4.,  4.,  0., -4., -4.],
           [ 4.,  4.,  0., -4., -4.],
           [ 3.,  3.,  0., -3., -3.],
           [ 1.,  1.,  0., -1., -1.]])
    """
    g_arr, w_arr = check_array(grad_output, "grad_output"), check_array(w, "w")
    check_method(method)
    geom = checked_geometry(
        normalize_shape(input_shape, "input_shape"), w_arr.shape, stride=stride, padding=padding,
        dilation=dilation, groups=groups, padding_mode=padding_mode, x_name="input_shape",
    )
    check_grad_output_shape(g_arr, geom.output_shape, f"input_shape {geom.input_shape}, w.shape {w_arr.shape}")
    dtype = result_dtype(g_arr, w_arr)
    work = compute_dtype(dtype)
    g_b = as_batched(g_arr, geom).astype(work, copy=False)
    gx = input_grad_batched(g_b, _conj(w_arr.astype(work, copy=False)), geom, method=method)
    return finish(gx, geom, dtype)


def conv_weight_grad(
    grad_output: ArrayLike,
    x: ArrayLike,
    /,
    *,
    weight_shape: tuple[int, ...],
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> Array:
    """Gradient of :func:`conv` with respect to its weight.

    ``gw[o, c, k] = Σ_{n, q} g[n, o, q] · conj(U[n, γ(o)·C/G + c, q, k])``: each
    weight sees every window it was multiplied with, weighted by the output
    gradient there.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
        Upstream gradient; must have the forward output's shape.
    x : array_like, shape=(N, C, *S) or (C, *S)
        The forward input.
    weight_shape : tuple of int
        ``(O, C / groups, *K)``: the kernel size is not implied by the other shapes.
    stride, padding, dilation, groups, padding_mode, method
        As for :func:`conv`.

    Returns
    -------
    numpy.ndarray, shape=weight_shape

    Examples
    --------
    Seed 003's 6×5 image, loss ``y.sum()``:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.array([[1, 1, 1, 2, 3], [1, 1, 1, 2, 3], [1, 1, 1, 2, 3],
    ...               [2, 2, 2, 2, 3], [3, 3, 3, 3, 3], [4, 4, 4, 4, 4]]).reshape(1, 1, 6, 5)
    >>> cg.conv_weight_grad(np.ones((1, 1, 4, 3)), x, weight_shape=(1, 1, 3, 3))[0, 0]
    array([[15., 18., 25.],
           [21., 23., 28.],
           [30., 31., 34.]])
    """
    g_arr, x_arr = check_array(grad_output, "grad_output"), check_array(x, "x")
    check_method(method)
    geom = checked_geometry(
        x_arr.shape, normalize_shape(weight_shape, "weight_shape"), stride=stride, padding=padding,
        dilation=dilation, groups=groups, padding_mode=padding_mode, w_name="weight_shape",
    )
    check_grad_output_shape(g_arr, geom.output_shape, f"x.shape {x_arr.shape}, weight_shape {geom.weight_shape}")
    dtype = result_dtype(g_arr, x_arr)
    work = compute_dtype(dtype)
    g_b = as_batched(g_arr, geom).astype(work, copy=False)
    gw = weight_grad_batched(g_b, _conj(as_batched(x_arr, geom).astype(work, copy=False)), geom, method=method)
    return gw.astype(dtype, copy=False)


def conv_bias_grad(grad_output: ArrayLike, /, *, unbatched: bool = False) -> Array:
    """Gradient of :func:`conv` with respect to its bias: ``gb[o] = Σ_{n, q} g[n, o, q]``.

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q), or (O, *Q) with ``unbatched=True``
    unbatched : bool
        Whether ``grad_output`` has no batch axis.

    Returns
    -------
    numpy.ndarray, shape=(O,)

    Examples
    --------
    Seed 002: the bias gradient of ``y.sum()`` counts the output elements.

    >>> import numpy as np
    >>> import convgrad as cg
    >>> cg.conv_bias_grad(np.ones((1, 1, 2, 2)))
    array([4.])
    """
    g_arr = check_array(grad_output, "grad_output")
    minimum = 2 if unbatched else 3
    if g_arr.ndim < minimum:
        raise ValueError(
            f"grad_output must have at least {minimum} dimensions "
            f"({'(O, *Q)' if unbatched else '(N, O, *Q)'}); got shape {g_arr.shape}"
        )
    dtype = result_dtype(g_arr)
    g_b = g_arr[np.newaxis] if unbatched else g_arr
    return bias_grad_batched(g_b.astype(compute_dtype(dtype), copy=False)).astype(dtype, copy=False)


def conv_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    method: str = "auto",
) -> Grads:
    """All three gradients of :func:`conv`: ``Grads(input, weight, bias)``.

    The same numbers as ``torch.autograd.grad(y, (x, w, b), grad_output)``
    for ``y = torch.nn.functional.conv*d(x, w, b, ...)``. For complex data the
    gradients follow PyTorch's convention (conjugate Wirtinger:
    ``gx = conv_input_grad(g, conj(w))``).

    Parameters
    ----------
    grad_output : array_like, shape=(N, O, *Q) or (O, *Q)
        Upstream gradient ``∂L/∂y``.
    x : array_like, shape=(N, C, *S) or (C, *S)
    w : array_like, shape=(O, C / groups, *K)
    stride, padding, dilation, groups, padding_mode, method
        As for :func:`conv`.

    Returns
    -------
    Grads
        ``input`` shaped like ``x``, ``weight`` like ``w``, ``bias`` ``(O,)``
        (computed whether or not the forward pass had a bias).

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.arange(9.0).reshape(1, 1, 3, 3)
    >>> w = np.array([[[[1.0, 0.0], [0.0, 1.0]]]])
    >>> grads = cg.conv_backward(np.ones((1, 1, 2, 2)), x, w)
    >>> grads.weight[0, 0]
    array([[ 8., 12.],
           [20., 24.]])
    >>> grads.bias
    array([4.])
    """
    g_arr, x_arr, w_arr = check_array(grad_output, "grad_output"), check_array(x, "x"), check_array(w, "w")
    check_method(method)
    geom = checked_geometry(
        x_arr.shape, w_arr.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode,
    )
    check_grad_output_shape(g_arr, geom.output_shape, f"x.shape {x_arr.shape}, w.shape {w_arr.shape}")
    dtype = result_dtype(g_arr, x_arr, w_arr)
    work = compute_dtype(dtype)
    g_b = as_batched(g_arr, geom).astype(work, copy=False)
    x_b = as_batched(x_arr, geom).astype(work, copy=False)
    w_c = w_arr.astype(work, copy=False)
    gx = input_grad_batched(g_b, _conj(w_c), geom, method=method)
    gw = weight_grad_batched(g_b, _conj(x_b), geom, method=method)
    gb = bias_grad_batched(g_b)
    return Grads(finish(gx, geom, dtype), gw.astype(dtype, copy=False), gb.astype(dtype, copy=False))
