"""``explain``: the shapes, the size formula and verified gradient recipes of one configuration."""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from . import _recipes as rc
from ._arguments import IntOrTuple, PaddingArg, Shape, check_array, is_int, normalize_shape, prod
from ._conv import conv, conv_backward
from ._geometry import Geometry
from ._gradcheck import Progress, check_seed
from ._matrix import check_budget, matrix_geometry, triplet_count
from ._plot import plot_explanation
from ._small import class_text, operation_shapes, shapes_text, small_geometry
from ._transpose import conv_transpose, conv_transpose_backward
from .engine.state import get_workspace_budget

Array = npt.NDArray[Any]

VERIFY_RTOL = 1e-9
"""A recipe is verified when its max error is below ``VERIFY_RTOL · max(1, max |reference|)``."""

_VERIFY_BATCH = 2
"""Recipes are batch-agnostic; they are verified on at most this many samples (one for an empty batch)."""

VERIFY_FULL_WORK = 2**20
"""Configurations with at most this many multiply-adds plus array entries (on the verification batch) are
verified as they are; larger ones on a smaller configuration of the same geometry class."""

_VERIFY_COPIES = 12
"""Arrays of the size of the padded data that verifying the recipes may hold at once (a generous count)."""


@dataclass(frozen=True)
class Recipe:
    """One way of computing one gradient, and whether it was verified.

    Attributes
    ----------
    gradient : {"input", "weight", "bias"}
    form : {"call", "explicit", "pytorch", "tensorflow", "jax"}
        ``"call"``: one call of a convgrad operation; ``"explicit"``: the
        zero insertion, padding, flips and axis swaps spelled out in NumPy;
        the others: code for that framework, without autograd.
    title : str
    code : str
        Python source; it reads ``x``, ``w`` and ``g`` and sets ``gx``,
        ``gw`` or ``gb``.
    status : {"verified", "failed", "not run"}
        ``"verified"``: executed on random data and equal to
        :func:`conv_backward` (or :func:`conv_transpose_backward`) within
        rounding; ``"failed"``: executed and wrong (never shown as correct);
        ``"not run"``: the framework is not installed here.
    max_error : float or None
        Max absolute difference from the reference when executed.
    note : str
        Why a recipe was not run, or what went wrong.
    on : str
        What the recipe was run on when that is not the configuration
        explained: ``"2 of the 8 samples"``, ``"a batch of one"`` or the
        shapes of a smaller configuration of the same geometry class.
    """

    gradient: str
    form: str
    title: str
    code: str
    status: str
    max_error: Optional[float] = None
    note: str = ""
    on: str = ""

    @property
    def status_line(self) -> str:
        """``verified, max error 1.8e-15`` and the like."""
        if self.status == "verified":
            note = f" ({self.note})" if self.note else ""
            where = f" on {self.on}" if self.on else ""
            return f"verified{where}, max error {self.max_error:.1e}{note}"
        if self.status == "failed":
            err = "" if self.max_error is None else f", max error {self.max_error:.1e}"
            return f"FAILED verification{err}: do not use ({self.note})" if self.note else f"FAILED verification{err}"
        return f"not run ({self.note})" if self.note else "not run"


@dataclass(frozen=True)
class Worked:
    """The user's own numbers: one element of each result written out as its sum, and the definition as loops.

    Attributes
    ----------
    sections : tuple of (str, tuple of str)
        ``(heading, lines)`` for the output element, the input-gradient
        element, the weight-gradient element and the bias-gradient element:
        the defining sum with this configuration's stride, dilation and
        padding, its terms by index, the same terms with the numbers, and the
        total next to what convgrad computes.
    loop : Recipe
        The forward pass and the three gradients as nested loops (``form``
        ``"loop"``), run on the arrays and compared with convgrad.
    indices : dict of str to tuple of int
        ``"output"``, ``"input"``, ``"weight"``: the elements written out.
    """

    sections: tuple[tuple[str, tuple[str, ...]], ...]
    loop: Recipe
    indices: dict[str, tuple[int, ...]]


@dataclass(frozen=True, repr=False)
class Explanation:
    """What :func:`explain` found for one configuration.

    ``str(e)`` is the whole explanation as text; ``repr(e)`` a few lines
    (what, shapes, verdict). In Jupyter it renders as styled HTML with the
    picture embedded (:meth:`to_html`); :meth:`to_markdown`, :meth:`to_dict`
    and :meth:`to_json` give the other formats; :meth:`plot` draws it and
    :meth:`animate` animates it.

    Attributes
    ----------
    title : str
        One line naming the operation and its arguments.
    config : dict
        The normalised configuration (per-dimension tuples).
    shapes : list of (name, shape, meaning)
    formula : list of str
        The output-size formula, then one line per spatial dimension with the numbers.
    notes : list of str
        Remarks: never-read input rows, the padding adjoint, unbatched input,
        what the recipes were verified on.
    recipes : tuple of Recipe
        For each gradient, the forms ``call``, ``explicit``, ``pytorch``,
        ``tensorflow`` and ``jax``.
    verified_on : tuple of three shapes, or None
        ``(x, w, y)`` shapes of the configuration the recipes were run on, when
        it is not the one explained: fewer samples, a batch of one for an empty
        batch, or a smaller configuration of the same geometry class for a
        large one (see :func:`explain`); ``None`` when it is the one explained.
    worked : Worked or None
        With arrays (``explain(x, w, ...)``): their numbers written out.
    """

    title: str
    config: dict[str, Any]
    shapes: list[tuple[str, tuple[int, ...], str]]
    formula: list[str]
    notes: list[str]
    recipes: tuple[Recipe, ...]
    geometry: Geometry = field(repr=False, compare=False)
    transposed: bool = False
    verified_on: Optional[tuple[Shape, Shape, Shape]] = None
    worked: Optional[Worked] = None
    arrays: Optional[dict[str, Array]] = field(default=None, repr=False, compare=False)

    @property
    def verified(self) -> bool:
        """Whether every recipe that was run passed."""
        recipes = self.recipes + ((self.worked.loop,) if self.worked is not None else ())
        return all(r.status != "failed" for r in recipes)

    def recipes_for(self, gradient: str) -> list[Recipe]:
        """The recipes of one gradient (``"input"``, ``"weight"`` or ``"bias"``)."""
        return [r for r in self.recipes if r.gradient == gradient]

    @property
    def summary(self) -> str:
        """One line: how many recipes were verified, failed and not run, and on what."""
        counts = {status: sum(r.status == status for r in self.recipes) for status in ("verified", "failed",
                                                                                          "not run")}
        parts = [f"{counts['verified']} verified"]
        if counts["failed"]:
            parts.append(f"{counts['failed']} FAILED")
        if counts["not run"]:
            parts.append(f"{counts['not run']} not run")
        where = ""
        if self.verified_on is not None:
            x, w, _ = self.verified_on
            where = f" (on x {x} * w {w}, the same geometry class)"
        head = "recipes verified" if self.verified else "a recipe FAILED verification"
        return f"{head}: {', '.join(parts)} of {len(self.recipes)}{where}"

    # ------------------------------------------------------------------ renderings

    def __repr__(self) -> str:
        lines = [f"<Explanation of {self.title}", f"  {self.summary}"]
        if self.worked is not None:
            lines.append(f"  with your numbers at y{list(self.worked.indices['output'])} and "
                         f"x{list(self.worked.indices['input'])}")
        lines.append("  print() it for the whole text; .plot() draws it, .animate() animates it>")
        return "\n".join(lines)

    def __str__(self) -> str:
        out = [self.title, "", "Shapes"]
        width = max(len(name) for name, _, _ in self.shapes)
        swidth = max(len(str(shape)) for _, shape, _ in self.shapes)
        out += [f"  {name:<{width}}  {shape!s:<{swidth}}  {meaning}" for name, shape, meaning in self.shapes]
        out += ["", "Output size"] + [f"  {line}" for line in self.formula]
        if self.notes:
            out += ["", "Notes"] + [f"  - {note}" for note in self.notes]
        if self.worked is not None:
            out += ["", "Your numbers"]
            for head, lines in self.worked.sections:
                out += [f"  {head}"] + [f"    {line}" for line in lines]
            loop = self.worked.loop
            out += [f"  [loop] {loop.title} — {loop.status_line}"]
            if loop.status != "failed":
                out += [f"      {line}" for line in loop.code.rstrip("\n").split("\n")]
        for gradient, heading in _HEADINGS:
            out += ["", heading(self)]
            for r in self.recipes_for(gradient):
                out.append(f"  [{r.form}] {r.title} — {r.status_line}")
                if r.status != "failed":
                    out += [f"      {line}" for line in r.code.rstrip("\n").split("\n")]
        return "\n".join(out)

    def to_markdown(self) -> str:
        """The explanation as Markdown (what Jupyter shows via ``_repr_markdown_``).

        Examples
        --------
        >>> import convgrad as cg
        >>> md = cg.explain((1, 1, 5), (1, 1, 3)).to_markdown()
        >>> print(md.splitlines()[0].split(";")[0])
        ### conv (1-d): x (1, 1, 5) * w (1, 1, 3) -> y (1, 1, 3)
        """
        from ._render import fence, md_cell

        out = [f"### {self.title}", "", f"*{self.summary}*", "", "| array | shape | meaning |", "| --- | --- | --- |"]
        out += [f"| {md_cell(name)} | `{shape}` | {md_cell(meaning)} |" for name, shape, meaning in self.shapes]
        out += ["", "**Output size**", "", fence("\n".join(self.formula), "text")]
        if self.notes:
            out += ["", *[f"- {md_cell(note)}" for note in self.notes]]
        if self.worked is not None:
            out += ["", "#### Your numbers"]
            for head, lines in self.worked.sections:
                out += ["", f"**{md_cell(head)}**", "", fence("\n".join(lines), "text")]
            loop = self.worked.loop
            out += ["", f"**{md_cell(loop.title)}** — *{md_cell(loop.status_line)}*"]
            if loop.status != "failed":
                out += ["", fence(loop.code, "python")]
        for gradient, heading in _HEADINGS:
            out += ["", f"#### {heading(self)}"]
            for r in self.recipes_for(gradient):
                out += ["", f"**{md_cell(r.title)}** — *{md_cell(r.status_line)}*"]
                if r.status != "failed":
                    out += ["", fence(r.code, "python")]
        return "\n".join(out) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def to_html(self, standalone: bool = False, *, picture: bool = True) -> str:
        """The explanation as HTML: a fragment for Jupyter, or with ``standalone=True`` a whole page.

        The page has its CSS inline and the picture (:meth:`plot`) embedded as
        PNG data, so it is one self-contained file; code blocks scroll inside
        their own box, verdicts are coloured.

        Parameters
        ----------
        standalone : bool
            A complete HTML document instead of a ``<div>``.
        picture : bool
            Embed the picture (needs matplotlib; without it a line says so).

        Returns
        -------
        str

        Examples
        --------
        >>> import convgrad as cg
        >>> page = cg.explain((1, 1, 5), (1, 1, 3)).to_html(standalone=True, picture=False)
        >>> page.startswith("<!DOCTYPE html>"), "<style>" in page
        (True, True)
        """
        from . import _render as r

        parts = [r.heading(3, self.title)]
        kind = "ok" if self.verified else "fail"
        parts.append(f"<p style='margin: 0.2em 0 0.6em 0;'>{r.badge(self.summary, kind)}</p>")
        parts.append(r.table_html(("array", "shape", "meaning"),
                                  [(name, str(shape), meaning) for name, shape, meaning in self.shapes],
                                  code_columns=(1,)))
        parts.append(r.heading(4, "Output size") + r.code_html("\n".join(self.formula)))
        if self.notes:
            parts.append("<ul style='margin: 0.3em 0; padding-left: 1.4em;'>"
                         + "".join(f"<li>{r.esc(n)}</li>" for n in self.notes) + "</ul>")
        if picture:
            uri = self._picture_uri()
            if uri.startswith("data:"):
                parts.append(r.image_html(uri, f"the picture of {self.title}"))
            else:
                parts.append(f"<p style='color: #57606a;'>{r.esc(uri)}</p>")
        if self.worked is not None:
            parts.append(r.heading(4, "Your numbers"))
            for head, lines in self.worked.sections:
                parts.append(f"<p style='margin: 0.4em 0 0 0;'><b>{r.esc(head)}</b></p>"
                             + r.code_html("\n".join(lines)))
            parts.append(_recipe_html(self.worked.loop))
        for gradient, heading in _HEADINGS:
            parts.append(r.heading(4, heading(self)))
            parts += [_recipe_html(recipe) for recipe in self.recipes_for(gradient)]
        frag = r.fragment("".join(parts), "convgrad-explain")
        return r.standalone_page(self.title, frag) if standalone else frag

    def _repr_html_(self) -> str:
        return self.to_html()

    def _picture_uri(self) -> str:
        """The picture as a PNG data URI (drawn once), or why there is none."""
        cache = self.__dict__.setdefault("_cache", {})
        if "uri" not in cache:
            from ._render import figure_data_uri

            try:
                cache["uri"] = figure_data_uri(self.plot(), dpi=72)
            except ImportError as exc:
                cache["uri"] = f"no picture: {exc}"
            except ValueError as exc:  # a configuration too large even to draw as a smaller one
                cache["uri"] = f"no picture: {exc}"
        return str(cache["uri"])

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary of everything above."""
        out = {
            "title": self.title,
            "transposed": self.transposed,
            "config": {k: _jsonable(v) for k, v in self.config.items()},
            "shapes": [{"name": n, "shape": list(s), "meaning": m} for n, s, m in self.shapes],
            "formula": list(self.formula),
            "notes": list(self.notes),
            "verified": self.verified,
            "summary": self.summary,
            "verified_on": None if self.verified_on is None else dict(
                zip(("input_shape", "weight_shape", "output_shape"), (list(s) for s in self.verified_on))
            ),
            "recipes": [_recipe_dict(r) for r in self.recipes],
        }
        if self.worked is not None:
            out["worked"] = {
                "indices": {k: list(v) for k, v in self.worked.indices.items()},
                "sections": [{"heading": h, "lines": list(lines)} for h, lines in self.worked.sections],
                "loop": _recipe_dict(self.worked.loop),
            }
        return out

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def plot(self, path: Optional[str] = None, /, *, dpi: int = 110) -> Any:
        """Draw the configuration: windows, kernel, matrix pattern, footprints; save it when ``path`` is given.

        Panels: the padded input with the window of one output element (the
        taps labelled ``1 … K``, the dilation's gaps, dots where the windows
        start, so the stride shows), or for a transposed convolution the input
        with ``s − 1`` zeros inserted and the full padding under the flipped
        kernel (the conv_arithmetic view); the kernel; the output element; the
        sparsity pattern of one sample's convolution matrix (channels
        separated, groups outlined); the footprint of one input element on the
        output (a column of the matrix: the flipped kernel, what a finite
        difference at that input element measures) and of one output element
        on the input (a row: the kernel as is). The numbers in the cells are
        tap labels, not values, so every cell a footprint touches has one
        colour. In 3-d every panel is the plane through the same connection
        and says its depth. A configuration whose panels would need more than
        the workspace budget (or more than 16 MiB) is drawn as a smaller
        configuration of the same geometry class, named in the title.
        Needs matplotlib (``pip install 'convgrad[plot]'``).

        Parameters
        ----------
        path : str, optional
            Where to write the image; the extension picks the format
            (``.png``, ``.pdf``, ``.svg``, ...; none: PNG). Without a path
            nothing is written (Jupyter shows the returned figure).
        dpi : int
            Resolution of the written file, 1 to 1000.

        Returns
        -------
        matplotlib.figure.Figure

        Raises
        ------
        ImportError
            Without matplotlib, naming the extra to install.
        ValueError, TypeError
            For an extension matplotlib does not write or a bad ``dpi``,
            before any drawing; when even the smaller configuration would need
            more than 16 MiB (a huge stride, dilation, padding or kernel).
        FileNotFoundError
            When the directory of ``path`` does not exist, before any drawing.
        """
        return plot_explanation(self.geometry, self.transposed, self.title, path, dpi=dpi)

    def animate(self, path: Optional[str] = None, /, *, kind: str = "forward", max_frames: int = 60,
                fps: float = 2.0, dpi: int = 80) -> Any:
        """Animate the configuration; see :func:`convgrad.animate` (this passes the explanation's own geometry).

        With the arrays of ``explain(x, w, ...)`` the animation shows their
        numbers when they are small enough to read.

        Returns
        -------
        Animation
        """
        from ._animate import animate_geometry

        return animate_geometry(self.geometry, self.transposed, path, kind=kind, max_frames=max_frames, fps=fps,
                                dpi=dpi, arrays=self.arrays)


def _recipe_dict(r: Recipe) -> dict[str, Any]:
    return {
        "gradient": r.gradient,
        "form": r.form,
        "title": r.title,
        "status": r.status,
        "max_error": r.max_error,
        "note": r.note,
        "code": r.code if r.status != "failed" else None,
    }


def _recipe_html(r: Recipe) -> str:
    from . import _render as rd

    kind = {"verified": "ok", "failed": "fail"}.get(r.status, "neutral")
    head = f"<p style='margin: 0.5em 0 0.1em 0;'><b>{rd.esc(r.title)}</b> {rd.badge(r.status_line, kind)}</p>"
    return head + (rd.code_html(r.code) if r.status != "failed" else "")


def _input_heading(e: Explanation) -> str:
    return f"Input gradient gx = ∂L/∂x, shape {e.shapes[0][1]}"


def _weight_heading(e: Explanation) -> str:
    return f"Weight gradient gw = ∂L/∂w, shape {e.shapes[1][1]}"


def _bias_heading(e: Explanation) -> str:
    return f"Bias gradient gb = ∂L/∂b, shape ({e.config['out_channels']},)"


_HEADINGS: list[tuple[str, Callable[[Explanation], str]]] = [
    ("input", _input_heading),
    ("weight", _weight_heading),
    ("bias", _bias_heading),
]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_jsonable(v) for v in value]
    return value


# ----------------------------------------------------------------------------- building the recipes


_FORMS = ("call", "explicit", "pytorch", "tensorflow", "jax")


def _recipe_sources(geom: Geometry, transposed: bool) -> list[tuple[str, str, str, str]]:
    """``(gradient, form, title, code)`` for every recipe of the configuration."""
    d = geom.d
    out: list[tuple[str, str, str, str]] = []
    if not transposed:
        ix = [
            ("call", "1. one call: conv_transpose of g with the same stride, padding, dilation, groups and the "
             "output_padding that restores the input size", rc.adjoint_call(geom, "g", "gx")),
            ("explicit", "2. full correlation with the flipped kernel: zero insertion, pad/crop, rotated kernel "
             "with in/out channels swapped", rc.adjoint_flipped(geom, "g", "gx")),
            ("pytorch", "3. PyTorch", rc.torch_header(d) + rc.torch_adjoint(geom, "g", "gx")),
            ("tensorflow", "3. TensorFlow", rc.tf_header(d) + rc.tf_adjoint(geom, "g", "gx")),
            ("jax", "3. JAX", rc.jax_header(d) + rc.jax_adjoint(geom, "g", "gx")),
        ]
        a, b = "x", "g"
    else:
        ix = [
            ("call", "1. one call: the adjoint of a transposed convolution is a forward convolution with the same "
             "stride, padding, dilation and groups", rc.forward_call(geom, "g", "gx")),
            ("explicit", "2. explicit: pad g, then a strided valid correlation with w (not flipped)",
             rc.forward_explicit(geom, "g", "gx")),
            ("pytorch", "3. PyTorch", rc.torch_header(d) + rc.torch_forward(geom, "g", "gx")),
            ("tensorflow", "3. TensorFlow", rc.tf_header(d) + rc.tf_forward(geom, "g", "gx")),
            ("jax", "3. JAX", rc.jax_header(d) + rc.jax_forward(geom, "g", "gx")),
        ]
        a, b = "g", "x"
    gwho = "x" if not transposed else "g"
    wx = [
        ("call", f"1. one call per group: conv of {gwho} with batch and channels swapped, stride and dilation "
         "exchanged, cropped to the kernel size", rc.weight_call(geom, a, b, "gw")),
        ("explicit", "2. explicit: pad, zero-insert, valid correlation with stride = dilation, batch contracted",
         rc.weight_explicit(geom, a, b, "gw")),
        ("pytorch", "3. PyTorch", rc.torch_header(d) + rc.torch_weight(geom, a, b, "gw")),
        ("tensorflow", "3. TensorFlow", rc.tf_header(d) + rc.tf_weight(geom, a, b, "gw")),
        ("jax", "3. JAX", rc.jax_header(d) + rc.jax_weight(geom, a, b, "gw")),
    ]
    bx = [
        ("call", "1. one call", rc.bias_call(d)),
        ("explicit", "2. explicit: g summed over batch and space", rc.bias_explicit(d)),
        ("pytorch", "3. PyTorch", rc.torch_bias(d)),
        ("tensorflow", "3. TensorFlow", "import tensorflow as tf\n" + rc.tf_bias(d)),
        ("jax", "3. JAX", rc.jax_bias(d)),
    ]
    for gradient, items in (("input", ix), ("weight", wx), ("bias", bx)):
        out += [(gradient, form, title, code) for form, title, code in items]
    return out


_RESULT = {"input": "gx", "weight": "gw", "bias": "gb"}


def run_recipe(code: str, gradient: str, namespace: dict[str, Any]) -> Array:
    """Execute a recipe's code and return the gradient it leaves behind (as NumPy)."""
    scope = dict(namespace)
    exec(compile(code, f"<convgrad recipe: {gradient}>", "exec"), scope)
    value = scope[_RESULT[gradient]]
    return np.asarray(value.numpy() if hasattr(value, "numpy") else value)


def verify_recipe(
    gradient: str, form: str, title: str, code: str, namespace: dict[str, Any], reference: Array
) -> Recipe:
    """Run one recipe and compare it with the reference gradient."""
    try:
        value = run_recipe(code, gradient, namespace)
    except Exception as exc:  # a recipe that cannot run is a failed recipe, reported as such
        return Recipe(gradient, form, title, code, "failed", None, f"{type(exc).__name__}: {exc}")
    if value.shape != reference.shape:
        return Recipe(gradient, form, title, code, "failed", None,
                      f"shape {value.shape} instead of {reference.shape}")
    err = float(np.max(np.abs(value - reference))) if value.size else 0.0
    scale = max(1.0, float(np.max(np.abs(reference)))) if reference.size else 1.0
    if err <= VERIFY_RTOL * scale:
        return Recipe(gradient, form, title, code, "verified", err)
    return Recipe(gradient, form, title, code, "failed", err, "differs from the exact gradient")


def _torch_namespace(arrays: dict[str, Array]) -> Optional[dict[str, Any]]:
    try:
        import torch
    except ImportError:
        return None
    return {name: torch.from_numpy(np.ascontiguousarray(a)) for name, a in arrays.items()}


# ----------------------------------------------------------------------------- explain


def explain(
    input: Any,
    weight: Any,
    bias: Any = None,
    /,
    *,
    grad_output: Any = None,
    at: Optional[Sequence[int]] = None,
    input_at: Optional[Sequence[int]] = None,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    transposed: bool = False,
    output_padding: IntOrTuple = 0,
    seed: int = 0,
    full: bool = False,
    progress: Optional[bool] = False,
) -> Explanation:
    """Explain one convolution: shapes, output-size formula, verified gradient recipes — and your numbers.

    ``input`` and ``weight`` are shapes (``explain((2, 3, 6, 6), (4, 3, 3, 3))``)
    or arrays (``explain(x, w, b, grad_output=g)``). For each gradient (input,
    weight, bias) it gives the recipe in three forms — (1) one call of a
    convgrad operation with the exact stride, padding, ``output_padding``,
    dilation and groups; (2) the "full correlation with the flipped kernel"
    form with the zero insertion, pad/crop amounts and axis swaps spelled
    out; (3) code for PyTorch, TensorFlow and JAX that computes the gradient
    without autograd. Every recipe that can run here is executed on random
    data and compared with :func:`conv_backward` (or
    :func:`conv_transpose_backward`) before it is shown; one that fails is
    marked so and its code is not shown. The PyTorch code runs when PyTorch
    is installed; TensorFlow and JAX code is marked "not run".

    With arrays, the explanation also writes out, with the actual numbers, one
    element of the output (``y[n, o, q] = b[o] + Σ … = 3·1 + …``), of the input
    gradient, of the weight gradient and of the bias gradient, next to what
    convgrad computes; and the definition as nested loops, run on the arrays
    (or, when that would be slow, on a small configuration of the same
    geometry) and compared with convgrad.

    The recipes are run on at most two samples (one when the batch is
    empty). A configuration with more than :data:`VERIFY_FULL_WORK`
    multiply-adds plus array entries is verified on a smaller configuration
    of the same geometry class instead — the same kernel, stride, dilation,
    padding, padding mode, groups and remainder
    ``(S + l + h − δ·(K − 1) − 1) mod s`` (the ``output_padding`` of a
    transposed convolution), with up to three output positions per dimension
    and up to two channels per group — whose recipes are the same code with
    smaller sizes; a note and every status line say what was run, and
    :attr:`Explanation.verified_on` holds its shapes. So explaining a large
    configuration takes as long as explaining a small one; ``full=True``
    verifies on the configuration itself.

    Parameters
    ----------
    input : tuple of int, or array, shape=(N, C, *S)
        The input shape or the input itself (an unbatched ``(C, *S)`` is
        explained as ``N = 1``).
    weight : tuple of int, or array, shape=(O, C/groups, *K)
        For ``transposed``, ``(C_in, C_out / groups, *K)``.
    bias : array, shape=(O,), optional
        With arrays only.
    grad_output : array, shape=y.shape, optional
        The upstream gradient ``g = ∂L/∂y`` for the worked numbers; by
        default ones (``L = y.sum()``). With arrays only.
    at : tuple of int, optional
        The output element to write out: an index of ``y`` (every axis, or the
        spatial axes with sample 0 and channel 0). Default: the centre of ``y``.
    input_at : tuple of int, optional
        The input element whose gradient is written out, likewise for ``x``.
        Default: the centre of ``x``.
    stride, padding, dilation, groups, padding_mode
        As for :func:`conv` (``padding_mode`` must be ``"zeros"`` when ``transposed``).
    transposed : bool
        Explain :func:`conv_transpose` instead.
    output_padding : int or tuple of int
        As for :func:`conv_transpose` (transposed only).
    seed : int
        Random seed of the data the recipes are verified on, from 0 to ``2**32 − 1``.
    full : bool
        Verify the recipes on the configuration itself, every sample, instead of
        a smaller one of its geometry class; refused (ValueError) when that
        would need more than the workspace budget.
    progress : bool or None
        A progress bar over the recipes on stderr (tqdm); ``None``: when stderr
        is a terminal.

    Returns
    -------
    Explanation

    Raises
    ------
    ValueError, TypeError
        For an impossible configuration, with the same messages as :func:`conv`,
        a bad ``seed``, ``at`` or ``grad_output``, arrays mixed with shapes;
        also, before any work, when the data of the verification (the smaller
        configuration's, or with ``full`` the configuration's own) would exceed
        the workspace budget.

    Examples
    --------
    >>> import convgrad as cg
    >>> e = cg.explain((1, 1, 5), (1, 1, 3), padding=1, stride=2)
    >>> e.formula[1]
    'dim 0: floor((5 + 1 + 1 − 1·(3 − 1) − 1) / 2) + 1 = floor(4 / 2) + 1 = 3'
    >>> r = e.recipes_for("input")[0]
    >>> print(r.code, end="")
    gx = cg.conv_transpose(g, w, stride=2, padding=1)
    >>> r.status
    'verified'

    With your own arrays, one output element written out:

    >>> import numpy as np
    >>> x = np.arange(10.0, 15.0).reshape(1, 1, 5)
    >>> w = np.array([[[1.0, 2.0, -1.0]]])
    >>> e = cg.explain(x, w, padding=1)
    >>> for line in e.worked.sections[0][1][1:]:
    ...     print(line)
      = x[0, 0, 1]·w[0, 0, 0] + x[0, 0, 2]·w[0, 0, 1] + x[0, 0, 3]·w[0, 0, 2]  (3 terms)
      = 11·1 + 12·2 + 13·(-1)
      = 22  (convgrad: 22)
    """
    seed = check_seed(seed)
    if not isinstance(full, bool):
        raise TypeError(f"full must be True or False; got {full!r}")
    with_arrays = not _is_shape(input)
    if with_arrays == _is_shape(weight):
        raise TypeError(
            "input and weight must both be shapes (tuples of ints) or both be arrays; got "
            f"{type(input).__name__} and {type(weight).__name__}"
        )
    if not with_arrays and (bias is not None or grad_output is not None or at is not None or input_at is not None):
        given = [name for name, v in (("bias", bias), ("grad_output", grad_output), ("at", at),
                                      ("input_at", input_at)) if v is not None]
        raise TypeError(f"{', '.join(given)} need arrays: explain(x, w, b, grad_output=g, at=...); "
                        f"input and weight are shapes here")
    if with_arrays:
        x_arr, w_arr = check_array(input, "x"), check_array(weight, "w")
        shape, wshape = x_arr.shape, w_arr.shape
    else:
        shape = normalize_shape(input, "input_shape")
        wshape = normalize_shape(weight, "weight_shape")
    geom = matrix_geometry(
        shape, wshape, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode, transposed=transposed, output_padding=output_padding,
        w_name="w" if with_arrays else "weight_shape", x_name="x" if with_arrays else "input_shape",
    )
    notes: list[str] = []
    arrays: Optional[dict[str, Array]] = None
    if with_arrays:
        arrays = _user_arrays(geom, transposed, x_arr, w_arr, bias, grad_output)
    if not geom.batched:
        notes.append("unbatched input: explained as a batch of one (the recipes use batched arrays)")
        geom = dataclasses.replace(geom, batched=True, n=1)
    if geom.padding_mode != "zeros" and not geom.has_padding:
        notes.append(f"padding_mode={geom.padding_mode!r} has no effect without padding")
        geom = dataclasses.replace(geom, padding_mode="zeros")
    num = rc.Numbers(geom)
    d = geom.d
    notes += _notes(geom, num, transposed)
    title, config = _title_and_config(geom, num, transposed)
    shapes = _shapes(geom, transposed)
    formula = _formula(geom, num, transposed)

    # random data on the verification configuration, and the exact gradients
    vgeom = dataclasses.replace(geom, n=max(geom.n, 1)) if full else verification_geometry(geom)
    what = (f"verifying the recipes on {shapes_text(vgeom, transposed)} itself (full)" if full else
            f"verifying the recipes on {shapes_text(vgeom, transposed)}")
    check_budget(_verification_bytes(vgeom), what, "for their data")
    on = _verified_on(geom, vgeom, transposed)
    if on:
        notes.append(_verification_note(geom, vgeom, transposed))
    worked = _worked(geom, transposed, arrays, at, input_at, vgeom, seed) if arrays is not None else None
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(vgeom.weight_shape)
    kw: dict[str, Any] = dict(stride=vgeom.stride, padding=tuple(zip(vgeom.pad_lo, vgeom.pad_hi)),
                              dilation=vgeom.dilation, groups=vgeom.groups)
    x_shape, _, y_shape = operation_shapes(vgeom, transposed)
    x = rng.standard_normal(x_shape)
    g = rng.standard_normal(y_shape)
    shown = _recipe_sources(geom, transposed)
    run = shown if vgeom == geom else _recipe_sources(vgeom, transposed)
    with Progress(len(shown) + 1, "explain: verifying recipes", enabled=progress) as bar:
        bar.update("exact gradients")
        if not transposed:
            ref = conv_backward(g, x, w, padding_mode=vgeom.padding_mode, **kw)
        else:
            ref = conv_transpose_backward(g, x, w, output_padding=rc.Numbers(vgeom).remainder, **kw)
        references = {"input": ref.input, "weight": ref.weight, "bias": ref.bias}
        data = {"x": x, "w": w, "g": g}
        import convgrad

        numpy_ns: dict[str, Any] = {"np": np, "cg": convgrad, **data}
        torch_ns = _torch_namespace(data) if d <= 3 else None

        recipes = []
        for (gradient, form, title_r, code), (_, _, _, code_run) in zip(shown, run):
            bar.update(f"{gradient} {form}")
            if form in ("call", "explicit"):
                recipes.append(_verified(gradient, form, title_r, code, code_run, numpy_ns, references[gradient],
                                         on))
            elif form == "pytorch" and d > 3:
                recipes.append(Recipe(gradient, form, title_r, code, "not run",
                                      note=f"PyTorch has no {d}-d convolution"))
            elif form == "pytorch" and torch_ns is not None:
                recipe = _verified(gradient, form, title_r, code, code_run, torch_ns, references[gradient], on)
                if recipe.status == "verified":
                    import torch

                    recipe = dataclasses.replace(recipe, note=f"run with PyTorch {torch.__version__}")
                recipes.append(recipe)
            elif form == "pytorch":
                recipes.append(Recipe(gradient, form, title_r, code, "not run",
                                      note="PyTorch is not installed here"))
            elif form == "tensorflow" and d > 3:
                recipes.append(Recipe(gradient, form, title_r, code, "not run",
                                      note=f"TensorFlow has no {d}-d convolution"))
            else:
                name = "TensorFlow" if form == "tensorflow" else "JAX"
                recipes.append(Recipe(gradient, form, title_r, code, "not run", note=_not_run_note(form, name)))
    return Explanation(
        title=title, config=config, shapes=shapes, formula=formula, notes=notes, recipes=tuple(recipes),
        geometry=geom, transposed=transposed,
        verified_on=operation_shapes(vgeom, transposed) if on else None, worked=worked, arrays=arrays,
    )


def _not_run_note(form: str, name: str) -> str:
    """Why TensorFlow or JAX code was not run: not installed, or explain runs NumPy and PyTorch code only."""
    import importlib.util

    if importlib.util.find_spec(form) is None:
        return f"{name} is not installed here"
    return f"explain runs NumPy and PyTorch code only; the test suite checks the {name} code"


def _is_shape(value: object) -> bool:
    """A shape is a tuple or list of ints (or a 1-d integer array); anything else with ``ndim >= 1`` is data."""
    if isinstance(value, np.ndarray):
        return value.ndim == 1 and value.dtype.kind in "iu"
    if isinstance(value, (tuple, list)):
        return all(is_int(v) for v in value)
    return not hasattr(value, "shape") and not hasattr(value, "__array__")


def _work(geom: Geometry) -> int:
    """Multiply-adds of one convolution of ``geom`` plus the entries of its padded input, output and weight."""
    entries = geom.n * (geom.c_in * prod(geom.padded_size) + geom.c_out * prod(geom.out_size))
    return triplet_count(geom) + entries + prod(geom.weight_shape)


def _verification_bytes(geom: Geometry) -> int:
    """A generous bound on the memory of verifying the recipes on ``geom`` (float64 data, padded and grown)."""
    grown = prod(tuple(p + sp for p, sp in zip(geom.padded_size, geom.span)))
    return _VERIFY_COPIES * 8 * (geom.n * (geom.c_in + geom.c_out) * grown + prod(geom.weight_shape))


def verification_geometry(geom: Geometry) -> Geometry:
    """The configuration :func:`explain` runs the recipes on (see there)."""
    full = dataclasses.replace(geom, n=min(max(geom.n, 1), _VERIFY_BATCH))
    if _work(full) <= VERIFY_FULL_WORK and _verification_bytes(full) <= get_workspace_budget():
        return full
    return small_geometry(full)


def _verified_on(geom: Geometry, vgeom: Geometry, transposed: bool) -> str:
    """``Recipe.on``: empty when the recipes ran on ``geom`` itself."""
    if vgeom == geom:
        return ""
    if dataclasses.replace(vgeom, n=geom.n) != geom:
        x, w, _ = operation_shapes(vgeom, transposed)
        return f"x {x} * w {w}"
    return "a batch of one" if geom.n == 0 else f"{vgeom.n} of the {geom.n} samples"


def _verification_note(geom: Geometry, vgeom: Geometry, transposed: bool) -> str:
    where = f"the recipes were verified on {shapes_text(vgeom, transposed)}"
    if dataclasses.replace(vgeom, n=geom.n) != geom:
        return (f"{where}, a smaller configuration with {class_text(transposed)} (verifying this one would "
                f"take long or exceed the workspace budget): the recipes shown are the same code with this "
                f"configuration's sizes")
    if geom.n == 0:
        return f"{where}: the batch is empty, so a batch of one stands in for it"
    return f"{where}: {vgeom.n} of the {geom.n} samples, since every sample goes through the same code"


def _verified(gradient: str, form: str, title: str, code: str, code_run: str, namespace: dict[str, Any],
              reference: Array, on: str) -> Recipe:
    """Run ``code_run`` (``code`` for the verification configuration) and report it as ``code``."""
    recipe = verify_recipe(gradient, form, title, code_run, namespace, reference)
    return dataclasses.replace(recipe, code=code, on=on if recipe.status == "verified" else "")


def _title_and_config(geom: Geometry, num: rc.Numbers, transposed: bool) -> tuple[str, dict[str, Any]]:
    d = geom.d
    x_shape, _, y_shape = operation_shapes(geom, transposed)
    c_in, c_out = x_shape[1], y_shape[1]
    op = f"conv_transpose ({d}-d)" if transposed else f"conv ({d}-d)"
    pads = rc.padding_arg(geom)
    parts = [f"stride={rc.tup(geom.stride)}", f"padding={pads}", f"dilation={rc.tup(geom.dilation)}",
             f"groups={geom.groups}"]
    if transposed:
        parts.append(f"output_padding={rc.tup(num.remainder)}")
    else:
        parts.append(f"padding_mode={geom.padding_mode!r}")
    title = f"{op}: x {x_shape} * w {geom.weight_shape} -> y {y_shape}; " + ", ".join(parts)
    config = {
        "operation": "conv_transpose" if transposed else "conv",
        "d": d,
        "input_shape": x_shape,
        "weight_shape": geom.weight_shape,
        "output_shape": y_shape,
        "in_channels": c_in,
        "out_channels": c_out,
        "stride": geom.stride,
        "padding": tuple(zip(geom.pad_lo, geom.pad_hi)),
        "dilation": geom.dilation,
        "groups": geom.groups,
        "padding_mode": geom.padding_mode,
        "output_padding": num.remainder if transposed else (0,) * d,
    }
    return title, config


def _shapes(geom: Geometry, transposed: bool) -> list[tuple[str, tuple[int, ...], str]]:
    n, d = geom.n, geom.d
    windows = (n, geom.c_in) + geom.out_size + geom.kernel
    if not transposed:
        return [
            ("input x", geom.input_shape, "(N, C, *S)"),
            ("weight w", geom.weight_shape, "(O, C/groups, *K)"),
            ("padded input", (n, geom.c_in) + geom.padded_size, "(N, C, *(S + l + h))"),
            ("windows", windows, "(N, C, *Q, *K): every window of the padded input, a strided view (unfold)"),
            ("output y", geom.output_shape, "(N, O, *Q)"),
            ("bias b", (geom.c_out,), "(O,)"),
        ]
    del d
    return [
        ("input x", (n, geom.c_out) + geom.out_size, "(N, C_in, *S)"),
        ("weight w", geom.weight_shape, "(C_in, C_out/groups, *K)"),
        ("output y", (n, geom.c_in) + geom.in_size, "(N, C_out, *Y): y = Aᵀx for the convolution A below"),
        ("A's padded input", (n, geom.c_in) + geom.padded_size, "(N, C_out, *(Y + l + h))"),
        ("A's windows", windows, "(N, C_out, *S, *K): A maps y-shaped arrays to x-shaped ones"),
        ("bias b", (geom.c_in,), "(C_out,)"),
    ]


def _formula(geom: Geometry, num: rc.Numbers, transposed: bool) -> list[str]:
    lines = []
    if not transposed:
        lines.append("Q = floor((S + l + h − δ·(K − 1) − 1) / s) + 1  (Dumoulin & Visin, arXiv:1603.07285, "
                     "relationship 15)")
        for i, (s, k, st, dl, lo, hi, q) in enumerate(
            zip(geom.in_size, geom.kernel, geom.stride, geom.dilation, geom.pad_lo, geom.pad_hi, geom.out_size)
        ):
            top = s + lo + hi - dl * (k - 1) - 1
            lines.append(f"dim {i}: floor(({s} + {lo} + {hi} − {dl}·({k} − 1) − 1) / {st}) + 1 = "
                         f"floor({top} / {st}) + 1 = {q}")
    else:
        lines.append("Y = (S − 1)·s − l − h + δ·(K − 1) + a + 1  (Dumoulin & Visin, arXiv:1603.07285, "
                     "relationship 14 with dilation)")
        for i, (s, k, st, dl, lo, hi, a, y) in enumerate(
            zip(geom.out_size, geom.kernel, geom.stride, geom.dilation, geom.pad_lo, geom.pad_hi, num.remainder,
                geom.in_size)
        ):
            lines.append(f"dim {i}: ({s} − 1)·{st} − {lo} − {hi} + {dl}·({k} − 1) + {a} + 1 = {y}")
    return lines


def _notes(geom: Geometry, num: rc.Numbers, transposed: bool) -> list[str]:
    notes = []
    rem = num.remainder
    if not transposed:
        if any(rem):
            dims = ", ".join(f"dim {i}: {r}" for i, r in enumerate(rem) if r)
            notes.append(
                f"(S + l + h − δ·(K − 1) − 1) mod s ≠ 0 ({dims}): the last padded rows are never read by any "
                f"window, their input gradient is 0, and conv_transpose needs output_padding={rc.tup(rem)} to "
                f"give back the input size"
            )
        if geom.padding_mode != "zeros":
            notes.append(
                f"padding_mode={geom.padding_mode!r}: the transposed convolution gives the gradient of the padded "
                f"input; the padding's adjoint then adds every padded entry back onto the input entry it copies "
                f"(the loop over axes in the recipes)"
            )
    else:
        if any(rem):
            notes.append(
                f"output_padding={rc.tup(rem)} adds rows at the far end that no input element reaches; the input "
                f"gradient (a forward convolution of g) never reads them"
            )
    if geom.groups > 1:
        notes.append(
            f"groups={geom.groups}: channels split into {geom.groups} independent groups; the weight-gradient "
            f"recipes loop over groups, the input-gradient kernel swaps in/out channels within each group"
        )
    return notes


def explain_footprints(geom: Geometry) -> dict[str, Array]:
    """Structural helpers for the pictures: the labelled kernel and the matrix triplets."""
    from ._matrix import forward_triplets

    w = np.broadcast_to(np.arange(1.0, prod(geom.kernel) + 1).reshape(geom.kernel), geom.weight_shape)
    trip = forward_triplets(geom, np.ascontiguousarray(w))
    return {"rows": trip.rows, "cols": trip.cols, "values": trip.values, "shape": np.array(trip.shape)}


# ----------------------------------------------------------------------------- the user's own numbers

LOOP_WORK = 5000
"""The naive loop runs on the user's arrays up to this many multiply-adds, else on a smaller configuration."""

SUM_TERMS = 200_000
"""A worked sum is added up term by term up to this many terms (beyond, convgrad's value stands alone)."""

_SHOWN_TERMS = 4


def _user_arrays(geom: Geometry, transposed: bool, x: Array, w: Array, bias: Any, grad_output: Any
                 ) -> dict[str, Array]:
    """The user's arrays and their results, all batched: x, w, b (or absent), g, y, gx, gw, gb."""
    kw: dict[str, Any] = dict(stride=geom.stride, padding=tuple(zip(geom.pad_lo, geom.pad_hi)),
                              dilation=geom.dilation, groups=geom.groups)
    b = None if bias is None else check_array(bias, "b")
    if transposed:
        kw["output_padding"] = rc.Numbers(geom).remainder
        y = conv_transpose(x, w, b, **kw)
    else:
        kw["padding_mode"] = geom.padding_mode
        y = conv(x, w, b, **kw)
    if grad_output is None:
        g = np.ones_like(y)
    else:
        g = check_array(grad_output, "grad_output")
        if g.shape != y.shape:
            raise ValueError(f"grad_output.shape {g.shape} must equal the shape of y, {y.shape}")
    grads = (conv_transpose_backward if transposed else conv_backward)(g, x, w, **kw)
    out = {"x": x, "w": w, "g": g, "y": y, "gx": grads.input, "gw": grads.weight, "gb": grads.bias}
    if not geom.batched:
        for name in ("x", "g", "y", "gx"):
            out[name] = out[name][np.newaxis]
    if b is not None:
        out["b"] = b
    return out


def _element(at: Optional[Sequence[int]], shape: tuple[int, ...], name: str, array: str) -> tuple[int, ...]:
    """``at`` as an index of ``shape`` (whole, or spatial with sample and channel 0); by default the centre."""
    if at is None:
        return tuple(s // 2 for s in shape)
    if isinstance(at, (str, bytes)) or not isinstance(at, (Sequence, np.ndarray)):
        raise TypeError(f"{name} must be a tuple of ints (an index of {array}); got {at!r}")
    index = tuple(at)
    if not all(is_int(i) for i in index):
        raise TypeError(f"{name} must be a tuple of ints (an index of {array}); got {at!r}")
    d = len(shape) - 2
    if len(index) == d:
        index = (0, 0) + index
    if len(index) != len(shape):
        raise ValueError(f"{name} must index all {len(shape)} axes of {array} {shape} or its {d} spatial axes; "
                         f"got {tuple(at)} with {len(tuple(at))} entries")
    for axis, (i, s) in enumerate(zip(index, shape)):
        if not 0 <= int(i) < s:
            raise ValueError(f"{name}[{axis}] = {int(i)} is outside {array}'s axis {axis} of size {s} "
                             f"({array}.shape is {shape})")
    return tuple(int(i) for i in index)


def _num(value: Any) -> str:
    """A number as written in a worked sum: integers without a decimal point, negatives in parentheses."""
    if np.iscomplexobj(value):
        z = complex(value)
        return f"({z.real:.4g}{z.imag:+.4g}j)"
    v = float(value)
    text = str(int(v)) if v == int(v) and abs(v) < 1e15 else f"{v:.4g}"
    return f"({text})" if text.startswith("-") else text


def _ix(index: Sequence[int]) -> str:
    return "[" + ", ".join(str(i) for i in index) + "]"


def _pos(q: int, s: int, k: str, dl: int, lo: int) -> str:
    """``q·s + k·δ − l`` with the ones and zeros left out."""
    text = str(q) if s == 1 else f"{q}·{s}"
    text += f" + {k}" if dl == 1 else f" + {k}·{dl}"
    if lo:
        text += f" − {lo}" if lo > 0 else f" + {-lo}"
    return text


class _Sum:
    """The terms of one worked sum: the first few and the last, by index and by value, and their total.

    ``term(combo)`` returns ``(symbols, factors)``: the term as written with
    indices (``x[0, 0, 1]·w[0, 0, 0]``) and the numbers it multiplies.
    """

    def __init__(self, axes: list[list[Any]], term: Callable[[tuple[Any, ...]], tuple[str, tuple[Any, ...]]]
                 ) -> None:
        self.count = prod(tuple(len(a) for a in axes))
        self.first = [term(c) for c in itertools.islice(itertools.product(*axes), _SHOWN_TERMS + 1)]
        self.last = term(tuple(a[-1] for a in axes)) if self.count else None
        self.total: Any = None
        if self.count <= SUM_TERMS:
            self.total = sum((_times(term(c)[1]) for c in itertools.product(*axes)), 0.0)

    def lines(self, bias: Optional[tuple[str, Any]], extra: str, result: Any) -> list[str]:
        """``= symbols (n terms)``, ``= numbers``, ``= total (convgrad: value)``; ``bias`` is ``(name, value)``."""
        shown = self.first if self.count <= _SHOWN_TERMS + 1 else self.first[:_SHOWN_TERMS]
        syms = [sym for sym, _ in shown]
        nums = ["·".join(_num(f) for f in factors) for _, factors in shown]
        if self.count > _SHOWN_TERMS + 1 and self.last is not None:
            syms += ["…", self.last[0]]
            nums += ["…", "·".join(_num(f) for f in self.last[1])]
        if bias is not None:
            syms.insert(0, bias[0])
            nums.insert(0, _num(bias[1]))
        if not syms:
            syms, nums = ["0"], ["0"]
        count = f"  ({self.count} term{'s' if self.count != 1 else ''}{extra})"
        if self.total is None:
            total = f"{_plain(result)}  (convgrad's value: {self.count} terms are too many to add up here)"
        else:
            value = self.total + (bias[1] if bias is not None else 0)
            total = f"{_plain(value)}  (convgrad: {_plain(result)})"
        return [f"  = {' + '.join(syms)}{count}", f"  = {' + '.join(nums)}", f"  = {total}"]


def _times(factors: tuple[Any, ...]) -> Any:
    value: Any = 1.0
    for f in factors:
        value = value * f
    return value


def _plain(value: Any) -> str:
    """:func:`_num` without the parentheses around a negative number."""
    text = _num(value)
    return text[1:-1] if text.startswith("(") and not np.iscomplexobj(value) else text


def _worked(geom: Geometry, transposed: bool, arrays: dict[str, Array], at: Optional[Sequence[int]],
            input_at: Optional[Sequence[int]], vgeom: Geometry, seed: int) -> Worked:
    """Write out one element of each result with the user's numbers, and run the naive loop.

    Everything is said in terms of the forward convolution ``A`` of the
    geometry, with input ``a`` and output ``b``: for a convolution ``a = x``,
    ``b = y``; for a transposed convolution (``y = Aᵀ x``) ``a = y``, ``b = x``.
    """
    from ._plot import source_maps

    src = source_maps(geom)
    x, w, g, y = arrays["x"], arrays["w"], arrays["g"], arrays["y"]
    b = arrays.get("b")
    out_idx = _element(at, y.shape, "at", "y")
    in_idx = _element(input_at, x.shape, "input_at", "x")
    cg_, og = geom.c_in // geom.groups, geom.c_out // geom.groups  # A's channels per group (input, output)
    d = geom.d
    mid_k = tuple(k // 2 for k in geom.kernel)
    pads = ", ".join(f"({lo}, {hi})" for lo, hi in zip(geom.pad_lo, geom.pad_hi))
    ks = ", ".join(f"k{j}" for j in range(d))
    kernel = str(geom.kernel if d > 1 else geom.kernel[0])
    zeros = geom.padding_mode == "zeros"

    def read(q: tuple[int, ...], k: tuple[int, ...]) -> tuple[int, ...]:
        """The entry of ``a`` that output ``q`` reads through tap ``k`` (a −1 somewhere: a padded zero)."""
        return tuple(int(m[qi * s + ki * dl]) for m, qi, ki, s, dl in zip(src, q, k, geom.stride, geom.dilation))

    def window_sum(a_name: str, a_arr: Array, n: int, o: int, q: tuple[int, ...]) -> tuple[_Sum, int]:
        """``Σ_{c, k} a_pad[n, γ·C/G + c, q·s + k·δ] · w[o, c, k]`` over the taps that read an entry of ``a``."""
        base = o // og * cg_
        valid = [[k for k in range(kn) if m[qi * s + k * dl] >= 0]
                 for m, qi, kn, s, dl in zip(src, q, geom.kernel, geom.stride, geom.dilation)]

        def term(combo: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
            c, k = combo[0], tuple(combo[1:])
            ai, wi = (n, base + c) + read(q, k), (o, c) + k
            return f"{a_name}{_ix(ai)}·w{_ix(wi)}", (a_arr[ai], w[wi])

        total = _Sum([list(range(cg_))] + valid, term)
        return total, cg_ * prod(geom.kernel) - total.count

    def scatter_sum(b_name: str, b_arr: Array, n: int, ci: int, i: tuple[int, ...]) -> _Sum:
        """``Σ b[n, o, q] · w[o, c, k]`` over o in the group of ``ci`` and (q, k) whose tap holds entry ``i``."""
        gamma, c = divmod(ci, cg_)
        per_dim = []
        for m, ii, qn, kn, s, dl in zip(src, i, geom.out_size, geom.kernel, geom.stride, geom.dilation):
            pairs = []
            for p in np.flatnonzero(m == ii):
                for k in range(kn):
                    r = int(p) - k * dl
                    if r >= 0 and r % s == 0 and r // s < qn:
                        pairs.append((r // s, k))
            per_dim.append(sorted(pairs))

        def term(combo: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
            o = gamma * og + combo[0]
            q = tuple(pair[0] for pair in combo[1:])
            k = tuple(pair[1] for pair in combo[1:])
            bi, wi = (n, o) + q, (o, c) + k
            return f"{b_name}{_ix(bi)}·w{_ix(wi)}", (b_arr[bi], w[wi])

        return _Sum([list(range(og))] + per_dim, term)

    def weight_sum(b_name: str, b_arr: Array, a_name: str, a_arr: Array, o: int, c: int, k: tuple[int, ...]
                   ) -> tuple[_Sum, int]:
        """``Σ_{n, q} b[n, o, q] · a_pad[n, γ·C/G + c, q·s + k·δ]`` over the taps that read an entry of ``a``."""
        ci = o // og * cg_ + c
        valid = [[q for q in range(qn) if m[q * s + ki * dl] >= 0]
                 for m, qn, ki, s, dl in zip(src, geom.out_size, k, geom.stride, geom.dilation)]

        def term(combo: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
            n, q = combo[0], tuple(combo[1:])
            bi, ai = (n, o) + q, (n, ci) + read(q, k)
            return f"{b_name}{_ix(bi)}·{a_name}{_ix(ai)}", (b_arr[bi], a_arr[ai])

        total = _Sum([list(range(geom.n))] + valid, term)
        return total, geom.n * prod(geom.out_size) - total.count

    def bias_sum(o: int, sizes: tuple[int, ...]) -> _Sum:
        def term(combo: tuple[Any, ...]) -> tuple[str, tuple[Any, ...]]:
            index = (combo[0], o) + tuple(combo[1:])
            return f"g{_ix(index)}", (g[index],)

        return _Sum([list(range(geom.n))] + [list(range(s)) for s in sizes], term)

    def skipped_note(skipped: int, where: str) -> str:
        return f", {skipped} more {where}" if skipped else ""

    def bias_term(o: int) -> Optional[tuple[str, Any]]:
        return None if b is None else (f"b[{o}]", b[o])

    def channel(base: int, name: str) -> str:
        if name.isdigit():
            return str(base + int(name))
        return name if geom.groups == 1 or base == 0 else f"{base} + {name}"

    def taps_at(k: tuple[int, ...], crop: bool) -> str:
        """``q0·s + k·δ − l, ...``: where tap ``k`` of output ``q`` reads, per dimension."""
        parts = []
        for j, (kj, s, dl, lo) in enumerate(zip(k, geom.stride, geom.dilation, geom.pad_lo)):
            text = f"q{j}" + (f"·{s}" if s != 1 else "") + f" + {kj * dl}"
            if crop and lo:
                text += f" − {lo}" if lo > 0 else f" + {-lo}"
            parts.append(text)
        return ", ".join(parts)

    sections: list[tuple[str, tuple[str, ...]]] = []
    g_note = "; ones here: L = y.sum()" if g.size and bool(np.all(g == 1)) else ""
    if not transposed:
        n, o, *q_ = out_idx
        q = tuple(q_)
        total, skipped = window_sum("x", x, n, o, q)
        where = ", ".join(_pos(qi, s, f"k{j}", dl, 0) for j, (qi, s, dl) in
                          enumerate(zip(q, geom.stride, geom.dilation)))
        head = (f"y{_ix(out_idx)} = {'b[' + str(o) + '] + ' if b is not None else ''}Σ over c < {cg_}, k < {kernel} "
                f"of xp[{n}, {channel(o // og * cg_, 'c')}, {where}]·w[{o}, c, {ks}]   (xp: x with "
                f"{geom.padding_mode} padding {pads})")
        lines = total.lines(bias_term(o), skipped_note(skipped, "read the zero padding") if zeros else "",
                            y[out_idx])
        sections.append((f"the output element y{_ix(out_idx)}", (head, *lines)))

        n, ci, *i_ = in_idx
        i = tuple(i_)
        scatter = scatter_sum("g", g, n, ci, i)
        cond = (f"q·s + k·δ − l = {i[0] if d == 1 else i}" if zeros else
                f"xp[q·s + k·δ] holds x{_ix(in_idx)} (a {geom.padding_mode} copy or itself)")
        gamma = ci // cg_
        o_range = f"o in {gamma * og}..{gamma * og + og - 1}" if og > 1 else f"o = {gamma * og}"
        head = f"gx{_ix(in_idx)} = Σ over {o_range} and (q, k) with {cond} of g[{n}, o, q]·w[o, {ci % cg_}, k]"
        sections.append((f"the input gradient gx{_ix(in_idx)} (g = ∂L/∂y{g_note})",
                         (head, *scatter.lines(None, "", arrays["gx"][in_idx]))))

        w_idx = (out_idx[1], 0) + mid_k
        total, skipped = weight_sum("g", g, "x", x, w_idx[0], 0, mid_k)
        head = (f"gw{_ix(w_idx)} = Σ over n, q of g[n, {w_idx[0]}, q]·xp[n, {channel(w_idx[0] // og * cg_, '0')}, "
                f"{taps_at(mid_k, False)}]   (xp: x with {geom.padding_mode} padding {pads})")
        lines = total.lines(None, skipped_note(skipped, "read the zero padding") if zeros else "",
                            arrays["gw"][w_idx])
        sections.append((f"the weight gradient gw{_ix(w_idx)}", (head, *lines)))
        o = out_idx[1]
        sections.append((f"the bias gradient gb[{o}]", (f"gb[{o}] = Σ over n, q of g[n, {o}, q]",
                                                        *bias_sum(o, geom.out_size).lines(None, "",
                                                                                          arrays["gb"][o]))))
    else:
        n, co, *j_ = out_idx
        j = tuple(j_)
        scatter = scatter_sum("x", x, n, co, j)
        gamma = co // cg_
        i_range = f"i in {gamma * og}..{gamma * og + og - 1}" if og > 1 else f"i = {gamma * og}"
        head = (f"y{_ix(out_idx)} = {'b[' + str(co) + '] + ' if b is not None else ''}Σ over {i_range} and (q, k) "
                f"with q·s + k·δ − l = {j[0] if d == 1 else j} of x[{n}, i, q]·w[i, {co % cg_}, k]   (each x entry "
                f"adds the kernel to y, stride apart)")
        sections.append((f"the output element y{_ix(out_idx)}",
                         (head, *scatter.lines(bias_term(co), "", y[out_idx]))))

        n, i_ch, *q_ = in_idx
        q = tuple(q_)
        total, skipped = window_sum("g", g, n, i_ch, q)
        where = ", ".join(_pos(qi, s, f"k{t}", dl, lo) for t, (qi, s, dl, lo) in
                          enumerate(zip(q, geom.stride, geom.dilation, geom.pad_lo)))
        head = (f"gx{_ix(in_idx)} = Σ over c < {cg_}, k < {kernel} of g[{n}, {channel(i_ch // og * cg_, 'c')}, "
                f"{where}]·w[{i_ch}, c, {ks}]   (the positions outside y have no term)")
        lines = total.lines(None, skipped_note(skipped, "fall outside y"), arrays["gx"][in_idx])
        sections.append((f"the input gradient gx{_ix(in_idx)} (g = ∂L/∂y{g_note})", (head, *lines)))

        w_idx = (in_idx[1], 0) + mid_k
        total, skipped = weight_sum("x", x, "g", g, w_idx[0], 0, mid_k)
        head = (f"gw{_ix(w_idx)} = Σ over n, q of x[n, {w_idx[0]}, q]·g[n, {channel(w_idx[0] // og * cg_, '0')}, "
                f"{taps_at(mid_k, True)}]   (the positions outside y have no term)")
        lines = total.lines(None, skipped_note(skipped, "fall outside y"), arrays["gw"][w_idx])
        sections.append((f"the weight gradient gw{_ix(w_idx)}", (head, *lines)))
        co = out_idx[1]
        sections.append((f"the bias gradient gb[{co}]", (f"gb[{co}] = Σ over n, j of g[n, {co}, j]",
                                                         *bias_sum(co, geom.in_size).lines(None, "",
                                                                                           arrays["gb"][co]))))
    loop = _loop_recipe(geom, transposed, arrays, seed)
    return Worked(sections=tuple(sections), loop=loop,
                  indices={"output": out_idx, "input": in_idx, "weight": w_idx})


def _loop_recipe(geom: Geometry, transposed: bool, arrays: dict[str, Array], seed: int) -> Recipe:
    """The definition as loops, run on the user's arrays (or a small configuration) and compared with convgrad."""
    from ._matrix import triplet_count

    has_bias = "b" in arrays
    code = rc.naive_loop(geom, transposed, has_bias)
    title = "the definition as nested loops: y, gx, gw and gb, one multiply-add at a time"
    work = triplet_count(geom)
    if work <= LOOP_WORK:
        data = {k: np.asarray(arrays[k]) for k in ("x", "w", "g")}
        if has_bias:
            data["b"] = arrays["b"]
        expected = {k: arrays[k] for k in ("y", "gx", "gw", "gb")}
        on = "your arrays"
    else:
        small = small_geometry(dataclasses.replace(geom, n=1))
        if triplet_count(small) > LOOP_WORK * 20:
            return Recipe("all", "loop", title, code, "not run",
                          note=f"{work} multiply-adds, and {triplet_count(small)} even on the smallest configuration "
                               f"of this geometry class: too slow as a Python loop")
        rng = np.random.default_rng(seed)
        xs, ws, ys = operation_shapes(small, transposed)
        data = {"x": rng.standard_normal(xs), "w": rng.standard_normal(ws), "g": rng.standard_normal(ys)}
        if has_bias:
            data["b"] = rng.standard_normal(ys[1])
        kw: dict[str, Any] = dict(stride=small.stride, padding=tuple(zip(small.pad_lo, small.pad_hi)),
                                  dilation=small.dilation, groups=small.groups)
        if transposed:
            kw["output_padding"] = rc.Numbers(small).remainder
            y = conv_transpose(data["x"], data["w"], data.get("b"), **kw)
            grads = conv_transpose_backward(data["g"], data["x"], data["w"], **kw)
        else:
            kw["padding_mode"] = small.padding_mode
            y = conv(data["x"], data["w"], data.get("b"), **kw)
            grads = conv_backward(data["g"], data["x"], data["w"], **kw)
        expected = {"y": y, "gx": grads.input, "gw": grads.weight, "gb": grads.bias}
        on = f"x {xs} * w {ws} (your {work} multiply-adds would take long in Python)"
    scope: dict[str, Any] = {"np": np, **data}
    try:
        exec(compile(code, "<convgrad naive loop>", "exec"), scope)
    except Exception as exc:  # a loop that cannot run is reported, never shown as correct
        return Recipe("all", "loop", title, code, "failed", None, f"{type(exc).__name__}: {exc}")
    err, scale = 0.0, 1.0
    for name, ref in expected.items():
        value = np.asarray(scope[name])
        if value.shape != ref.shape:
            return Recipe("all", "loop", title, code, "failed", None,
                          f"{name} has shape {value.shape} instead of {ref.shape}")
        if ref.size:
            err = max(err, float(np.max(np.abs(value - ref))))
            scale = max(scale, float(np.max(np.abs(ref))))
    status = "verified" if err <= VERIFY_RTOL * scale else "failed"
    return Recipe("all", "loop", title, code, status, err,
                  "" if status == "verified" else "differs from convgrad", on=on if status == "verified" else "")
