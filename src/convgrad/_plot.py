"""Pictures of one configuration (matplotlib, imported only here, Agg canvas, no pyplot state).

What is drawn stays within the workspace budget plus a small constant: a
configuration whose panels (one sample, its convolution matrix included) would
need more than ``min(budget, PLOT_BYTES)`` is drawn as a smaller configuration
of the same geometry class (:mod:`convgrad._small`), and the figure's title
says so.

The pictures never shade a cell by a kernel *label*: the labels ``1 … K``
name the taps (so that the flip can be seen), they are not magnitudes, so
every cell a footprint touches has the same colour and carries its labels as
text. In three or more spatial dimensions every panel shows the plane through
the same connection (one output element, one input element and the kernel
tap between them) and says which depth it is.
"""

from __future__ import annotations

import dataclasses
import os
import textwrap
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from ._arguments import check_int, prod
from ._geometry import Geometry
from ._matrix import forward_triplets, matrix_bytes
from ._recipes import NUMPY_PAD_MODE, Numbers, padding_arg
from ._small import class_text, shapes_text, small_geometry
from .engine.state import get_workspace_budget

Array = npt.NDArray[Any]
Index = tuple[int, ...]

WINDOW = "#f28e2b"
"""Orange: the input side (a window, an input element)."""
WINDOW_LIGHT = "#fbd3ad"
TARGET = "#4e79a7"
"""Blue: the output side (an output element)."""
TARGET_LIGHT = "#c6d7ea"
PAD = "#d9d9d9"
INSERTED = "#fff2b3"
"""Pale yellow: the zeros a transposed convolution inserts between the input's entries."""
INPUT = "#ffffff"
KERNEL = "#fde0c5"
GRID_LINE = "#7f7f7f"
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
LABEL_NOTE = "numbers: kernel taps 1..K, not values"


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
    check_directory(name, who)
    return suffix[1:] or "png"


def check_directory(name: str, who: str) -> None:
    """FileNotFoundError, naming ``who``, when the directory of ``name`` does not exist."""
    directory = os.path.dirname(os.path.abspath(name))
    if not os.path.isdir(directory):
        raise FileNotFoundError(f"{who}: cannot write {name!r}: the directory {directory!r} does not exist")


def new_figure(who: str, size: tuple[float, float]) -> Any:
    """A matplotlib ``Figure`` on an Agg canvas (no pyplot, no global state)."""
    figure_cls, canvas_cls = import_matplotlib(who)
    fig = figure_cls(figsize=size)
    canvas_cls(fig)
    return fig


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
    spatial += prod(tuple(q * s + sp for q, s, sp in zip(geom.out_size, geom.stride, geom.span)))
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


# ----------------------------------------------------------------------------- index maps


def source_map(size: int, lo: int, hi: int, mode: str) -> Array:
    """For each padded position along one dimension, the input entry it holds (``-1``: a zero).

    Zero padding may be negative (a crop); the other modes copy input entries
    (``reflect``, ``replicate`` = NumPy's ``edge``, ``circular`` = ``wrap``).
    """
    if mode == "zeros":
        src = np.arange(size + lo + hi) - lo
        return np.where((src >= 0) & (src < size), src, -1)
    return np.pad(np.arange(size), (lo, hi), mode=NUMPY_PAD_MODE[mode])  # type: ignore[call-overload,no-any-return]


def source_maps(geom: Geometry) -> list[Array]:
    """:func:`source_map` per spatial dimension."""
    return [source_map(s, lo, hi, geom.padding_mode) for s, lo, hi in zip(geom.in_size, geom.pad_lo, geom.pad_hi)]


def tap_label(geom: Geometry, k: Index) -> int:
    """``1 … K``: the label of kernel offset ``k`` (row-major)."""
    return int(np.ravel_multi_index(k, geom.kernel)) + 1


def taps_reading(geom: Geometry, src: list[Array], q: Index) -> list[tuple[Index, Index, Optional[Index]]]:
    """``(k, padded position, input entry or None)`` for every tap of the window of output ``q``."""
    out = []
    for k in np.ndindex(*geom.kernel):
        p = tuple(qi * s + ki * dl for qi, s, ki, dl in zip(q, geom.stride, k, geom.dilation))
        a = tuple(int(m[pi]) for m, pi in zip(src, p))
        out.append((k, p, None if min(a) < 0 else a))
    return out


def taps_writing(geom: Geometry, src: list[Array], a: Index) -> list[tuple[Index, Index]]:
    """``(q, k)`` for every output position ``q`` that reads input entry ``a`` through kernel offset ``k``."""
    per_dim: list[list[tuple[int, int]]] = []
    for m, ai, q_n, k_n, s, dl in zip(src, a, geom.out_size, geom.kernel, geom.stride, geom.dilation):
        pairs = []
        for p in np.flatnonzero(m == ai):
            for k in range(k_n):
                r = int(p) - k * dl
                if r >= 0 and r % s == 0 and r // s < q_n:
                    pairs.append((r // s, k))
        per_dim.append(pairs)
    out = []
    for combo in np.ndindex(*(len(p) for p in per_dim)):
        chosen = [per_dim[i][j] for i, j in enumerate(combo)]
        out.append((tuple(c[0] for c in chosen), tuple(c[1] for c in chosen)))
    return out


def middle(shape: Index) -> Index:
    return tuple(s // 2 for s in shape)


def _nearest(options: list[Index], target: Index) -> int:
    return int(np.argmin([_distance(opt, target) for opt in options]))


@dataclasses.dataclass(frozen=True)
class Connection:
    """One output element ``q``, one input element ``a`` of its window, and the kernel offset ``k`` between them.

    All indices are of the forward convolution ``A`` of the geometry (for a
    transposed convolution, ``q`` indexes its input and ``a`` its output).
    """

    q: Index
    a: Index
    k: Index
    p: Index


def central_connection(geom: Geometry, transposed: bool) -> Connection:
    """The connection every panel is drawn through.

    A forward convolution: the middle output element and, of the input
    entries its window reads, the one through the tap nearest the kernel's
    middle. A transposed convolution: the middle of its output (``A``'s input)
    and, of ``A``'s outputs that read it, the one through the tap nearest the
    middle.
    """
    src = source_maps(geom)
    mid_k = middle(geom.kernel)

    def score(q: Index, k: Index, a: Index) -> tuple[int, int]:
        # the most connected input element (its footprint shows the most of the flipped kernel), then the middle tap
        return -len(taps_writing(geom, src, a)), _distance(k, mid_k)

    if not transposed:
        mid_q = middle(geom.out_size)
        for q in sorted(np.ndindex(*geom.out_size), key=lambda t: _distance(t, mid_q)):
            taps = [(k, p, a) for k, p, a in taps_reading(geom, src, q) if a is not None]
            if taps:
                k, p, a = min(taps, key=lambda t: score(q, t[0], t[2]))  # type: ignore[arg-type]
                assert a is not None
                return Connection(q, a, k, p)
    else:
        mid_a = middle(geom.in_size)
        for a in sorted(np.ndindex(*geom.in_size), key=lambda t: _distance(t, mid_a)):
            writes = taps_writing(geom, src, a)
            if writes:
                reads = {q: sum(1 for _, _, r in taps_reading(geom, src, q) if r is not None) for q, _ in writes}
                q, k = min(writes, key=lambda w: (-reads[w[0]], _distance(w[1], mid_k)))
                p = tuple(qi * s + ki * dl for qi, s, ki, dl in zip(q, geom.stride, k, geom.dilation))
                return Connection(q, a, k, p)
    # no window reads any input entry (a dilated kernel stepping over a tiny input): the middle of everything
    q = middle(geom.out_size)
    p = tuple(qi * s + ki * dl for qi, s, ki, dl in zip(q, geom.stride, mid_k, geom.dilation))
    return Connection(q, middle(geom.in_size), mid_k, p)


def _distance(a: Index, b: Index) -> int:
    return sum(abs(i - j) for i, j in zip(a, b))


def plane(a: Array, lead: Index) -> Array:
    """The last two axes of a spatial array with its leading axes fixed at ``lead`` (1-D: one row)."""
    if a.ndim == 1:
        return np.asarray(a[np.newaxis, :])
    return np.asarray(a[tuple(lead[: a.ndim - 2])])


def depth_text(lead: Index, what: str) -> str:
    """`` at depth (2,)`` for 3-d and higher, else nothing."""
    if not lead:
        return ""
    return f", {what} depth {lead[0] if len(lead) == 1 else lead}"


def fmt_index(index: Index) -> str:
    """``(1, 2)`` as ``[1, 2]``."""
    return "[" + ", ".join(str(i) for i in index) + "]"


# ----------------------------------------------------------------------------- drawing cells


def rgb(hex_color: str) -> Array:
    return np.array([int(hex_color[i:i + 2], 16) / 255 for i in (1, 3, 5)])


def paint(mask_colors: list[tuple[Array, str]], shape: tuple[int, int], base: str = INPUT) -> Array:
    img: Array = np.broadcast_to(rgb(base), shape + (3,)).copy()
    for mask, color in mask_colors:
        img[mask] = rgb(color)
    return img


def cells(ax: Any, colors: Array, title: str, *, texts: Optional[dict[tuple[int, int], str]] = None,
          fontsize: float = 7, annotate_limit: int = _MAX_CELLS_ANNOTATED, title_size: float = 9) -> list[Any]:
    """A grid of coloured cells with optional text per cell; returns the text artists."""
    rows, cols = colors.shape[:2]
    ax.imshow(colors, interpolation="nearest", aspect="equal")
    width = 0.6 if max(rows, cols) <= 40 else 0.2
    ax.vlines(np.arange(0.5, cols - 1, 1), -0.5, rows - 0.5, colors=GRID_LINE, linewidth=width)
    ax.hlines(np.arange(0.5, rows - 1, 1), -0.5, cols - 0.5, colors=GRID_LINE, linewidth=width)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.tick_params(which="both", length=0, labelsize=7)
    ax.set_xticks(range(cols) if cols <= 20 else [])
    ax.set_yticks(range(rows) if 1 < rows <= 20 else [])
    ax.set_title(title, fontsize=title_size)
    artists = []
    if texts and max(rows, cols) <= annotate_limit:
        for (r, c), text in texts.items():
            size = fontsize if len(text) <= 3 else max(4.5, fontsize - 0.6 * (len(text) - 3))
            artists.append(ax.text(c, r, text, ha="center", va="center", fontsize=size))
    return artists


def outline(ax: Any, r: int, c: int, color: str, *, width: float = 2.2) -> Any:
    """A thick border around cell ``(r, c)``."""
    from matplotlib.patches import Rectangle

    patch = Rectangle((c - 0.5, r - 0.5), 1, 1, fill=False, edgecolor=color, linewidth=width)
    ax.add_patch(patch)
    return patch


def rc(index: Index) -> tuple[int, int]:
    """The (row, column) of an index in its drawn plane (1-D: row 0)."""
    return (0, index[0]) if len(index) == 1 else (index[-2], index[-1])


# ----------------------------------------------------------------------------- the explanation's picture


def plot_explanation(geom: Geometry, transposed: bool, title: str, path: Optional[str], *, dpi: int = 110) -> Any:
    """Draw :meth:`Explanation.plot`'s panels of the configuration ``geom``; save to ``path`` if given.

    Returns the matplotlib ``Figure``.
    """
    fmt = check_plot_path(path, "Explanation.plot") if path is not None else "png"
    dpi = check_int(dpi, "dpi", 1, MAX_DPI)
    import_matplotlib("Explanation.plot")
    geom, smaller = drawn_geometry(geom, transposed)
    con = central_connection(geom, transposed)
    d = geom.d
    if d == 1:
        fig, (top, kernel_ax, out_ax, col_ax, row_ax), matrix_ax = _layout_1d(geom, transposed)
    else:
        fig = new_figure("Explanation.plot", (13, 8.4))
        ax = fig.subplots(2, 3)
        top, kernel_ax, out_ax, matrix_ax, col_ax, row_ax = ax[0, 0], ax[0, 1], ax[0, 2], ax[1, 0], ax[1, 1], ax[1, 2]

    if transposed:
        panel_zero_inserted(top, geom, con)
    else:
        panel_padded_input(top, geom, con)
    panel_kernel(kernel_ax, geom, con, transposed)
    panel_output(out_ax, geom, con, transposed)
    panel_matrix(matrix_ax, geom, con, transposed)
    panel_footprints(col_ax, row_ax, geom, con, transposed)

    notes = []
    if d >= 3:
        notes.append(f"{d}-d: each panel is the plane of the last two spatial axes through the highlighted elements "
                     f"(its depth is in the panel's title); the kernel panel shows the kernel plane those use")
    if notes:
        fig.text(0.5, 0.006, "\n".join(notes), ha="center", va="bottom", fontsize=8)
    if d == 1:  # strips: titles from their left edge, as wide as the left column
        for ax in (top, kernel_ax, out_ax, col_ax, row_ax):
            text = ax.get_title()
            ax.set_title("")
            ax.set_title("\n".join(textwrap.fill(line, width=100) for line in text.split("\n")), loc="left",
                         fontsize=9)
        matrix_ax.set_title("\n".join(textwrap.fill(line, width=60) for line in matrix_ax.get_title().split("\n")),
                            fontsize=9)
    else:
        wrap_titles(fig)
    fig.suptitle(f"{_wrap(title)}\n{smaller}" if smaller else _wrap(title), fontsize=10)
    lines = _wrap(title).count("\n") + 1 + (smaller.count("\n") + 1 if smaller else 0)
    head = 0.99 - 0.024 * lines
    if d > 1:
        fig.tight_layout(rect=(0, 0.03 if notes else 0, 1, head))
    if path is not None:
        fig.savefig(path, dpi=dpi, format=fmt)
    return fig


def _wrap(text: str) -> str:
    return textwrap.fill(text, width=_TITLE_WIDTH)


def _layout_1d(geom: Geometry, transposed: bool) -> tuple[Any, list[Any], Any]:
    """The 1-D figure: five strips with one cell size on the left, the matrix on the right.

    The input strip (the row footprint) is shifted by the padding so that
    each input entry sits under its padded position.
    """
    if transposed:
        first = len(zero_inserted_layout(geom)[0][0])
        sizes = [first, geom.kernel[0], geom.in_size[0], geom.in_size[0], geom.out_size[0]]
        shifts = [0, 0, 0, 0, 0]
    else:
        sizes = [geom.padded_size[0], geom.kernel[0], geom.out_size[0], geom.out_size[0], geom.in_size[0]]
        shifts = [0, 0, 0, 0, max(geom.pad_lo[0], 0)]
    left_width, slot, head = 7.0, 1.3, 0.85
    cell = min(0.55, left_width / max(s + sh for s, sh in zip(sizes, shifts)))
    width, height = 13.0, head + 5 * slot + 0.35
    fig = new_figure("Explanation.plot", (width, height))
    strips = []
    for i, (size, shift) in enumerate(zip(sizes, shifts)):
        bottom = height - head - (i + 1) * slot + 0.32
        strips.append(fig.add_axes(((0.45 + shift * cell) / width, bottom / height, size * cell / width,
                                    cell / height)))
    matrix = fig.add_axes((8.3 / width, 0.75 / height, 4.4 / width, (height - head - 1.35) / height))
    return fig, strips, matrix


def wrap_titles(fig: Any, fontsize: float = 9) -> None:
    """Wrap every axes title to the width of its axes (at about 0.55 em per character)."""
    width_in = fig.get_size_inches()[0]
    for ax in fig.axes:
        title = ax.title.get_text()
        if not title:
            continue
        chars = max(24, int(ax.get_position().width * width_in * 72 / (0.55 * fontsize)))
        lines = [textwrap.fill(line, width=chars, break_on_hyphens=False) for line in title.split("\n")]
        ax.set_title("\n".join(lines), fontsize=ax.title.get_fontsize())


def panel_padded_input(ax: Any, geom: Geometry, con: Connection) -> None:
    """The padded input plane through the connection: padding grey, the window of ``con.q`` orange, window starts."""
    src = source_maps(geom)
    lead = con.p[:-2] if geom.d >= 2 else ()
    grids = np.meshgrid(*src, indexing="ij")
    inside = np.ones(geom.padded_size, dtype=bool)
    for i, (lo, s) in enumerate(zip(geom.pad_lo, geom.in_size)):
        pos = np.arange(geom.padded_size[i]) - lo
        inside &= np.expand_dims((pos >= 0) & (pos < s), tuple(j for j in range(geom.d) if j != i))
    window = np.zeros(geom.padded_size, dtype=bool)
    texts_full: dict[Index, str] = {}
    for k, p, _ in taps_reading(geom, src, con.q):
        window[p] = True
        texts_full[p] = str(tap_label(geom, k))
    pin, pwin = plane(inside, lead), plane(window, lead)
    on_input = pwin & pin
    colors = paint([(~pin, PAD), (pwin & ~pin, WINDOW_LIGHT), (on_input, WINDOW)], pin.shape)
    texts: dict[tuple[int, int], str] = {}
    if geom.padding_mode != "zeros":
        src_plane = [plane(g, lead) for g in grids[-2:]] if geom.d >= 2 else [grids[0][np.newaxis, :]]
        for r, c in zip(*np.nonzero(~pin)):
            texts[(int(r), int(c))] = "x" + ",".join(str(int(g[r, c])) for g in src_plane)
    for p, text in texts_full.items():
        if p[:-2] == lead or geom.d == 1:
            texts[rc(p)] = text
    cells(ax, colors, "", texts=texts)
    # where the windows start: every stride-th padded position (drawn when the stride skips positions)
    starts = [np.arange(q) * s for q, s in zip(geom.out_size, geom.stride)]
    if max(geom.stride) > 1 and geom.d == 1:
        ax.plot(starts[0], np.full(len(starts[0]), -0.32), "v", color=TARGET, markersize=3.5, clip_on=False)
    elif max(geom.stride) > 1:
        rr, cc = np.meshgrid(starts[-2], starts[-1], indexing="ij")
        ax.plot(cc.ravel() - 0.32, rr.ravel() - 0.32, "o", color=TARGET, markersize=2.2)
    r0, c0 = rc(tuple(qi * s for qi, s in zip(con.q, geom.stride)))
    span = geom.span if geom.d == 1 else geom.span[-2:]
    from matplotlib.patches import Rectangle

    h, w_ = (1, span[0]) if geom.d == 1 else span
    ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), w_, h, fill=False, edgecolor=WINDOW, linewidth=1.6, linestyle="--"))
    r, c = rc(con.p)
    outline(ax, r, c, "#7a3d00", width=1.8)  # the tap that reads the input element of the footprints
    crop = " (negative: cropped)" if min(geom.pad_lo + geom.pad_hi) < 0 else ""
    if not geom.has_padding:
        padding = "no padding"
    elif geom.padding_mode == "zeros":
        padding = f"zero padding {padding_arg(geom)}{crop}"
    else:
        padding = f"{geom.padding_mode} padding {padding_arg(geom)} (grey cells copy x entries)"
    starts_note = f"; dots: a window starts every {per_dim(geom.stride)}" if max(geom.stride) > 1 else ""
    ax.set_title(
        f"padded input {geom.padded_size}: {padding}{depth_text(lead, 'padded')}\n"
        f"window of y{fmt_index(con.q)} (dashed), taps {per_dim(geom.dilation)} apart{starts_note}", fontsize=9)


def per_dim(values: Index) -> str:
    """``2`` when every dimension agrees, else ``(2, 1)``."""
    return str(values[0]) if len(set(values)) == 1 else str(values)


def zero_inserted_layout(geom: Geometry) -> tuple[list[Array], list[Array]]:
    """Per dimension of a transposed convolution's conv_arithmetic view, the kind of each position and its x entry.

    The input ``x`` (``A``'s output size ``Q``) with ``s − 1`` zeros between
    entries, then padded by ``δ(K − 1) − l`` before and
    ``δ(K − 1) − h + output_padding`` after (negative: cropped). Kinds: 0 an
    ``x`` entry, 1 an inserted zero, 2 a padding zero; the x entry is ``-1``
    where there is none.
    """
    num = Numbers(geom)
    kinds, entries = [], []
    for q, s, (fl, _fh), size, sp in zip(geom.out_size, geom.stride, num.full_pads, geom.in_size, geom.span):
        length = size + sp - 1  # the output size plus δ(K − 1): the grid a stride-1 window slides over
        u = np.arange(length) - fl
        inside = (u >= 0) & (u <= (q - 1) * s)
        on_entry = inside & (u % s == 0)
        kinds.append(np.where(on_entry, 0, np.where(inside, 1, 2)))
        entries.append(np.where(on_entry, u // s, -1))
    return kinds, entries


def panel_zero_inserted(ax: Any, geom: Geometry, con: Connection) -> None:
    """A transposed convolution as conv_arithmetic draws it: zeros inserted, padded, a stride-1 flipped window."""
    kinds, _ = zero_inserted_layout(geom)
    mesh = np.meshgrid(*kinds, indexing="ij")
    kind = np.max(np.stack(mesh), axis=0)  # padding beats an inserted zero beats an entry
    any_inserted = np.zeros(kind.shape, dtype=bool)
    for m in mesh:
        any_inserted |= m == 1
    kind = np.where((kind == 2), 2, np.where(any_inserted, 1, 0))
    window = np.zeros(kind.shape, dtype=bool)
    texts_full: dict[Index, str] = {}
    for k in np.ndindex(*geom.kernel):  # the flipped kernel: position j + k'·δ carries w[K − 1 − k']
        z = tuple(j + kk * dl for j, kk, dl in zip(con.a, k, geom.dilation))
        window[z] = True
        texts_full[z] = str(tap_label(geom, tuple(kn - 1 - kk for kn, kk in zip(geom.kernel, k))))
    # the plane through the window tap that reads x[q]
    z_star = tuple(qi * s + fl for qi, s, (fl, _) in zip(con.q, geom.stride, Numbers(geom).full_pads))
    lead = z_star[:-2] if geom.d >= 2 else ()
    pk, pw = plane(kind, lead), plane(window, lead)
    colors = paint([(pk == 1, INSERTED), (pk == 2, PAD), (pw & (pk != 0), WINDOW_LIGHT), (pw & (pk == 0), WINDOW)],
                   pk.shape)
    texts: dict[tuple[int, int], str] = {}
    for r, c in zip(*np.nonzero(pk != 0)):
        texts[(int(r), int(c))] = "0"
    for z, text in texts_full.items():
        if geom.d == 1 or z[:-2] == lead:
            texts[rc(z)] = text
    cells(ax, colors, "", texts=texts)
    r, c = rc(z_star)
    outline(ax, r, c, WINDOW, width=1.6)
    num = Numbers(geom)
    pads = ", ".join(f"({a}, {b})" for a, b in num.full_pads)
    ax.set_title(
        f"x {geom.out_size}, {per_dim(tuple(s - 1 for s in geom.stride))} zero(s) inserted between entries "
        f"(yellow), padded by {pads}{depth_text(lead, 'grid')}\n"
        f"(negative: cropped); the flipped kernel slides with stride 1: window of y{fmt_index(con.a)}", fontsize=9)


def panel_kernel(ax: Any, geom: Geometry, con: Connection, transposed: bool) -> None:
    labels = np.arange(1, prod(geom.kernel) + 1).reshape(geom.kernel)
    lead = con.k[:-2] if geom.d >= 2 else ()
    pl = plane(labels, lead)
    texts = {(r, c): str(int(pl[r, c])) for r, c in np.ndindex(*pl.shape)}
    colors = paint([], pl.shape, base=KERNEL)
    cells(ax, colors, "", texts=texts)
    where = "output" if transposed else "input"
    lines = [f"kernel w[0, 0] {geom.kernel}, taps labelled 1..{prod(geom.kernel)}{depth_text(lead, 'kernel')}",
             f"dilation {per_dim(geom.dilation)}: taps {per_dim(geom.dilation)} apart in the {where}"]
    if geom.groups > 1:
        cg, og = geom.c_in // geom.groups, geom.c_out // geom.groups
        if transposed:
            lines.append(f"groups={geom.groups}: each of the {geom.groups} groups maps {og} input to {cg} output "
                         f"channels")
        else:
            lines.append(f"groups={geom.groups}: each output channel reads the {cg} input channels of its group")
    ax.set_title("\n".join(lines), fontsize=9)


def panel_output(ax: Any, geom: Geometry, con: Connection, transposed: bool) -> None:
    size = geom.in_size if transposed else geom.out_size
    elem = con.a if transposed else con.q
    mask = np.zeros(size, dtype=bool)
    mask[elem] = True
    lead = elem[:-2] if geom.d >= 2 else ()
    pm = plane(mask, lead)
    cells(ax, paint([(pm, TARGET)], pm.shape), "")
    what = "the flipped kernel's window on the left" if transposed else "the window on the left"
    ax.set_title(f"output y {size}: element {fmt_index(elem)}{depth_text(lead, 'output')}\nreads {what}",
                 fontsize=9)


def panel_footprints(col_ax: Any, row_ax: Any, geom: Geometry, con: Connection, transposed: bool) -> None:
    """A column of the operation's matrix (one input element's footprint) and a row (one output element's)."""
    src = source_maps(geom)
    # A's column of input entry a: the outputs q that read it, with their taps
    col_labels: dict[Index, list[int]] = {}
    for q, k in taps_writing(geom, src, con.a):
        col_labels.setdefault(q, []).append(tap_label(geom, k))
    # A's row of output q: the input entries its window reads
    row_labels: dict[Index, list[int]] = {}
    for k, _, a in taps_reading(geom, src, con.q):
        if a is not None:
            row_labels.setdefault(a, []).append(tap_label(geom, k))
    # for the operation: forward = A, transposed = Aᵀ (its input is A's output)
    if not transposed:
        _footprint(col_ax, geom.out_size, col_labels, con.q, TARGET, WINDOW_LIGHT,
                   f"footprint of x{fmt_index(con.a)} on y: ∂y/∂x{fmt_index(con.a)}",
                   "a column of M: the kernel flipped" + _stride_note(geom))
        _footprint(row_ax, geom.in_size, row_labels, con.a, WINDOW, TARGET_LIGHT,
                   f"footprint of y{fmt_index(con.q)} on x: ∂y{fmt_index(con.q)}/∂x", "a row of M: the kernel as is")
    else:
        _footprint(col_ax, geom.in_size, row_labels, con.a, TARGET, WINDOW_LIGHT,
                   f"footprint of x{fmt_index(con.q)} on y: ∂y/∂x{fmt_index(con.q)}",
                   "a column of Mᵀ: the kernel as is, stride apart")
        _footprint(row_ax, geom.out_size, col_labels, con.q, WINDOW, TARGET_LIGHT,
                   f"footprint of y{fmt_index(con.a)} on x: ∂y{fmt_index(con.a)}/∂x",
                   "a row of Mᵀ: the kernel flipped" + _stride_note(geom))


def _stride_note(geom: Geometry) -> str:
    return f", only the taps the stride {per_dim(geom.stride)} lands on" if max(geom.stride) > 1 else ""


def _footprint(ax: Any, size: Index, labels: dict[Index, list[int]], marked: Index, mark_color: str,
               fill: str, head: str, what: str) -> None:
    mask = np.zeros(size, dtype=bool)
    texts_full: dict[Index, str] = {}
    for idx, labs in labels.items():
        mask[idx] = True
        texts_full[idx] = "+".join(str(v) for v in sorted(labs))
    lead = marked[:-2] if len(size) >= 2 else ()
    pm = plane(mask, lead)
    texts = {rc(i): t for i, t in texts_full.items() if len(size) == 1 or i[:-2] == lead}
    cells(ax, paint([(pm, fill)], pm.shape), "", texts=texts)
    r, c = rc(marked)
    outline(ax, r, c, mark_color)
    ax.set_title(f"{head}{depth_text(lead, 'at')}\n({what}; {LABEL_NOTE})", fontsize=9)


def panel_matrix(ax: Any, geom: Geometry, con: Connection, transposed: bool) -> None:
    """The sparsity pattern of one sample's block of the operation's matrix, groups outlined."""
    from matplotlib.patches import Rectangle

    rows, cols, _ = labelled_triplets(geom)
    n_a_out, n_a_in = geom.c_out * prod(geom.out_size), geom.c_in * prod(geom.in_size)
    q_flat = int(np.ravel_multi_index(con.q, geom.out_size))
    a_flat = int(np.ravel_multi_index(con.a, geom.in_size))
    per_out, per_in = prod(geom.out_size), prod(geom.in_size)
    og, cg = geom.c_out // geom.groups, geom.c_in // geom.groups
    if transposed:  # the operation is Aᵀ
        rows, cols = cols, rows
        n_out, n_in, out_flat, in_flat = n_a_in, n_a_out, a_flat, q_flat
        out_block, in_block, out_per, in_per = cg * per_in, og * per_out, per_in, per_out
        name = "Mᵀ"
    else:
        n_out, n_in, out_flat, in_flat = n_a_out, n_a_in, q_flat, a_flat
        out_block, in_block, out_per, in_per = og * per_out, cg * per_in, per_out, per_in
        name = "M"
    if n_out * n_in <= _MAX_DENSE_CELLS:
        dense = np.zeros((n_out, n_in), dtype=bool)
        dense[rows, cols] = True
        img = paint([(dense, "#333333")], dense.shape)
        img[out_flat][~dense[out_flat]] = rgb("#dbe6f1")
        img[:, in_flat][~dense[:, in_flat]] = rgb("#fbe3cd")
        ax.imshow(img, interpolation="nearest", aspect="auto")
    else:
        ax.scatter(cols, rows, s=0.5, marker="s", color="#333333", linewidths=0)
        ax.set_xlim(-0.5, n_in - 0.5)
        ax.set_ylim(n_out - 0.5, -0.5)
    from matplotlib.ticker import MaxNLocator

    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True))
    ax.axhline(out_flat, color=TARGET, linewidth=0.8, alpha=0.7)
    ax.axvline(in_flat, color=WINDOW, linewidth=0.8, alpha=0.7)
    for c in range(1, n_in // in_per):
        ax.axvline(c * in_per - 0.5, color="#9a9a9a", linewidth=0.5, linestyle=":")
    for r in range(1, n_out // out_per):
        ax.axhline(r * out_per - 0.5, color="#9a9a9a", linewidth=0.5, linestyle=":")
    if geom.groups > 1:
        for g in range(geom.groups):
            ax.add_patch(Rectangle((g * in_block - 0.5, g * out_block - 0.5), in_block, out_block, fill=False,
                                   edgecolor="#59a14f", linewidth=1.8))
            ax.text(g * in_block + in_block / 2 - 0.5, g * out_block - 0.5, f"group {g}", color="#2f6b2a",
                    fontsize=7, ha="center", va="bottom")
    ax.set_xlabel(f"input element (flat index, {n_in}; dotted lines between channels)", fontsize=8)
    ax.set_ylabel(f"output element (flat index, {n_out})", fontsize=8)
    ax.tick_params(labelsize=7)
    groups = f"; green: the {geom.groups} groups" if geom.groups > 1 else ""
    ax.set_title(f"convolution matrix {name}, one sample: {n_out} x {n_in}, {len(rows)} stored entries (black)\n"
                 f"blue: row of the highlighted output, orange: column of the input{groups}", fontsize=9)


# ----------------------------------------------------------------------------- convgrad matrix --plot


def plot_matrix(m: Any, path: str, title: str, *, dpi: int = 110, who: str = "plot_matrix") -> str:
    """The entries of a ``scipy.sparse`` matrix coloured by value, with a colour bar, drawn to ``path``."""
    fmt = check_plot_path(path, who)
    dpi = check_int(dpi, "dpi", 1, MAX_DPI)
    coo = m.tocoo()
    rows, cols = m.shape
    fig = new_figure(who, (7.8, 7 * min(2.0, max(0.45, rows / max(1, cols)))))
    ax = fig.subplots()
    size = max(0.2, min(20.0, 40000.0 / max(1, rows * cols) ** 0.5 / 10))
    values = np.asarray(coo.data, dtype=float)
    integer = bool(values.size) and bool(np.all(values == np.round(values)))
    cmap = "viridis"
    if integer and values.size and values.max() - values.min() < 20:
        from matplotlib.colors import BoundaryNorm

        lo, hi = int(values.min()), int(values.max())
        norm = BoundaryNorm(np.arange(lo - 0.5, hi + 1.5), 256)
        points = ax.scatter(coo.col, coo.row, s=size, marker="s", c=values, cmap=cmap, norm=norm, linewidths=0)
        bar = fig.colorbar(points, ax=ax, fraction=0.046, pad=0.03, ticks=np.arange(lo, hi + 1))
    else:
        points = ax.scatter(coo.col, coo.row, s=size, marker="s", c=values, cmap=cmap, linewidths=0)
        bar = fig.colorbar(points, ax=ax, fraction=0.046, pad=0.03)
    bar.set_label("entry value: the weight it multiplies", fontsize=8)
    bar.ax.tick_params(labelsize=7)
    ax.set_xlim(-0.5, cols - 0.5)
    ax.set_ylim(rows - 0.5, -0.5)
    ax.set_xlabel(f"input element (flat index, {cols})", fontsize=8)
    ax.set_ylabel(f"output element (flat index, {rows})", fontsize=8)
    ax.tick_params(labelsize=7)
    ax.set_title(f"{title}\n{m.nnz} stored entries, coloured by value (colour bar)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi, format=fmt)
    return path
