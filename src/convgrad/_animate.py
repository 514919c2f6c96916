"""Animations of a convolution and its gradients, drawn honestly, one output position per frame.

Four views, each of one sample, one input channel and one output channel (the
other channels of a group add one such sum each):

* ``"forward"`` — the window slides over the padded input (taps ``δ`` apart,
  jumping ``s`` between outputs) and fills the output. For a transposed
  convolution, the view of Dumoulin & Visin's conv_arithmetic: the input with
  ``s − 1`` zeros inserted between its entries, padded by ``δ(K − 1) − l``
  before and ``δ(K − 1) − h + output_padding`` after (negative: cropped), the
  kernel rotated by 180° sliding with stride 1.
* ``"input_grad"`` — each upstream value ``g[q]`` scatters the kernel back onto
  the window it came from (its footprint), and the padded gradient
  accumulates; the last frame drops the padding (zeros) or adds it back onto
  the entries it copies (the other modes). For a transposed convolution the
  input gradient is a forward convolution of ``g``: the sliding window.
* ``"weight_grad"`` — the weight gradient accumulates ``g[q] · window(q)``.
* ``"zero_insertion"`` — the input gradient of a convolution (a transposed
  convolution of ``g``) in conv_arithmetic's view; for a transposed
  convolution the same as ``"forward"``.

1-D and 2-D are drawn as they are, 3-D as labelled depth slices (the slices
the current window touches). An animation has at most ``max_frames`` frames:
a longer one shows evenly spaced positions and says so (the accumulating
views still add every position). GIF files are written with Pillow, HTML
with matplotlib's JavaScript writer (no ffmpeg).
"""

from __future__ import annotations

import dataclasses
import os
import weakref
from collections.abc import Callable
from typing import Any, Optional, cast

import numpy as np
import numpy.typing as npt

from ._arguments import IntOrTuple, PaddingArg, check_array, check_int
from ._geometry import Geometry
from ._matrix import matrix_geometry
from ._plot import (
    INSERTED,
    KERNEL,
    PAD,
    TARGET,
    TARGET_LIGHT,
    WINDOW,
    WINDOW_LIGHT,
    cells,
    check_directory,
    import_matplotlib,
    new_figure,
    outline,
    paint,
    per_dim,
    source_maps,
    taps_reading,
    zero_inserted_layout,
)
from ._recipes import Numbers, padding_arg, tup
from ._small import class_text, operation_shapes, shapes_text, small_geometry

Array = npt.NDArray[Any]
Index = tuple[int, ...]

KINDS = ("forward", "input_grad", "weight_grad", "zero_insertion")
MAX_FRAMES = 60
"""Default cap on the frames of an animation."""
MAX_GRID = 15
"""Largest grid side drawn with numbers (1-D: ``MAX_STRIP``); a larger configuration is animated smaller."""
MAX_STRIP = 40
FORMATS = (".gif", ".html")

__all__ = ["Animation", "animate", "animate_geometry"]


class Animation:
    """An animation of one convolution: show it in Jupyter, or save it as GIF or HTML.

    Attributes
    ----------
    kind : str
        One of ``"forward"``, ``"input_grad"``, ``"weight_grad"``, ``"zero_insertion"``.
    title : str
    frames : int
        Number of frames.
    positions : int
        Output positions of the computation; more than ``frames`` when subsampled.
    note : str
        What is shown: the channels, a subsampling, a smaller configuration.
    size : tuple of int
        ``(width, height)`` of a frame in pixels.
    fps : float
    figure : matplotlib.figure.Figure
        The figure the frames are drawn on (showing the last frame drawn).
    result : ndarray
        What the last frame shows: the output (or gradient) of the one
        channel pair drawn, computed position by position as animated.
    """

    def __init__(self, kind: str, title: str, note: str, figure: Any, draw: Callable[[int], None], frames: int,
                 positions: int, fps: float, dpi: int, result: Array) -> None:
        self.kind, self.title, self.note, self.result = kind, title, note, result
        self.figure, self._draw = figure, draw
        self.frames, self.positions, self.fps, self.dpi = frames, positions, fps, dpi
        self._rendered: Optional[list[Array]] = None
        figure.set_dpi(dpi)
        self.size = tuple(int(v) for v in figure.canvas.get_width_height())
        draw(frames - 1)

    def __repr__(self) -> str:
        return (f"<Animation {self.kind}: {self.title}; {self.frames} frames, {self.size[0]}x{self.size[1]} px, "
                f"{self.fps:g} fps; .save('a.gif' or 'a.html'), or display it in Jupyter>")

    def _frames(self) -> list[Array]:
        """Every frame as an RGB array (drawn once, kept)."""
        if self._rendered is None:
            rendered = []
            canvas = self.figure.canvas
            for i in range(self.frames):
                self._draw(i)
                canvas.draw()
                rendered.append(np.asarray(canvas.buffer_rgba())[..., :3].copy())
            self._rendered = rendered
        return self._rendered

    def _player(self) -> Any:
        """A matplotlib animation that shows the rendered frames (for its JavaScript HTML writer)."""
        from matplotlib.animation import FuncAnimation

        frames = self._frames()
        height, width = frames[0].shape[:2]
        fig = new_figure("animate", (width / self.dpi, height / self.dpi))
        ax = fig.add_axes((0, 0, 1, 1))
        ax.set_axis_off()
        image = ax.imshow(frames[0], interpolation="nearest", aspect="auto")

        def show(i: int) -> list[Any]:
            image.set_data(frames[int(i)])
            return [image]

        return FuncAnimation(fig, show, frames=len(frames), interval=1000 / self.fps, repeat=True, blit=False,
                             cache_frame_data=False)

    def save(self, path: str) -> str:
        """Write the animation to ``path``: ``.gif`` (Pillow) or ``.html`` (a page with matplotlib's JS player).

        Returns
        -------
        str
            ``path``.
        """
        name = check_animation_path(path)
        if name.lower().endswith(".gif"):
            try:
                from PIL import Image
            except ImportError as exc:
                raise ImportError("writing a GIF needs Pillow: pip install 'convgrad[plot]'") from exc
            images = [Image.fromarray(f).quantize(colors=64, method=Image.Quantize.MEDIANCUT)
                      for f in self._frames()]
            images[0].save(name, save_all=True, append_images=images[1:], duration=round(1000 / self.fps),
                           loop=0, optimize=False)
        else:
            from matplotlib.animation import HTMLWriter

            writer = HTMLWriter(fps=cast(int, self.fps), embed_frames=True, default_mode="loop")
            self._player().save(name, writer=writer, dpi=self.dpi)
        return name

    def to_jshtml(self) -> str:
        """The animation as HTML with matplotlib's JavaScript player and the frames embedded (for Jupyter)."""
        return str(self._player().to_jshtml(fps=self.fps, embed_frames=True, default_mode="loop"))

    def _repr_html_(self) -> str:
        return self.to_jshtml()


def check_animation_path(path: object) -> str:
    """``path`` as a str ending in ``.gif`` or ``.html`` in an existing directory, or a TypeError / ValueError."""
    name = os.fspath(path) if isinstance(path, (str, os.PathLike)) else None
    if not isinstance(name, str):
        raise TypeError(f"animate: the file name must be a str or a path; got {path!r}")
    suffix = os.path.splitext(name)[1].lower()
    if suffix not in FORMATS:
        raise ValueError(f"animate: cannot write {name!r}: an animation is written as .gif or .html; got "
                         f"{suffix or 'no extension'!r}")
    check_directory(name, "animate")
    return name


# ----------------------------------------------------------------------------- the public function


def animate(
    input: Any,
    weight: Any,
    bias: Any = None,
    /,
    *,
    kind: str = "forward",
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    transposed: bool = False,
    output_padding: IntOrTuple = 0,
    grad_output: Any = None,
    path: Optional[str] = None,
    max_frames: int = MAX_FRAMES,
    fps: float = 2.0,
    dpi: int = 80,
) -> Animation:
    """Animate a convolution, its input gradient or its weight gradient, one output position per frame.

    ``input`` and ``weight`` are shapes or arrays, as for :func:`convgrad.explain`;
    with arrays (small enough to read) the frames show their numbers,
    otherwise small integers. See the module documentation for the views
    (``kind``). One sample, input channel 0 and output channel 0 are drawn.

    Parameters
    ----------
    input : tuple of int, or array, shape=(N, C, *S)
    weight : tuple of int, or array, shape=(O, C/groups, *K)
        For ``transposed``: ``(C_in, C_out / groups, *K)``.
    bias : array, optional
        Accepted for symmetry with :func:`convgrad.explain`; a bias adds one
        number to every output and is not drawn.
    kind : {"forward", "input_grad", "weight_grad", "zero_insertion"}
    stride, padding, dilation, groups, padding_mode, transposed, output_padding
        As for :func:`convgrad.conv` and :func:`convgrad.conv_transpose`.
    grad_output : array, optional
        The upstream gradient for the gradient views (with arrays); default
        small integers.
    path : str, optional
        Also save it: ``.gif`` or ``.html``.
    max_frames : int
        At most this many frames (2 to 1000); more positions are subsampled evenly.
    fps : float
        Frames per second (0.1 to 60).
    dpi : int
        Pixels per inch of the frames (20 to 300).

    Returns
    -------
    Animation
        Displays itself in Jupyter; ``.save(path)`` writes it.

    Raises
    ------
    ValueError, TypeError
        For an impossible configuration (the messages of :func:`convgrad.conv`),
        an unknown ``kind``, 4 or more spatial dimensions, a path that is not
        ``.gif`` / ``.html`` or whose directory does not exist.
    ImportError
        Without matplotlib (and Pillow for a GIF).

    Examples
    --------
    >>> import convgrad as cg
    >>> a = cg.animate((1, 1, 5, 5), (1, 1, 3, 3), padding=1, stride=2)
    >>> a.frames, a.kind
    (9, 'forward')
    """
    from ._explain import _is_shape

    with_arrays = not _is_shape(input)
    if with_arrays:
        x, w = check_array(input, "x"), check_array(weight, "w")
        shape, wshape = x.shape, w.shape
    else:
        shape, wshape = tuple(input), tuple(weight)
    geom = matrix_geometry(shape, wshape, stride=stride, padding=padding, dilation=dilation, groups=groups,
                           padding_mode=padding_mode, transposed=transposed, output_padding=output_padding,
                           w_name="w" if with_arrays else "weight_shape",
                           x_name="x" if with_arrays else "input_shape")
    arrays = None
    if with_arrays:
        arrays = {"x": x if geom.batched else x[np.newaxis], "w": w}
        if grad_output is not None:
            g = check_array(grad_output, "grad_output")
            expected = operation_shapes(geom, transposed)[2]
            if (g.shape if geom.batched else (1,) + g.shape) != expected:
                want = expected if geom.batched else expected[1:]
                raise ValueError(f"grad_output.shape {g.shape} must equal the shape of y, {want}")
            arrays["g"] = g if geom.batched else g[np.newaxis]
    if not geom.batched:
        geom = dataclasses.replace(geom, batched=True, n=1)
    return animate_geometry(geom, transposed, path, kind=kind, max_frames=max_frames, fps=fps, dpi=dpi,
                            arrays=arrays)


def animate_geometry(geom: Geometry, transposed: bool, path: Optional[str], *, kind: str = "forward",
                     max_frames: int = MAX_FRAMES, fps: float = 2.0, dpi: int = 80,
                     arrays: Optional[dict[str, Array]] = None) -> Animation:
    """:func:`animate` on a checked geometry (``arrays``: the user's batched ``x``, ``w`` and maybe ``g``)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    max_frames = check_int(max_frames, "max_frames", 2, 1000)
    dpi = check_int(dpi, "dpi", 20, 300)
    if isinstance(fps, bool) or not isinstance(fps, (int, float)) or not 0.1 <= float(fps) <= 60:
        raise ValueError(f"fps must be a number from 0.1 to 60; got {fps!r}")
    if geom.d > 3:
        raise ValueError(f"animations are drawn for 1-, 2- and 3-d convolutions; this one has {geom.d} spatial "
                         f"dimensions")
    if path is not None:
        check_animation_path(path)
    import_matplotlib("animate")
    full = dataclasses.replace(geom, n=1)
    drawn, smaller = _drawn(full, transposed)
    data = _data(drawn, transposed, arrays if drawn == full else None)
    view = _VIEWS[(kind, transposed)]
    anim = view(drawn, data, transposed, max_frames, fps, dpi, _title(geom, transposed, kind), smaller)
    if path is not None:
        anim.save(path)
    return anim


def _title(geom: Geometry, transposed: bool, kind: str) -> str:
    op = "conv_transpose" if transposed else "conv"
    x, w, y = operation_shapes(geom, transposed)
    pads = padding_arg(geom)
    extra = f", output_padding={tup(Numbers(geom).remainder)}" if transposed else ""
    what = {"forward": "forward", "input_grad": "input gradient", "weight_grad": "weight gradient",
            "zero_insertion": "input gradient as zero insertion" if not transposed else "forward"}[kind]
    mode = f", padding_mode={geom.padding_mode!r}" if geom.padding_mode != "zeros" else ""
    return (f"{what} of {op} ({geom.d}-d): x {x} * w {w} -> y {y}; stride={tup(geom.stride)}, padding={pads}, "
            f"dilation={tup(geom.dilation)}{extra}{mode}")


def _fits(geom: Geometry, transposed: bool) -> bool:
    kinds, _ = zero_inserted_layout(geom)
    sides = [max(p, len(z)) for p, z in zip(geom.padded_size, kinds)]
    if geom.d == 1:
        return sides[0] <= MAX_STRIP
    return max(sides) <= MAX_GRID and geom.kernel[0] <= 7


def _drawn(geom: Geometry, transposed: bool) -> tuple[Geometry, str]:
    if _fits(geom, transposed):
        return geom, ""
    small = small_geometry(geom)
    if not _fits(small, transposed):
        raise ValueError(f"cannot animate this configuration: even {shapes_text(small, transposed)}, the smallest "
                         f"of its geometry class, is too large to draw cell by cell")
    return small, (f"animated for {shapes_text(small, transposed)}, a smaller configuration with "
                   f"{class_text(transposed)}")


# ----------------------------------------------------------------------------- data of one channel pair


@dataclasses.dataclass
class _Data:
    """One sample and channel pair in A's terms: ``a`` (A's input), ``b`` (A's output side), ``w`` (A's kernel)."""

    a: Array
    b: Array
    w: Array
    names: dict[str, str]
    note: str


def _data(geom: Geometry, transposed: bool, arrays: Optional[dict[str, Array]]) -> _Data:
    """The numbers drawn: the user's (sample 0, channel 0 of each side) or small integers."""
    rng = np.random.default_rng(0)
    x_shape, w_shape, y_shape = operation_shapes(geom, transposed)
    if arrays is not None:
        x, w = arrays["x"][0, 0], arrays["w"][0, 0]
        g = arrays["g"][0, 0] if "g" in arrays else rng.integers(1, 4, y_shape[2:]).astype(float)
        source = "your arrays" + ("" if "g" in arrays else " (upstream g: small integers)")
    else:
        x = rng.integers(0, 10, x_shape[2:]).astype(float)
        w = rng.choice(np.array([-2.0, -1.0, 1.0, 2.0]), w_shape[2:])
        g = rng.integers(1, 4, y_shape[2:]).astype(float)
        source = "small integers"
    channels = []
    if geom.n > 1:
        channels.append("sample 0")
    if geom.c_in > 1 or geom.c_out > 1:
        per_group = (geom.c_out if transposed else geom.c_in) // geom.groups
        channels.append(f"input channel 0 -> output channel 0 through w[0, 0] (each of the {per_group} input "
                        f"channels of a group adds one such sum)")
    note = f"numbers: {source}" + (f"; {'; '.join(channels)}" if channels else "")
    if not transposed:
        return _Data(a=x, b=g, w=w, names={"a": "x", "b": "g", "w": "w"}, note=note)
    # y = Aᵀ x: A's output side holds x (and gx), A's input side y (and g)
    return _Data(a=g, b=x, w=w, names={"a": "g", "b": "x", "w": "w"}, note=note)


# ----------------------------------------------------------------------------- layout and drawing helpers


def _fmt(v: float) -> str:
    if v == int(v) and abs(v) < 1e6:
        return str(int(v))
    return f"{v:.2g}" if abs(v) < 10 else f"{v:.3g}"


def _frames(positions: list[Index], max_frames: int) -> tuple[list[int], str]:
    """Which positions get a frame, and the note when not all do."""
    total = len(positions)
    if total <= max_frames:
        return list(range(total)), ""
    chosen = sorted(set(np.linspace(0, total - 1, max_frames).round().astype(int).tolist()))
    return chosen, f"showing {len(chosen)} of {total} positions, evenly spaced (every position is computed)"


_MAX_WIDTH = 12.5
"""Widest figure, in inches."""
_GAP, _LEFT, _RIGHT = 0.55, 0.4, 0.25
_TITLE, _TICKS, _LINE = 0.42, 0.28, 0.19
_CHAR = 0.068
"""Inches per character of 9-point text, for wrapping."""


class _Canvas:
    """The figure: rows of panels, every cell the same size, a header above and a caption below.

    ``rows`` holds, per row, the ``(rows, columns)`` of each grid in it: one
    row of three panels in 2-D, three rows of one strip in 1-D, and in 3-D
    three rows of depth slices.
    """

    def __init__(self, rows: list[list[tuple[int, int]]], header: str, dpi: int, caption_lines: int = 2) -> None:
        widest = max(sum(c for _, c in row) for row in rows)
        gaps = max(len(row) - 1 for row in rows)
        cell = min(0.55, (_MAX_WIDTH - _LEFT - _RIGHT - _GAP * gaps) / max(widest, 1))
        row_widths = [sum(c for _, c in row) * cell + _GAP * (len(row) - 1) for row in rows]
        width = max(max(row_widths) + _LEFT + _RIGHT, 7.5)
        self.chars = int((width - 0.3) / _CHAR)
        self.header_text = _wrap(header, self.chars)
        head = 0.12 + _LINE * (self.header_text.count("\n") + 1)
        foot = 0.1 + _LINE * caption_lines
        heights = [max(r for r, _ in row) * cell + _TITLE + _TICKS for row in rows]
        height = head + sum(heights) + foot
        self.fig = new_figure("animate", (width, height))
        self.fig.set_dpi(dpi)
        self.axes: list[list[Any]] = []
        top = height - head
        for row, row_height, row_width in zip(rows, heights, row_widths):
            left = (width - row_width) / 2 if len(rows) > 1 else _LEFT + (width - _LEFT - _RIGHT - row_width) / 2
            axes = []
            for r, c in row:
                w_in, h_in = c * cell, r * cell
                bottom = top - _TITLE - h_in
                axes.append(self.fig.add_axes((left / width, bottom / height, w_in / width, h_in / height)))
                left += w_in + _GAP
            self.axes.append(axes)
            top -= row_height
        self.header = self.fig.text(0.5, 1 - 0.08 / height, self.header_text, ha="center", va="top", fontsize=9)
        self.caption = self.fig.text(0.5, 0.06 / height, "", ha="center", va="bottom", fontsize=9,
                                     family="monospace")
        self.caption_chars = int((width - 0.3) / 0.075)

    def clear(self) -> None:
        """Nothing to do: every panel is redrawn in place (see :func:`_grid`)."""

    def finish(self, caption: str) -> None:
        self.caption.set_text(_wrap(caption, self.caption_chars))


_STATE: weakref.WeakKeyDictionary[Any, dict[str, Any]] = weakref.WeakKeyDictionary()
"""Per axes: the image, the cell texts and the marks drawn last, updated in place from frame to frame."""


def _grid(ax: Any, values: Optional[Array], colors: Array, title: str, *, shown: Optional[Array] = None,
          marks: tuple[tuple[tuple[int, int], str], ...] = (),
          span: Optional[tuple[int, int, int, int]] = None) -> None:
    """One 2-D grid (1-D data as one row) with numbers in the cells where ``shown``; updated in place."""
    rows, cols = colors.shape[:2]
    limit = MAX_STRIP if rows == 1 else MAX_GRID
    state = _STATE.get(ax)
    if state is None or state["shape"] != (rows, cols):
        ax.clear()
        cells(ax, colors, title, texts=None)
        texts = {}
        if max(rows, cols) <= limit:
            for r, c in np.ndindex(rows, cols):
                texts[(r, c)] = ax.text(c, r, "", ha="center", va="center", fontsize=8)
        state = {"shape": (rows, cols), "image": ax.get_images()[0], "texts": texts, "marks": []}
        _STATE[ax] = state
    state["image"].set_data(colors)
    ax.set_title(title, fontsize=9)
    for (r, c), artist in state["texts"].items():
        text = ""
        if values is not None and (shown is None or shown[r, c]):
            text = _fmt(float(values[r, c]))
        artist.set_text(text)
        artist.set_fontsize(8 if len(text) <= 3 else max(5.0, 8 - 0.7 * (len(text) - 3)))
    for patch in state["marks"]:
        patch.remove()
    state["marks"] = [outline(ax, r, c, color) for (r, c), color in marks]
    if span is not None:
        from matplotlib.patches import Rectangle

        r0, c0, h, w = span
        state["marks"].append(ax.add_patch(Rectangle((c0 - 0.5, r0 - 0.5), w, h, fill=False, edgecolor=WINDOW,
                                                     linewidth=1.5, linestyle="--")))


def _row(a: Array) -> Array:
    """1-D data as one row; 2-D as it is."""
    return a[np.newaxis] if a.ndim == 1 else a


def _slices(a: Array, depths: list[int]) -> list[Array]:
    """The given depth slices of a 3-D array, or the array itself (as a 2-D grid) in 1-D and 2-D."""
    if a.ndim <= 2:
        return [_row(a)]
    return [a[z] if 0 <= z < a.shape[0] else np.zeros(a.shape[1:], a.dtype) for z in depths]


def _factor(v: float) -> str:
    text = _fmt(v)
    return f"({text})" if text.startswith("-") else text


def _terms(pairs: list[tuple[float, float]], limit: int = 9) -> str:
    parts = [f"{_factor(a)}·{_factor(b)}" for a, b in pairs]
    if len(parts) > limit:
        parts = parts[: limit - 1] + ["…"]
    return " + ".join(parts) if parts else "0"


def _index_text(index: Index) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


# ----------------------------------------------------------------------------- the views


def _inside(geom: Geometry) -> Array:
    """Which padded positions hold the input itself (not padding)."""
    inside = np.ones(geom.padded_size, dtype=bool)
    for i in range(geom.d):
        pos = np.arange(geom.padded_size[i]) - geom.pad_lo[i]
        inside &= np.expand_dims((pos >= 0) & (pos < geom.in_size[i]), tuple(j for j in range(geom.d) if j != i))
    return inside


def _gathered(geom: Geometry, values: Array) -> Array:
    """``values`` (input-shaped) on the padded grid: padded zeros 0, the other modes' copies filled in."""
    mesh = np.meshgrid(*source_maps(geom), indexing="ij")
    valid = np.ones(geom.padded_size, dtype=bool)
    for m in mesh:
        valid &= m >= 0
    return np.where(valid, values[tuple(np.where(m >= 0, m, 0) for m in mesh)], 0.0)


def _shape2(shape: Index) -> tuple[int, int]:
    """The drawn grid of a spatial shape: 1-D as one row, 3-D as its last two axes."""
    return (1, shape[0]) if len(shape) == 1 else (shape[-2], shape[-1])


def _rows(d: int, panels: list[tuple[Index, int]]) -> list[list[tuple[int, int]]]:
    """Canvas rows for panels ``(spatial shape, slices)``: one row in 2-D, one row per panel otherwise."""
    if d == 2:
        return [[_shape2(shape) for shape, _ in panels]]
    return [[_shape2(shape)] * n for shape, n in panels]


def _flat(canvas: _Canvas, d: int) -> list[list[Any]]:
    """The canvas axes as one list per panel."""
    if d == 2:
        return [[ax] for ax in canvas.axes[0]]
    return canvas.axes


def _header(title: str, notes: list[str], how: str) -> str:
    return "\n".join([title, "; ".join(n for n in notes if n), how]).replace("\n\n", "\n")


def _depth(d: int, z: int) -> str:
    return f", depth {z}" if d == 3 else ""


def _label(head: str, d: int, z: int) -> str:
    """A panel title: ``head`` and, in 3-D, the depth of the slice (alone on the later slices)."""
    return f"{head}{_depth(d, z)}" if head else f"depth {z}"


def _span_of(geom: Geometry, q: Index) -> tuple[int, int, int, int]:
    """``(row, column, height, width)`` of the window of ``q`` in the drawn plane (the dilated extent)."""
    start = tuple(qi * s for qi, s in zip(q, geom.stride))
    if geom.d == 1:
        return 0, start[0], 1, geom.span[0]
    return start[-2], start[-1], geom.span[-2], geom.span[-1]


def _window_view(geom: Geometry, data: _Data, transposed: bool, max_frames: int, fps: float, dpi: int, title: str,
                 smaller: str, *, weight: bool = False) -> Animation:
    """The window sliding over padded ``a``: the forward pass (or, with ``weight``, the weight gradient)."""
    src = source_maps(geom)
    d = geom.d
    positions = list(np.ndindex(*geom.out_size))
    chosen, sub_note = _frames(positions, max_frames)
    inside = _inside(geom)
    padded = _gathered(geom, data.a)
    a, b, wn = data.names["a"], data.names["b"], data.names["w"]
    out_name = "gw" if weight else ("gx" if transposed else "y")
    k0 = geom.kernel[0] if d == 3 else 1
    outputs = np.zeros(geom.out_size)
    partial_w = []
    acc = np.zeros(geom.kernel)
    for q in positions:
        taps = taps_reading(geom, src, q)
        outputs[q] = sum(padded[p] * data.w[k] for k, p, _ in taps)
        acc = acc + data.b[q] * np.array([padded[p] for _, p, _ in taps]).reshape(geom.kernel)
        partial_w.append(acc.copy())
    if weight:
        panels = [(geom.padded_size, k0), (geom.out_size, 1), (geom.kernel, k0)]
        how = (f"the weight gradient adds, for every output position q, {b}[q] times the window of q "
               f"(taps {per_dim(geom.dilation)} apart, moving {per_dim(geom.stride)} per position)")
    else:
        panels = [(geom.padded_size, k0), (geom.kernel, k0), (geom.out_size, 1)]
        how = (f"the window: taps {per_dim(geom.dilation)} apart (dilation), moving {per_dim(geom.stride)} per "
               f"output (stride); grey: {geom.padding_mode} padding {_pads(geom)}")
    notes = [data.note, sub_note, smaller]
    canvas = _Canvas(_rows(d, panels), _header(title, notes, how), dpi)
    axes = _flat(canvas, d)

    def draw(frame: int) -> None:
        i = chosen[frame]
        q = positions[i]
        taps = taps_reading(geom, src, q)
        window = np.zeros(geom.padded_size, dtype=bool)
        for _, p, _ in taps:
            window[p] = True
        depths = [q[0] * geom.stride[0] + k * geom.dilation[0] for k in range(k0)] if d == 3 else [0]
        span = _span_of(geom, q)
        for j, (ax, pv, pw, pi, z) in enumerate(zip(axes[0], _slices(padded, depths), _slices(window, depths),
                                                    _slices(inside, depths), depths)):
            colors = paint([(~pi, PAD), (pw & ~pi, WINDOW_LIGHT), (pw & pi, WINDOW)], pv.shape)
            head = f"{a} padded {geom.padded_size}" if j == 0 else ""
            _grid(ax, pv, colors, _label(head, d, z), span=span)
        done = np.zeros(geom.out_size, dtype=bool)
        done[tuple(np.array(positions[: i + 1]).T)] = True
        mask = np.zeros(geom.out_size, dtype=bool)
        mask[q] = True
        if weight:
            for ax, gv, dv, mv in zip(axes[1], _slices(data.b, [q[0]]), _slices(done, [q[0]]),
                                      _slices(mask, [q[0]])):
                _grid(ax, gv, paint([(dv, TARGET_LIGHT), (mv, TARGET)], gv.shape),
                      f"upstream {b} {geom.out_size}" + _depth(d, q[0]))
            for j, (ax, av) in enumerate(zip(axes[2], _slices(partial_w[i], list(range(k0))))):
                _grid(ax, av, paint([], av.shape, base=KERNEL),
                      _label(f"{out_name} {geom.kernel}, the sum so far" if j == 0 else "", d, j))
            caption = (f"{out_name} += {b}{_index_text(q)} · (window of {_index_text(q)}), "
                       f"{b}{_index_text(q)} = {_fmt(float(data.b[q]))}")
        else:
            for j, (ax, wv) in enumerate(zip(axes[1], _slices(data.w, list(range(k0))))):
                _grid(ax, wv, paint([], wv.shape, base=KERNEL),
                      _label(f"kernel {wn}[0, 0] {geom.kernel}" if j == 0 else "", d, j))
            for ax, ov, dv, mv in zip(axes[2], _slices(outputs, [q[0]]), _slices(done, [q[0]]),
                                      _slices(mask, [q[0]])):
                _grid(ax, ov, paint([(dv, TARGET_LIGHT), (mv, TARGET)], ov.shape),
                      f"{out_name} {geom.out_size}" + _depth(d, q[0]), shown=dv)
            pairs = [(float(padded[p]), float(data.w[k])) for k, p, _ in taps]
            caption = (f"{out_name}{_index_text(q)} = Σ_k {a}_padded[{_pos_text(q, geom)}]·{wn}[k] = "
                       f"{_terms(pairs)} = {_fmt(float(outputs[q]))}")
        canvas.finish(caption)

    return Animation("weight_grad" if weight else ("input_grad" if transposed else "forward"), title,
                     "; ".join(n for n in notes if n), canvas.fig, draw, len(chosen), len(positions), fps, dpi,
                     partial_w[-1] if weight else outputs)


def _pads(geom: Geometry) -> str:
    return ", ".join(f"({lo}, {hi})" for lo, hi in zip(geom.pad_lo, geom.pad_hi))


def _pos_text(q: Index, geom: Geometry) -> str:
    parts = []
    for j, (qi, s, dl) in enumerate(zip(q, geom.stride, geom.dilation)):
        parts.append(f"{qi * s} + k{j}" + (f"·{dl}" if dl != 1 else ""))
    return ", ".join(parts)


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.fill(line, width=width, break_on_hyphens=False) for line in text.split("\n"))


def _scatter_view(geom: Geometry, data: _Data, transposed: bool, max_frames: int, fps: float, dpi: int, title: str,
                  smaller: str) -> Animation:
    """The input gradient of a convolution: each g[q] sends g[q]·w back onto its window; the padding adjoint last."""
    src = source_maps(geom)
    d = geom.d
    positions = list(np.ndindex(*geom.out_size))
    chosen, sub_note = _frames(positions, max_frames)
    inside = _inside(geom)
    accs = []
    acc = np.zeros(geom.padded_size)
    touched = np.zeros(geom.padded_size, dtype=bool)
    for q in positions:
        for k, p, _ in taps_reading(geom, src, q):
            acc[p] += data.b[q] * data.w[k]
            touched[p] = True
        accs.append((acc.copy(), touched.copy()))
    # the padding adjoint: drop the zero padding, or add each padded entry back onto the entry it copies
    final = np.zeros(geom.in_size)
    mesh = np.meshgrid(*src, indexing="ij")
    valid = np.ones(geom.padded_size, dtype=bool)
    for m in mesh:
        valid &= m >= 0
    np.add.at(final, tuple(m[valid] for m in mesh), acc[valid])
    final_padded = np.where(inside, _gathered(geom, final), 0.0)
    k0 = geom.kernel[0] if d == 3 else 1
    b, wn = data.names["b"], data.names["w"]
    panels = [(geom.out_size, 1), (geom.kernel, k0), (geom.padded_size, k0)]
    how = ("the kernel is not flipped here: each upstream value scatters it onto the window it came from; the "
           "padded gradient accumulates, then the padding is undone")
    notes = [data.note, sub_note, smaller]
    canvas = _Canvas(_rows(d, panels), _header(title, notes, how), dpi)
    axes = _flat(canvas, d)
    frames = len(chosen) + 1

    def draw(frame: int) -> None:
        last = frame == len(chosen)
        i = chosen[min(frame, len(chosen) - 1)]
        q = positions[i]
        mask = np.zeros(geom.out_size, dtype=bool)
        if not last:
            mask[q] = True
        done = np.zeros(geom.out_size, dtype=bool)
        done[tuple(np.array(positions[: i + 1]).T)] = True
        for ax, gv, dv, mv in zip(axes[0], _slices(data.b, [q[0]]), _slices(done, [q[0]]), _slices(mask, [q[0]])):
            _grid(ax, gv, paint([(dv, TARGET_LIGHT), (mv, TARGET)], gv.shape),
                  f"upstream {b} {geom.out_size}" + _depth(d, q[0]))
        for j, (ax, wv) in enumerate(zip(axes[1], _slices(data.w, list(range(k0))))):
            _grid(ax, wv, paint([], wv.shape, base=KERNEL),
                  _label(f"kernel {wn}[0, 0] {geom.kernel}" if j == 0 else "", d, j))
        depths = [q[0] * geom.stride[0] + k * geom.dilation[0] for k in range(k0)] if d == 3 else [0]
        if not last:
            acc_v, touched_v = accs[i]
            window = np.zeros(geom.padded_size, dtype=bool)
            for _, p, _ in taps_reading(geom, src, q):
                window[p] = True
            for j, (ax, av, tv, wv_, iv, z) in enumerate(zip(axes[2], _slices(acc_v, depths),
                                                             _slices(touched_v, depths), _slices(window, depths),
                                                             _slices(inside, depths), depths)):
                colors = paint([(~iv, PAD), (tv & iv, WINDOW_LIGHT), (wv_ & iv, WINDOW), (wv_ & ~iv, "#b5b5b5")],
                               av.shape)
                _grid(ax, av, colors, _label("gradient of the padded input" if j == 0 else "", d, z),
                      shown=tv, span=_span_of(geom, q))
            caption = (f"{b}{_index_text(q)} = {_fmt(float(data.b[q]))} sends {_fmt(float(data.b[q]))}·{wn} back: "
                       f"gx_padded[{_pos_text(q, geom)}] += {_fmt(float(data.b[q]))}·{wn}[k]")
        else:
            shown = inside
            for j, (ax, fv, sv, z) in enumerate(zip(axes[2], _slices(final_padded, depths), _slices(shown, depths),
                                                    depths)):
                _grid(ax, fv, paint([(~sv, PAD)], fv.shape, base=WINDOW_LIGHT),
                      _label(f"gx {geom.in_size}" if j == 0 else "", d, z), shown=sv)
            if geom.padding_mode == "zeros":
                caption = "last step: the gradient that landed in the zero padding is dropped; what is left is gx"
            else:
                caption = (f"last step: each {geom.padding_mode}-padded cell's gradient is added to the x entry it "
                           f"copies; what is left is gx")
        canvas.finish(caption)

    return Animation("input_grad", title, "; ".join(n for n in notes if n), canvas.fig, draw, frames,
                     len(positions), fps, dpi, final)


def _zero_insertion_view(geom: Geometry, data: _Data, transposed: bool, max_frames: int, fps: float, dpi: int,
                         title: str, smaller: str) -> Animation:
    """``Aᵀ b`` as conv_arithmetic draws it: zeros inserted into ``b``, padded, the flipped kernel at stride 1."""
    d = geom.d
    kinds, entries = zero_inserted_layout(geom)
    mesh_k = np.meshgrid(*kinds, indexing="ij")
    mesh_e = np.meshgrid(*entries, indexing="ij")
    is_entry = np.ones(mesh_k[0].shape, dtype=bool)
    is_pad = np.zeros(mesh_k[0].shape, dtype=bool)
    for mk in mesh_k:
        is_entry &= mk == 0
        is_pad |= mk == 2
    inserted = ~is_entry & ~is_pad
    grid_vals = np.where(is_entry, data.b[tuple(np.where(me >= 0, me, 0) for me in mesh_e)], 0.0)
    flipped = data.w[(slice(None, None, -1),) * d]
    positions = list(np.ndindex(*geom.in_size))
    chosen, sub_note = _frames(positions, max_frames)
    outputs = np.zeros(geom.in_size)
    for j in positions:
        outputs[j] = sum(grid_vals[tuple(ji + ki * dl for ji, ki, dl in zip(j, k, geom.dilation))] * flipped[k]
                         for k in np.ndindex(*geom.kernel))
    k0 = geom.kernel[0] if d == 3 else 1
    b, wn = data.names["b"], data.names["w"]
    out_name = "y" if transposed else "gx"
    num = Numbers(geom)
    pads = ", ".join(f"({lo}, {hi})" for lo, hi in num.full_pads)
    panels = [(grid_vals.shape, k0), (geom.kernel, k0), (geom.in_size, 1)]
    how = (f"{b} with s − 1 = {per_dim(tuple(s - 1 for s in geom.stride))} zero(s) inserted between its entries "
           f"(yellow), padded by δ(K−1) − l before and δ(K−1) − h + output_padding after = {pads} (grey; negative: "
           f"cropped); the kernel rotated by 180° slides with stride 1, taps {per_dim(geom.dilation)} apart")
    notes = [data.note, sub_note, smaller]
    canvas = _Canvas(_rows(d, panels), _header(title, notes, how), dpi)
    axes = _flat(canvas, d)

    def draw(frame: int) -> None:
        i = chosen[frame]
        j = positions[i]
        window = np.zeros(grid_vals.shape, dtype=bool)
        pairs = []
        for k in np.ndindex(*geom.kernel):
            z = tuple(ji + ki * dl for ji, ki, dl in zip(j, k, geom.dilation))
            window[z] = True
            pairs.append((float(grid_vals[z]), float(flipped[k])))
        depths = [j[0] + k * geom.dilation[0] for k in range(k0)] if d == 3 else [0]
        span = (0, j[0], 1, geom.span[0]) if d == 1 else (j[-2], j[-1], geom.span[-2], geom.span[-1])
        for t, (ax, gv, en, ins, pa, wv, z) in enumerate(zip(axes[0], _slices(grid_vals, depths),
                                                             _slices(is_entry, depths), _slices(inserted, depths),
                                                             _slices(is_pad, depths), _slices(window, depths),
                                                             depths)):
            colors = paint([(ins, INSERTED), (pa, PAD), (wv & ~en, WINDOW_LIGHT), (wv & en, WINDOW)], gv.shape)
            _grid(ax, gv, colors, _label(f"{b} with zeros inserted, padded" if t == 0 else "", d, z), span=span)
        for kk, (ax, fv) in enumerate(zip(axes[1], _slices(flipped, list(range(k0))))):
            _grid(ax, fv, paint([], fv.shape, base=KERNEL),
                  _label(f"{wn}[0, 0] rotated 180°" if kk == 0 else "", d, kk))
        done = np.zeros(geom.in_size, dtype=bool)
        done[tuple(np.array(positions[: i + 1]).T)] = True
        mask = np.zeros(geom.in_size, dtype=bool)
        mask[j] = True
        for ax, ov, dv, mv in zip(axes[2], _slices(outputs, [j[0]]), _slices(done, [j[0]]), _slices(mask, [j[0]])):
            _grid(ax, ov, paint([(dv, TARGET_LIGHT), (mv, TARGET)], ov.shape),
                  f"{out_name} {geom.in_size}" + _depth(d, j[0]), shown=dv)
        canvas.finish(f"{out_name}{_index_text(j)} = {_terms(pairs)} = {_fmt(float(outputs[j]))}")

    return Animation("forward" if transposed else "zero_insertion", title, "; ".join(n for n in notes if n),
                     canvas.fig, draw, len(chosen), len(positions), fps, dpi, outputs)


def _weight_view(geom: Geometry, data: _Data, transposed: bool, max_frames: int, fps: float, dpi: int, title: str,
                 smaller: str) -> Animation:
    return _window_view(geom, data, transposed, max_frames, fps, dpi, title, smaller, weight=True)


_VIEWS: dict[tuple[str, bool], Callable[..., Animation]] = {
    ("forward", False): _window_view,
    ("input_grad", False): _scatter_view,
    ("weight_grad", False): _weight_view,
    ("zero_insertion", False): _zero_insertion_view,
    ("forward", True): _zero_insertion_view,
    ("input_grad", True): _window_view,
    ("weight_grad", True): _weight_view,
    ("zero_insertion", True): _zero_insertion_view,
}

