"""Pictures of one configuration (matplotlib, imported only here, Agg canvas, no pyplot state).

What is drawn stays within the workspace budget plus a small constant: a
configuration whose panels (one sample, its convolution matrix included) would
need more than ``min(budget, PLOT_BYTES)`` is drawn as a smaller configuration
of the same geometry class (:mod:`convgrad._small`), and the figure's title
says so.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from typing import Any

import numpy as np
import numpy.typing as npt

from ._arguments import check_int, prod
from ._geometry import Geometry
from ._matrix import forward_triplets, matrix_bytes
from ._small import class_text, shapes_text, small_geometry
from .engine.state import get_workspace_budget

Array = npt.NDArray[Any]

_WINDOW = "#f28e2b"
_TARGET = "#4e79a7"
_PAD = "#d9d9d9"
_INPUT = "#ffffff"
_MAX_CELLS_ANNOTATED = 15
PLOT_BYTES = 16 * 2**20
"""The most the arrays of a picture may need; above ``min(budget, PLOT_BYTES)`` a smaller configuration is drawn."""
_MAX_DENSE_CELLS = 250_000
"""The matrix panel is a dense image up to this many cells, a scatter of its entries above."""
_DENSE_BYTES_PER_CELL = 32
_PLANE_BYTES_PER_CELL = 64
_TITLE_WIDTH = 150
MAX_DPI = 1000
"""Largest resolution accepted: a 13 × 8.2 inch figure at 1000 dpi is already a 107-megapixel image."""


def import_matplotlib(who: str) -> tuple[Any, Any]:
    """matplotlib's ``Figure`` and Agg canvas, or an ImportError saying that ``who`` needs the ``plot`` extra."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"{who} needs matplotlib: pip install 'convgrad[plot]'") from exc
    return Figure, FigureCanvasAgg


def check_plot_path(path: object, who: str) -> str:
    """Check, before any drawing, that matplotlib can write ``path``; return the file format.

    The format comes from the extension, which must be one matplotlib
    writes (``.png``, ``.pdf``, ``.svg``, ...); without an extension the file
    is a PNG. The directory must exist.
    """
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(name, str):
        raise TypeError(f"{who}: the file name must be a str or a path; got {path!r}")
    _, canvas_cls = import_matplotlib(who)
    formats = sorted(canvas_cls.get_supported_filetypes())
    suffix = os.path.splitext(name)[1].lower()
    if suffix and suffix[1:] not in formats:
        raise ValueError(
            f"{who}: cannot write {name!r}: matplotlib does not write '{suffix}' files "
            f"(it writes {', '.join('.' + f for f in formats)})"
        )
    directory = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{who}: cannot write {name!r}: the directory {directory!r} does not exist")
    return suffix[1:] or "png"


def labelled_triplets(geom: Geometry) -> tuple[Array, Array, Array]:
    """Rows, columns and values of the matrix of ``geom`` for the labelled kernel ``1, 2, …, K``."""
    w = np.broadcast_to(np.arange(1.0, prod(geom.kernel) + 1).reshape(geom.kernel), geom.weight_shape)
    trip = forward_triplets(geom, np.ascontiguousarray(w))
    return trip.rows, trip.cols, trip.values


def drawing_bytes(geom: Geometry) -> int:
    """Memory the panels of one sample of ``geom`` need: the matrix, the spatial planes, the dense pattern."""
    cells = geom.c_out * prod(geom.out_size) * geom.c_in * prod(geom.in_size)
    dense = _DENSE_BYTES_PER_CELL * cells if cells <= _MAX_DENSE_CELLS else 0
    spatial = prod(geom.padded_size) + prod(geom.in_size) + prod(geom.out_size)
    return matrix_bytes(geom, np.dtype(np.float64)) + _PLANE_BYTES_PER_CELL * spatial + dense


def drawn_geometry(geom: Geometry, transposed: bool) -> tuple[Geometry, str]:
    """The configuration to draw (one sample) and, when it is a smaller one, the lines that say so.

    One sample of ``geom`` when its panels need at most ``min(budget, PLOT_BYTES)``,
    else a smaller configuration of the same geometry class, which must fit in
    ``PLOT_BYTES`` (ValueError otherwise: a huge stride, dilation, padding or
    kernel); so a picture never needs more than that, whatever the budget.
    """
    one = dataclasses.replace(geom, n=1)
    need = drawing_bytes(one)
    if need <= min(get_workspace_budget(), PLOT_BYTES):
        return one, ""
    small = small_geometry(one)
    small_need = drawing_bytes(small)
    if small_need > PLOT_BYTES:
        raise ValueError(
            f"cannot draw this configuration: even {shapes_text(small, transposed)}, the smallest of its geometry "
            f"class drawn here, would need about {small_need / 2**20:.1f} MiB, more than the "
            f"{PLOT_BYTES / 2**20:.0f} MiB a picture may use"
        )
    return small, textwrap.fill(
        f"drawn for {shapes_text(small, transposed)}, a smaller configuration with {class_text(transposed)} "
        f"(one sample of the configuration above would need about {need / 2**20:.0f} MiB)", width=_TITLE_WIDTH
    )


def _plane(a: Array, at: tuple[int, ...]) -> Array:
    """The last two spatial axes of a spatial array (1-D becomes one row), leading axes fixed at ``at``."""
    if a.ndim == 1:
        return np.asarray(a[np.newaxis, :])
    return np.asarray(a[tuple(at[: a.ndim - 2])])


def _peak(a: Array) -> tuple[int, ...]:
    """Index of the largest magnitude (the plane to draw for 3-d and higher)."""
    return tuple(int(v) for v in np.unravel_index(int(np.argmax(np.abs(a))), a.shape))


def _grid(ax: Any, values: Array, colors: Array, title: str, *, fmt: str = "{:g}", show: Array | None = None) -> None:
    """Cells with face colours and (for small grids) their values."""
    rows, cols = values.shape
    ax.imshow(colors, interpolation="nearest", aspect="equal")
    ax.set_xticks(np.arange(-0.5, cols, 1), minor=True)
    ax.set_yticks(np.arange(-0.5, rows, 1), minor=True)
    ax.grid(which="minor", color="#7f7f7f", linewidth=0.6)
    ax.tick_params(which="both", length=0, labelsize=7)
    ax.set_xticks(range(cols) if cols <= 20 else [])
    ax.set_yticks(range(rows) if rows <= 20 else [])
    ax.set_title(title, fontsize=9)
    if max(rows, cols) <= _MAX_CELLS_ANNOTATED:
        for r in range(rows):
            for c in range(cols):
                if show is None or show[r, c]:
                    ax.text(c, r, fmt.format(values[r, c]), ha="center", va="center", fontsize=7)


def _rgb(hex_color: str) -> Array:
    return np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def _paint(mask_colors: list[tuple[Array, str]], shape: tuple[int, int], base: str = _INPUT) -> Array:
    img: Array = np.broadcast_to(_rgb(base), shape + (3,)).copy()
    for mask, color in mask_colors:
        img[mask] = _rgb(color)
    return img


def _heat(values: Array, base_mask: Array | None = None) -> Array:
    """White for 0, blue for positive values (kernel labels are positive), grey outside ``base_mask``."""
    peak = float(np.max(np.abs(values))) or 1.0
    t = np.clip(np.abs(values) / peak, 0, 1)[..., np.newaxis]
    img = (1 - t) * _rgb(_INPUT) + t * _rgb(_TARGET) * 0.9 + t * 0.1
    if base_mask is not None:
        img[~base_mask] = _rgb(_PAD)
    return np.asarray(img)


def plot_explanation(geom: Geometry, transposed: bool, title: str, path: str, *, dpi: int = 110) -> str:
    """Draw :meth:`Explanation.plot`'s six panels of the configuration ``geom`` to ``path``."""
    fmt = check_plot_path(path, "Explanation.plot")
    dpi = check_int(dpi, "dpi", 1, MAX_DPI)
    figure_cls, canvas_cls = import_matplotlib("Explanation.plot")
    geom, smaller = drawn_geometry(geom, transposed)
    d = geom.d
    rows, cols, vals = labelled_triplets(geom)
    if transposed:  # the operation is Aᵀ: its outputs are A's inputs
        rows, cols = cols, rows
        in_size, out_size, c_op_in, c_op_out = geom.out_size, geom.in_size, geom.c_out, geom.c_in
    else:
        in_size, out_size, c_op_in, c_op_out = geom.in_size, geom.out_size, geom.c_in, geom.c_out
    n_in, n_out = c_op_in * prod(in_size), c_op_out * prod(out_size)  # one sample

    fig = figure_cls(figsize=(13, 8.2))
    canvas_cls(fig)
    axes = fig.subplots(2, 3)
    kernel_labels = np.arange(1, prod(geom.kernel) + 1).reshape(geom.kernel)

    # the highlighted output element: the middle of the output; the highlighted input element: the one read
    # by that output element nearest to the middle of the input (so that both footprints are not empty)
    q_star = tuple(q // 2 for q in out_size)
    out_flat = int(np.ravel_multi_index(q_star, out_size))  # channel 0
    row_fp: Array = np.zeros(prod(in_size))
    sel = rows == out_flat
    keep = cols[sel] < prod(in_size)  # input channel 0
    np.add.at(row_fp, cols[sel][keep], vals[sel][keep])
    centre = np.array([s // 2 for s in in_size])
    candidates = np.flatnonzero(row_fp)
    if candidates.size:
        coords = np.stack(np.unravel_index(candidates, in_size), axis=1)
        in_flat = int(candidates[np.argmin(np.abs(coords - centre).sum(axis=1))])
    else:
        in_flat = int(np.ravel_multi_index(tuple(centre), in_size))
    i_star = tuple(int(v) for v in np.unravel_index(in_flat, in_size))
    col_fp: Array = np.zeros(prod(out_size))
    sel = cols == in_flat
    keep = rows[sel] < prod(out_size)  # output channel 0
    np.add.at(col_fp, rows[sel][keep], vals[sel][keep])
    row_fp, col_fp = row_fp.reshape(in_size), col_fp.reshape(out_size)

    if not transposed:
        _panel_padded_input(axes[0, 0], geom, q_star, kernel_labels)
    else:
        vals_in = np.zeros(in_size)
        mask = np.zeros(in_size, dtype=bool)
        mask[i_star] = True
        pm = _plane(mask, i_star)
        _grid(axes[0, 0], _plane(vals_in, i_star), _paint([(pm, _WINDOW)], pm.shape),
              f"input x {in_size} (channel 0): element {i_star}", show=np.zeros(pm.shape, bool))
    k_plane = _plane(kernel_labels, tuple(k // 2 for k in geom.kernel))
    _grid(axes[0, 1], k_plane, _paint([(np.ones(k_plane.shape, bool), _WINDOW)], k_plane.shape),
          f"kernel {geom.kernel}, labelled 1..{prod(geom.kernel)}\n"
          f"(taps {geom.dilation} apart in the {'output' if transposed else 'input'})")
    if not transposed:
        mask = np.zeros(out_size, dtype=bool)
        mask[q_star] = True
        pm = _plane(mask, q_star)
        _grid(axes[0, 2], np.zeros(pm.shape), _paint([(pm, _TARGET)], pm.shape),
              f"output y {out_size}: element {q_star}\nreads the highlighted window", show=np.zeros(pm.shape, bool))
    else:
        pf = _plane(col_fp, _peak(col_fp))
        _grid(axes[0, 2], pf, _heat(pf),
              f"output y {out_size}: what x{i_star} writes\n(the kernel, stride {geom.stride})", show=pf != 0)

    _panel_matrix(axes[1, 0], rows, cols, n_out, n_in, out_flat, in_flat)

    col_note, row_note = ("the kernel as is", "the kernel flipped") if transposed else ("the kernel flipped",
                                                                                          "the kernel as is")
    pc = _plane(col_fp, _peak(col_fp))
    _grid(axes[1, 1], pc, _heat(pc),
          f"footprint of x{i_star} on y: ∂y/∂x{i_star}\n(a matrix column: {col_note})", show=pc != 0)
    pr = _plane(row_fp, _peak(row_fp))
    _grid(axes[1, 2], pr, _heat(pr),
          f"footprint of y{q_star} on x: ∂y{q_star}/∂x\n(a matrix row: {row_note})", show=pr != 0)
    if d >= 3:
        fig.text(0.5, 0.005, "3-d and higher: the last two spatial axes are drawn, through the highlighted element",
                 ha="center", fontsize=8)
    fig.suptitle(f"{title}\n{smaller}" if smaller else title, fontsize=10)
    fig.tight_layout(rect=(0, 0.02, 1, 0.96 - 0.02 * smaller.count("\n") - (0.02 if smaller else 0)))
    fig.savefig(path, dpi=dpi, format=fmt)
    return path


def _panel_padded_input(ax: Any, geom: Any, q_star: tuple[int, ...], labels: Array) -> None:
    """The padded input, its padding grey, the window of output ``q_star`` in orange with the kernel labels."""
    padded = geom.padded_size
    inside = np.zeros(padded, dtype=bool)
    inside[tuple(slice(lo, lo + s) for lo, s in zip(geom.pad_lo, geom.in_size))] = True
    window = np.zeros(padded, dtype=bool)
    tap_label = np.zeros(padded)
    for k in np.ndindex(*geom.kernel):
        p = tuple(q * s + kk * dl for q, s, kk, dl in zip(q_star, geom.stride, k, geom.dilation))
        window[p] = True
        tap_label[p] = labels[k]
    at = tuple(q * s for q, s in zip(q_star, geom.stride))
    pin, pwin, plab = _plane(inside, at), _plane(window, at), _plane(tap_label, at)
    colors = _paint([(~pin, _PAD), (pwin, _WINDOW)], pin.shape)
    pads = ", ".join(f"({lo}, {hi})" for lo, hi in zip(geom.pad_lo, geom.pad_hi))
    _grid(ax, plab, colors,
          f"padded input {padded} (grey: {geom.padding_mode} padding {pads})\n"
          f"window of y{q_star}, stride {geom.stride}",
          fmt="{:.0f}", show=pwin)


def _panel_matrix(ax: Any, rows: Array, cols: Array, n_out: int, n_in: int, out_flat: int, in_flat: int) -> None:
    """The sparsity pattern of one sample's block of the convolution matrix."""
    if n_out * n_in <= _MAX_DENSE_CELLS:
        dense = np.zeros((n_out, n_in), dtype=bool)
        dense[rows, cols] = True
        img = _paint([(dense, "#333333")], dense.shape)
        img[out_flat][~dense[out_flat]] = _rgb("#dbe6f1")
        img[:, in_flat][~dense[:, in_flat]] = _rgb("#fbe3cd")
        ax.imshow(img, interpolation="nearest", aspect="auto")
    else:
        ax.scatter(cols, rows, s=0.5, marker="s", color="#333333", linewidths=0)
        ax.set_xlim(-0.5, n_in - 0.5)
        ax.set_ylim(n_out - 0.5, -0.5)
    ax.axhline(out_flat, color=_TARGET, linewidth=0.8, alpha=0.7)
    ax.axvline(in_flat, color=_WINDOW, linewidth=0.8, alpha=0.7)
    ax.set_xlabel(f"input element (flat index, {n_in})", fontsize=8)
    ax.set_ylabel(f"output element (flat index, {n_out})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"convolution matrix M, one sample: {n_out} x {n_in}, {len(rows)} stored entries\n"
                 "blue: row of the highlighted output, orange: column of the input", fontsize=9)


def plot_matrix(m: Any, path: str, title: str, *, dpi: int = 110, who: str = "plot_matrix") -> str:
    """The sparsity pattern of a ``scipy.sparse`` matrix, drawn to ``path``."""
    fmt = check_plot_path(path, who)
    dpi = check_int(dpi, "dpi", 1, MAX_DPI)
    figure_cls, canvas_cls = import_matplotlib(who)
    coo = m.tocoo()
    rows, cols = m.shape
    fig = figure_cls(figsize=(7, 7 * min(2.0, max(0.35, rows / max(1, cols)))))
    canvas_cls(fig)
    ax = fig.subplots()
    size = max(0.2, min(20.0, 40000.0 / max(1, rows * cols) ** 0.5 / 10))
    ax.scatter(coo.col, coo.row, s=size, marker="s", c=np.asarray(coo.data, dtype=float), cmap="viridis",
               linewidths=0)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlabel(f"input element (flat index, {cols})", fontsize=8)
    ax.set_ylabel(f"output element (flat index, {rows})", fontsize=8)
    ax.set_title(f"{title}\n{m.nnz} stored entries, coloured by value", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, format=fmt)
    return path
