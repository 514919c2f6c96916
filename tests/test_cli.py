"""The convgrad command: every subcommand, every error path, the exit statuses."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from typing import Any

import pytest

from convgrad import cli


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ----------------------------------------------------------------------------- no arguments: the 5x5 example


def test_no_arguments_runs_the_5x5_example(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys)
    assert code == 0 and err == ""
    assert "x = 10 * arange(25).reshape(1, 1, 5, 5)" in out
    assert "[[3120. 3480. 3840.]" in out  # y
    assert "[[ 540.  630.  720.]" in out  # gw: window sums of x
    assert "[9.]" in out  # gb: the number of output elements
    assert "[[8. 7. 6.]\n [5. 4. 3.]\n [2. 1. 0.]]" in out  # the footprint of x[2, 2], float64
    assert "7.8125" in out
    assert "gradcheck PASSED" in out
    assert "conv (2-d): x (1, 1, 5, 5) * w (1, 1, 3, 3) -> y (1, 1, 3, 3)" in out
    assert "FAILED" not in out
    assert "seed 0" not in out.lower()


# ----------------------------------------------------------------------------- explain


def test_explain_text(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--input", "1x1x5x5", "--weight", "1x1x3x3", "--padding", "1")
    assert code == 0
    assert "gx = cg.conv_transpose(g, w, padding=1)" in out and "verified, max error" in out


def test_explain_markdown_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--input", "2x4x9", "--weight", "6x2x3", "--groups", "2", "--stride", "2",
                       "--padding", "1:2", "--dilation", "2", "--padding-mode", "circular", "--format", "markdown")
    assert code == 0 and out.startswith("### conv (1-d)") and "```python" in out
    code, out, _ = run(capsys, "explain", "--input", "2x4x3x3", "--weight", "4x1x3x3", "--groups", "4",
                       "--transposed", "--stride", "2,1", "--output-padding", "1,0", "--format", "json")
    data = json.loads(out)
    assert code == 0 and data["transposed"] and data["config"]["output_padding"] == [1, 0]
    assert data["config"]["output_shape"] == [2, 4, 8, 5]


def test_explain_plot(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "e.png"
    code, out, _ = run(capsys, "explain", "--input", "1x1x5x5", "--weight", "1x1x3x3", "--plot", str(path))
    assert code == 0 and f"wrote {path}" in out and path.stat().st_size > 20_000
    path2 = tmp_path / "j.png"
    code, out, err = run(capsys, "explain", "--input", "1x1x5", "--weight", "1x1x3", "--format", "json",
                         "--plot", str(path2))
    assert code == 0 and json.loads(out)["config"]["d"] == 1 and f"wrote {path2}" in err


def test_explain_exit_status_1_when_a_recipe_fails(capsys: pytest.CaptureFixture[str],
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from convgrad import _recipes

    monkeypatch.setattr(_recipes, "bias_call", lambda d: "gb = g.sum()\n")
    code, out, _ = run(capsys, "explain", "--input", "1x1x5", "--weight", "1x1x3")
    assert code == 1 and "FAILED verification" in out and "gb = g.sum()\n" not in out


# ----------------------------------------------------------------------------- check


@pytest.mark.parametrize(
    "argv",
    [
        ["--input", "2x4x7x6", "--weight", "6x2x3x2", "--groups", "2", "--stride", "2", "--padding", "1:2,0"],
        ["--input", "1x2x6", "--weight", "2x2x3", "--padding", "2", "--padding-mode", "reflect", "--dtype", "float32"],
        ["--input", "2x2x3x3", "--weight", "2x3x3x3", "--transposed", "--stride", "2", "--padding", "1",
         "--output-padding", "1"],
        ["--input", "1x1x6x6", "--weight", "1x1x3x3", "--dilation", "2", "--seed", "5"],
    ],
)
def test_check_passes(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, _ = run(capsys, "check", *argv)
    assert code == 0, out
    assert "input gradient vs finite differences" in out and out.rstrip().endswith("PASSED")
    assert "vs PyTorch 2.13.0" in out


def test_check_large_uses_fast_mode_and_float32_rows(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--input", "2x3x24x24", "--weight", "4x3x3x3", "--dtype", "float32")
    assert code == 0
    assert "finite differences (random direction)" in out and "float32 vs float64" in out
    assert "checked in float64 instead" in out


def test_check_fails_on_a_wrong_backward(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import convgrad as cg

    def wrong(g: Any, x: Any, w: Any, **kw: Any) -> Any:
        grads = cg.conv_backward(g, x, w, **kw)
        return grads._replace(weight=2 * grads.weight)

    monkeypatch.setattr(cli, "conv_backward", wrong)
    code, out, _ = run(capsys, "check", "--input", "1x1x5", "--weight", "1x1x3")
    assert code == 1 and out.rstrip().endswith("FAILED")
    assert "weight gradient vs finite differences" in out and "FAIL" in out


def test_check_without_pytorch_and_in_4d(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    code, out, _ = run(capsys, "check", "--input", "1x1x3x3x3x3", "--weight", "1x1x2x2x2x2")
    assert code == 0 and "PyTorch: not compared (PyTorch has no 4-d convolution)" in out
    monkeypatch.setitem(sys.modules, "torch", None)
    code, out, _ = run(capsys, "check", "--input", "1x1x5", "--weight", "1x1x3")
    assert code == 0 and "PyTorch: not compared (not installed)" in out


def test_check_asymmetric_transposed_is_not_sent_to_pytorch(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--input", "1x1x4", "--weight", "1x1x3", "--transposed", "--padding", "1:0")
    assert code == 0 and "asymmetric padding" in out


# ----------------------------------------------------------------------------- matrix


def test_matrix_prints_a_small_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "matrix", "--input", "1x1x5", "--weight", "1x1x3", "--padding", "1")
    assert code == 0
    assert out.splitlines()[0].startswith("M: 5 x 5, 13 stored entries")
    assert "[[2 3 0 0 0]\n [1 2 3 0 0]\n [0 1 2 3 0]\n [0 0 1 2 3]\n [0 0 0 1 2]]" in out


def test_matrix_summarises_and_plots_a_large_one(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    code, out, _ = run(capsys, "matrix", "--input", "1x2x20x20", "--weight", "3x2x3x3", "--stride", "2")
    assert code == 0 and "too large to print" in out and "M: 243 x 800" in out
    pytest.importorskip("matplotlib")
    path = tmp_path / "m.png"
    code, out, _ = run(capsys, "matrix", "--input", "1x2x20x20", "--weight", "3x2x3x3", "--plot", str(path))
    assert code == 0 and f"wrote {path}" in out and path.stat().st_size > 10_000


def test_matrix_refuses_a_huge_one(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "matrix", "--input", "8x64x224x224", "--weight", "64x64x3x3")
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("convgrad: error: the convolution matrix would be")
    assert "MiB to build, more than the workspace budget" in err


def test_matrix_without_scipy(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "scipy.sparse", None)
    code, out, err = run(capsys, "matrix", "--input", "1x1x5", "--weight", "1x1x3")
    assert code == 2 and out == ""
    assert err == "convgrad: error: matrix needs SciPy: pip install 'convgrad[sparse]'\n"


def test_matrix_plot_without_matplotlib(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                        tmp_path: Any) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    code, out, err = run(capsys, "matrix", "--input", "1x1x5", "--weight", "1x1x3", "--plot", str(tmp_path / "m.png"))
    assert code == 2 and out == ""
    assert err == "convgrad: error: --plot needs matplotlib: pip install 'convgrad[plot]'\n"


# ----------------------------------------------------------------------------- errors: one line, status 2


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["explain", "--input", "2x3xx5", "--weight", "4x3x3x3"], "argument --input: a shape is sizes joined by 'x'"),
        (["explain", "--input", "2x3x0", "--weight", "4x3x3"], "every size must be >= 1; got '2x3x0'"),
        (["explain", "--input", "2x3x5"], "the following arguments are required: --weight"),
        (["explain", "--input", "2x3x5", "--weight", "4x3x3", "--stride", "a"], "argument --stride: expected an int"),
        (["explain", "--input", "2x3x5", "--weight", "4x3x3", "--padding", "1:x"], "argument --padding: expected"),
        (["explain", "--input", "2x3x5", "--weight", "4x3x3", "--padding", "full"], "argument --padding: expected"),
        (["explain", "--input", "2x3x5", "--weight", "4x3x3", "--padding", "3:"], "argument --padding: expected"),
        (["explain", "--input", "2x3x5", "--weight", "4x3x3", "--padding-mode", "mirror"], "invalid choice: 'mirror'"),
        (["explain", "--input", "2x3x5", "--weight", "4x3x3", "--stride", "0"], "stride must be >= 1; got 0"),
        (["explain", "--input", "2x3x5", "--weight", "4x2x3"], r"weight.shape[1] (2) must equal in_channels"),
        (["check", "--input", "2x3x2", "--weight", "4x3x3"], "output size would be < 1 in spatial dimension 0"),
        (["check", "--input", "2x3x5", "--weight", "4x3x3", "--output-padding", "1"],
         "output_padding applies to transposed convolutions only"),
        (["matrix", "--input", "2x3x5", "--weight", "3x4x3", "--transposed", "--padding-mode", "reflect"],
         "padding_mode must be 'zeros' for a transposed convolution"),
        (["matrix", "--input", "2x3x5x5", "--weight", "4x3x3x3", "--stride", "1,2,3"],
         "stride must be an int or a tuple of 2 ints"),
        (["check", "--input", "2x3x5", "--weight", "4x3x3", "--dtype", "float16"], "invalid choice: 'float16'"),
        (["bogus"], "invalid choice: 'bogus'"),
        (["explain", "--input", "2x3x5", "--weight", "4x3x3", "--frobnicate"], "unrecognized arguments: --frobnicate"),
    ],
)
def test_errors_are_one_line_with_status_2(capsys: pytest.CaptureFixture[str], argv: list[str], pattern: str) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith("convgrad: error: ")
    assert pattern in err
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["--help"], ["explain", "--help"], ["check", "-h"], ["matrix", "--help"]])
def test_help(capsys: pytest.CaptureFixture[str], argv: list[str]) -> None:
    code, out, _ = run(capsys, *argv)
    assert code == 0 and out.startswith("usage: convgrad")
    assert "--input" in out or "explain" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("convgrad ")


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1), ("1,2", (1, 2)), ("1:2,0", ((1, 2), (0, 0))), ("3:1", ((3, 1),)), ("same", "same"), ("valid", "valid")],
)
def test_parse_padding(text: str, value: Any) -> None:
    assert cli.parse_padding(text) == value


def test_python_dash_m() -> None:
    done = subprocess.run([sys.executable, "-m", "convgrad", "matrix", "--input", "1x1x5", "--weight", "1x1x3",
                           "--padding", "1"], capture_output=True, text=True, check=False, timeout=120)
    assert done.returncode == 0 and "[[2 3 0 0 0]" in done.stdout
    bad = subprocess.run([sys.executable, "-m", "convgrad", "explain", "--input", "1"], capture_output=True,
                         text=True, check=False, timeout=120)
    assert bad.returncode == 2 and bad.stderr.count("\n") == 1 and bad.stderr.startswith("convgrad: error:")


# ----------------------------------------------------------------------------- formats, files, --full, animate


def test_explain_html_page_to_a_file(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    path = tmp_path / "e.html"
    code, out, err = run(capsys, "explain", "--input", "2x3x6x6", "--weight", "4x3x3x3", "--stride", "2",
                         "--format", "html", "-o", str(path))
    assert code == 0 and out == f"wrote {path}\n" and err == ""
    page = path.read_text()
    assert page.startswith("<!DOCTYPE html>") and "<style>" in page and "data:image/png;base64," in page
    code, out, _ = run(capsys, "explain", "--input", "1x1x5", "--weight", "1x1x3", "--format", "html")
    assert code == 0 and out.startswith("<!DOCTYPE html>") and out.rstrip().endswith("</html>")


@pytest.mark.parametrize("fmt", ["text", "markdown", "json"])
def test_explain_output_file(capsys: pytest.CaptureFixture[str], tmp_path: Any, fmt: str) -> None:
    path = tmp_path / f"e.{fmt}"
    code, out, err = run(capsys, "explain", "--input", "1x1x5", "--weight", "1x1x3", "--format", fmt, "-o", str(path))
    assert code == 0 and path.read_text().strip()
    assert f"wrote {path}" in out + err
    if fmt == "json":
        assert json.loads(path.read_text())["config"]["d"] == 1


def test_explain_output_directory_is_checked_first(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    code, out, err = run(capsys, "explain", "--input", "1x1x5", "--weight", "1x1x3", "-o", str(tmp_path / "no" / "e"))
    assert code == 2 and out == "" and "-o: cannot write" in err and "does not exist" in err


def test_explain_full_verifies_the_configuration_itself(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--input", "4x16x32x32", "--weight", "16x16x3x3", "--padding", "1"]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "the recipes were verified on x (2, 2, 3, 3)" in out
    code, out, _ = run(capsys, *argv, "--full")
    assert code == 0 and "verified on" not in out and "verified, max error" in out


def test_explain_full_is_refused_beyond_the_budget(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "explain", "--input", "8x64x224x224", "--weight", "64x64x3x3", "--full")
    assert code == 2 and out == "" and "verifying the recipes on x (8, 64, 224, 224)" in err
    assert "more than the workspace budget" in err


def test_check_of_a_large_configuration_uses_its_geometry_class(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--input", "8x64x56x56", "--weight", "64x64x3x3", "--padding", "1",
                       "--stride", "2")
    assert code == 0 and out.rstrip().endswith("PASSED")
    assert out.splitlines()[0] == ("convgrad check: conv x (8, 64, 56, 56) * w (64, 64, 3, 3) -> y (8, 64, 28, 28), "
                                   "float64, random seed 0")
    assert "checked on x (2, 2, 6, 6) * w (2, 2, 3, 3) -> y (2, 2, 3, 3), a smaller configuration" in out
    assert "--full checks this one" in out
    assert "input gradient vs finite differences " in out  # every entry of the small one


def test_check_full(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "check", "--input", "2x8x24x24", "--weight", "8x8x3x3", "--full")
    assert code == 0 and "checked on" not in out and "(random direction)" in out


def test_animate_command(capsys: pytest.CaptureFixture[str], tmp_path: Any) -> None:
    pytest.importorskip("matplotlib")
    pytest.importorskip("PIL")
    path = tmp_path / "a.gif"
    code, out, err = run(capsys, "animate", "--input", "1x1x5x5", "--weight", "1x1x3x3", "--stride", "2",
                         "--padding", "1", "--kind", "input_grad", "-o", str(path))
    assert code == 0 and err == ""
    assert out.splitlines()[0].startswith("input_grad: 10 frames of ") and out.endswith(f"wrote {path}\n")
    assert path.read_bytes()[:6] == b"GIF89a"
    code, out, err = run(capsys, "animate", "--input", "1x1x5", "--weight", "1x1x3", "-o", str(tmp_path / "a.mp4"))
    assert code == 2 and out == "" and "an animation is written as .gif or .html" in err


def test_help_shows_defaults_and_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "explain", "--help")
    assert code == 0 and "(default: text)" in out and "(default: 1)" in out and "(default: None)" not in out
    code, out, _ = run(capsys, "--help")
    assert "{explain,check,animate,matrix" in out
    try:
        from convgrad._conformance_cli import add_subcommands  # noqa: F401
    except ImportError:
        return
    assert "test,export,verify}" in out


def test_no_user_facing_text_says_seed_for_an_example(capsys: pytest.CaptureFixture[str]) -> None:
    """'seed' only ever means a random seed."""
    texts = []
    for argv in ([], ["--help"], ["explain", "--help"], ["check", "--help"], ["animate", "--help"],
                 ["matrix", "--help"]):
        code = cli.main(list(argv))
        out, _ = capsys.readouterr()
        assert code == 0
        texts.append(out)
    for text in texts:
        for match in re.finditer(r"seed", text, flags=re.IGNORECASE):
            context = text[max(0, match.start() - 30): match.end() + 30]
            assert re.search(r"random seed|--seed|seed of the|seed S", context, flags=re.IGNORECASE), context


def test_budget_flag(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["explain", "--input", "4x16x32x32", "--weight", "16x16x3x3", "--padding", "1", "--full"]
    code, out, err = run(capsys, *argv, "--budget", "1")
    assert code == 2 and out == "" and "more than the workspace budget of 1.0 MiB" in err
    code, out, _ = run(capsys, *argv, "--budget", "64")
    assert code == 0 and "verified, max error" in out
    code, _, err = run(capsys, *argv, "--budget", "-3")
    assert code == 2 and "the budget must be a positive number of MiB" in err
