"""The compiled kernels of :mod:`convgrad.engine.jit` (imports Numba: imported only when a compiled route is used).

Every array comes flat (1-d, contiguous). Geometry is passed as scalars or
``int64`` vectors of three entries (fewer spatial dimensions are padded to
three with sizes of 1), built and remembered by :mod:`convgrad.engine.jit`.

The depthwise kernels work on one ``(sample, channel)`` plane at a time, in
per-thread scratch that stays in the cache:

1. :func:`fill` copies the plane into a zero-padded buffer split into its
   stride phases (``B[r][t] = x[t·s + r − l]``, zero outside the input), so
   that every kernel tap becomes one constant shift of a flat index and every
   stride becomes 1;
2. :func:`gather` then computes the output over a flat grid of the buffer's
   row width (a few junk columns per row, never copied out) in long
   contiguous loops that LLVM vectorises, three taps per pass;
3. the valid grid entries are copied to the output.

Where the stride is 1 and the output rows are as wide as the input rows,
:func:`row_forward` and :func:`row_weight` use a buffer padded along the rows
only (see the comment above :func:`row_fill`): one contiguous copy per plane
and kernel column, and the grid is the output plane itself.

Zero padding is real zeros in the buffer, so ``0·NaN`` terms appear exactly
where PyTorch's padded convolution has them. The input gradient gathers from
the zero-padded upstream gradient per input phase; where a channel's weight is
not finite it takes the exact scatter kernel (:func:`input_plane_exact`), so
that only real terms reach the result. The weight gradient sums
``g · B`` over the grid with the junk columns of ``g`` set to zero; where a
plane of ``x`` is not finite (``0·inf`` would make a NaN) it sums over the
valid rows only (:func:`weight_plane_rows`). Partial sums are in the data's
dtype over at most :data:`CHUNK` grid entries, then added in float64.
"""

from __future__ import annotations

from typing import Any

import numba  # type: ignore[import-untyped, unused-ignore]
import numpy as np
import numpy.typing as npt

Array = npt.NDArray[Any]

CHUNK = 1024
"""Grid entries per partial sum of the weight gradient (summed in the data's dtype, then added in float64)."""

CHAIN = 128
"""Products per chain of sums of the thin layers' forward kernel before it adds them into ``y``: ``4·K`` (four
input channels) or more, up to this (float32 errors no larger than the gemm route's, whose GEMMs sum ``C·K``)."""

# "reassoc" lets the loops over the grid vectorise (the sums are reordered); "contract" fuses multiply-adds.
# No flag assumes finite values, so NaN and infinity propagate as in plain arithmetic.
_njit = numba.njit(cache=True, nogil=True, fastmath={"reassoc", "contract"}, error_model="numpy")


@_njit  # type: ignore[misc, unused-ignore]
def cdiv(a: int, b: int) -> int:  # pragma: no cover - compiled
    """``ceil(a / b)`` for ``b > 0``."""
    return -((-a) // b)


@_njit  # type: ignore[misc, unused-ignore]
def copy(dst: Array, d0: int, src: Array, s0: int, m: int) -> None:  # pragma: no cover - compiled
    """``dst[d0:d0 + m] = src[s0:s0 + m]`` (unsigned indices: no wrap-around test, so LLVM vectorises it)."""
    ud, us = np.uint64(d0), np.uint64(s0)
    for j in range(np.uint64(m)):
        dst[ud + j] = src[us + j]


@_njit  # type: ignore[misc, unused-ignore]
def zero(dst: Array, d0: int, m: int) -> None:  # pragma: no cover - compiled
    """``dst[d0:d0 + m] = 0``."""
    ud = np.uint64(d0)
    for j in range(np.uint64(m)):
        dst[ud + j] = 0


@_njit  # type: ignore[misc, unused-ignore]
def fill(src: Array, so: int, buf: Array, bo: int, pstride: int, s: Array, lo: Array, n: Array,
         t: Array) -> None:  # pragma: no cover - compiled
    """``buf[bo + r·pstride + t] = src[so + z1·n2·n3 + z2·n3 + z3]`` with ``z = t·s + r − lo``; 0 outside ``n``.

    One plane's ``s1·s2·s3`` phases of shape ``t`` (flat; ``r`` the phase index, ``t`` the flat position in the
    phase), each phase ``pstride`` apart: several planes are stacked in one buffer by their ``bo``.
    """
    s1, s2, s3 = s[0], s[1], s[2]
    l1, l2, l3 = lo[0], lo[1], lo[2]
    n1, n2, n3 = n[0], n[1], n[2]
    t1n, t2n, t3n = t[0], t[1], t[2]
    one_lo = min(t3n, max(0, l3))  # the row's copied range when s3 == 1
    one_hi = max(one_lo, min(t3n, n3 + l3))
    for r1 in range(s1):
        for r2 in range(s2):
            for t1 in range(t1n):
                z1 = t1 * s1 + r1 - l1
                for t2 in range(t2n):
                    z2 = t2 * s2 + r2 - l2
                    at = (t1 * t2n + t2) * t3n
                    if z1 < 0 or z1 >= n1 or z2 < 0 or z2 >= n2:
                        for r3 in range(s3):
                            zero(buf, bo + ((r1 * s2 + r2) * s3 + r3) * pstride + at, t3n)
                        continue
                    first = so + (z1 * n2 + z2) * n3 - l3
                    if s3 == 2:  # both phases in one pass over the row: LLVM vectorises it with shuffles
                        row0 = bo + (r1 * s2 + r2) * 2 * pstride + at
                        row1 = row0 + pstride
                        m0 = min(t3n, max(0, cdiv(l3, 2)))
                        m1 = max(m0, min(t3n, (n3 + l3) // 2))
                        for j in range(m0):
                            buf[row0 + j] = src[first + 2 * j] if 2 * j - l3 >= 0 else 0
                            buf[row1 + j] = src[first + 2 * j + 1] if 0 <= 2 * j + 1 - l3 < n3 else 0
                        ud0, ud1, us = np.uint64(row0 + m0), np.uint64(row1 + m0), np.uint64(first + 2 * m0)
                        for j in range(np.uint64(m1 - m0)):
                            buf[ud0 + j] = src[us + 2 * j]
                            buf[ud1 + j] = src[us + 2 * j + 1]
                        for j in range(m1, t3n):
                            buf[row0 + j] = src[first + 2 * j] if 0 <= 2 * j - l3 < n3 else 0
                            buf[row1 + j] = src[first + 2 * j + 1] if 0 <= 2 * j + 1 - l3 < n3 else 0
                        continue
                    if s3 == 1:
                        row = bo + (r1 * s2 + r2) * pstride + at
                        zero(buf, row, one_lo)
                        copy(buf, row + one_lo, src, first + one_lo, one_hi - one_lo)
                        zero(buf, row + one_hi, t3n - one_hi)
                        continue
                    for r3 in range(s3):
                        row = bo + ((r1 * s2 + r2) * s3 + r3) * pstride + at
                        lo3 = min(t3n, max(0, cdiv(l3 - r3, s3)))
                        hi3 = max(lo3, min(t3n, cdiv(n3 + l3 - r3, s3)))
                        zero(buf, row, lo3)
                        for j in range(lo3, hi3):
                            buf[row + j] = src[first + r3 + j * s3]
                        zero(buf, row + hi3, t3n - hi3)


@_njit  # type: ignore[misc, unused-ignore]
def gather(buf: Array, grid: Array, size: int, w: Array, wo: int, taps: Array, offs: Array) -> None:  # pragma: no cover
    """``grid[i] = Σ_t w[wo + taps[t]] · buf[i + offs[t]]`` for ``i < size``, three taps per pass."""
    count = taps.shape[0]
    out = grid[:size]
    t = 0
    first = True
    while t + 9 <= count:  # nine taps a pass: 9 loads and 1 store per 9 multiply-adds (3·3 is the common kernel)
        a0, a1, a2 = w[wo + taps[t]], w[wo + taps[t + 1]], w[wo + taps[t + 2]]
        a3, a4, a5 = w[wo + taps[t + 3]], w[wo + taps[t + 4]], w[wo + taps[t + 5]]
        a6, a7, a8 = w[wo + taps[t + 6]], w[wo + taps[t + 7]], w[wo + taps[t + 8]]
        b0 = buf[offs[t]:offs[t] + size]
        b1 = buf[offs[t + 1]:offs[t + 1] + size]
        b2 = buf[offs[t + 2]:offs[t + 2] + size]
        b3 = buf[offs[t + 3]:offs[t + 3] + size]
        b4 = buf[offs[t + 4]:offs[t + 4] + size]
        b5 = buf[offs[t + 5]:offs[t + 5] + size]
        b6 = buf[offs[t + 6]:offs[t + 6] + size]
        b7 = buf[offs[t + 7]:offs[t + 7] + size]
        b8 = buf[offs[t + 8]:offs[t + 8] + size]
        if first:
            for i in range(np.uint64(size)):
                out[i] = ((a0 * b0[i] + a1 * b1[i] + a2 * b2[i]) + (a3 * b3[i] + a4 * b4[i] + a5 * b5[i])
                          + (a6 * b6[i] + a7 * b7[i] + a8 * b8[i]))
        else:
            for i in range(np.uint64(size)):
                out[i] += ((a0 * b0[i] + a1 * b1[i] + a2 * b2[i]) + (a3 * b3[i] + a4 * b4[i] + a5 * b5[i])
                           + (a6 * b6[i] + a7 * b7[i] + a8 * b8[i]))
        first = False
        t += 9
    while t + 3 <= count:
        a0, a1, a2 = w[wo + taps[t]], w[wo + taps[t + 1]], w[wo + taps[t + 2]]
        b0 = buf[offs[t]:offs[t] + size]
        b1 = buf[offs[t + 1]:offs[t + 1] + size]
        b2 = buf[offs[t + 2]:offs[t + 2] + size]
        if first:
            for i in range(size):
                out[i] = a0 * b0[i] + a1 * b1[i] + a2 * b2[i]
        else:
            for i in range(size):
                out[i] += a0 * b0[i] + a1 * b1[i] + a2 * b2[i]
        first = False
        t += 3
    if t + 2 == count:
        a0, a1 = w[wo + taps[t]], w[wo + taps[t + 1]]
        b0 = buf[offs[t]:offs[t] + size]
        b1 = buf[offs[t + 1]:offs[t + 1] + size]
        if first:
            for i in range(size):
                out[i] = a0 * b0[i] + a1 * b1[i]
        else:
            for i in range(size):
                out[i] += a0 * b0[i] + a1 * b1[i]
    elif t + 1 == count:
        a0 = w[wo + taps[t]]
        b0 = buf[offs[t]:offs[t] + size]
        if first:
            for i in range(size):
                out[i] = a0 * b0[i]
        else:
            for i in range(size):
                out[i] += a0 * b0[i]


@_njit  # type: ignore[misc, unused-ignore]
def phase_buffers(v: Array, like: Array, zeroed: bool) -> tuple[Array, Array]:  # pragma: no cover - compiled
    """A thread's phase buffer of ``nb`` planes and its grid (``zeroed``: the weight gradient's ``g`` on the grid,
    whose junk entries stay zero), in ``like``'s dtype, for the forward pass and weight gradient's ``v``."""
    s, t, size, nb = v[0:3], v[12:15], v[16], v[17]
    plane = t[0] * t[1] * t[2]
    buf = np.empty(s[0] * s[1] * s[2] * plane * nb, dtype=like.dtype)
    count = (nb - 1) * plane + max(size, 1)
    grid = np.zeros(count, dtype=like.dtype) if zeroed else np.empty(count, dtype=like.dtype)
    return buf, grid


@_njit  # type: ignore[misc, unused-ignore]
def dw_forward(x: Array, w: Array, y: Array, v: Array, taps: Array, offs: Array, bias: Array, i0: int,
               i1: int) -> None:  # pragma: no cover - compiled
    """Depthwise forward over work items ``[i0, i1)``: item ``c·blocks + b`` is channel ``c`` of samples
    ``b·nb …`` (``nb`` planes stacked in one buffer, so that small planes still make long loops).

    ``v``: stride, low padding, input, output and phase sizes (3 each), C, one plane's grid, nb, N; ``bias``: one
    value per channel added as each plane is written, or empty.
    """
    s, lo, n, q, t = v[0:3], v[3:6], v[6:9], v[9:12], v[12:15]
    c_count, size, nb = v[15], v[16], v[17]
    batch = x.shape[0] // (c_count * n[0] * n[1] * n[2])
    blocks = cdiv(batch, nb)
    kk = taps.shape[0]
    plane = t[0] * t[1] * t[2]
    buf, grid = phase_buffers(v, y, False)
    nin, nout = n[0] * n[1] * n[2], q[0] * q[1] * q[2]
    for item in range(i0, i1):
        c, n0 = item // blocks, (item % blocks) * nb
        m = min(nb, batch - n0)
        for j in range(m):
            fill(x, ((n0 + j) * c_count + c) * nin, buf, j * plane, nb * plane, s, lo, n, t)
        gather(buf, grid, (m - 1) * plane + size, w, c * kk, taps, offs)
        for j in range(m):
            yo = ((n0 + j) * c_count + c) * nout
            for a1 in range(q[0]):
                for a2 in range(q[1]):
                    d0, s0 = yo + (a1 * q[1] + a2) * q[2], j * plane + (a1 * t[1] + a2) * t[2]
                    if bias.shape[0]:
                        copy_add(y, d0, grid, s0, q[2], bias[c])
                    else:
                        copy(y, d0, grid, s0, q[2])


@_njit  # type: ignore[misc, unused-ignore]
def taps_finite(w: Array, c: int, kk: int) -> bool:  # pragma: no cover - compiled
    """Whether channel ``c``'s ``kk`` weight taps are all finite."""
    for i in range(kk):
        if not np.isfinite(w[c * kk + i]):
            return False
    return True


@_njit  # type: ignore[misc, unused-ignore]
def input_plane_exact(g: Array, w: Array, gx: Array, v: Array, p: int) -> None:  # pragma: no cover - compiled
    """Input gradient of plane ``p`` by scattering each real term ``w[k]·g[q]`` (no zero-padded operand)."""
    s, dl, lo, n, q, k = v[0:3], v[3:6], v[6:9], v[9:12], v[12:15], v[15:18]
    c_count = v[18]
    kk = k[0] * k[1] * k[2]
    c = p % c_count
    nin, nout = n[0] * n[1] * n[2], q[0] * q[1] * q[2]
    out = gx[p * nin:(p + 1) * nin]
    for i in range(nin):
        out[i] = 0
    for a1 in range(q[0]):
        for i1 in range(k[0]):
            z1 = a1 * s[0] + i1 * dl[0] - lo[0]
            if z1 < 0 or z1 >= n[0]:
                continue
            for a2 in range(q[1]):
                grow = p * nout + (a1 * q[1] + a2) * q[2]
                for i2 in range(k[1]):
                    z2 = a2 * s[1] + i2 * dl[1] - lo[1]
                    if z2 < 0 or z2 >= n[1]:
                        continue
                    for i3 in range(k[2]):
                        off = i3 * dl[2] - lo[2]
                        j0 = max(0, cdiv(-off, s[2]))
                        j1 = min(q[2], cdiv(n[2] - off, s[2]))
                        wv = w[c * kk + (i1 * k[1] + i2) * k[2] + i3]
                        for j in range(j0, j1):
                            out[(z1 * n[1] + z2) * n[2] + j * s[2] + off] += wv * g[grow + j]


@_njit  # type: ignore[misc, unused-ignore]
def _paired(phases: Array, ph: int, s: Array, lo: Array) -> bool:  # pragma: no cover - compiled
    """Whether phases ``ph`` and ``ph + 1`` of :func:`dw_input` are the two column phases (stride 2 along the
    rows) of the same rows, their first columns one apart: their outputs interleave."""
    if s[2] != 2 or ph + 1 >= phases.shape[0]:
        return False
    a, b = phases[ph], phases[ph + 1]
    for i in (0, 1, 3, 4, 6, 7):
        if a[i] != b[i]:
            return False
    return bool(abs((a[2] * 2 + a[8]) - (b[2] * 2 + b[8])) == 1)


@_njit  # type: ignore[misc, unused-ignore]
def dw_input(g: Array, w: Array, gx: Array, v: Array, ev: Array, phases: Array, taps: Array, offs: Array,
             i0: int, i1: int) -> None:  # pragma: no cover - compiled
    """Depthwise input gradient over work items ``[i0, i1)`` (as :func:`dw_forward`), gathered per input phase
    from the zero-padded ``g``.

    ``v``: the buffer's sizes ``u`` (3), its first index ``t_lo`` (3), the
    largest phase grid, whether some input positions get no term (zero first),
    nb, N; ``ev``: the exact kernel's vector; ``phases``: one row per phase,
    ``a_lo`` (3), counts (3), residue (3), grid size, first and end tap.
    """
    buf, grid, grid2 = input_buffers(v, gx)
    dw_input_items(g, w, gx, v, ev, phases, taps, offs, i0, i1, buf, grid, grid2)


@_njit  # type: ignore[misc, unused-ignore]
def input_buffers(v: Array, like: Array) -> tuple[Array, Array, Array]:  # pragma: no cover - compiled
    """A thread's buffer of ``g`` and the two grids of :func:`dw_input` (its ``v``), in ``like``'s dtype."""
    plane, nb = v[0] * v[1] * v[2], v[8]
    grid = np.empty((nb - 1) * plane + max(v[6], 1), dtype=like.dtype)
    return np.empty(plane * nb, dtype=like.dtype), grid, np.empty_like(grid)


@_njit  # type: ignore[misc, unused-ignore]
def dw_input_items(g: Array, w: Array, gx: Array, v: Array, ev: Array, phases: Array, taps: Array, offs: Array,
                   i0: int, i1: int, buf: Array, grid: Array, grid2: Array) -> None:  # pragma: no cover - compiled
    """:func:`dw_input` in the caller's ``buf`` and two grids."""
    u, tlo = v[0:3], v[3:6]
    zero_first, nb = v[7], v[8]
    s, lo, n, q = ev[0:3], ev[6:9], ev[9:12], ev[12:15]
    c_count = ev[18]
    batch = g.shape[0] // (c_count * q[0] * q[1] * q[2])
    blocks = cdiv(batch, nb)
    kk = ev[15] * ev[16] * ev[17]
    ones = np.ones(3, dtype=np.int64)
    neg = -tlo
    plane = u[0] * u[1] * u[2]
    nin, nout = n[0] * n[1] * n[2], q[0] * q[1] * q[2]
    for item in range(i0, i1):
        c, n0 = item // blocks, (item % blocks) * nb
        m = min(nb, batch - n0)
        if not taps_finite(w, c, kk):
            for j in range(m):
                input_plane_exact(g, w, gx, ev, (n0 + j) * c_count + c)
            continue
        for j in range(m):
            fill(g, ((n0 + j) * c_count + c) * nout, buf, j * plane, plane, ones, neg, q, u)
            if zero_first:
                zero(gx, ((n0 + j) * c_count + c) * nin, nin)
        ph = 0
        while ph < phases.shape[0]:
            row = phases[ph]
            gather(buf, grid, (m - 1) * plane + row[9], w, c * kk, taps[row[10]:row[11]], offs[row[10]:row[11]])
            if _paired(phases, ph, s, lo):  # both column phases of these rows: one interleaved pass writes them
                other = phases[ph + 1]
                gather(buf, grid2, (m - 1) * plane + other[9], w, c * kk, taps[other[10]:other[11]],
                       offs[other[10]:other[11]])
                za, zb = row[2] * 2 + row[8] - lo[2], other[2] * 2 + other[8] - lo[2]
                ga, gb, ca, cb = (grid, grid2, row[5], other[5]) if za < zb else (grid2, grid, other[5], row[5])
                for j in range(m):
                    go = ((n0 + j) * c_count + c) * nin
                    for b1 in range(row[3]):
                        z1 = (b1 + row[0]) * s[0] + row[6] - lo[0]
                        for b2 in range(row[4]):
                            z2 = (b2 + row[1]) * s[1] + row[7] - lo[1]
                            src = j * plane + (b1 * u[1] + b2) * u[2]
                            first = go + (z1 * n[1] + z2) * n[2] + min(za, zb)
                            both = min(ca, cb)
                            ud, us = np.uint64(first), np.uint64(src)
                            for k in range(np.uint64(both)):
                                gx[ud + 2 * k] = ga[us + k]
                                gx[ud + 2 * k + 1] = gb[us + k]
                            for k in range(both, ca):
                                gx[first + 2 * k] = ga[src + k]
                            for k in range(both, cb):
                                gx[first + 2 * k + 1] = gb[src + k]
                ph += 2
                continue
            for j in range(m):
                go = ((n0 + j) * c_count + c) * nin
                for b1 in range(row[3]):
                    z1 = (b1 + row[0]) * s[0] + row[6] - lo[0]
                    for b2 in range(row[4]):
                        z2 = (b2 + row[1]) * s[1] + row[7] - lo[1]
                        src = j * plane + (b1 * u[1] + b2) * u[2]
                        first = go + (z1 * n[1] + z2) * n[2] + row[2] * s[2] + row[8] - lo[2]
                        if s[2] == 1:
                            copy(gx, first, grid, src, row[5])
                        else:
                            for k in range(row[5]):
                                gx[first + k * s[2]] = grid[src + k]
            ph += 1


@_njit  # type: ignore[misc, unused-ignore]
def weight_plane_grid(gg: Array, buf: Array, size: int, offs: Array, acc: Array) -> None:  # pragma: no cover
    """``acc[t] += Σ_i gg[i] · buf[i + offs[t]]`` over the grid (junk entries of ``gg`` are zero), nine (then
    three) taps per pass, partial sums over :data:`CHUNK` entries in the data's dtype."""
    count = offs.shape[0]
    nil = np.zeros(1, dtype=gg.dtype)[0]
    t = 0
    while t + 9 <= count:  # nine taps a pass (3·3 is the common kernel): g is read once for all nine
        o0, o1, o2, o3, o4 = offs[t], offs[t + 1], offs[t + 2], offs[t + 3], offs[t + 4]
        o5, o6, o7, o8 = offs[t + 5], offs[t + 6], offs[t + 7], offs[t + 8]
        for i0 in range(0, size, CHUNK):
            i1 = min(size, i0 + CHUNK)
            gs = gg[i0:i1]
            b0, b1, b2 = buf[o0 + i0:o0 + i1], buf[o1 + i0:o1 + i1], buf[o2 + i0:o2 + i1]
            b3, b4, b5 = buf[o3 + i0:o3 + i1], buf[o4 + i0:o4 + i1], buf[o5 + i0:o5 + i1]
            b6, b7, b8 = buf[o6 + i0:o6 + i1], buf[o7 + i0:o7 + i1], buf[o8 + i0:o8 + i1]
            s0 = s1 = s2 = s3 = s4 = s5 = s6 = s7 = s8 = nil
            for i in range(i1 - i0):
                gv = gs[i]
                s0 += gv * b0[i]
                s1 += gv * b1[i]
                s2 += gv * b2[i]
                s3 += gv * b3[i]
                s4 += gv * b4[i]
                s5 += gv * b5[i]
                s6 += gv * b6[i]
                s7 += gv * b7[i]
                s8 += gv * b8[i]
            acc[t] += s0
            acc[t + 1] += s1
            acc[t + 2] += s2
            acc[t + 3] += s3
            acc[t + 4] += s4
            acc[t + 5] += s5
            acc[t + 6] += s6
            acc[t + 7] += s7
            acc[t + 8] += s8
        t += 9
    while t < count:
        m = min(3, count - t)
        o0 = offs[t]
        o1 = offs[t + 1] if m > 1 else o0
        o2 = offs[t + 2] if m > 2 else o0
        for i0 in range(0, size, CHUNK):
            i1 = min(size, i0 + CHUNK)
            gs = gg[i0:i1]
            b0 = buf[o0 + i0:o0 + i1]
            b1 = buf[o1 + i0:o1 + i1]
            b2 = buf[o2 + i0:o2 + i1]
            s0 = nil
            s1 = nil
            s2 = nil
            if m == 3:
                for i in range(i1 - i0):
                    s0 += gs[i] * b0[i]
                    s1 += gs[i] * b1[i]
                    s2 += gs[i] * b2[i]
                acc[t + 1] += s1
                acc[t + 2] += s2
            elif m == 2:
                for i in range(i1 - i0):
                    s0 += gs[i] * b0[i]
                    s1 += gs[i] * b1[i]
                acc[t + 1] += s1
            else:
                for i in range(i1 - i0):
                    s0 += gs[i] * b0[i]
            acc[t] += s0
        t += m


@_njit  # type: ignore[misc, unused-ignore]
def weight_plane_rows(g: Array, go: int, buf: Array, bo: int, q: Array, t: Array, offs: Array,
                      acc: Array) -> None:  # pragma: no cover - compiled
    """``acc[k] += Σ_q g[go + q] · buf[bo + grid(q) + offs[k]]`` over the valid positions only (no junk terms)."""
    nil = np.zeros(1, dtype=buf.dtype)[0]
    for k in range(offs.shape[0]):
        for a1 in range(q[0]):
            part = nil
            for a2 in range(q[1]):
                gs = g[go + (a1 * q[1] + a2) * q[2]:go + (a1 * q[1] + a2 + 1) * q[2]]
                first = bo + (a1 * t[1] + a2) * t[2] + offs[k]
                bs = buf[first:first + q[2]]
                for j in range(q[2]):
                    part += gs[j] * bs[j]
            acc[k] += part


@_njit  # type: ignore[misc, unused-ignore]
def dw_weight(g: Array, x: Array, gw: Array, v: Array, offs: Array, c0: int, c1: int) -> None:  # pragma: no cover
    """Depthwise weight gradient of channels ``[c0, c1)``, each summed over every sample (same ``v`` as forward)."""
    buf, gg = phase_buffers(v, x, True)
    dw_weight_channels(g, x, gw, v, offs, c0, c1, buf, gg, np.zeros(offs.shape[0], dtype=np.float64))


@_njit  # type: ignore[misc, unused-ignore]
def dw_weight_channels(g: Array, x: Array, gw: Array, v: Array, offs: Array, c0: int, c1: int, buf: Array, gg: Array,
                       acc: Array) -> None:  # pragma: no cover - compiled
    """:func:`dw_weight` in the caller's ``buf``, zeroed ``gg`` (``g`` on the grid) and ``acc`` (float64)."""
    s, lo, n, q, t = v[0:3], v[3:6], v[6:9], v[9:12], v[12:15]
    c_count, size, nb = v[15], v[16], v[17]
    batch = g.shape[0] // (c_count * q[0] * q[1] * q[2])
    kk = offs.shape[0]
    plane = t[0] * t[1] * t[2]
    nin, nout = n[0] * n[1] * n[2], q[0] * q[1] * q[2]
    nil = np.zeros(1, dtype=buf.dtype)[0]
    for c in range(c0, c1):
        acc[:] = 0.0
        for n0 in range(0, batch, nb):
            m = min(nb, batch - n0)
            for j in range(m):
                fill(x, ((n0 + j) * c_count + c) * nin, buf, j * plane, nb * plane, s, lo, n, t)
            check = nil
            for i in range(buf.shape[0]):
                check += buf[i] * nil
            if check != 0 or not np.isfinite(check):  # 0·inf in the junk terms: sum the valid rows only
                for j in range(m):
                    weight_plane_rows(g, ((n0 + j) * c_count + c) * nout, buf, j * plane, q, t, offs, acc)
                continue
            for j in range(m):
                go = ((n0 + j) * c_count + c) * nout
                for a1 in range(q[0]):
                    for a2 in range(q[1]):
                        copy(gg, j * plane + (a1 * t[1] + a2) * t[2], g, go + (a1 * q[1] + a2) * q[2], q[2])
            weight_plane_grid(gg, buf, (m - 1) * plane + size, offs, acc)
        for i in range(kk):
            gw[c * kk + i] = acc[i]


# ----------------------------------------------------------------------------- stride 1, same width: rows padded only
#
# ``rv``: low padding (2), input sizes (2), output rows, buffer rows, dilation (2), kernel (2), C, planes per
# buffer, the buffer's front and back margins, one plane's stride in the buffer, whether a channel whose weight
# is not finite takes the exact scatter kernel (the input gradient), one region's stride. A plane in the buffer
# is its rows, whole and contiguous, between zero rows (no zero columns): the copy in is one contiguous copy and
# the grid has the output's row width. Along the rows, a tap of column shift ``σ = b·δ2 − l2`` would wrap into
# the neighbouring row at the edge columns; each kernel column ``b`` therefore reads its own copy of the planes
# (region ``b``), in which the ``|σ|`` columns that only wrapped reads reach are zero — exactly the padding.


@_njit  # type: ignore[misc, unused-ignore]
def row_fill(src: Array, so: int, buf: Array, j: int, rv: Array) -> None:  # pragma: no cover - compiled
    """Copy the plane ``src[so:so + n1·n2]`` into slot ``j`` of every region (:func:`row_copy`), then zero in
    region ``b`` the columns that only the wrapped reads of shift ``b·δ2 − l2`` reach (:func:`row_zero`)."""
    row_copy(src, so, buf, j, rv)
    row_zero(buf, j, rv)


@_njit  # type: ignore[misc, unused-ignore]
def row_copy(src: Array, so: int, buf: Array, j: int, rv: Array) -> None:  # pragma: no cover - compiled
    """The copies of :func:`row_fill`: the plane ``src[so:so + n1·n2]`` into slot ``j`` of every region."""
    l1, n1, n2, k2 = rv[0], rv[2], rv[3], rv[9]
    margin, pstride, region = rv[12], rv[14], rv[16]
    for b in range(k2):
        copy(buf, b * region + margin + j * pstride + l1 * n2, src, so, n1 * n2)


@_njit  # type: ignore[misc, unused-ignore]
def row_zero(buf: Array, j: int, rv: Array) -> None:  # pragma: no cover - compiled
    """The zeros of :func:`row_fill`: in slot ``j`` of region ``b``, the columns that only the wrapped reads of
    shift ``b·δ2 − l2`` reach. (Written after the copies of a whole block of planes, not after each plane's, these
    stores took 0.08 instead of 0.18 ms per forward pass of 512 channels at 14², N = 8, one thread.)"""
    l1, l2, n1, n2, d2, k2 = rv[0], rv[1], rv[2], rv[3], rv[7], rv[9]
    margin, pstride, region = rv[12], rv[14], rv[16]
    for b in range(k2):
        at = b * region + margin + j * pstride + l1 * n2
        shift = b * d2 - l2
        lo, hi = (n2 + shift, n2) if shift < 0 else (0, shift)
        for r in range(n1):
            for col in range(lo, hi):
                buf[at + r * n2 + col] = 0


@_njit  # type: ignore[misc, unused-ignore]
def copy_add(dst: Array, d0: int, src: Array, s0: int, m: int, b: Any) -> None:  # pragma: no cover - compiled
    """``dst[d0:d0 + m] = src[s0:s0 + m] + b``."""
    ud, us = np.uint64(d0), np.uint64(s0)
    for j in range(np.uint64(m)):
        dst[ud + j] = src[us + j] + b


@_njit  # type: ignore[misc, unused-ignore]
def add_scalar(dst: Array, d0: int, m: int, b: Any) -> None:  # pragma: no cover - compiled
    """``dst[d0:d0 + m] += b`` (the same sum as :func:`copy_add` from a copy, in place)."""
    ud = np.uint64(d0)
    for j in range(np.uint64(m)):
        dst[ud + j] += b


@_njit  # type: ignore[misc, unused-ignore]
def row_forward(x: Array, w: Array, y: Array, rv: Array, taps: Array, offs: Array, ev: Array, bias: Array, i0: int,
                i1: int) -> None:  # pragma: no cover - compiled
    """Stride-1 same-width correlation over work items ``[i0, i1)`` (as :func:`dw_forward`) on the row-padded
    regions: the depthwise forward pass (``bias`` of length C added as each plane is written, or empty), and with
    flipped ``taps`` the input gradient (``rv[15]``: a channel whose weight is not finite then takes
    :func:`input_plane_exact`, with ``ev``)."""
    buf, grid = row_buffers(rv, y)
    row_forward_items(x, w, y, rv, taps, offs, ev, bias, i0, i1, buf, grid)


@_njit  # type: ignore[misc, unused-ignore]
def row_buffers(rv: Array, like: Array) -> tuple[Array, Array]:  # pragma: no cover - compiled
    """A thread's zeroed row-padded regions and its output grid for the kernels of ``rv``, in ``like``'s dtype."""
    grid = np.empty((rv[11] - 1) * rv[14] + rv[4] * rv[3], dtype=like.dtype)
    return np.zeros(rv[9] * rv[16], dtype=like.dtype), grid


@_njit  # type: ignore[misc, unused-ignore]
def row_forward_items(x: Array, w: Array, y: Array, rv: Array, taps: Array, offs: Array, ev: Array, bias: Array,
                      i0: int, i1: int, buf: Array, grid: Array) -> None:  # pragma: no cover - compiled
    """:func:`row_forward` in the caller's zeroed ``buf`` and its ``grid``."""
    n1, n2, q1n = rv[2], rv[3], rv[4]
    c_count, nb, pstride, exact = rv[10], rv[11], rv[14], rv[15]
    nin, nout = n1 * n2, q1n * n2
    batch = x.shape[0] // (c_count * nin)
    blocks = cdiv(batch, nb)
    kk = taps.shape[0]
    for item in range(i0, i1):
        c, n0 = item // blocks, (item % blocks) * nb
        m = min(nb, batch - n0)
        if exact and not taps_finite(w, c, kk):
            for j in range(m):
                input_plane_exact(x, w, y, ev, (n0 + j) * c_count + c)
            continue
        for j in range(m):  # all the block's copies, then all its zeros (see row_zero)
            row_copy(x, ((n0 + j) * c_count + c) * nin, buf, j, rv)
        for j in range(m):
            row_zero(buf, j, rv)
        if nb == 1:  # large planes: straight into the output (the grid has its row width), the bias added in cache
            yo = (n0 * c_count + c) * nout
            gather(buf, y[yo:yo + nout], nout, w, c * kk, taps, offs)
            if bias.shape[0]:
                add_scalar(y, yo, nout, bias[c])
            continue
        gather(buf, grid, (m - 1) * pstride + nout, w, c * kk, taps, offs)
        for j in range(m):
            if bias.shape[0]:
                copy_add(y, ((n0 + j) * c_count + c) * nout, grid, j * pstride, nout, bias[c])
            else:
                copy(y, ((n0 + j) * c_count + c) * nout, grid, j * pstride, nout)


@_njit  # type: ignore[misc, unused-ignore]
def row_weight(g: Array, x: Array, gw: Array, rv: Array, offs: Array, c0: int, c1: int) -> None:  # pragma: no cover
    """Stride-1 same-width depthwise weight gradient of channels ``[c0, c1)``: :func:`weight_plane_grid` of ``g``
    against the row-padded regions of ``x``, ``nb`` planes stacked per call (:func:`row_weight_channels`)."""
    buf, gg = row_weight_buffers(rv, x)
    row_weight_channels(g, x, gw, rv, offs, c0, c1, buf, np.zeros(offs.shape[0], dtype=np.float64), gg)


@_njit  # type: ignore[misc, unused-ignore]
def row_weight_buffers(rv: Array, like: Array) -> tuple[Array, Array]:  # pragma: no cover - compiled
    """A thread's zeroed row-padded regions and its zeroed grid of ``g`` (``nb`` planes ``rv[14]`` apart, the
    entries between them never written) for :func:`row_weight_channels`."""
    return row_buffers(rv, like)[0], np.zeros((rv[11] - 1) * rv[14] + rv[4] * rv[3], dtype=like.dtype)


@_njit  # type: ignore[misc, unused-ignore]
def row_weight_channels(g: Array, x: Array, gw: Array, rv: Array, offs: Array, c0: int, c1: int, buf: Array,
                        acc: Array, gg: Array) -> None:  # pragma: no cover - compiled
    """:func:`row_weight` in the caller's zeroed ``buf``, ``acc`` (float64, one entry per tap) and zeroed ``gg``.

    Up to ``nb`` samples' planes of a channel are stacked as in :func:`row_forward_items` (their planes of ``g``
    in ``gg``, one plane stride apart, zero in between), so that one pass of the nine taps runs over all of them:
    planes of 14² alone left the vector loops short (512 channels at 14², N = 8, one thread: 0.81 → 0.49 ms).
    The zero entries between the planes meet values of ``x`` that no output reads; where the channel's sums
    then come out non-finite (a NaN or an infinity read, or an overflow), the channel is summed again plane by
    plane over ``g`` itself, which meets exactly the products of the definition.
    """
    n1, n2, q1n = rv[2], rv[3], rv[4]
    c_count, nb, pstride = rv[10], rv[11], rv[14]
    nin, nout = n1 * n2, q1n * n2
    batch = g.shape[0] // (c_count * nout)
    kk = offs.shape[0]
    for c in range(c0, c1):
        acc[:] = 0.0
        if nb > 1:
            for n0 in range(0, batch, nb):
                m = min(nb, batch - n0)
                for j in range(m):
                    row_copy(x, ((n0 + j) * c_count + c) * nin, buf, j, rv)
                    copy(gg, j * pstride, g, ((n0 + j) * c_count + c) * nout, nout)
                for j in range(m):
                    row_zero(buf, j, rv)
                weight_plane_grid(gg, buf, (m - 1) * pstride + nout, offs, acc)
        if nb == 1 or not taps_finite(acc, 0, kk):  # one plane at a time: over g itself, no zeros between planes
            acc[:] = 0.0
            for n in range(batch):
                row_fill(x, (n * c_count + c) * nin, buf, 0, rv)
                go = (n * c_count + c) * nout
                weight_plane_grid(g[go:go + nout], buf, nout, offs, acc)
        for i in range(kk):
            gw[c * kk + i] = acc[i]


# ----------------------------------------------------------------------------- the depthwise backward pass, fused
#
# The input and weight gradients both read every plane of ``g``, and the bias gradient sums it. Run one after the
# other, each pass brings ``g`` (and the result) through the memory again; the depthwise layers are bound by that
# traffic. The drivers below do all three per channel: the channel's planes of ``g`` are read from memory by the
# input gradient and found in the cache by the weight and bias gradients.


@_njit  # type: ignore[misc, unused-ignore]
def channel_sum(g: Array, c: int, c_count: int, nout: int) -> float:  # pragma: no cover - compiled
    """``Σ_{n, q} g[n, c, q]`` for planes of ``nout`` entries: partial sums over :data:`CHUNK` entries in the
    data's dtype, added in float64."""
    batch = g.shape[0] // (c_count * nout)
    nil = np.zeros(1, dtype=g.dtype)[0]
    total = 0.0
    for n in range(batch):
        go = (n * c_count + c) * nout
        for i0 in range(0, nout, CHUNK):
            gs = g[go + i0:go + min(nout, i0 + CHUNK)]
            part = nil
            for i in range(gs.shape[0]):
                part += gs[i]
            total += part
    return total


@_njit  # type: ignore[misc, unused-ignore]
def row_backward(g: Array, x: Array, w: Array, gx: Array, gw: Array, gb: Array, rvi: Array, rvf: Array,
                 itaps: Array, ioffs: Array, offs: Array, ev: Array, c0: int, c1: int) -> None:  # pragma: no cover
    """Input, weight and bias gradients of channels ``[c0, c1)`` where the row-padded kernels apply
    (:func:`row_forward` with ``rvi``, :func:`row_weight` with ``rvf``), channel after channel."""
    bufi, gridi = row_buffers(rvi, gx)
    bufw, gg = row_weight_buffers(rvf, gw)
    acc = np.zeros(offs.shape[0], dtype=np.float64)
    nobias = np.empty(0, dtype=gx.dtype)
    c_count, nout = rvi[10], rvi[2] * rvi[3]
    blocks = cdiv(g.shape[0] // (c_count * nout), rvi[11])
    for c in range(c0, c1):
        row_forward_items(g, w, gx, rvi, itaps, ioffs, ev, nobias, c * blocks, (c + 1) * blocks, bufi, gridi)
        row_weight_channels(g, x, gw, rvf, offs, c, c + 1, bufw, acc, gg)
        gb[c] = channel_sum(g, c, c_count, nout)


@_njit  # type: ignore[misc, unused-ignore]
def dw_backward(g: Array, x: Array, w: Array, gx: Array, gw: Array, gb: Array, iv: Array, ev: Array, phases: Array,
                itaps: Array, ioffs: Array, v: Array, offs: Array, c0: int, c1: int) -> None:  # pragma: no cover
    """Input, weight and bias gradients of channels ``[c0, c1)`` on the phase buffers (:func:`dw_input` with
    ``iv``, :func:`dw_weight` with ``v``), channel after channel."""
    bufi, grid, grid2 = input_buffers(iv, gx)
    bufw, gg = phase_buffers(v, gw, True)
    acc = np.zeros(offs.shape[0], dtype=np.float64)
    c_count, nout = ev[18], ev[12] * ev[13] * ev[14]
    blocks = cdiv(g.shape[0] // (c_count * nout), iv[8])
    for c in range(c0, c1):
        dw_input_items(g, w, gx, iv, ev, phases, itaps, ioffs, c * blocks, (c + 1) * blocks, bufi, grid, grid2)
        dw_weight_channels(g, x, gw, v, offs, c, c + 1, bufw, gg, acc)
        gb[c] = channel_sum(g, c, c_count, nout)


# ----------------------------------------------------------------------------- dense layers: the fold of one block


@_njit  # type: ignore[misc, unused-ignore]
def _run_bounds(k: int, dl: int, lo: int, s: int, size: int, a: int, run: int) -> tuple[int, int]:  # pragma: no cover
    """The positions ``b`` in ``[a, a + run)`` whose tap ``b·s + k·δ − lo`` lies in ``[0, size)``, as ``[b0, b1)``."""
    off = k * dl - lo
    b0 = max(a, cdiv(-off, s))
    b1 = min(a + run, (size - 1 - off) // s + 1)
    return b0, max(b0, b1)


@_njit  # type: ignore[misc, unused-ignore]
def dense_fold(z: Array, gx: Array, v: Array, n: int, q0: int, q1: int, c0: int,
               c1: int) -> None:  # pragma: no cover - compiled
    """``gx[n, c, q·s + k·δ − l] += z[(c, k), q − q0]`` for the channels ``c`` in ``[c0, c1)`` and the flat output
    positions ``q`` in ``[q0, q1)`` of sample ``n`` (taps outside the input are dropped); ``v``: stride,
    dilation, low padding, input size, output size, kernel size (three entries each), channels. The adjoint of
    im2col, in one pass per block instead of one strided ``+=`` per kernel offset; each channel's plane of ``gx``
    is written by one thread, in runs along the last output dimension (a contiguous add at stride 1)."""
    s, dl, lo, sz, qs, ks = v[0:3], v[3:6], v[6:9], v[9:12], v[12:15], v[15:18]
    c_count = v[18]
    kk = ks[0] * ks[1] * ks[2]
    plane = sz[0] * sz[1] * sz[2]
    mb = q1 - q0
    for c in range(c0, c1):
        base = (n * c_count + c) * plane
        for k in range(kk):
            r = c * kk + k
            k1, k2, k3 = k // (ks[1] * ks[2]), (k // ks[2]) % ks[1], k % ks[2]
            a1, rest = q0 // (qs[1] * qs[2]), q0 % (qs[1] * qs[2])
            a2, a3 = rest // qs[2], rest % qs[2]
            j = 0
            while j < mb:
                run = min(qs[2] - a3, mb - j)
                src = r * mb + j - a3
                z1 = a1 * s[0] + k1 * dl[0] - lo[0]
                z2 = a2 * s[1] + k2 * dl[1] - lo[1]
                if 0 <= z1 < sz[0] and 0 <= z2 < sz[1]:
                    b0, b1 = _run_bounds(k3, dl[2], lo[2], s[2], sz[2], a3, run)
                    dst = base + (z1 * sz[1] + z2) * sz[2] + k3 * dl[2] - lo[2]
                    if s[2] == 1:
                        ud, us = np.uint64(dst + b0), np.uint64(src + b0)
                        for i in range(np.uint64(b1 - b0)):
                            gx[ud + i] += z[us + i]
                    else:
                        for b in range(b0, b1):
                            gx[dst + b * s[2]] += z[src + b]
                j += run
                a3 = 0
                a2 += 1
                if a2 == qs[1]:
                    a2 = 0
                    a1 += 1


# The direct kernels of thin dense layers (jit.direct_forward, jit.direct_weight_grad). The input lies on a
# zero-padded grid, one row per channel (convgrad.engine.grid's layout): at stride 1 every kernel offset k is one
# constant shift offs[k] of the flat grid position. A block is `rows` consecutive output rows of one sample (or a
# piece of one row wider than a block): the grid positions from its first output to its last, a span of
# (rows − 1)·pw + cols entries whose pw − cols junk entries per row are computed and never copied out. Four
# output channels are held over the span in a scratch that stays in the cache (L1 for float32) while four input
# channels and every offset are added into it: each pass over the span does 16 multiply-adds per entry from 4
# loads of the input, the weights in registers (im2col would write the K-times-larger window matrix and read it
# back). `blocks` rows: grid position of the block's first output, rows, columns per row, flat index of its first
# output in channel 0 of y (or g); `ystride` is one channel's outputs, `qd` one output row's. The forward kernel
# adds the sums into y after each group of input channels (a multiple of four, at most CHAIN products per output:
# chains of rounded additions no longer than the gemm route's).


@_njit  # type: ignore[misc, unused-ignore]
def _span_max(blocks: Array, pw: int, b0: int, b1: int) -> int:  # pragma: no cover - compiled
    """The longest span of blocks ``[b0, b1)``."""
    most = 0
    for b in range(b0, b1):
        most = max(most, (blocks[b, 1] - 1) * pw + blocks[b, 2])
    return most


@_njit  # type: ignore[misc, unused-ignore]
def direct_forward(xg: Array, wt: Array, y: Array, offs: Array, blocks: Array, pw: int, qd: int, ystride: int,
                   oc: int, b0: int, b1: int) -> None:  # pragma: no cover - compiled
    """``y[o, q] = Σ_{c,k} wt[o, c·K + k] · xg[c, m(q) + offs[k]]`` for the outputs of blocks ``[b0, b1)``
    (``wt`` zero-padded to multiples of four rows and of four channels' columns; its first ``oc`` rows are
    written to ``y``)."""
    kk, last = offs.shape[0], xg.shape[0] - 1
    group = 4 * max(1, CHAIN // (4 * kk))  # input channels per chain of sums (a multiple of four)
    acc = np.empty((4, _span_max(blocks, pw, b0, b1)), dtype=xg.dtype)
    a0, a1, a2, a3 = acc[0], acc[1], acc[2], acc[3]
    for b in range(b0, b1):
        m0, rows, cols, ybase = blocks[b, 0], blocks[b, 1], blocks[b, 2], blocks[b, 3]
        span = np.uint64((rows - 1) * pw + cols)
        for ob in range(0, wt.shape[0], 4):
            for cb in range(0, xg.shape[0], 4):  # (beyond the last channel: its row, times zero weights)
                if cb % group == 0:
                    for q in range(span):
                        a0[q] = 0
                        a1[q] = 0
                        a2[q] = 0
                        a3[q] = 0
                x0, x1, x2, x3 = xg[cb], xg[min(cb + 1, last)], xg[min(cb + 2, last)], xg[min(cb + 3, last)]
                for k in range(kk):
                    j0 = cb * kk + k
                    j1, j2, j3 = j0 + kk, j0 + 2 * kk, j0 + 3 * kk
                    w00, w01, w02, w03 = wt[ob, j0], wt[ob, j1], wt[ob, j2], wt[ob, j3]
                    w10, w11, w12, w13 = wt[ob + 1, j0], wt[ob + 1, j1], wt[ob + 1, j2], wt[ob + 1, j3]
                    w20, w21, w22, w23 = wt[ob + 2, j0], wt[ob + 2, j1], wt[ob + 2, j2], wt[ob + 2, j3]
                    w30, w31, w32, w33 = wt[ob + 3, j0], wt[ob + 3, j1], wt[ob + 3, j2], wt[ob + 3, j3]
                    s = np.uint64(m0 + offs[k])
                    for q in range(span):
                        v0, v1, v2, v3 = x0[s + q], x1[s + q], x2[s + q], x3[s + q]
                        a0[q] += w00 * v0 + w01 * v1 + w02 * v2 + w03 * v3
                        a1[q] += w10 * v0 + w11 * v1 + w12 * v2 + w13 * v3
                        a2[q] += w20 * v0 + w21 * v1 + w22 * v2 + w23 * v3
                        a3[q] += w30 * v0 + w31 * v1 + w32 * v2 + w33 * v3
                if (cb + 4) % group != 0 and cb + 4 < xg.shape[0]:
                    continue
                for i in range(min(4, oc - ob)):  # each group's sums added to y: chains of at most CHAIN sums
                    ai = acc[i]
                    for r in range(rows):
                        d, sr = np.uint64(ybase + (ob + i) * ystride + r * qd), np.uint64(r * pw)
                        if cb < group:
                            for c in range(np.uint64(cols)):
                                y[d + c] = ai[sr + c]
                        else:
                            for c in range(np.uint64(cols)):
                                y[d + c] += ai[sr + c]


@_njit  # type: ignore[misc, unused-ignore]
def direct_weight(g: Array, xg: Array, offs: Array, blocks: Array, pw: int, qd: int, ystride: int, oc: int,
                  op: int, b0: int, b1: int) -> Array:  # pragma: no cover - compiled
    """``Σ_{q in blocks [b0, b1)} g[o, q] · xg[c, m(q) + offs[k]]`` as a float64 ``(op, C'·K)`` array (``op``
    and ``C'``: ``oc`` and the channels rounded up to four; the sums past them are dropped by the caller): each
    block's ``g`` is laid out over its span, zero in the junk entries, and sixteen ``(o, c)`` sums per offset
    run over it in the data's dtype, then are added in float64."""
    kk, last = offs.shape[0], xg.shape[0] - 1
    part = np.zeros((op, (last + 4) // 4 * 4 * kk), dtype=np.float64)
    gs = np.zeros((op, _span_max(blocks, pw, b0, b1)), dtype=xg.dtype)  # rows from oc on stay zero
    zero = np.zeros(1, dtype=xg.dtype)[0]
    for b in range(b0, b1):
        m0, rows, cols, ybase = blocks[b, 0], blocks[b, 1], blocks[b, 2], blocks[b, 3]
        span = np.uint64((rows - 1) * pw + cols)
        for o in range(oc):
            go = gs[o]
            for r in range(rows):
                d, sr = np.uint64(r * pw), np.uint64(ybase + o * ystride + r * qd)
                for c in range(np.uint64(cols)):
                    go[d + c] = g[sr + c]
                if r + 1 < rows:
                    for c in range(np.uint64(cols), np.uint64(pw)):
                        go[d + c] = 0
        for ob in range(0, op, 4):
            g0, g1, g2, g3 = gs[ob], gs[ob + 1], gs[ob + 2], gs[ob + 3]
            for cb in range(0, xg.shape[0], 4):  # (beyond the last channel: sums that are dropped)
                x0, x1, x2, x3 = xg[cb], xg[min(cb + 1, last)], xg[min(cb + 2, last)], xg[min(cb + 3, last)]
                for k in range(kk):
                    s = np.uint64(m0 + offs[k])
                    a00 = a01 = a02 = a03 = a10 = a11 = a12 = a13 = zero
                    a20 = a21 = a22 = a23 = a30 = a31 = a32 = a33 = zero
                    for q in range(span):
                        v0, v1, v2, v3 = x0[s + q], x1[s + q], x2[s + q], x3[s + q]
                        h0, h1, h2, h3 = g0[q], g1[q], g2[q], g3[q]
                        a00 += h0 * v0
                        a01 += h0 * v1
                        a02 += h0 * v2
                        a03 += h0 * v3
                        a10 += h1 * v0
                        a11 += h1 * v1
                        a12 += h1 * v2
                        a13 += h1 * v3
                        a20 += h2 * v0
                        a21 += h2 * v1
                        a22 += h2 * v2
                        a23 += h2 * v3
                        a30 += h3 * v0
                        a31 += h3 * v1
                        a32 += h3 * v2
                        a33 += h3 * v3
                    j = cb * kk + k
                    part[ob, j] += a00
                    part[ob, j + kk] += a01
                    part[ob, j + 2 * kk] += a02
                    part[ob, j + 3 * kk] += a03
                    part[ob + 1, j] += a10
                    part[ob + 1, j + kk] += a11
                    part[ob + 1, j + 2 * kk] += a12
                    part[ob + 1, j + 3 * kk] += a13
                    part[ob + 2, j] += a20
                    part[ob + 2, j + kk] += a21
                    part[ob + 2, j + 2 * kk] += a22
                    part[ob + 2, j + 3 * kk] += a23
                    part[ob + 3, j] += a30
                    part[ob + 3, j + kk] += a31
                    part[ob + 3, j + 2 * kk] += a32
                    part[ob + 3, j + 3 * kk] += a33
    return part
