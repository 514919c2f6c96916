"""The generic route: the three contractions in any array-API namespace (CuPy, torch, array_api_strict, JAX).

Every array library that is not NumPy takes this route (Dask arrays are
handed on to :mod:`convgrad.dask`, which calls the engine block by block).
It uses only functions of the array API standard, so the arrays stay where
they are (a CUDA tensor is computed on its GPU) and the result has their
type. With ``j = (c, k)`` over ``(C/G)·K`` and the windows of one kernel
offset ``k`` taken as one stepped slice of the padded input::

    cols[n, γ, j, q] = pad(x)[n, γ·C/G + c, q·s + k·δ]          (stacked slices, no strided views)
    forward       y[n, γ, o, q] = Σ_j w[γ, o, j] · cols[n, γ, j, q]          (xp.matmul)
    weight grad   gw[γ, o, j]   = Σ_{n,q} g[n, γ, o, q] · cols[n, γ, j, q]   (xp.matmul, summed over n)
    input grad    Z[n, γ, j, q] = Σ_o w[γ, o, j] · g[n, γ, o, q],  gx = pad_adjoint(fold(Z))

``fold`` adds each kernel offset's slab back into a zero array by slice
assignment. Padding with zeros is a zero array and one slice assignment;
reflect, replicate and circular padding take the source index of
:func:`convgrad.engine.padding.source_index` with ``xp.take``, and their
adjoint adds the border slabs back onto their sources. The batch is processed
in chunks that keep the window matrix within the workspace budget (one sample
is the smallest chunk).

This route computes directly: ``method="fft"`` and the cost model are NumPy
measurements and apply to the NumPy routes only. None of the NumPy-only
machinery (``as_strided``, scratch buffers, the copy pool, ``np.pad``) is
used here.
"""

from __future__ import annotations

from typing import Any

from .._geometry import Geometry, prod
from .._namespace import add_at, array_api_compat, itemsize, set_at
from .padding import placement, source_index
from .state import batch_chunks, get_workspace_budget
from .windows import taps

__all__ = ["bias_grad", "forward", "input_grad", "pad", "pad_adjoint", "run", "weight_grad"]


def _all(n: int) -> tuple[slice, ...]:
    return (slice(None),) * n


def pad(x: Any, geom: Geometry, xp: Any) -> Any:
    """The padding map of a batched ``(N, C, *S)`` array: ``(N, C, *P)`` (``x`` itself when it is the identity)."""
    if not geom.pads_input:
        return x
    if geom.padding_mode == "zeros":
        out = xp.zeros(tuple(x.shape[:2]) + geom.padded_size, dtype=x.dtype, device=array_api_compat().device(x))
        src, dst = placement(geom)
        return set_at(out, _all(2) + dst, x[_all(2) + src])
    device = array_api_compat().device(x)
    for axis, (lo, hi, size) in enumerate(zip(geom.pad_lo, geom.pad_hi, geom.in_size), start=2):
        if lo or hi:
            index = xp.asarray(source_index(geom.padding_mode, lo, hi, size).tolist(), dtype=xp.int64, device=device)
            x = xp.take(x, index, axis=axis)
    return x


def pad_adjoint(z: Any, geom: Geometry, xp: Any) -> Any:
    """The adjoint of :func:`pad`: ``(N, C, *P)`` -> ``(N, C, *S)``.

    Zero padding crops (or, after a crop or with input dilation, gathers the
    input's positions back); the other modes add every border slab onto the
    input position it was copied from.
    """
    if not geom.pads_input:
        return z
    if geom.padding_mode == "zeros" and not geom.plain_padding:
        kept, at = placement(geom)
        out = xp.zeros(tuple(z.shape[:2]) + geom.in_size, dtype=z.dtype, device=array_api_compat().device(z))
        return set_at(out, _all(2) + kept, z[_all(2) + at])
    out = z
    for axis, (lo, hi, size) in enumerate(zip(geom.pad_lo, geom.pad_hi, geom.in_size), start=2):
        if lo == 0 and hi == 0:
            continue
        before, after = _all(axis), _all(out.ndim - axis - 1)
        cropped = out[before + (slice(lo, lo + size),) + after]
        if geom.padding_mode == "zeros":
            out = cropped
            continue
        cropped = xp.asarray(cropped, copy=True)
        source = source_index(geom.padding_mode, lo, hi, size)
        for p in [*range(lo), *range(lo + size, lo + size + hi)]:  # the border positions only
            cropped = add_at(cropped, before + (int(source[p]),) + after, out[before + (p,) + after])
        out = cropped
    return out


def _cols(xp_chunk: Any, geom: Geometry, xp: Any) -> Any:
    """The windows of a padded chunk ``(nb, C, *P)`` as ``(nb, G, (C/G)·K, Q)`` matrices."""
    slabs = [xp_chunk[_all(2) + sl] for _, sl in taps(geom)]  # each (nb, C, *Q): one stepped slice
    cols = xp.stack(slabs, axis=2)  # (nb, C, K, *Q)
    nb = cols.shape[0]
    return xp.reshape(cols, (nb, geom.groups, (geom.c_in // geom.groups) * prod(geom.kernel), prod(geom.out_size)))


def _weight_matrices(w: Any, geom: Geometry, xp: Any) -> Any:
    """``w (O, C/G, *K)`` -> ``(G, O/G, (C/G)·K)``."""
    return xp.reshape(w, (geom.groups, geom.c_out // geom.groups, -1))


def _group_rows(g: Any, geom: Geometry, xp: Any) -> Any:
    """``g (nb, O, *Q)`` -> ``(nb, G, O/G, Q)``."""
    return xp.reshape(g, (g.shape[0], geom.groups, geom.c_out // geom.groups, prod(geom.out_size)))


def _chunks(n: int, geom: Geometry, xp: Any, dtype: Any) -> list[tuple[int, int]]:
    """Batch ranges whose window matrices (``C·K·Q`` elements per sample) fit the workspace budget."""
    per_sample = geom.c_in * prod(geom.kernel) * prod(geom.out_size) * itemsize(xp, dtype)
    return list(batch_chunks(n, per_sample, get_workspace_budget()))


def _batched(parts: list[Any], empty_shape: tuple[int, ...], like: Any, xp: Any) -> Any:
    if len(parts) == 1:
        return parts[0]
    if not parts:
        return xp.zeros(empty_shape, dtype=like.dtype, device=array_api_compat().device(like))
    return xp.concat(parts, axis=0)


def forward(x: Any, w: Any, geom: Geometry, xp: Any) -> Any:
    """``y = conv(x, w)`` (no bias): stacked slices and one batched ``xp.matmul`` per chunk."""
    dtype = xp.result_type(x, w)
    w_mat = _weight_matrices(w, geom, xp)
    parts = []
    for n0, n1 in _chunks(x.shape[0], geom, xp, dtype):
        y = xp.matmul(w_mat, _cols(pad(x[n0:n1, ...], geom, xp), geom, xp))  # (nb, G, O/G, Q)
        parts.append(xp.reshape(y, (n1 - n0, geom.c_out) + geom.out_size))
    return _batched(parts, (0, geom.c_out) + geom.out_size, x, xp)


def weight_grad(g: Any, x: Any, geom: Geometry, xp: Any) -> Any:
    """``gw[o, c, k] = Σ_{n,q} g[n, o, q] · U[n, c, q, k]`` (no conjugation)."""
    dtype = xp.result_type(g, x)
    total = xp.zeros(geom.weight_shape, dtype=dtype, device=array_api_compat().device(x))
    for n0, n1 in _chunks(x.shape[0], geom, xp, dtype):
        cols = _cols(pad(x[n0:n1, ...], geom, xp), geom, xp)  # (nb, G, j, Q)
        part = xp.sum(xp.matmul(_group_rows(g[n0:n1, ...], geom, xp), xp.matrix_transpose(cols)), axis=0)
        total = total + xp.reshape(part, geom.weight_shape)
    return total


def _fold(z: Any, geom: Geometry, xp: Any) -> Any:
    """``z (nb, C, K, *Q)`` -> ``(nb, C, *P)``: each kernel offset's slab added at its stepped slice."""
    out = xp.zeros(tuple(z.shape[:2]) + geom.padded_size, dtype=z.dtype, device=array_api_compat().device(z))
    for t, (_, sl) in enumerate(taps(geom)):
        out = add_at(out, _all(2) + sl, z[:, :, t, ...])
    return out


def input_grad(g: Any, w: Any, geom: Geometry, xp: Any) -> Any:
    """``gx = pad_adjoint(fold(Z))``, ``Z = wᵀ g`` per group (no conjugation)."""
    dtype = xp.result_type(g, w)
    w_t = xp.matrix_transpose(_weight_matrices(w, geom, xp))  # (G, j, O/G)
    parts = []
    for n0, n1 in _chunks(g.shape[0], geom, xp, dtype):
        z = xp.matmul(w_t, _group_rows(g[n0:n1, ...], geom, xp))  # (nb, G, j, Q)
        z = xp.reshape(z, (n1 - n0, geom.c_in, prod(geom.kernel)) + geom.out_size)
        parts.append(pad_adjoint(_fold(z, geom, xp), geom, xp))
    return _batched(parts, (0, geom.c_in) + geom.in_size, g, xp)


def bias_grad(g: Any) -> Any:
    """``gb[o] = Σ_{n,q} g[n, o, q]`` in ``g``'s own namespace (Dask: a tree sum)."""
    compat = array_api_compat()
    if compat.is_dask_array(g):
        from .. import dask as dask_route

        return dask_route.bias_grad(g)
    xp = compat.array_namespace(g)
    return xp.sum(g, axis=(0, *range(2, g.ndim)))


_CONTRACTIONS = {"forward": forward, "input": input_grad, "weight": weight_grad}


def run(op: str, a: Any, b: Any, geom: Geometry, method: str = "auto", *, exact: bool = False) -> Any:
    """Contraction ``op`` of two arrays of one namespace (batched, in the compute dtype).

    Dask arrays go to :mod:`convgrad.dask`'s block-wise route; every other
    namespace is computed here, directly (``method`` and ``exact`` matter to
    the NumPy routes only: this route never uses the FFT, so integer data
    come out exact).
    """
    compat = array_api_compat()
    if compat.is_dask_array(a) or compat.is_dask_array(b):
        from .. import dask as dask_route

        return dask_route.run(op, a, b, geom, method, exact=exact)
    return _CONTRACTIONS[op](a, b, geom, compat.array_namespace(a, b))
