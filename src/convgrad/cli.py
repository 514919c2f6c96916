"""The ``convgrad`` command: explain, check, animate and print convolutions and their gradients.

``main(argv)`` returns the exit status instead of exiting, so that tests call
it directly: 0 success, 1 a check failed, 2 a bad flag, an impossible or too
large configuration, a file that cannot be written or a missing optional
package (one line ``convgrad: error: ...`` on stderr, no traceback). Every
check that needs no work runs before anything is printed. Work that can take
more than a second shows a progress bar on stderr when stderr is a terminal
(tqdm, if installed), and nothing otherwise.

``test``, ``export`` and ``verify`` (checking another implementation) come
from :mod:`convgrad._conformance_cli` when it is importable.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn, Optional

import numpy as np

from ._arguments import prod
from ._conv import conv, conv_backward
from ._explain import explain
from ._geometry import Geometry
from ._gradcheck import Progress, check_seed, gradcheck
from ._matrix import check_budget, check_matrix_budget, conv_matrix, import_scipy_sparse, matrix_geometry
from ._plot import check_directory, check_plot_path, plot_matrix
from ._recipes import Numbers
from ._small import class_text, operation_shapes, shapes_text, small_geometry
from ._transpose import conv_transpose, conv_transpose_backward
from .engine.state import workspace_budget

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
MAX_PRINTED = 32
"""``convgrad matrix`` prints matrices with at most this many rows and columns."""
FULL_GRADCHECK = 3000
"""``convgrad check`` perturbs every entry up to this many input entries in all, else uses fast mode."""
CHECK_COPIES = 10
"""``convgrad check`` holds about this many float64 copies of its input, weight and output at once."""
CHECK_WORK = 2**22
"""``convgrad check`` checks a configuration with more multiply-adds on a smaller one of its geometry class
(``--full``: on itself)."""
FORMATS = ("text", "markdown", "html", "json")
CONFORMANCE = ("test", "export", "verify")


class UsageError(Exception):
    """A bad flag or a missing optional package: one line, exit status 2."""


USAGE_ERRORS = (UsageError, ValueError, TypeError, MemoryError, OSError)
"""What :func:`main` reports as one line with exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


class _Help(argparse.ArgumentDefaultsHelpFormatter):
    """``--help`` with each flag's default, except where there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> Optional[str]:
        if action.required or action.default is None or action.default is False or action.default is argparse.SUPPRESS:
            return action.help
        return super()._get_help_string(action)


# ----------------------------------------------------------------------------- flag values


def parse_shape(text: str) -> tuple[int, ...]:
    """``"2x3x5x5"`` -> ``(2, 3, 5, 5)``."""
    try:
        shape = tuple(int(part) for part in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"a shape is sizes joined by 'x', like 2x3x5x5; got {text!r}") from None
    if any(s < 1 for s in shape):
        raise argparse.ArgumentTypeError(f"every size must be >= 1; got {text!r}")
    return shape


def parse_ints(text: str) -> int | tuple[int, ...]:
    """``"2"`` -> ``2``, ``"2,1"`` -> ``(2, 1)``."""
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected an int or ints joined by ',', like 2 or 2,1; got {text!r}"
        ) from None
    return values[0] if len(values) == 1 else values


def parse_padding(text: str) -> Any:
    """``"1"``, ``"1,2"``, ``"1:2,0"`` (before:after per dimension), ``"same"`` or ``"valid"``."""
    if text in ("same", "valid"):
        return text
    if ":" not in text:
        try:
            return parse_ints(text)
        except argparse.ArgumentTypeError:
            pass
    else:
        try:
            pairs = []
            for part in text.split(","):
                lo, sep, hi = part.partition(":")
                pairs.append((int(lo), int(hi)) if sep else (int(lo), int(lo)))
            return tuple(pairs)
        except ValueError:
            pass
    raise argparse.ArgumentTypeError(
        f"expected an int (1), one per dimension (1,2), before:after pairs (1:2,0), 'same' or 'valid'; got {text!r}"
    )


def _mib(text: str) -> int:
    """``"512"`` -> 512 MiB in bytes."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of MiB, like 512; got {text!r}") from None
    if not value > 0 or value > 2**40:
        raise argparse.ArgumentTypeError(f"the budget must be a positive number of MiB; got {text!r}")
    return int(value * 2**20)


def _config_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("configuration")
    g.add_argument("--input", required=True, type=parse_shape, metavar="NxCxS..",
                   help="input shape, e.g. 2x3x5x5 (batch, channels, spatial sizes)")
    g.add_argument("--weight", required=True, type=parse_shape, metavar="OxCxK..",
                   help="weight shape, e.g. 4x3x3x3 (for --transposed: in_channels x out_channels/groups x kernel)")
    g.add_argument("--stride", type=parse_ints, default=1, metavar="S", help="2 or one per dimension: 2,1")
    g.add_argument("--padding", type=parse_padding, default=0, metavar="P",
                   help="1, one per dimension 1,2, before:after pairs 1:2,0, same or valid")
    g.add_argument("--dilation", type=parse_ints, default=1, metavar="D", help="1 or one per dimension: 2,1")
    g.add_argument("--groups", type=int, default=1, metavar="G", help="groups")
    g.add_argument("--padding-mode", default="zeros", choices=("zeros", "reflect", "replicate", "circular"),
                   help="how the border is filled")
    g.add_argument("--transposed", action="store_true", help="a transposed convolution (conv_transpose)")
    g.add_argument("--output-padding", type=parse_ints, default=0, metavar="A",
                   help="output_padding of a transposed convolution: 1 or 1,0")
    p.add_argument("--budget", type=_mib, default=None, metavar="MIB",
                   help="the workspace budget of this command in MiB (default: the process default, 256 MiB); "
                   "what is refused as too large is measured against it")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of the ``convgrad`` command."""
    parser = _Parser(
        prog="convgrad",
        description="Convolutions and their exact gradients, explained and checked. Without a command: the "
        "5x5 image x = 10*arange(25) under the 3x3 kernel w = arange(9) with loss = sum(y), its gradients, a "
        "finite-difference check and the explanation of that configuration.",
        epilog="examples:\n"
        "  convgrad explain --input 1x1x5x5 --weight 1x1x3x3 --padding 1\n"
        "  convgrad explain --input 8x64x56x56 --weight 64x64x3x3 --padding 1 --format html -o layer.html\n"
        "  convgrad check --input 2x4x9x9 --weight 6x2x3x3 --groups 2 --stride 2 --padding 1:2,0\n"
        "  convgrad check --input 2x4x5x5 --weight 4x3x3x3 --transposed --stride 2 --output-padding 1\n"
        "  convgrad animate --input 1x1x5x5 --weight 1x1x3x3 --stride 2 --padding 1 -o window.gif\n"
        "  convgrad matrix --input 1x1x5 --weight 1x1x3 --padding 1\n\n"
        "exit status: 0 success, 1 a check failed, 2 bad arguments, a configuration too large for the workspace\n"
        "budget, a file that cannot be written or a missing optional package",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from . import __version__

    parser.add_argument("--version", action="version", version=f"convgrad {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    defaults = _Help

    p = sub.add_parser("explain", help="shapes, output-size formula and verified gradient recipes",
                       formatter_class=defaults,
                       description="Explain one configuration: every shape, the output-size formula with the "
                       "numbers, and for the input, weight and bias gradients a one-call recipe, the explicit "
                       "'flipped kernel' recipe and PyTorch / TensorFlow / JAX code, each executed and compared "
                       "with the exact gradient before it is shown. A large configuration is verified on a "
                       "smaller one of the same geometry class (it says so); --full verifies on the "
                       "configuration itself.")
    _config_flags(p)
    p.add_argument("--format", choices=FORMATS, default="text",
                   help="text, markdown, json, or html: a standalone page with the picture embedded")
    p.add_argument("-o", "--output", metavar="FILE", help="write the explanation to FILE instead of stdout")
    p.add_argument("--full", action="store_true",
                   help="verify the recipes on this configuration itself, every sample, within the workspace "
                   "budget (with a progress bar on a terminal)")
    p.add_argument("--plot", metavar="PNG", help="also draw the configuration to this PNG (or .pdf, .svg, ...; "
                   "needs matplotlib); a large configuration is drawn as a smaller one of the same geometry class")

    p = sub.add_parser("check", help="compare forward and gradients with finite differences and PyTorch",
                       formatter_class=defaults,
                       description="Run forward and backward on random data; compare the gradients with float64 "
                       "central differences (every entry for small inputs, random directions for large ones) "
                       "and, if it is installed, with PyTorch autograd. Prints a table; exit status 1 on failure. "
                       f"A configuration of more than {CHECK_WORK} multiply-adds is checked on a smaller one of "
                       "its geometry class (it says so); --full checks the configuration itself.")
    _config_flags(p)
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64", help="dtype of the data")
    p.add_argument("--seed", type=int, default=0, help="random seed of the data, 0 to 2**32 - 1")
    p.add_argument("--full", action="store_true",
                   help="check this configuration itself, within the workspace budget (with a progress bar on a "
                   "terminal)")

    p = sub.add_parser("animate", help="an animation of the sliding window or a gradient (GIF or HTML)",
                       formatter_class=defaults,
                       description="Animate the configuration, one output position per frame: the forward "
                       "window sliding over the padded input (for --transposed: zero insertion, padding and the "
                       "rotated kernel sliding with stride 1), the input gradient as each upstream value's "
                       "footprint accumulating, or the weight gradient as the sum of windows times upstream "
                       "values. One sample and one channel pair are drawn; a large configuration is animated as a "
                       "smaller one of the same geometry class. Needs matplotlib (and Pillow for GIF).")
    _config_flags(p)
    p.add_argument("--kind", choices=("forward", "input_grad", "weight_grad", "zero_insertion"), default="forward",
                   help="what to animate")
    p.add_argument("-o", "--output", required=True, metavar="FILE", help="FILE.gif or FILE.html")
    p.add_argument("--max-frames", type=int, default=60, metavar="N",
                   help="at most N frames; more positions are subsampled evenly (and the animation says so)")
    p.add_argument("--fps", type=float, default=2.0, help="frames per second")
    p.add_argument("--dpi", type=int, default=80, help="pixels per inch of the frames")

    p = sub.add_parser("matrix", help="the convolution as an explicit matrix", formatter_class=defaults,
                       description="Build the convolution matrix M (M @ x.ravel() == conv(x, w).ravel()) with "
                       "the labelled weight w = 1, 2, ..., w.size, so that each entry names the weight it "
                       f"multiplies. Prints it when it has at most {MAX_PRINTED} rows and columns, else a summary; "
                       "--plot draws its entries coloured by value, with a colour bar. Needs SciPy.")
    _config_flags(p)
    p.add_argument("--plot", metavar="PNG", help="draw the matrix to this PNG (or .pdf, .svg, ...; "
                   "needs matplotlib)")
    commands = ["explain", "check", "animate", "matrix"]
    try:
        from ._conformance_cli import add_subcommands
    except ImportError:  # the conformance commands are optional
        pass
    else:
        add_subcommands(sub)
        commands += list(CONFORMANCE)
    sub.metavar = "{" + ",".join(commands) + "}"
    return parser


# ----------------------------------------------------------------------------- commands


def _geometry(args: argparse.Namespace) -> Geometry:
    return matrix_geometry(
        args.input, args.weight, stride=args.stride, padding=args.padding, dilation=args.dilation,
        groups=args.groups, padding_mode=args.padding_mode, transposed=args.transposed,
        output_padding=args.output_padding, w_name="weight", x_name="input",
    )


def _validate(args: argparse.Namespace) -> None:
    """Every check that needs no work: the configuration, the seed, the budget, the packages, the files."""
    geom = _geometry(args)
    if args.command == "check":
        check_seed(args.seed)
        checked = geom if args.full else _checked_geometry(geom)
        x, w, y = operation_shapes(checked, args.transposed)
        entries = prod(x) + prod(w) + prod(y)
        check_budget(CHECK_COPIES * 8 * entries, f"checking x {x} * w {w} -> y {y}", "for its arrays")
    try:
        if args.command == "matrix":
            import_scipy_sparse("matrix")
        if args.command in ("explain", "matrix") and args.plot is not None:
            check_plot_path(args.plot, "--plot")
        if args.command == "animate":
            from ._animate import check_animation_path
            from ._plot import import_matplotlib

            import_matplotlib("animate")
            check_animation_path(args.output)
            if args.output.lower().endswith(".gif"):
                try:
                    import PIL  # noqa: F401
                except ImportError:
                    raise ImportError("animate: writing a GIF needs Pillow: pip install 'convgrad[plot]'") from None
    except ImportError as exc:
        raise UsageError(str(exc)) from None
    if args.command == "explain" and args.output is not None:
        check_directory(args.output, "-o")
    if args.command == "matrix":
        check_matrix_budget(geom, np.dtype(np.float64))


def _kwargs(args: argparse.Namespace) -> dict[str, Any]:
    kw: dict[str, Any] = dict(stride=args.stride, padding=args.padding, dilation=args.dilation, groups=args.groups)
    if args.transposed:
        kw["output_padding"] = args.output_padding
    else:
        kw["padding_mode"] = args.padding_mode
    return kw


def _write(text: str, output: Optional[str], note_to_stderr: bool) -> None:
    """``text`` to ``output`` (a file) or stdout."""
    if output is None:
        print(text, end="" if text.endswith("\n") else "\n")
        return
    with open(output, "w", encoding="utf-8") as f:
        f.write(text if text.endswith("\n") else text + "\n")
    print(f"wrote {output}", file=sys.stderr if note_to_stderr else sys.stdout)


def cmd_explain(args: argparse.Namespace) -> int:
    e = explain(args.input, args.weight, **_kwargs(args), transposed=args.transposed, full=args.full,
                progress=None)
    quiet = args.format in ("json", "markdown", "html") and args.output is None
    if args.format == "json":
        text = e.to_json()
    elif args.format == "markdown":
        text = e.to_markdown()
    elif args.format == "html":
        text = e.to_html(standalone=True)
    else:
        text = str(e)
    _write(text, args.output, quiet)
    if args.plot is not None:
        e.plot(args.plot)
        print(f"wrote {args.plot}", file=sys.stderr if quiet else sys.stdout)
    return EXIT_OK if e.verified else EXIT_FAILED


def cmd_animate(args: argparse.Namespace) -> int:
    from ._animate import animate

    bar = Progress(2, "animate", enabled=None)
    anim = animate(args.input, args.weight, kind=args.kind, **_kwargs(args), transposed=args.transposed,
                   max_frames=args.max_frames, fps=args.fps, dpi=args.dpi)
    bar.update("drawing the frames")
    anim.save(args.output)
    bar.close()
    print(f"{anim.kind}: {anim.frames} frames of {anim.size[0]}x{anim.size[1]} pixels at {anim.fps:g} fps"
          + (f" ({anim.note})" if anim.note else ""))
    print(f"wrote {args.output}")
    return EXIT_OK


def _checked_geometry(geom: Geometry) -> Geometry:
    """The configuration ``convgrad check`` runs on without ``--full``: ``geom``, or a smaller one of its class."""
    from ._matrix import triplet_count

    if triplet_count(geom) <= CHECK_WORK:
        return geom
    small = small_geometry(dataclasses.replace(geom, n=min(geom.n, 2)) if geom.batched else geom)
    return small


_NAME_WIDTH = 56


def _row(name: str, err: float, rel: float, tol: str, ok: bool) -> str:
    return f"  {name:<{_NAME_WIDTH}} {err:>12.3g} {rel:>12.3g}  {tol:<24} {'ok' if ok else 'FAIL'}"


def _compare(name: str, value: Any, reference: Any, rtol: float) -> tuple[str, bool]:
    value, reference = np.asarray(value, dtype=np.float64), np.asarray(reference, dtype=np.float64)
    err = float(np.max(np.abs(value - reference))) if value.size else 0.0
    scale = max(1.0, float(np.max(np.abs(reference)))) if reference.size else 1.0
    ok = err <= rtol * scale
    return _row(name, err, err / scale, f"<= {rtol:g}·max(1, |ref|)", ok), ok


def cmd_check(args: argparse.Namespace) -> int:
    full_geom = _geometry(args)
    geom = full_geom if args.full else _checked_geometry(full_geom)
    dtype = np.dtype(args.dtype)
    rng = np.random.default_rng(args.seed)
    x_shape, w_shape, _ = operation_shapes(geom, args.transposed)
    kw = _kwargs(args)
    if geom != full_geom:  # the smaller configuration's own padding (its sizes differ, the rest does not)
        kw["padding"] = tuple(zip(geom.pad_lo, geom.pad_hi))
    x = rng.standard_normal(x_shape).astype(dtype)
    w = rng.standard_normal(w_shape).astype(dtype)
    c_out = geom.c_in if args.transposed else geom.c_out
    b = rng.standard_normal(c_out).astype(dtype)
    forward = conv_transpose if args.transposed else conv
    backward = conv_transpose_backward if args.transposed else conv_backward

    def f(x_: Any, w_: Any, b_: Any) -> Any:
        return forward(x_, w_, b_, **kw)

    def fb(g_: Any, x_: Any, w_: Any, b_: Any) -> Any:
        return tuple(backward(g_, x_, w_, **kw))

    names = ("input gradient", "weight gradient", "bias gradient")
    total = x.size + w.size + b.size
    mode = "full" if total <= FULL_GRADCHECK else "fast"
    op = "conv_transpose" if args.transposed else "conv"
    full_x, full_w, full_y = operation_shapes(full_geom, args.transposed)
    print(f"convgrad check: {op} x {full_x} * w {full_w} -> y {full_y}, {dtype}, random seed {args.seed}")
    if geom != full_geom:
        print(f"  checked on {shapes_text(geom, args.transposed)}, a smaller configuration with "
              f"{class_text(args.transposed)} (the same code runs); --full checks this one")
    bar = Progress(4, "check", enabled=None if args.full else False)
    bar.update("forward and backward")
    y = f(x, w, b)
    g = rng.standard_normal(y.shape).astype(dtype)
    grads = fb(g, x, w, b)
    print(f"  {'comparison':<{_NAME_WIDTH}} {'max abs err':>12} {'max rel err':>12}  {'tolerance':<24} result")
    ok_all = True
    bar.update("finite differences")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = gradcheck(f, (x, w, b), fb, grad_output=g, mode=mode, seed=args.seed,
                           progress=None if args.full else False)
    label = "finite differences" if mode == "full" else "finite differences (random direction)"
    for name, item in zip(names, result.inputs):
        print(_row(f"{name} vs {label}", item.max_abs_error, item.max_rel_error,
                   f"atol {result.atol:g} + rtol {result.rtol:g}", item.passed))
    ok_all &= result.passed
    if dtype != np.float64:
        ref64 = fb(g.astype(np.float64), x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
        y64 = f(x.astype(np.float64), w.astype(np.float64), b.astype(np.float64))
        for name, value, reference in zip(("output",) + names, (y, *grads), (y64, *ref64)):
            line, ok = _compare(f"{name} {dtype} vs float64", value, reference, 1e-4)
            print(line)
            ok_all &= ok
    bar.update("PyTorch")
    torch_note = _torch_rows(args, geom, x, w, b, g, y, grads, dtype)
    bar.close()
    if isinstance(torch_note, str):
        print(f"  PyTorch: {torch_note}")
    else:
        for line, ok in torch_note:
            print(line)
            ok_all &= ok
    for warning in caught:
        print(f"  note: {str(warning.message).splitlines()[0]}")
    if mode == "fast":
        print(f"  note: {total} input entries: finite differences along one random direction per input")
    print("PASSED" if ok_all else "FAILED")
    return EXIT_OK if ok_all else EXIT_FAILED


def _torch_rows(
    args: argparse.Namespace, geom: Geometry, x: Any, w: Any, b: Any, g: Any, y: Any, grads: Any, dtype: Any
) -> str | list[tuple[str, bool]]:
    d = geom.d
    if d > 3:
        return f"not compared (PyTorch has no {d}-d convolution)"
    try:
        import torch
        import torch.nn.functional as F
    except ImportError:
        return "not compared (not installed)"
    tensors = [torch.tensor(a, requires_grad=True) for a in (x, w, b)]
    lo, hi = geom.pad_lo, geom.pad_hi
    if args.transposed:
        fn = getattr(F, f"conv_transpose{d}d")
        xt = tensors[0]
        yt = fn(xt, tensors[1], tensors[2], stride=geom.stride, padding=lo, output_padding=Numbers(geom).remainder,
                dilation=geom.dilation, groups=geom.groups)
        if lo != hi:
            return "not compared (PyTorch's conv_transpose has no asymmetric padding)"
    else:
        fn = getattr(F, f"conv{d}d")
        pads: list[int] = []
        for a, c in zip(reversed(lo), reversed(hi)):
            pads += [a, c]
        xt = tensors[0] if geom.batched else tensors[0][None]
        mode = "constant" if geom.padding_mode == "zeros" else geom.padding_mode
        xp = torch.nn.functional.pad(xt, pads, mode=mode) if geom.has_padding else xt
        yt = fn(xp, tensors[1], tensors[2], stride=geom.stride, dilation=geom.dilation, groups=geom.groups)
        if not geom.batched:
            yt = yt[0]
    tgrads = torch.autograd.grad(yt, tensors, torch.tensor(g))
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    names = ("output", "input gradient", "weight gradient", "bias gradient")
    values = (y, *grads)
    refs = (yt.detach().numpy(), *(t.numpy() for t in tgrads))
    return [_compare(f"{name} vs PyTorch {torch.__version__.split('+')[0]}", v, r, rtol)
            for name, v, r in zip(names, values, refs)]


def cmd_matrix(args: argparse.Namespace) -> int:
    w = np.arange(1.0, prod(args.weight) + 1).reshape(args.weight)
    m = conv_matrix(args.input, w, **_kwargs(args), transposed=args.transposed)
    rows, cols = m.shape
    op = "conv_transpose" if args.transposed else "conv"
    print(f"M: {rows} x {cols}, {m.nnz} stored entries ({m.nnz / max(1, rows * cols):.2%} dense)")
    print(f"M @ x.ravel() == {op}(x, w).ravel() for w = 1..{w.size}: each entry names the weight it multiplies")
    if rows <= MAX_PRINTED and cols <= MAX_PRINTED:
        with np.printoptions(linewidth=200, threshold=MAX_PRINTED**2 + 1):
            print(np.array2string(m.toarray(), separator=" ", formatter={"float_kind": lambda v: f"{v:g}"}))
    elif args.plot is None:
        print(f"too large to print (more than {MAX_PRINTED} rows or columns): use --plot out.png for its pattern")
    if args.plot is not None:
        plot_matrix(m, args.plot, f"{op}: x {tuple(args.input)}, w {tuple(args.weight)}: M is {rows} x {cols}",
                    who="--plot")
        print(f"wrote {args.plot}")
    return EXIT_OK


# ----------------------------------------------------------------------------- the 5x5 example


def _shown(a: np.ndarray) -> np.ndarray:
    """For display: rounding noise (from a fast path's FFT, say) below 1e-9 is not printed."""
    return np.round(a, 9) + 0.0


def demo() -> int:
    """The 5×5 image under a 3×3 kernel: gradients of sum(conv(x, w)), checked and explained."""
    x = 10.0 * np.arange(25.0).reshape(1, 1, 5, 5)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    y = conv(x, w)
    ones = np.ones_like(y)
    grads = conv_backward(ones, x, w)
    with np.printoptions(linewidth=120):
        print("convgrad: the 5x5 image under a 3x3 kernel, loss L = y.sum(), so grad_output = ones\n")
        print("x = 10 * arange(25).reshape(1, 1, 5, 5):")
        print(x[0, 0])
        print("\nw = arange(9).reshape(1, 1, 3, 3):")
        print(w[0, 0])
        print("\ny = cg.conv(x, w):")
        print(_shown(y[0, 0]))
        print("\ngx = ∂L/∂x = cg.conv_input_grad(ones, w, input_shape=x.shape): every window's kernel, summed")
        print(_shown(grads.input[0, 0]))
        print("\ngw = ∂L/∂w = cg.conv_weight_grad(ones, x, weight_shape=w.shape): every window of x, summed")
        print(_shown(grads.weight[0, 0]))
        print("\ngb = ∂L/∂b = cg.conv_bias_grad(ones): the number of output elements")
        print(_shown(grads.bias))

        delta = np.zeros_like(x)
        delta[0, 0, 2, 2] = 1.0
        x32, d32, w32 = x.astype(np.float32), delta.astype(np.float32), w.astype(np.float32)
        eps32 = np.float32(1e-3)
        fd32 = (conv(x32 + eps32 * d32, w32) - conv(x32 - eps32 * d32, w32)) / np.float32(2) / eps32
        fd64 = (conv(x + 1e-6 * delta, w) - conv(x - 1e-6 * delta, w)) / 2e-6
        print("\n∂y/∂x[2, 2] by central differences in float32, eps = 1e-3")
        print(fd32[0, 0])
        print("(a float32 convolution that adds in another order gave 7.8125 for the first entry: the digits depend")
        print(" on the order of the float32 sums, the error does not: near y = 3000 float32 values are 2.4e-4 apart,")
        print(" and the change being measured, 2·eps·8 = 0.016, is only about 65 of those steps)")
        print("the same in float64, eps = 1e-6 (the exact answer is w flipped: 8 7 6 / 5 4 3 / 2 1 0)")
        print(np.round(fd64[0, 0], 6))
    result = gradcheck(lambda a, b: conv(a, b), (x, w), lambda g, a, b: tuple(conv_backward(g, a, b))[:2],
                       grad_output=ones)
    print(f"\n{result}\n")
    e = explain((1, 1, 5, 5), (1, 1, 3, 3))
    print(e)
    return EXIT_OK if result.passed and e.verified else EXIT_FAILED


# ----------------------------------------------------------------------------- main


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the ``convgrad`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status.

    Parameters
    ----------
    argv : list of str, optional
        The arguments after ``convgrad``; ``[]`` runs the 5×5 example.

    Returns
    -------
    int
        0 success, 1 a check failed, 2 a bad flag, an impossible or too large
        configuration, a file that cannot be written or a missing optional
        package (one line ``convgrad: error: ...`` on stderr).

    Examples
    --------
    >>> from convgrad.cli import main
    >>> main(["matrix", "--input", "1x1x3", "--weight", "1x1x2"])
    M: 2 x 3, 4 stored entries (66.67% dense)
    M @ x.ravel() == conv(x, w).ravel() for w = 1..2: each entry names the weight it multiplies
    [[1 2 0]
     [0 1 2]]
    0
    """
    try:
        return _run(list(sys.argv[1:] if argv is None else argv))
    except USAGE_ERRORS as exc:
        print(f"convgrad: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE


def _one_line(exc: BaseException) -> str:
    """The message of ``exc`` on one line (its type name when it has none)."""
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip()) or type(exc).__name__


def _run(argv: list[str]) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help and --version
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    if args.command is None:
        return demo()
    if args.command in CONFORMANCE:
        code: int = args.func(args)
        return code
    budget = workspace_budget(args.budget) if args.budget is not None else contextlib.nullcontext()
    with budget:
        _validate(args)
        if args.command == "explain":
            return cmd_explain(args)
        if args.command == "check":
            return cmd_check(args)
        if args.command == "animate":
            return cmd_animate(args)
        return cmd_matrix(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
