"""Batch-grouped convolution (XLA's ``batch_group_count``), the way XLA writes a grouped weight gradient.

With ``B`` batch groups the batch is cut into ``B`` consecutive groups of
``N/B`` samples and the output channels into ``B`` groups of ``O/B``; output
channel group ``γ`` sees only batch group ``γ``::

    y[n, o] = Σ_{c, k} pad(x)[γ(o)·N/B + n, c, q·s + k·δ] · w[o, c, k],   γ(o) = o // (O/B)

so ``y`` is ``(N/B, O, *Q)``. Moving the batch groups onto the channel axis,
``x' = x.reshape(B, N/B, C, *S)`` with the first two axes exchanged and merged
into ``(N/B, B·C, *S)``, makes this the grouped convolution ``conv(x', w,
groups=B)``: no new kernel, and the gradients are the grouped convolution's,
reshaped back.

Array type in = array type out, as for :func:`convgrad.conv`: the regrouping
is done in the arrays' own namespace (for Dask arrays lazily, the channel axis
then rechunked to one chunk).
"""

from __future__ import annotations

from typing import Any, Optional

import numpy as np

from . import _conv, _namespace
from ._arguments import IntOrTuple, PaddingArg, check_array, check_int
from ._conv import Array, ArrayLike, Grads


def _arrays(x: object, w: object) -> tuple[Any, Any, Any]:
    """``x`` and ``w`` as arrays, with the namespace of another library's arrays (``None`` for NumPy)."""
    if any(type(a) is not np.ndarray and _namespace.is_foreign(a) for a in (x, w)):
        return x, w, _namespace.namespace_of({"x": x, "w": w}).xp
    return check_array(x, "x"), check_array(w, "w"), None


def _regroup(a: Any, shape: tuple[int, ...], final: tuple[int, ...], xp: Any) -> Any:
    """``a`` reshaped to ``shape``, its first two axes exchanged, reshaped to ``final``."""
    if xp is None:
        return np.ascontiguousarray(a.reshape(shape).swapaxes(0, 1)).reshape(final)
    axes = (1, 0, *range(2, len(shape)))
    out = xp.reshape(xp.permute_dims(xp.reshape(a, shape), axes), final)
    if _namespace.array_api_compat().is_dask_array(out):
        out = out.rechunk({1: -1})  # convgrad.dask keeps the channels in one chunk
    return out


def _to_channels(x: Array, groups: int, xp: Any = None) -> Array:
    """``(N, C, *S)`` -> ``(N/B, B·C, *S)``: batch group ``γ`` becomes channel block ``γ``."""
    n, c, *spatial = x.shape
    return _regroup(x, (groups, n // groups, c, *spatial), (n // groups, groups * c, *spatial), xp)  # type: ignore[no-any-return]


def _to_batch(a: Array, groups: int, xp: Any = None) -> Array:
    """The inverse of :func:`_to_channels`: ``(N/B, B·C, *S)`` -> ``(N, C, *S)``."""
    nb, bc, *spatial = a.shape
    return _regroup(a, (nb, groups, bc // groups, *spatial), (nb * groups, bc // groups, *spatial), xp)  # type: ignore[no-any-return]


def _check(x: Array, w: Array, batch_groups: object) -> int:
    b = check_int(batch_groups, "batch_groups", 1)
    if x.ndim != w.ndim:
        raise ValueError(
            f"x must be batched, (N, C, *S) with {w.ndim} dimensions like w, for batch groups; "
            f"got x.shape {tuple(x.shape)}"
        )
    if x.shape[0] % b:
        raise ValueError(f"batch_groups={b} does not divide the batch size {x.shape[0]} (x.shape[0])")
    if w.shape[0] % b:
        raise ValueError(f"batch_groups={b} does not divide out_channels={w.shape[0]} (w.shape[0])")
    return b


def conv_batch_grouped(
    x: ArrayLike,
    w: ArrayLike,
    b: Optional[ArrayLike] = None,
    /,
    *,
    batch_groups: int,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    input_dilation: IntOrTuple = 1,
    method: str = "auto",
) -> Array:
    """Convolution with the batch split into groups, as ``lax.conv_general_dilated(..., batch_group_count=B)``.

    Parameters
    ----------
    x : array_like, shape=(N, C, *S)
        Input; ``N`` divisible by ``batch_groups``.
    w : array_like, shape=(O, C, *K)
        Weight; ``O`` divisible by ``batch_groups``. Output channel ``o``
        reads the samples of batch group ``o // (O / batch_groups)``.
    b : array_like, shape=(O,), optional
    batch_groups : int
        ``B ≥ 1``.
    stride, padding, dilation, input_dilation, method
        As for :func:`convgrad.conv` (zero padding).

    Returns
    -------
    array, shape=(N / B, O, *Q)
        Of ``x``'s type and device.

    Examples
    --------
    Two samples, two output channels, each channel reading its own sample:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.array([[[1.0, 2.0, 3.0]], [[10.0, 20.0, 30.0]]])     # (2, 1, 3)
    >>> cg.conv_batch_grouped(x, np.ones((2, 1, 2)), batch_groups=2)
    array([[[ 3.,  5.],
            [30., 50.]]])
    """
    x_arr, w_arr, xp = _arrays(x, w)
    groups = _check(x_arr, w_arr, batch_groups)
    return _conv.conv(_to_channels(x_arr, groups, xp), w_arr, b, stride=stride, padding=padding, dilation=dilation,
                      groups=groups, input_dilation=input_dilation, method=method)


def conv_batch_grouped_backward(
    grad_output: ArrayLike,
    x: ArrayLike,
    w: ArrayLike,
    /,
    *,
    batch_groups: int,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    input_dilation: IntOrTuple = 1,
    method: str = "auto",
) -> Grads:
    """All three gradients of :func:`conv_batch_grouped`: ``Grads(input, weight, bias)``.

    Parameters
    ----------
    grad_output : array_like, shape=(N / B, O, *Q)
    x : array_like, shape=(N, C, *S)
    w : array_like, shape=(O, C, *K)
    batch_groups, stride, padding, dilation, input_dilation, method
        As for :func:`conv_batch_grouped`.

    Returns
    -------
    Grads
        ``input`` shaped like ``x``, ``weight`` like ``w``, ``bias`` ``(O,)``.

    Examples
    --------
    >>> import numpy as np
    >>> import convgrad as cg
    >>> x = np.array([[[1.0, 2.0, 3.0]], [[10.0, 20.0, 30.0]]])
    >>> cg.conv_batch_grouped_backward(np.ones((1, 2, 2)), x, np.ones((2, 1, 2)), batch_groups=2).weight
    array([[[ 3.,  5.]],
    <BLANKLINE>
           [[30., 50.]]])
    """
    x_arr, w_arr, xp = _arrays(x, w)
    groups = _check(x_arr, w_arr, batch_groups)
    grads = _conv.conv_backward(grad_output, _to_channels(x_arr, groups, xp), w_arr, stride=stride, padding=padding,
                                dilation=dilation, groups=groups, input_dilation=input_dilation, method=method)
    return Grads(_to_batch(grads.input, groups, xp), grads.weight, grads.bias)
