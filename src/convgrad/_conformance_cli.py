"""The ``convgrad test``, ``convgrad export`` and ``convgrad verify`` commands.

* ``convgrad test MODULE:FORWARD [--backward MODULE:FUNCTION] ...`` runs
  :func:`convgrad.testing.check_implementation` on an implementation and prints
  its report: exit 0 when it passes, 1 on a failure.
* ``convgrad export --examples N --seed S --out ref.npz`` writes reference
  cases (inputs, upstream gradient, output and the three gradients from
  convgrad's core) for implementations in other languages: one ``.npz``, or a
  directory of ``.npy`` files with ``cases.json`` when ``--out`` does not end in
  ``.npz``.
* ``convgrad verify ref.npz --results theirs.npz`` compares an
  implementation's results with those cases and prints the same report (the
  failing case with the fewest entries stands in for a shrunk one; the
  features are those every failing case has and some passing case lacks).

Bad arguments (an unimportable module, an unknown convention, an unreadable
file) print one line ``convgrad: error: ...`` on stderr and exit 2.

Files
-----
A reference ``.npz`` holds ``index`` (a JSON string: format, version,
convention, seed, the number of cases and their configurations) and, for
case ``i``, the arrays ``case{i}/x``, ``case{i}/w``, ``case{i}/b`` (with a
bias), ``case{i}/grad_output``, ``case{i}/output``, ``case{i}/grad_input``,
``case{i}/grad_weight`` and ``case{i}/grad_bias`` (not in the scipy
convention), in the convention's layout, plus ``case{i}/config`` (JSON). The
directory form has the same arrays as ``{i:04d}_{name}.npy`` and the index as
``cases.json``. A results file has ``case{i}/output``, ``case{i}/grad_input``,
``case{i}/grad_weight``, ``case{i}/grad_bias`` (any of them), or the
directory form ``{i:04d}_{name}.npy``.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import os
import sys
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, Optional

import numpy as np
import numpy.typing as npt

from . import testing
from ._strategies import DTYPES, MODES, ConvConfig, require_hypothesis

Array = npt.NDArray[Any]

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
FORMAT, VERSION = "convgrad-reference", 1
INPUTS = ("x", "w", "b", "grad_output")
RESULTS = {"output": "forward", "grad_input": "input_grad", "grad_weight": "weight_grad", "grad_bias": "bias_grad"}
ROLE_OF = {"x": "x", "w": "w", "b": "b", "grad_output": "y", "output": "y", "grad_input": "x", "grad_weight": "w",
           "grad_bias": "b"}
MAX_EXPORT = 100_000


class CommandError(Exception):
    """A bad argument or file: one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise CommandError(message)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or type(exc).__name__


def _guarded(handler: Any) -> Any:
    """Run a command; bad arguments and files become one line on stderr and exit status 2."""

    def run(args: argparse.Namespace) -> int:
        try:
            code: int = handler(args)
            return code
        except (CommandError, ImportError, ValueError, TypeError, OSError, KeyError, zipfile.BadZipFile) as exc:
            print(f"convgrad: error: {_one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE

    return run


# ----------------------------------------------------------------------------- flags


def _ints(text: str) -> tuple[int, ...]:
    try:
        values = tuple(int(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected ints joined by ',', like 1,2; got {text!r}") from None
    return values


def _names(text: str) -> tuple[str, ...]:
    return tuple(v.strip() for v in text.split(",") if v.strip())


def _space_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("the configurations (default: the convention's whole space, zero padding)")
    g.add_argument("--ndim", type=_ints, default=None, metavar="D", help="spatial dimensions, e.g. 2 or 1,2,3")
    g.add_argument("--transposed", action="store_true", help="transposed convolutions (torch convention)")
    g.add_argument("--max-batch", type=int, default=3, metavar="N", help="largest batch (default 3)")
    g.add_argument("--max-channels", type=int, default=4, metavar="C", help="largest channel count (default 4)")
    g.add_argument("--max-size", type=int, default=9, metavar="S", help="largest spatial input size (default 9)")
    g.add_argument("--no-groups", action="store_true", help="groups = 1 only")
    g.add_argument("--no-stride", action="store_true", help="stride = 1 only")
    g.add_argument("--no-dilation", action="store_true", help="dilation = 1 only")
    g.add_argument("--no-bias", action="store_true", help="no bias in the forward pass")
    g.add_argument("--unbatched", action="store_true", help="also unbatched inputs (C, *S)")
    g.add_argument("--padding", type=_names, default=testing.PADDING_FORMS, metavar="FORMS",
                   help="padding forms among int, asymmetric, same, valid (default all)")
    g.add_argument("--padding-modes", type=_names, default=("zeros",), metavar="MODES",
                   help=f"padding modes among {', '.join(MODES)} (default zeros)")
    g.add_argument("--dtype", type=_names, default=("float64",), metavar="DTYPE",
                   help=f"dtypes among {', '.join(DTYPES)} (default float64)")
    p.add_argument("--convention", default="torch", metavar="NAME",
                   help=f"layout and keyword names: {', '.join(sorted(testing.CONVENTIONS))} (default torch)")
    p.add_argument("--examples", type=int, default=200, metavar="N", help="configurations (default 200)")
    p.add_argument("--seed", type=int, default=0, metavar="S", help="seed of the search and the data (default 0)")


def _strategy(args: argparse.Namespace, convention: testing.Convention) -> Any:
    """The configuration strategy the flags describe, in the convention's idiom."""
    if convention.name == "scipy":
        base = convention.default_configs()
        return base if args.ndim is None else base.filter(lambda c: c.d in args.ndim)
    space = testing.configs(
        ndim=args.ndim or (1, 2, 3), transposed=args.transposed, max_batch=args.max_batch,
        max_channels=args.max_channels, max_size=args.max_size, groups=not args.no_groups,
        stride=not args.no_stride, dilation=not args.no_dilation, padding=args.padding,
        padding_modes=args.padding_modes, dtype=args.dtype, bias=False if args.no_bias else None,
        unbatched=args.unbatched,
    )
    return convention.adapt(space)


def _convention(name: str) -> testing.Convention:
    if name not in testing.CONVENTIONS:
        raise CommandError(f"unknown convention {name!r}; known: {', '.join(sorted(testing.CONVENTIONS))}")
    return testing.CONVENTIONS[name]


def _positive(value: int, flag: str, maximum: Optional[int] = None) -> int:
    if value < 1 or (maximum is not None and value > maximum):
        limit = f" and <= {maximum}" if maximum is not None else ""
        raise CommandError(f"{flag} must be >= 1{limit}; got {value}")
    return value


def _seed(value: int) -> int:
    if not 0 <= value < 2**32:
        raise CommandError(f"--seed must be from 0 to 2**32 - 1; got {value}")
    return value


# ----------------------------------------------------------------------------- convgrad test


def load_callable(spec: str, flag: str) -> Any:
    """``"package.module:function"`` or ``"path/to/file.py:function"`` -> the callable.

    The current directory is importable, as with ``python -m``.
    """
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise CommandError(f"{flag} must be MODULE:FUNCTION, like mypackage.conv:forward; got {spec!r}")
    try:
        if module_name.endswith(".py") or os.sep in module_name or "/" in module_name:
            path = Path(module_name)
            if not path.is_file():
                raise CommandError(f"cannot import {module_name!r}: no such file")
            unique = f"_convgrad_test_{abs(hash(str(path.resolve())))}"
            module_spec = importlib.util.spec_from_file_location(unique, path)
            if module_spec is None or module_spec.loader is None:
                raise CommandError(f"cannot import {module_name!r}: not a Python file")
            module = importlib.util.module_from_spec(module_spec)
            sys.modules[unique] = module
            module_spec.loader.exec_module(module)
        else:
            if os.getcwd() not in sys.path and "" not in sys.path:
                sys.path.insert(0, os.getcwd())
            module = importlib.import_module(module_name)
    except CommandError:
        raise
    except BaseException as exc:  # whatever importing the user's module raised, it is a bad argument here
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise CommandError(f"cannot import {module_name!r}: {type(exc).__name__}: {_one_line(exc)}") from None
    value: Any = module
    for part in attribute.split("."):
        if not hasattr(value, part):
            raise CommandError(f"{module_name!r} has no attribute {attribute!r}")
        value = getattr(value, part)
    if not callable(value):
        raise CommandError(f"{spec} is not callable (it is a {type(value).__name__})")
    return value


def cmd_test(args: argparse.Namespace) -> int:
    """``convgrad test``: check an implementation and print the report."""
    if args.forward is None and args.backward is None:
        raise CommandError("give MODULE:FORWARD, --backward MODULE:FUNCTION or both")
    convention = _convention(args.convention)
    _positive(args.examples, "--examples")
    _seed(args.seed)
    require_hypothesis()
    strategy = _strategy(args, convention)
    forward = None if args.forward is None else load_callable(args.forward, "MODULE:FORWARD")
    backward = None if args.backward is None else load_callable(args.backward, "--backward")
    report = testing.check_implementation(forward, backward, convention=convention, configs=strategy,
                                          max_examples=args.examples, seed=args.seed, rtol=args.rtol, atol=args.atol)
    print(report)
    return EXIT_OK if report.passed else EXIT_FAILED


# ----------------------------------------------------------------------------- convgrad export


def _jsonable(value: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, np.integer):
        return int(value)
    return value


def _tuples(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_tuples(v) for v in value)
    return value


def config_to_json(config: ConvConfig, convention: testing.Convention) -> dict[str, Any]:
    """A configuration as JSON: the PyTorch-layout geometry and how the convention writes the call."""
    roles = {"x": config.input_shape, "w": config.weight_shape, "y": config.output_shape}
    return {
        "operation": config.operation,
        "call": str(config),
        "input_shape": list(config.input_shape),
        "weight_shape": list(config.weight_shape),
        "output_shape": list(config.output_shape),
        "bias": config.bias,
        "stride": list(config.stride_t),
        "padding": [[lo, hi] for lo, hi in zip(config.lo, config.hi)],
        "padding_as_written": _jsonable(config.padding),
        "dilation": list(config.dilation_t),
        "groups": config.groups,
        "padding_mode": config.padding_mode,
        "output_padding": list(config.output_padding_t),
        "dtype": config.dtype,
        "convention": convention.name,
        "layout": convention.layout,
        "shapes": {role: list(convention.shape(shape, role, config)) for role, shape in roles.items()},
        "keywords": _jsonable(convention.keywords(config)),
    }


def config_from_json(data: dict[str, Any]) -> ConvConfig:
    """The configuration :func:`config_to_json` wrote."""
    try:
        return ConvConfig.from_shapes(
            tuple(data["input_shape"]), tuple(data["weight_shape"]), bias=bool(data["bias"]),
            stride=tuple(data["stride"]), padding=_tuples(data["padding_as_written"]),
            dilation=tuple(data["dilation"]), groups=int(data["groups"]), padding_mode=data["padding_mode"],
            transposed=data["operation"] == "conv_transpose",
            output_padding=tuple(data["output_padding"]) if data["operation"] == "conv_transpose" else 0,
            dtype=data["dtype"],
        )
    except KeyError as exc:
        raise CommandError(f"a case's configuration lacks {exc}") from None


def draw_configs(strategy: Any, count: int, seed: int) -> list[ConvConfig]:
    """Up to ``count`` distinct configurations from a strategy, reproducibly for a seed."""
    hypothesis = require_hypothesis()
    drawn: list[ConvConfig] = []
    seen: set[str] = set()

    class Enough(Exception):
        pass

    def collect(config: ConvConfig) -> None:
        if repr(config) not in seen:
            seen.add(repr(config))
            drawn.append(config)
        if len(drawn) >= count:
            raise Enough

    settings = hypothesis.settings(
        max_examples=4 * count, database=None, deadline=None, derandomize=False,
        phases=(hypothesis.Phase.generate,), suppress_health_check=list(hypothesis.HealthCheck),
        verbosity=hypothesis.Verbosity.quiet, report_multiple_bugs=False, print_blob=False,
    )
    test = hypothesis.seed(seed)(settings(hypothesis.given(strategy)(collect)))
    try:
        test()
    except Enough:
        pass
    except hypothesis.errors.Unsatisfiable:
        raise CommandError("the flags leave no configuration this convention can express") from None
    return drawn[:count]


def reference_cases(configs: Sequence[ConvConfig], convention: testing.Convention,
                    seed: int) -> list[tuple[dict[str, Any], dict[str, Array]]]:
    """Per configuration its JSON and arrays (inputs and the core's results), in the convention's layout."""
    cases = []
    for config in configs:
        x, w, b = config.arrays(seed)
        g = config.grad_output(seed)
        expected = testing.expected_results(config, x, w, b, g)
        arrays = {"x": x, "w": w, "b": b, "grad_output": g, "output": expected["forward"],
                  "grad_input": expected["input_grad"], "grad_weight": expected["weight_grad"],
                  "grad_bias": expected["bias_grad"]}
        if not convention.has_bias:
            del arrays["grad_bias"]
        laid_out = {name: np.ascontiguousarray(convention.to_layout(a, ROLE_OF[name], config))
                    for name, a in arrays.items() if a is not None}
        cases.append((config_to_json(config, convention), laid_out))
    return cases


def _index(convention: testing.Convention, seed: int, cases: Sequence[tuple[dict[str, Any], Any]],
           files: Optional[list[dict[str, str]]] = None) -> dict[str, Any]:
    entries = []
    for i, (config, _) in enumerate(cases):
        entry: dict[str, Any] = {"id": i, "config": config}
        if files is not None:
            entry["files"] = files[i]
        entries.append(entry)
    return {"format": FORMAT, "version": VERSION, "convention": convention.name, "layout": convention.layout,
            "seed": seed, "count": len(cases), "cases": entries}


def write_reference(path: Path, cases: Sequence[tuple[dict[str, Any], dict[str, Array]]],
                    convention: testing.Convention, seed: int) -> None:
    """Write the cases as one ``.npz`` or, for another path, as a directory of ``.npy`` + ``cases.json``."""
    if path.suffix == ".npz":
        if not path.parent.exists():
            raise CommandError(f"--out {str(path)!r}: the directory {str(path.parent)!r} does not exist")
        contents: dict[str, Array] = {"index": np.array(json.dumps(_index(convention, seed, cases)))}
        for i, (config, arrays) in enumerate(cases):
            contents[f"case{i}/config"] = np.array(json.dumps(config))
            contents.update({f"case{i}/{name}": a for name, a in arrays.items()})
        np.savez_compressed(path, **contents)  # type: ignore[arg-type]
        return
    path.mkdir(parents=True, exist_ok=True)
    files = []
    for i, (_, arrays) in enumerate(cases):
        names = {}
        for name, a in arrays.items():
            names[name] = f"{i:04d}_{name}.npy"
            np.save(path / names[name], a)
        files.append(names)
    (path / "cases.json").write_text(_index_text(_index(convention, seed, cases, files)))


def _index_text(index: dict[str, Any]) -> str:
    """The index as JSON with one line per case (readable, and easy to parse line by line)."""
    head = {k: v for k, v in index.items() if k != "cases"}
    lines = ["{"] + [f" {json.dumps(k)}: {json.dumps(v)}," for k, v in head.items()] + [' "cases": [']
    cases = [f"  {json.dumps(case, separators=(', ', ': '))}" for case in index["cases"]]
    return "\n".join(lines + [",\n".join(cases), " ]", "}"]) + "\n"


def cmd_export(args: argparse.Namespace) -> int:
    """``convgrad export``: write reference cases."""
    convention = _convention(args.convention)
    count = _positive(args.examples, "--examples", MAX_EXPORT)
    seed = _seed(args.seed)
    require_hypothesis()
    configs = draw_configs(_strategy(args, convention), count, seed)
    cases = reference_cases(configs, convention, seed)
    write_reference(Path(args.out), cases, convention, seed)
    kind = "file" if Path(args.out).suffix == ".npz" else "directory"
    print(f"wrote {len(cases)} cases ({convention.name} convention, seed {seed}) to the {kind} {args.out}")
    return EXIT_OK


# ----------------------------------------------------------------------------- convgrad verify


def _open(path: Path, what: str) -> tuple[dict[str, Any], Optional[Path]]:
    """An ``.npz`` file's arrays (read lazily), or a directory; errors name the flag."""
    if path.is_dir():
        return {}, path
    if not path.is_file():
        raise CommandError(f"{what} {str(path)!r}: no such file or directory")
    try:
        return dict(np.load(path, allow_pickle=False)), None
    except (OSError, ValueError, zipfile.BadZipFile) as exc:
        raise CommandError(f"{what} {str(path)!r} is not an .npz file: {_one_line(exc)}") from None


def read_reference(path: Path) -> tuple[dict[str, Any], list[tuple[ConvConfig, dict[str, Array]]]]:
    """The index and, per case, its configuration and arrays."""
    npz, directory = _open(path, "the reference")
    try:
        if directory is not None:
            index = json.loads((directory / "cases.json").read_text())
        else:
            index = json.loads(str(npz["index"]))
    except (OSError, KeyError, ValueError) as exc:
        raise CommandError(f"{str(path)!r} is not a convgrad reference (no readable index: {_one_line(exc)})") from None
    if index.get("format") != FORMAT:
        raise CommandError(f"{str(path)!r} is not a convgrad reference (format {index.get('format')!r})")
    cases = []
    for entry in index["cases"]:
        i = entry["id"]
        config = config_from_json(entry["config"])
        arrays = {}
        names = INPUTS + tuple(RESULTS)
        for name in names:
            if directory is not None:
                file = entry.get("files", {}).get(name)
                if file is not None:
                    arrays[name] = np.load(directory / file, allow_pickle=False)
            elif f"case{i}/{name}" in npz:
                arrays[name] = npz[f"case{i}/{name}"]
        cases.append((config, arrays))
    return index, cases


def read_results(path: Path, count: int) -> dict[int, dict[str, Array]]:
    """Per case id, the results given (``output``, ``grad_input``, ``grad_weight``, ``grad_bias``)."""
    npz, directory = _open(path, "--results")
    out: dict[int, dict[str, Array]] = {}
    for i in range(count):
        for name in RESULTS:
            if directory is not None:
                file = directory / f"{i:04d}_{name}.npy"
                if file.is_file():
                    out.setdefault(i, {})[name] = np.load(file, allow_pickle=False)
            elif f"case{i}/{name}" in npz:
                out.setdefault(i, {})[name] = npz[f"case{i}/{name}"]
    if not out:
        raise CommandError(f"--results {str(path)!r} holds no result of any case (expected names like "
                           f"case0/output, case0/grad_input or 0000_grad_weight.npy)")
    return out


def _size(config: ConvConfig) -> tuple[int, int]:
    return (int(np.prod(config.input_shape)) + int(np.prod(config.weight_shape)), len(repr(config)))


def verify(reference: Path, results: Path, *, rtol: float, atol: float) -> testing.Report:
    """Compare a results file with a reference file: the report of :func:`convgrad.testing.check_implementation`."""
    index, cases = read_reference(reference)
    convention = _convention(index["convention"])
    given = read_results(results, len(cases))
    seed = int(index.get("seed", 0))
    functions = tuple(f for name, f in RESULTS.items() if any(name in r for r in given.values()))
    outcomes: dict[str, list[tuple[int, testing.Comparison]]] = {f: [] for f in functions}
    coverage_entries = []
    for i, (config, arrays) in enumerate(cases):
        results_i = given.get(i, {})
        passed: dict[str, bool] = {}
        for name, function in RESULTS.items():
            if function in outcomes and name in results_i and name in arrays:
                comparison = testing.compare(results_i[name], arrays[name], rtol=rtol, atol=atol)
                outcomes[function].append((i, comparison))
                passed[function] = comparison.passed
        if passed:
            coverage_entries.append((config.features(), passed))
    torch_inputs = {}
    for i, (config, arrays) in enumerate(cases):
        back = {name: convention.from_layout(arrays[name], ROLE_OF[name], config) for name in INPUTS if name in arrays}
        torch_inputs[i] = back
    candidates: dict[str, list[str]] = {}
    summary: dict[str, tuple[int, list[int], list[int]]] = {}
    for function, items in outcomes.items():
        failing = [i for i, c in items if not c.passed]
        passing = [i for i, c in items if c.passed]
        if not failing:
            continue
        best = min(failing, key=lambda i: _size(cases[i][0]))
        summary[function] = (best, failing, passing)
        mistake_cases = []
        for i in failing[:50]:
            comparison = dict(items)[i]
            if comparison.actual is None:
                continue
            t = torch_inputs[i]
            mistake_cases.append(testing.MistakeCase(cases[i][0], t["x"], t["w"], t.get("b"), t["grad_output"],
                                                     comparison.actual))
        candidates[function] = testing.match_mistakes(function, mistake_cases, convention, rtol=rtol, atol=atol)
    tested_passed = {f for f in functions if f not in summary}
    chosen = testing.choose_mistakes(candidates, tested_passed, {f: cases[s[0]][0] for f, s in summary.items()})
    failures = []
    for function, (best, failing, passing) in summary.items():
        comparison = dict(outcomes[function])[best]
        config = cases[best][0]
        features, neighbours = _features_from_cases([cases[i][0] for i in failing], [cases[i][0] for i in passing])
        first = failing[0]
        failures.append(testing.Failure(
            function=function, config=config, kind=comparison.kind, message=comparison.message,
            max_error=comparison.max_error, index=comparison.index, expected=comparison.expected_value,
            actual=comparison.actual_value, features=features, passing_neighbours=neighbours,
            mistake=chosen.get(function), checked=min(len(failing), 50), convention=convention.name,
            call=convention.call_text(config, "forward" if function == "forward" else "backward"),
            first_config=cases[first][0], examples=len(outcomes[function]), seed=seed,
            note=f"{len(failing)} of {len(outcomes[function])} cases fail", case=f"case {best} of {reference}",
        ))
    examples = {f: len(items) for f, items in outcomes.items()}
    not_checked = {f: "no result given" for f in ("forward", "input_grad", "weight_grad", "bias_grad")
                   if f not in functions and (f != "bias_grad" or convention.has_bias)}
    return testing.Report(
        passed=not failures, failures=failures, coverage=testing.coverage_of(coverage_entries), functions=functions,
        examples=examples, not_checked=not_checked, convention=convention.name, seed=seed,
        max_examples=len(cases), rtol=rtol, atol=atol, source=str(reference),
    )


_SIMPLER = ("1-d", "2-d", "3-d", "transposed")


def _features_from_cases(failing: list[ConvConfig], passing: list[ConvConfig]) -> tuple[
        tuple[str, ...], tuple[tuple[str, ConvConfig], ...]]:
    """Features every failing case has and some passing case lacks, with the smallest such passing case."""
    common = frozenset.intersection(*(c.features() for c in failing))
    features, neighbours = [], []
    for feature in (f for f in testing.FEATURES if f in common and f not in _SIMPLER):
        without = [c for c in passing if feature not in c.features()]
        if without:
            features.append(feature)
            neighbours.append((feature, min(without, key=_size)))
    return tuple(features), tuple(neighbours)


def cmd_verify(args: argparse.Namespace) -> int:
    """``convgrad verify``: compare a results file with a reference file."""
    report = verify(Path(args.reference), Path(args.results), rtol=args.rtol, atol=args.atol)
    print(report)
    return EXIT_OK if report.passed else EXIT_FAILED


# ----------------------------------------------------------------------------- wiring


def _tolerance_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rtol", type=float, default=1e-7, help="relative tolerance (default 1e-7)")
    p.add_argument("--atol", type=float, default=1e-10, help="absolute tolerance (default 1e-10)")


def add_subcommands(subparsers: Any) -> None:
    """Add ``test``, ``export`` and ``verify`` to an ``argparse`` subparsers action.

    Each parser's ``func`` runs its command and returns the exit status
    (bad arguments: one line on stderr and 2).
    """
    p = subparsers.add_parser(
        "test", help="check your implementation: find, shrink and name the mistake",
        description="Run an implementation of the forward pass and/or the gradients on configurations drawn by "
        "Hypothesis, compare with convgrad's core, shrink the first failure of each function to a minimal "
        "configuration, find what it depends on and name the catalogued mistake it matches. FORWARD is called as "
        "forward(x, w, b, **geometry), the backward as backward(g, x, w, **geometry) -> (gx, gw[, gb]), on NumPy "
        "arrays in the convention's layout. Needs Hypothesis (pip install 'convgrad[testing]').",
        epilog="exit status: 0 it passes, 1 a function failed, 2 bad arguments",
    )
    p.add_argument("forward", nargs="?", metavar="MODULE:FORWARD",
                   help="the forward pass, e.g. myconv:forward or path/to/myconv.py:forward")
    p.add_argument("--backward", metavar="MODULE:FUNCTION", help="the gradients, e.g. myconv:backward")
    _space_flags(p)
    _tolerance_flags(p)
    p.set_defaults(func=_guarded(cmd_test))

    p = subparsers.add_parser(
        "export", help="write reference cases for implementations in other languages",
        description="Write N configurations with their inputs, upstream gradient, output and the three gradients "
        "from convgrad's core, in the convention's layout: an .npz (arrays case{i}/x, w, b, grad_output, output, "
        "grad_input, grad_weight, grad_bias and case{i}/config as JSON, plus an index), or, when --out does not "
        "end in .npz, a directory of {i:04d}_{name}.npy files and cases.json. Needs Hypothesis.",
    )
    p.add_argument("--out", required=True, metavar="PATH", help="ref.npz, or a directory")
    _space_flags(p)
    p.set_defaults(func=_guarded(cmd_export))

    p = subparsers.add_parser(
        "verify", help="compare an implementation's results file with reference cases",
        description="Compare results (case{i}/output, grad_input, grad_weight, grad_bias in an .npz, or "
        "{i:04d}_{name}.npy files in a directory) with a reference written by 'convgrad export', and print the "
        "failure report: the smallest failing case per function, the features every failing case shares and "
        "some passing case lacks, and the catalogued mistake the results match on every failing case.",
        epilog="exit status: 0 every given result matches, 1 a result differs, 2 bad files",
    )
    p.add_argument("reference", metavar="REFERENCE", help="the reference .npz or directory")
    p.add_argument("--results", required=True, metavar="PATH", help="the implementation's results (.npz or directory)")
    _tolerance_flags(p)
    p.set_defaults(func=_guarded(cmd_verify))


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``test``, ``export`` or ``verify`` with ``argv``; return the exit status.

    Examples
    --------
    >>> from convgrad._conformance_cli import main
    >>> main(["test", "--convention", "mxnet", "numpy:convolve"])  # an unknown convention: one line, status 2
    2
    """
    parser = _Parser(prog="convgrad")
    add_subcommands(parser.add_subparsers(dest="command", parser_class=_Parser, required=True))
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except CommandError as exc:
        print(f"convgrad: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return int(exc.code or 0) if not isinstance(exc.code, str) else EXIT_USAGE
    code: int = args.func(args)
    return code


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
