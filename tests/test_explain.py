"""explain: every recipe form against PyTorch autograd, the renderings, the pictures, the errors."""

from __future__ import annotations

import ast
import json
import pathlib
import re
import subprocess
import sys
import tracemalloc
from typing import Any

import numpy as np
import pytest
from hypothesis import given

import convgrad as cg
from convgrad import _explain, _recipes
from convgrad._explain import Recipe, run_recipe
from strategies import Config, conv_configs
from torch_ref import torch_conv
from trust_cases import TConfig, torch_conv_transpose_grads, transposed_configs

RUN_HERE = ("call", "explicit", "pytorch")
RESULT = {"input": 1, "weight": 2, "bias": 3}


def _namespace(x: np.ndarray, w: np.ndarray, g: np.ndarray, form: str) -> dict[str, Any]:
    if form == "pytorch":
        import torch

        return {"x": torch.from_numpy(x), "w": torch.from_numpy(w), "g": torch.from_numpy(g)}
    return {"np": np, "cg": cg, "x": x, "w": w, "g": g}


def _check_recipes(e: cg.Explanation, x: np.ndarray, w: np.ndarray, g: np.ndarray, ref: tuple[Any, ...]) -> None:
    """Each recipe was verified by explain, and, re-run on other data, equals PyTorch's autograd."""
    assert len(e.recipes) == 15
    for r in e.recipes:
        if r.form in RUN_HERE:
            assert r.status == "verified", (r.gradient, r.form, r.note, r.code)
            assert r.max_error is not None and r.max_error < 1e-9
            value = run_recipe(r.code, r.gradient, _namespace(x, w, g, r.form))
            np.testing.assert_allclose(value, ref[RESULT[r.gradient]], rtol=1e-10, atol=1e-10,
                                       err_msg=f"{r.gradient} {r.form}:\n{r.code}")
        else:
            assert r.status == "not run"
            ast.parse(r.code)  # ready to paste: at least valid Python


@given(conv_configs(dims=(1, 2, 3), max_extra=3, allow_unbatched=False))
def test_forward_recipes_against_pytorch(cfg: Config) -> None:
    """Strided with floor remainder, dilation, groups, asymmetric padding, every padding mode."""
    rng = np.random.default_rng(10)
    x, w, b = cfg.arrays(rng)
    e = cg.explain(cfg.x_shape, cfg.w_shape, **cfg.kwargs())
    g = rng.standard_normal(cg.conv(x, w, **cfg.kwargs()).shape)
    _check_recipes(e, x, w, g, torch_conv(cfg, x, w, b, g))


@given(transposed_configs())
def test_transposed_recipes_against_pytorch(cfg: TConfig) -> None:
    rng = np.random.default_rng(11)
    x, w = rng.standard_normal(cfg.x_shape), rng.standard_normal(cfg.w_shape)
    e = cg.explain(cfg.x_shape, cfg.w_shape, transposed=True, **cfg.kwargs())
    assert e.transposed and e.config["output_padding"] == cfg.output_padding
    g = rng.standard_normal(cg.conv_transpose_output_shape(cfg.x_shape, cfg.w_shape, **cfg.kwargs()))
    _check_recipes(e, x, w, g, torch_conv_transpose_grads(cfg, x, w, g))


def test_remainder_needs_output_padding() -> None:
    """(5 + 1 + 1 − 3) mod 2 ≠ 0 for a 6-long input: the recipe carries output_padding=1 and says why."""
    e = cg.explain((1, 1, 6), (1, 1, 3), stride=2, padding=1)
    assert e.formula[1] == "dim 0: floor((6 + 1 + 1 − 1·(3 − 1) − 1) / 2) + 1 = floor(5 / 2) + 1 = 3"
    call = e.recipes_for("input")[0]
    assert call.code == "gx = cg.conv_transpose(g, w, stride=2, padding=1, output_padding=1)\n"
    assert any("output_padding=1" in note and "never read" in note for note in e.notes)
    explicit = e.recipes_for("input")[1].code
    assert "np.pad(bd, ((0, 0), (0, 0), (1, 2)))" in explicit  # δ(K−1) − l = 1, δ(K−1) − h + a = 2


def test_shapes_and_formula_numbers() -> None:
    e = cg.explain((2, 3, 5, 5), (4, 3, 3, 3), stride=2, padding=1)
    shapes = {name: shape for name, shape, _ in e.shapes}
    assert shapes == {
        "input x": (2, 3, 5, 5), "weight w": (4, 3, 3, 3), "padded input": (2, 3, 7, 7),
        "windows": (2, 3, 3, 3, 3, 3), "output y": (2, 4, 3, 3), "bias b": (4,),
    }
    assert e.formula[1:] == [f"dim {i}: floor((5 + 1 + 1 − 1·(3 − 1) − 1) / 2) + 1 = floor(4 / 2) + 1 = 3" for i in (0, 1)]
    t = cg.explain((1, 2, 3), (2, 1, 3), stride=2, padding=1, output_padding=1, transposed=True)
    assert t.formula[1] == "dim 0: (3 − 1)·2 − 1 − 1 + 1·(3 − 1) + 1 + 1 = 6"
    assert t.recipes_for("input")[0].code == "gx = cg.conv(g, w, stride=2, padding=1)\n"


def test_padding_mode_recipes_use_the_padding_adjoint() -> None:
    e = cg.explain((1, 1, 5, 5), (1, 1, 3, 3), padding=(1, 2), padding_mode="reflect")
    assert any("adjoint" in note and "reflect" in note for note in e.notes)
    for r in e.recipes_for("input"):
        assert "adjoint of 'reflect' padding" in r.code
        assert "mode='reflect'" in r.code
    assert all(r.status == "verified" for r in e.recipes if r.form in RUN_HERE)


def test_mode_without_padding_is_plain() -> None:
    e = cg.explain((3, 6), (2, 3, 3), padding_mode="circular")
    assert any("no effect without padding" in n for n in e.notes)
    assert any("unbatched input" in n for n in e.notes)
    assert e.recipes_for("input")[0].code == "gx = cg.conv_transpose(g, w)\n"


def test_groups_recipe_loops_over_groups() -> None:
    e = cg.explain((2, 4, 6), (6, 2, 3), groups=2, stride=2)
    gw = e.recipes_for("weight")[0].code
    assert "for i in range(2)" in gw and "x[:, 2 * i:2 * (i + 1)]" in gw
    assert "reshape(2, 3, 2, 3).swapaxes(1, 2)" in e.recipes_for("input")[1].code


def test_high_dimensional_recipes() -> None:
    e = cg.explain((1, 2, 3, 3, 3, 3), (2, 2, 2, 2, 2, 2), stride=2, padding=1)
    statuses = {(r.gradient, r.form): r for r in e.recipes}
    assert all(statuses[(gr, f)].status == "verified" for gr in ("input", "weight", "bias") for f in ("call", "explicit"))
    assert statuses[("input", "pytorch")].note == "PyTorch has no 4-d convolution"
    assert statuses[("input", "tensorflow")].note == "TensorFlow has no 4-d convolution"


# ----------------------------------------------------------------------------- a failing recipe is never shown


def test_failed_recipe_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted wrong recipe (the output_padding dropped) fails verification and its code is withheld."""
    wrong = "gx = cg.conv_transpose(g, w, stride=2, padding=1)  # output_padding forgotten\n"
    monkeypatch.setattr(_recipes, "adjoint_call", lambda geom, b, out: wrong)
    e = cg.explain((1, 1, 6), (1, 1, 3), stride=2, padding=1)
    bad = e.recipes_for("input")[0]
    assert bad.status == "failed" and "shape (1, 1, 5) instead of (1, 1, 6)" in bad.note
    assert not e.verified
    for text in (str(e), e.to_markdown(), e._repr_html_()):
        assert "output_padding forgotten" not in text
        assert "FAILED verification" in text
    assert e.to_dict()["recipes"][0]["code"] is None


def test_wrong_values_fail_verification(monkeypatch: pytest.MonkeyPatch) -> None:
    flipped_twice = "gx = cg.conv_transpose(g, w[:, :, ::-1], padding=1)\n"
    monkeypatch.setattr(_recipes, "adjoint_call", lambda geom, b, out: flipped_twice)
    bad = cg.explain((1, 1, 6), (1, 1, 3), padding=1).recipes_for("input")[0]
    assert bad.status == "failed" and bad.max_error is not None and bad.max_error > 1e-3
    assert bad.status_line.startswith("FAILED verification, max error")


def test_recipe_that_raises_is_failed() -> None:
    r = _explain.verify_recipe("input", "call", "t", "gx = undefined_name\n", {}, np.zeros(3))
    assert r.status == "failed" and r.note.startswith("NameError")


def test_without_torch_the_pytorch_code_is_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_explain, "_torch_namespace", lambda arrays: None)
    e = cg.explain((1, 1, 5), (1, 1, 3))
    r = next(r for r in e.recipes if r.form == "pytorch")
    assert r.status == "not run" and r.status_line == "not run (PyTorch is not installed here)"


# ----------------------------------------------------------------------------- renderings


def test_renderings() -> None:
    e = cg.explain((2, 3, 5, 5), (4, 3, 3, 3), stride=2, padding=1)
    text = str(e)
    assert text.startswith("conv (2-d): x (2, 3, 5, 5) * w (4, 3, 3, 3) -> y (2, 4, 3, 3)")
    assert "verified, max error" in text and "not run (TensorFlow is not installed here)" in text
    assert "gx = cg.conv_transpose(g, w, stride=2, padding=1)" in text
    md = e._repr_markdown_()
    assert md.startswith("### conv (2-d)") and "| windows | `(2, 3, 3, 3, 3, 3)` |" in md and "```python" in md
    page = e.to_html(picture=False)
    assert page.startswith("<div class='convgrad-explain'") and "<table" in page and page.endswith("</div>")
    assert "-&gt; y" in page  # escaped
    data = json.loads(json.dumps(e.to_dict()))
    assert data["config"]["stride"] == [2, 2] and data["config"]["padding"] == [[1, 1], [1, 1]]
    assert [r["form"] for r in data["recipes"][:5]] == ["call", "explicit", "pytorch", "tensorflow", "jax"]
    assert json.loads(e.to_json()) == data


def test_status_lines() -> None:
    assert Recipe("input", "call", "t", "", "verified", 1e-16).status_line == "verified, max error 1.0e-16"
    assert (Recipe("input", "call", "t", "", "verified", 1e-16, on="a batch of one").status_line
            == "verified on a batch of one, max error 1.0e-16")
    assert Recipe("input", "jax", "t", "", "not run").status_line == "not run"
    assert Recipe("input", "call", "t", "", "failed").status_line == "FAILED verification"


# ----------------------------------------------------------------------------- pictures


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [
        (((1, 1, 5, 5), (1, 1, 3, 3)), {"padding": 1}),
        (((2, 3, 7, 7), (4, 3, 3, 3)), {"stride": 2, "padding": (1, 2), "dilation": (1, 2), "padding_mode": "reflect"}),
        (((1, 1, 5), (1, 1, 3)), {"padding": 1}),
        (((1, 1, 4, 5, 6), (1, 1, 2, 3, 3)), {"stride": 2}),
        (((1, 2, 3, 3), (2, 1, 3, 3)), {"stride": 2, "padding": 1, "output_padding": 1, "transposed": True}),
        (((1, 2, 40, 40), (2, 2, 3, 3)), {}),
    ],
)
def test_plot_writes_a_png(tmp_path: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    path = tmp_path / "e.png"
    assert isinstance(cg.explain(*args, **kwargs).plot(str(path)), Figure)
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000


# ----------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "pattern"),
    [
        (((1, 2, 5), (1, 1, 3)), {}, ValueError,
         r"weight_shape\[1\] \(1\) must equal in_channels / groups \(input_shape\[1\] = 2"),
        (((1, 1, 5), (1, 1, 3)), {"transposed": True, "padding_mode": "reflect"}, ValueError,
         r"padding_mode must be 'zeros' for a transposed convolution"),
        (((1, 1, 5), (1, 1, 3)), {"output_padding": 1}, ValueError, r"output_padding applies to transposed"),
        (((1, 1, 5), (1, 1, 3)), {"stride": 0}, ValueError, r"stride must be >= 1; got 0"),
        (((1, 1, 5), (1, 1)), {}, ValueError, r"weight_shape must have at least 3 dimensions"),
        (((1, 1, 5), "113"), {}, TypeError, r"weight_shape must be a tuple of ints"),
        (((1, 2, 5), (2, 1, 3)), {"transposed": True, "groups": 3}, ValueError, r"groups=3 does not divide"),
    ],
)
def test_explain_errors(args: tuple[Any, ...], kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        cg.explain(*args, **kwargs)


_PLOT_OVERHEAD = 48 * 2**20
"""What matplotlib itself may allocate while drawing a figure (about 15 MiB here), on top of the budget."""


def _plot_peak(e: cg.Explanation, path: pathlib.Path) -> int:
    tracemalloc.start()
    try:
        e.plot(str(path))
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_plot_of_a_large_configuration_stays_within_the_budget(tmp_path: pathlib.Path) -> None:
    """Drawing (1, 16, 64, 64) * (16, 16, 5, 5) once peaked at 3 GB: its whole convolution matrix was built."""
    pytest.importorskip("matplotlib")
    cg.explain((1, 1, 5, 5), (1, 1, 3, 3)).plot(str(tmp_path / "warm.png"))  # matplotlib's one-time setup
    e = cg.explain((1, 16, 64, 64), (16, 16, 5, 5))
    assert _plot_peak(e, tmp_path / "e.png") < cg.get_workspace_budget() + _PLOT_OVERHEAD
    tiny = 64 * 1024
    with cg.workspace_budget(tiny):
        assert _plot_peak(e, tmp_path / "tiny.png") < tiny + _PLOT_OVERHEAD
        # a configuration that is drawn as it is with the default budget is drawn smaller under a tiny one
        assert _plot_peak(cg.explain((1, 2, 40, 40), (2, 2, 3, 3)), tmp_path / "t2.png") < tiny + _PLOT_OVERHEAD
    assert (tmp_path / "tiny.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_title_names_the_smaller_configuration(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("matplotlib")
    from matplotlib.figure import Figure

    titles: list[str] = []
    original = Figure.suptitle

    def record(self: Any, text: str, **kwargs: Any) -> Any:
        titles.append(text)
        return original(self, text, **kwargs)

    monkeypatch.setattr(Figure, "suptitle", record)
    cg.explain((1, 16, 64, 64), (16, 16, 5, 5), stride=2, padding=1).plot(str(tmp_path / "big.png"))
    cg.explain((1, 1, 5, 5), (1, 1, 3, 3)).plot(str(tmp_path / "small.png"))
    big, small = titles
    assert big.startswith("conv (2-d): x (1, 16, 64, 64) * w (16, 16, 5, 5)")
    flat = " ".join(big.split("\n")[1:])
    assert flat.startswith("drawn for x (1, 2, 8, 8) * w (2, 2, 5, 5) -> y (1, 2, 3, 3), a smaller configuration "
                           "with the same kernel, stride, dilation, padding")
    assert "\n" not in small and "drawn for" not in small


def test_plot_path_is_checked_before_drawing(tmp_path: pathlib.Path) -> None:
    pytest.importorskip("matplotlib")
    e = cg.explain((1, 1, 5), (1, 1, 3))
    with pytest.raises(ValueError, match=r"Explanation.plot: cannot write .*matplotlib does not write '.xyz' files "
                                         r"\(it writes .*\.png"):
        e.plot(str(tmp_path / "e.xyz"))
    with pytest.raises(FileNotFoundError, match=r"the directory .*missing' does not exist"):
        e.plot(str(tmp_path / "missing" / "e.png"))
    with pytest.raises(TypeError, match=r"the file name must be a str or a path; got 3"):
        e.plot(3)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match=r"dpi must be >= 1; got 0"):
        e.plot(str(tmp_path / "e.png"), dpi=0)
    assert list(tmp_path.iterdir()) == []
    e.plot(str(tmp_path / "e.svg"))
    assert (tmp_path / "e.svg").read_text().find("<svg") >= 0
    e.plot(str(tmp_path / "plain"))  # no extension: a PNG
    assert (tmp_path / "plain").read_bytes()[:4] == b"\x89PNG"


def _relative_imports(module: str) -> set[str]:
    """The convgrad modules ``module`` imports, anywhere in the file (functions and TYPE_CHECKING included)."""
    source = pathlib.Path(cg.__file__).parent / f"{module}.py"
    found = set()
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            found |= {node.module} if node.module else {alias.name for alias in node.names}
    return found


def test_explain_and_plot_do_not_import_each_other() -> None:
    """_explain uses _plot; nothing _plot imports leads back to _explain."""
    assert "_plot" in _relative_imports("_explain")
    seen, todo = set(), ["_plot"]
    while todo:
        module = todo.pop()
        if module in seen or not (pathlib.Path(cg.__file__).parent / f"{module}.py").exists():
            continue
        seen.add(module)
        todo += sorted(_relative_imports(module))
    assert "_explain" not in seen, seen


# ----------------------------------------------------------------------------- seeds and the empty batch


@pytest.mark.parametrize(
    ("seed", "exc", "pattern"),
    [(-1, ValueError, r"seed must be >= 0; got -1"), (2**32, ValueError, r"seed must be <= 4294967295; got 4294967296"),
     (1.5, TypeError, r"seed must be an integer; got 1.5"), ("0", TypeError, r"seed must be an integer; got '0'")],
)
def test_explain_seed_is_checked(seed: Any, exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        cg.explain((1, 1, 5), (1, 1, 3), seed=seed)
    assert cg.explain((1, 1, 5), (1, 1, 3), seed=2**32 - 1).verified


@pytest.mark.parametrize("transposed", [False, True])
def test_empty_batch_is_verified_on_a_batch_of_one(transposed: bool) -> None:
    kwargs: dict[str, Any] = {"stride": 2, "output_padding": 1} if transposed else {"padding": 1}
    e = cg.explain((0, 1, 5), (1, 1, 3), transposed=transposed, **kwargs)
    assert e.verified
    assert all(r.status == "verified" for r in e.recipes if r.form in RUN_HERE)
    assert e.recipes[0].status_line.startswith("verified on a batch of one, max error")
    assert e.verified_on is not None and e.verified_on[0] == (1, 1, 5)
    assert e.notes[-1].endswith("the batch is empty, so a batch of one stands in for it")
    assert e.config["input_shape"][0] == 0


def test_plot_without_matplotlib_names_the_extra() -> None:
    code = (
        "import sys\n"
        "sys.modules['matplotlib'] = None\n"
        "import convgrad as cg\n"
        "try:\n"
        "    cg.explain((1, 1, 5), (1, 1, 3)).plot('never.png')\n"
        "except ImportError as exc:\n"
        "    print(type(exc).__name__, exc)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "ImportError Explanation.plot needs matplotlib: pip install 'convgrad[plot]'\n"


# ----------------------------------------------------------------------------- the user's own arrays


def _totals(e: cg.Explanation) -> list[tuple[float, float]]:
    """Each worked sum's total and convgrad's value, read back from the text."""
    assert e.worked is not None
    pairs = []
    for _, lines in e.worked.sections:
        match = re.fullmatch(r"  = (\S+)  \(convgrad: (\S+)\)", lines[-1])
        assert match, lines[-1]
        pairs.append((float(match.group(1)), float(match.group(2))))
    return pairs


@pytest.mark.parametrize(
    ("x_shape", "w_shape", "kwargs"),
    [
        ((1, 1, 5), (1, 1, 3), {"padding": 1}),
        ((2, 4, 7, 6), (6, 2, 3, 2), {"stride": 2, "padding": ((1, 2), (0, 1)), "dilation": (1, 2), "groups": 2}),
        ((1, 2, 6, 6), (3, 2, 3, 3), {"padding": 2, "padding_mode": "reflect", "dilation": 2}),
        ((1, 2, 5, 5), (2, 2, 3, 3), {"padding": 1, "padding_mode": "circular", "stride": 2}),
        ((1, 2, 3, 4), (2, 3, 3, 3), {"stride": 2, "padding": 1, "output_padding": (1, 0), "transposed": True}),
        ((2, 4, 3), (4, 1, 2), {"stride": 3, "groups": 2, "transposed": True, "dilation": 2}),
        ((1, 1, 3, 4, 4), (1, 1, 2, 3, 3), {"stride": (1, 2, 2), "padding": 1}),
    ],
)
def test_worked_sums_add_up_to_convgrad(x_shape: tuple[int, ...], w_shape: tuple[int, ...],
                                        kwargs: dict[str, Any]) -> None:
    rng = np.random.default_rng(4)
    x, w = rng.integers(-3, 4, x_shape).astype(float), rng.integers(-3, 4, w_shape).astype(float)
    c_out = w_shape[1] * kwargs.get("groups", 1) if kwargs.get("transposed") else w_shape[0]
    b = rng.integers(-3, 4, c_out).astype(float)
    forward = cg.conv_transpose if kwargs.get("transposed") else cg.conv
    call = {k: v for k, v in kwargs.items() if k != "transposed"}
    g = rng.integers(-2, 3, forward(x, w, **call).shape).astype(float)
    e = cg.explain(x, w, b, grad_output=g, **kwargs)
    assert e.worked is not None and e.worked.loop.status == "verified", e.worked and e.worked.loop.note
    assert e.worked.loop.on == "your arrays"
    totals = _totals(e)
    assert len(totals) == 4 and all(a == b_ for a, b_ in totals)
    y_idx = e.worked.indices["output"]
    assert totals[0][1] == forward(x, w, b, **call)[y_idx]


def test_worked_default_and_chosen_elements() -> None:
    x = np.arange(10.0, 15.0).reshape(1, 1, 5)
    w = np.array([[[1.0, 2.0, -1.0]]])
    e = cg.explain(x, w, padding=1)
    assert e.worked is not None and e.worked.indices == {"output": (0, 0, 2), "input": (0, 0, 2), "weight": (0, 0, 1)}
    head, _terms, numbers, total = e.worked.sections[0][1]
    assert head == "y[0, 0, 2] = Σ over c < 1, k < 3 of xp[0, c, 2 + k0]·w[0, c, k0]   (xp: x with zeros padding (1, 1))"
    assert numbers == "  = 11·1 + 12·2 + 13·(-1)" and total == "  = 22  (convgrad: 22)"
    edge = cg.explain(x, w, padding=1, at=(0,), input_at=(0, 0, 4))
    assert edge.worked is not None and edge.worked.indices["output"] == (0, 0, 0)
    assert edge.worked.sections[0][1][1] == "  = x[0, 0, 0]·w[0, 0, 1] + x[0, 0, 1]·w[0, 0, 2]  (2 terms, 1 more read the zero padding)"
    assert "(g = ∂L/∂y; ones here: L = y.sum())" in edge.worked.sections[1][0]


def test_worked_sums_of_a_large_layer_are_truncated() -> None:
    rng = np.random.default_rng(5)
    x, w = rng.standard_normal((2, 16, 12, 12)), rng.standard_normal((16, 16, 3, 3))
    e = cg.explain(x, w, padding=1)
    assert e.worked is not None
    terms = e.worked.sections[0][1][1]
    assert " + … + " in terms and terms.endswith("(144 terms)")
    assert e.worked.loop.status == "verified" and e.worked.loop.on.startswith("x (1, 2, 3, 3) * w (2, 2, 3, 3)")
    assert all(abs(a - b) <= 1e-9 * max(1.0, abs(b)) for a, b in _totals(e))


@pytest.mark.parametrize(
    ("args", "kwargs", "exc", "pattern"),
    [
        (((1, 1, 5), np.ones((1, 1, 3))), {}, TypeError, r"input and weight must both be shapes"),
        (((1, 1, 5), (1, 1, 3)), {"at": (0, 0, 1)}, TypeError, r"at need arrays"),
        ((np.ones((1, 1, 5)), np.ones((1, 1, 3))), {"at": (0, 0, 3)}, ValueError,
         r"at\[2\] = 3 is outside y's axis 2 of size 3"),
        ((np.ones((1, 1, 5)), np.ones((1, 1, 3))), {"input_at": (1, 2)}, ValueError,
         r"input_at must index all 3 axes of x \(1, 1, 5\) or its 1 spatial axes"),
        ((np.ones((1, 1, 5)), np.ones((1, 1, 3))), {"grad_output": np.ones((1, 1, 4))}, ValueError,
         r"grad_output.shape \(1, 1, 4\) must equal the shape of y, \(1, 1, 3\)"),
        ((np.ones((1, 2, 5)), np.ones((1, 1, 3))), {}, ValueError, r"w.shape\[1\] \(1\) must equal in_channels"),
        ((np.ones((1, 1, 5)), np.ones((1, 1, 3)), np.ones(2)), {}, ValueError,
         r"b must have shape \(out_channels,\) = \(1,\); got shape \(2,\)"),
    ],
)
def test_array_errors(args: tuple[Any, ...], kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        cg.explain(*args, **kwargs)


def test_full_verifies_every_sample_and_respects_the_budget() -> None:
    e = cg.explain((3, 8, 16, 16), (8, 8, 3, 3), padding=1, full=True)
    assert e.verified_on is None and all(r.on == "" for r in e.recipes)
    with cg.workspace_budget(2**20), pytest.raises(ValueError, match=r"verifying the recipes on x \(3, 8, 16, 16\)"):
        cg.explain((3, 8, 16, 16), (8, 8, 3, 3), padding=1, full=True)
