"""``explain``: the shapes, the size formula and verified gradient recipes of one configuration."""

from __future__ import annotations

import dataclasses
import html
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import numpy.typing as npt

from . import _recipes as rc
from ._arguments import IntOrTuple, PaddingArg, Shape, normalize_shape, prod
from ._conv import conv_backward
from ._geometry import Geometry
from ._gradcheck import check_seed
from ._matrix import check_budget, matrix_geometry, triplet_count
from ._plot import plot_explanation
from ._small import class_text, operation_shapes, shapes_text, small_geometry
from ._transpose import conv_transpose_backward
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
class Explanation:
    """What :func:`explain` found for one configuration.

    Render it with ``str()`` (a terminal), :meth:`to_markdown`,
    ``_repr_html_`` (Jupyter) or :meth:`to_dict` (JSON); draw it with :meth:`plot`.

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

    @property
    def verified(self) -> bool:
        """Whether every recipe that was run passed."""
        return all(r.status != "failed" for r in self.recipes)

    def recipes_for(self, gradient: str) -> list[Recipe]:
        """The recipes of one gradient (``"input"``, ``"weight"`` or ``"bias"``)."""
        return [r for r in self.recipes if r.gradient == gradient]

    # ------------------------------------------------------------------ renderings

    def __str__(self) -> str:
        out = [self.title, "", "Shapes"]
        width = max(len(name) for name, _, _ in self.shapes)
        swidth = max(len(str(shape)) for _, shape, _ in self.shapes)
        out += [f"  {name:<{width}}  {shape!s:<{swidth}}  {meaning}" for name, shape, meaning in self.shapes]
        out += ["", "Output size"] + [f"  {line}" for line in self.formula]
        if self.notes:
            out += ["", "Notes"] + [f"  - {note}" for note in self.notes]
        for gradient, heading in _HEADINGS:
            out += ["", heading(self)]
            for r in self.recipes_for(gradient):
                out.append(f"  [{r.form}] {r.title} — {r.status_line}")
                if r.status != "failed":
                    out += [f"      {line}" for line in r.code.rstrip("\n").split("\n")]
        return "\n".join(out)

    def to_markdown(self) -> str:
        """The explanation as Markdown (what Jupyter shows via ``_repr_markdown_``)."""
        out = [f"### {self.title}", "", "| array | shape | meaning |", "| --- | --- | --- |"]
        out += [f"| {name} | `{shape}` | {meaning} |" for name, shape, meaning in self.shapes]
        out += ["", "**Output size**", "", "```text", *self.formula, "```"]
        if self.notes:
            out += ["", *[f"- {note}" for note in self.notes]]
        for gradient, heading in _HEADINGS:
            out += ["", f"#### {heading(self)}"]
            for r in self.recipes_for(gradient):
                out += ["", f"**{r.title}** — *{r.status_line}*"]
                if r.status != "failed":
                    out += ["", "```python", r.code.rstrip("\n"), "```"]
        return "\n".join(out) + "\n"

    def _repr_markdown_(self) -> str:
        return self.to_markdown()

    def _repr_html_(self) -> str:
        esc = html.escape
        rows = "".join(
            f"<tr><td>{esc(name)}</td><td><code>{esc(str(shape))}</code></td><td>{esc(meaning)}</td></tr>"
            for name, shape, meaning in self.shapes
        )
        parts = [
            f"<div class='convgrad-explain'><h3>{esc(self.title)}</h3>",
            f"<table><tr><th>array</th><th>shape</th><th>meaning</th></tr>{rows}</table>",
            f"<p><b>Output size</b></p><pre>{esc(chr(10).join(self.formula))}</pre>",
        ]
        if self.notes:
            parts.append("<ul>" + "".join(f"<li>{esc(n)}</li>" for n in self.notes) + "</ul>")
        for gradient, heading in _HEADINGS:
            parts.append(f"<h4>{esc(heading(self))}</h4>")
            for r in self.recipes_for(gradient):
                color = {"verified": "green", "failed": "red"}.get(r.status, "gray")
                parts.append(f"<p><b>{esc(r.title)}</b> — <span style='color:{color}'>{esc(r.status_line)}</span></p>")
                if r.status != "failed":
                    parts.append(f"<pre><code>{esc(r.code.rstrip(chr(10)))}</code></pre>")
        parts.append("</div>")
        return "".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able dictionary of everything above."""
        return {
            "title": self.title,
            "transposed": self.transposed,
            "config": {k: _jsonable(v) for k, v in self.config.items()},
            "shapes": [{"name": n, "shape": list(s), "meaning": m} for n, s, m in self.shapes],
            "formula": list(self.formula),
            "notes": list(self.notes),
            "verified_on": None if self.verified_on is None else dict(
                zip(("input_shape", "weight_shape", "output_shape"), (list(s) for s in self.verified_on))
            ),
            "recipes": [
                {
                    "gradient": r.gradient,
                    "form": r.form,
                    "title": r.title,
                    "status": r.status,
                    "max_error": r.max_error,
                    "note": r.note,
                    "code": r.code if r.status != "failed" else None,
                }
                for r in self.recipes
            ],
        }

    def to_json(self) -> str:
        """:meth:`to_dict` as a JSON string."""
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=False)

    def plot(self, path: str, /, *, dpi: int = 110) -> str:
        """Draw the configuration to an image file: windows, matrix pattern, footprints.

        Panels: the (padded) input with one window highlighted, the kernel,
        the output with the matching element highlighted, the sparsity
        pattern of one sample's block of the convolution matrix, the footprint
        of one input element on the output (a column of the matrix: the
        flipped kernel, what a finite difference at that input element
        measures) and of one output element on the input (a row: the kernel
        as is). A labelled kernel ``1, 2, …, K`` is used so that the flip can
        be seen. A configuration whose panels would need more than the
        workspace budget (or more than 16 MiB) is drawn as a smaller
        configuration of the same geometry class, named in the figure's title.
        Needs matplotlib (``pip install 'convgrad[plot]'``).

        Parameters
        ----------
        path : str
            Where to write the image; the extension picks the format
            (``.png``, ``.pdf``, ``.svg``, ...; none: PNG).
        dpi : int
            Resolution, 1 to 1000.

        Returns
        -------
        str
            ``path``.

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
    input_shape: tuple[int, ...],
    weight_shape: tuple[int, ...],
    /,
    *,
    stride: IntOrTuple = 1,
    padding: PaddingArg = 0,
    dilation: IntOrTuple = 1,
    groups: int = 1,
    padding_mode: str = "zeros",
    transposed: bool = False,
    output_padding: IntOrTuple = 0,
    seed: int = 0,
) -> Explanation:
    """Explain one convolution: shapes, output-size formula, verified gradient recipes.

    For each gradient (input, weight, bias) it gives the recipe in three
    forms — (1) one call of a convgrad operation with the exact stride,
    padding, ``output_padding``, dilation and groups; (2) the "full
    correlation with the flipped kernel" form with the zero insertion,
    pad/crop amounts and axis swaps spelled out; (3) code for PyTorch,
    TensorFlow and JAX that computes the gradient without autograd. Every
    recipe that can run here is executed on random data and compared with
    :func:`conv_backward` (or :func:`conv_transpose_backward`) before it is
    shown; one that fails is marked so and its code is not shown. The
    PyTorch code runs when PyTorch is installed; TensorFlow and JAX code is
    marked "not run".

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
    configuration takes as long as explaining a small one.

    Parameters
    ----------
    input_shape : tuple of int
        ``(N, C, *S)`` (an unbatched ``(C, *S)`` is explained as ``N = 1``).
    weight_shape : tuple of int
        ``(O, C / groups, *K)``; for ``transposed``, ``(C_in, C_out / groups, *K)``.
    stride, padding, dilation, groups, padding_mode
        As for :func:`conv` (``padding_mode`` must be ``"zeros"`` when ``transposed``).
    transposed : bool
        Explain :func:`conv_transpose` instead.
    output_padding : int or tuple of int
        As for :func:`conv_transpose` (transposed only).
    seed : int
        Seed of the random data the recipes are verified on, from 0 to ``2**32 − 1``.

    Returns
    -------
    Explanation

    Raises
    ------
    ValueError, TypeError
        For an impossible configuration, with the same messages as :func:`conv`,
        or a bad ``seed``; also, before any work, when even the smaller
        configuration's data would exceed the workspace budget.

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
    """
    seed = check_seed(seed)
    shape = normalize_shape(input_shape, "input_shape")
    wshape = normalize_shape(weight_shape, "weight_shape")
    geom = matrix_geometry(
        shape, wshape, stride=stride, padding=padding, dilation=dilation, groups=groups,
        padding_mode=padding_mode, transposed=transposed, output_padding=output_padding, w_name="weight_shape",
    )
    notes: list[str] = []
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
    vgeom = verification_geometry(geom)
    check_budget(_verification_bytes(vgeom), f"verifying the recipes on {shapes_text(vgeom, transposed)}",
                 "for their data")
    on = _verified_on(geom, vgeom, transposed)
    if on:
        notes.append(_verification_note(geom, vgeom, transposed))
    rng = np.random.default_rng(seed)
    w = rng.standard_normal(vgeom.weight_shape)
    kw: dict[str, Any] = dict(stride=vgeom.stride, padding=tuple(zip(vgeom.pad_lo, vgeom.pad_hi)),
                              dilation=vgeom.dilation, groups=vgeom.groups)
    x_shape, _, y_shape = operation_shapes(vgeom, transposed)
    x = rng.standard_normal(x_shape)
    g = rng.standard_normal(y_shape)
    if not transposed:
        ref = conv_backward(g, x, w, padding_mode=vgeom.padding_mode, **kw)
    else:
        ref = conv_transpose_backward(g, x, w, output_padding=rc.Numbers(vgeom).remainder, **kw)
    references = {"input": ref.input, "weight": ref.weight, "bias": ref.bias}
    arrays = {"x": x, "w": w, "g": g}
    import convgrad

    numpy_ns: dict[str, Any] = {"np": np, "cg": convgrad, **arrays}
    torch_ns = _torch_namespace(arrays) if d <= 3 else None

    recipes = []
    shown = _recipe_sources(geom, transposed)
    run = shown if vgeom == geom else _recipe_sources(vgeom, transposed)
    for (gradient, form, title_r, code), (_, _, _, code_run) in zip(shown, run):
        if form in ("call", "explicit"):
            recipes.append(_verified(gradient, form, title_r, code, code_run, numpy_ns, references[gradient], on))
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
            recipes.append(Recipe(gradient, form, title_r, code, "not run", note="PyTorch is not installed here"))
        elif form == "tensorflow" and d > 3:
            recipes.append(Recipe(gradient, form, title_r, code, "not run",
                                  note=f"TensorFlow has no {d}-d convolution"))
        else:
            name = "TensorFlow" if form == "tensorflow" else "JAX"
            recipes.append(Recipe(gradient, form, title_r, code, "not run",
                                  note=f"{name} is not installed here"))
    return Explanation(
        title=title, config=config, shapes=shapes, formula=formula, notes=notes, recipes=tuple(recipes),
        geometry=geom, transposed=transposed,
        verified_on=operation_shapes(vgeom, transposed) if on else None,
    )


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
