"""The convolution as an explicit sparse matrix, built from the core's index maps.

Pad and unfold an array that holds each input element's flat index (plus
one, so that a zero marks a padded zero): the windows then say, for every
output position and kernel offset, which input element is read. One
broadcast against the weight gives every non-zero of the matrix at once.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Optional

import numpy as np
import numpy.typing as npt

from ._arguments import (
    IntOrTuple,
    PaddingArg,
    check_array,
    compute_dtype,
    normalize_shape,
    prod,
    result_dtype,
)
from ._geometry import Geometry, conv_geometry, transpose_geometry
from .engine.padding import pad
from .engine.state import get_workspace_budget
from .engine.windows import unfold

Array = npt.NDArray[Any]


class Triplets(NamedTuple):
    """A sparse matrix as coordinate triplets (duplicates not yet summed)."""

    rows: npt.NDArray[np.intp]
    cols: npt.NDArray[np.intp]
    values: Array
    shape: tuple[int, int]


def forward_triplets(geom: Geometry, w: Array) -> Triplets:
    """Triplets of the matrix ``A`` with ``A @ x.ravel() == conv(x, w).ravel()`` for ``geom``.

    ``A[(n, o, q), (n, c, i)] = Σ_{k : pad(x)[q·s + k·δ] reads x[i]} w[o, c − γ(o)·C/G, k]``.
    """
    d, groups = geom.d, geom.groups
    n, c_in, c_out = geom.n, geom.c_in, geom.c_out
    cg, og = c_in // groups, c_out // groups
    source = np.arange(1, n * c_in * prod(geom.in_size) + 1, dtype=np.intp).reshape((n, c_in) + geom.in_size)
    windows = unfold(pad(source, geom), geom)  # (N, C, *Q, *K): flat input index + 1, or 0 for a padded zero
    # every (n, γ, o, c, q, k) in one broadcast: (N, G, 1, C/G, *Q, *K)
    cols = windows.reshape((n, groups, 1, cg) + windows.shape[2:])
    rows = np.arange(n * c_out * prod(geom.out_size), dtype=np.intp).reshape(
        (n, groups, og, 1) + geom.out_size + (1,) * d
    )
    vals = w.reshape((1, groups, og, cg) + (1,) * d + geom.kernel)
    full = np.broadcast_shapes(cols.shape, rows.shape, vals.shape)
    cols_b, rows_b, vals_b = (np.broadcast_to(a, full) for a in (cols, rows, vals))
    keep = cols_b > 0
    return Triplets(
        rows=rows_b[keep],
        cols=cols_b[keep] - 1,
        values=vals_b[keep],
        shape=(prod(geom.output_shape), prod(geom.input_shape)),
    )


def triplet_count(geom: Geometry) -> int:
    """Upper bound on the stored entries: one per (output element, input channel of its group, kernel offset)."""
    return geom.n * geom.c_out * prod(geom.out_size) * (geom.c_in // geom.groups) * prod(geom.kernel)


def matrix_geometry(
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    *,
    stride: object,
    padding: object,
    dilation: object,
    groups: object,
    padding_mode: object,
    transposed: bool,
    output_padding: object,
    w_name: str = "w",
    x_name: str = "input_shape",
) -> Geometry:
    """The forward geometry whose matrix (or its transpose, if ``transposed``) is wanted."""
    if not isinstance(transposed, bool):
        raise TypeError(f"transposed must be True or False; got {transposed!r}")
    if transposed:
        if padding_mode != "zeros":
            raise ValueError(
                f"padding_mode must be 'zeros' for a transposed convolution (as in PyTorch); got {padding_mode!r}"
            )
        return transpose_geometry(
            input_shape, weight_shape, stride=stride, padding=padding, output_padding=output_padding,
            dilation=dilation, groups=groups, x_name=x_name, w_name=w_name,
        )
    if not _is_zero(output_padding):
        raise ValueError(
            f"output_padding applies to transposed convolutions only; got output_padding={output_padding!r}"
        )
    return conv_geometry(
        input_shape, weight_shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode, x_name=x_name, w_name=w_name,
    )


def _is_zero(value: object) -> bool:
    """Whether ``output_padding`` is 0, None or all zeros."""
    if value is None:
        return True
    try:
        return bool(np.all(np.asarray(value) == 0))
    except (TypeError, ValueError):
        return False


def conv_matrix(
    input_shape: tuple[int, ...],
    w: npt.ArrayLike,
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    transposed: bool = False,
    output_padding: IntOrTuple = 0,
) -> Any:
    """The convolution as an explicit ``scipy.sparse`` CSR matrix.

    ``M @ x.ravel() == conv(x, w, ...).ravel()`` and, for real ``w``,
    ``M.T @ g.ravel() == conv_input_grad(g, w, input_shape=x.shape, ...).ravel()``
    (for complex ``w`` the adjoint is ``M.conj().T``). With
    ``transposed=True``, ``M @ x.ravel() == conv_transpose(x, w, ...).ravel()``
    and ``M.T`` is the matrix of its input gradient, a forward convolution.
    The batch is block diagonal: each sample gets the same block.

    Parameters
    ----------
    input_shape : tuple of int
        Shape of ``x``: ``(N, C, *S)`` or ``(C, *S)``.
    w : array_like, shape=(O, C / groups, *K)
        The weight (``(C_in, C_out / groups, *K)`` when ``transposed``).
    stride, padding, dilation, groups, padding_mode
        As for :func:`conv` (``padding_mode`` must be ``"zeros"`` when
        ``transposed``; reflect, replicate and circular padding fold the
        padded entries back onto the input columns they copy).
    transposed : bool
        Build the matrix of :func:`conv_transpose` instead.
    output_padding : int or tuple of int
        As for :func:`conv_transpose` (transposed only).

    Returns
    -------
    scipy.sparse.csr_matrix, shape=(y.size, x.size)
        Float64 for integer or bool weights, float32 for float16 weights,
        otherwise the weight's dtype. Duplicates are summed and explicit zeros
        removed.

    Raises
    ------
    ValueError, TypeError
        For a bad configuration, before any work; also when the matrix would
        need more memory than :func:`get_workspace_budget` (the message says
        how much; raise the budget with :func:`workspace_budget`).
    ImportError
        If SciPy is not installed (``pip install 'convgrad[sparse]'``).

    Notes
    -----
    Every entry comes from the core's own index maps: the padding map and the
    window map are applied to an array of input indices, so the matrix reads
    exactly the elements :func:`conv` reads.

    Examples
    --------
    The 3-tap kernel ``(1, 2, -1)`` on a 5-element signal with padding 1, the
    matrix one would write down by hand:

    >>> import numpy as np
    >>> import convgrad as cg
    >>> M = cg.conv_matrix((1, 1, 5), np.array([[[1.0, 2.0, -1.0]]]), padding=1)
    >>> M.toarray()
    array([[ 2., -1.,  0.,  0.,  0.],
           [ 1.,  2., -1.,  0.,  0.],
           [ 0.,  1.,  2., -1.,  0.],
           [ 0.,  0.,  1.,  2., -1.],
           [ 0.,  0.,  0.,  1.,  2.]])
    >>> M @ np.arange(10.0, 15.0)
    array([ 9., 20., 22., 24., 41.])
    """
    w_arr = check_array(w, "w")
    shape = normalize_shape(input_shape, "input_shape")
    geom = matrix_geometry(
        shape, w_arr.shape, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode, transposed=transposed, output_padding=output_padding,
    )
    dtype = compute_dtype(result_dtype(w_arr))
    check_matrix_budget(geom, dtype)
    sparse = import_scipy_sparse()
    trip = forward_triplets(geom, w_arr.astype(dtype, copy=False))
    m = sparse.coo_matrix((trip.values, (trip.rows, trip.cols)), shape=trip.shape).tocsr()
    if transposed:
        m = m.T.tocsr()
    m.sum_duplicates()
    m.eliminate_zeros()
    return m


def matrix_bytes(geom: Geometry, dtype: np.dtype[Any]) -> int:
    """Peak memory of the construction: the index, value and mask arrays of every candidate entry, twice."""
    per_entry = 2 * np.dtype(np.intp).itemsize + dtype.itemsize + 1
    return 2 * triplet_count(geom) * per_entry


def check_budget(need: int, what: str, doing: str, budget: Optional[int] = None) -> None:
    """Refuse, before any work, something that would need ``need`` bytes, more than the workspace budget.

    The message reads ``"<what>, needing about <n> MiB <doing>, more than the workspace budget of ..."``.
    """
    limit = get_workspace_budget() if budget is None else budget
    if need > limit:
        raise ValueError(
            f"{what}, needing about {need / 2**20:.1f} MiB {doing}, more than the workspace budget of "
            f"{limit / 2**20:.1f} MiB (raise it with convgrad.workspace_budget)"
        )


def check_matrix_budget(geom: Geometry, dtype: np.dtype[Any], budget: Optional[int] = None) -> None:
    """Refuse, before any work, a matrix whose construction would exceed the workspace budget."""
    what = (
        f"the convolution matrix would be {prod(geom.output_shape)} x {prod(geom.input_shape)} with up to "
        f"{triplet_count(geom)} stored entries"
    )
    check_budget(matrix_bytes(geom, dtype), what, "to build", budget)


def import_scipy_sparse(who: str = "conv_matrix") -> Any:
    """``scipy.sparse``, or an ImportError that says that ``who`` needs it and names the extra to install."""
    try:
        import scipy.sparse as sparse
    except ImportError as exc:
        raise ImportError(f"{who} needs SciPy: pip install 'convgrad[sparse]'") from exc
    return sparse
