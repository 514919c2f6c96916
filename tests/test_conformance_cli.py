"""The ``convgrad test``, ``export`` and ``verify`` commands."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import convgrad as cg
from convgrad._conformance_cli import add_subcommands, config_from_json, main

MODULE = textwrap.dedent(
    """
    import convgrad as cg

    def forward(x, w, b, **kw):
        return cg.conv(x, w, b, **kw)

    def backward(g, x, w, **kw):
        return cg.conv_backward(g, x, w, **kw)

    def batch_recipe(g, x, w, *, stride, padding, dilation, groups):
        gx = cg.conv_input_grad(g, w, input_shape=x.shape, padding=padding)
        return gx, cg.conv(x, g, padding=padding)

    not_a_function = 3
    """
)


@pytest.fixture
def module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``myconv.py`` in the current directory."""
    path = tmp_path / "myconv.py"
    path.write_text(MODULE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    yield path
    sys.modules.pop("myconv", None)


def _error_line(capsys: pytest.CaptureFixture[str]) -> str:
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("convgrad: error: "), err
    return err


def test_a_correct_implementation_passes(module: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["test", "myconv:forward", "--backward", "myconv:backward", "--examples", "40"]) == 0
    out = capsys.readouterr().out
    assert "PASSED" in out and "forward      passed 40 examples" in out


def test_a_file_path_works_and_a_failure_prints_the_report(module: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["test", "--backward", f"{module}:batch_recipe", "--ndim", "2", "--no-groups", "--no-stride",
                 "--no-dilation", "--padding", "int", "--examples", "100"])
    out = capsys.readouterr().out
    assert code == 1
    for words in ("weight_grad FAILED on conv(x: (2, 1, 1, 1), w: (1, 1, 1, 1))", "depends on  batch>1",
                  "batch_not_contracted", "The weight gradient sums over the batch", "correct recipe",
                  "verified by convgrad.explain", "gw = cg.conv(x.swapaxes(0, 1), g.swapaxes(0, 1))"):
        assert words in out, words


@pytest.mark.parametrize(
    "argv, words",
    [
        (["test", "nosuchmodule_xyz:forward"], "cannot import 'nosuchmodule_xyz': ModuleNotFoundError"),
        (["test", "myconv"], "MODULE:FORWARD must be MODULE:FUNCTION"),
        (["test", "myconv:nope"], "'myconv' has no attribute 'nope'"),
        (["test", "myconv:not_a_function"], "is not callable"),
        (["test", "myconv:forward", "--convention", "mxnet"], "unknown convention 'mxnet'; known: jax, onnx, scipy, tensorflow"),
        (["test"], "give MODULE:FORWARD, --backward MODULE:FUNCTION or both"),
        (["test", "myconv:forward", "--examples", "0"], "--examples must be >= 1"),
        (["test", "myconv:forward", "--padding", "full"], "padding must be among"),
        (["test", "missing/dir/conv.py:forward"], "no such file"),
        (["test", "myconv:forward", "--ndim", "x"], "expected ints joined by ','"),
        (["export", "--out", "nowhere/ref.npz", "--examples", "2"], "does not exist"),
        (["verify", "nothing.npz", "--results", "theirs.npz"], "no such file or directory"),
    ],
)
def test_bad_arguments_are_one_line_and_exit_2(module: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                               words: str) -> None:
    assert main(argv) == 2
    assert words in _error_line(capsys)


def test_an_import_time_error_of_the_module_is_a_bad_argument(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom')\n")
    assert main(["test", f"{broken}:forward"]) == 2
    assert "RuntimeError: boom" in _error_line(capsys)


def test_export_writes_the_documented_schema_and_verify_accepts_the_core(tmp_path: Path,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "ref.npz"
    assert main(["export", "--examples", "12", "--seed", "3", "--out", str(ref)]) == 0
    data = np.load(ref, allow_pickle=False)
    index = json.loads(str(data["index"]))
    assert (index["format"], index["version"], index["convention"], index["count"]) == ("convgrad-reference", 1,
                                                                                         "torch", 12)
    results = {}
    for entry in index["cases"]:
        i, config = entry["id"], config_from_json(entry["config"])
        assert json.loads(str(data[f"case{i}/config"])) == entry["config"]
        x, w, g = data[f"case{i}/x"], data[f"case{i}/w"], data[f"case{i}/grad_output"]
        b = data[f"case{i}/b"] if config.bias else None
        assert (f"case{i}/b" in data) == config.bias
        y = cg.conv(x, w, b, **config.kwargs())
        np.testing.assert_array_equal(y, data[f"case{i}/output"])
        grads = cg.conv_backward(g, x, w, **config.kwargs())
        results.update({f"case{i}/output": y, f"case{i}/grad_input": grads.input,
                        f"case{i}/grad_weight": grads.weight, f"case{i}/grad_bias": grads.bias})
    np.savez(tmp_path / "theirs.npz", **results)
    capsys.readouterr()
    assert main(["verify", str(ref), "--results", str(tmp_path / "theirs.npz")]) == 0
    assert "PASSED" in capsys.readouterr().out


def test_verify_names_the_mistake_of_a_results_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ref = tmp_path / "ref"
    assert main(["export", "--examples", "30", "--out", str(ref)]) == 0
    index = json.loads((ref / "cases.json").read_text())
    theirs = tmp_path / "theirs"
    theirs.mkdir()
    for entry in index["cases"]:
        files = entry["files"]
        x, g = np.load(ref / files["x"]), np.load(ref / files["grad_output"])
        w = np.load(ref / files["w"])
        config = config_from_json(entry["config"])
        gw = cg.conv_weight_grad(g[:1], x[:1], weight_shape=w.shape, **config.kwargs())  # one sample only
        np.save(theirs / f"{entry['id']:04d}_grad_weight.npy", gw)
        np.save(theirs / f"{entry['id']:04d}_grad_input.npy", np.load(ref / files["grad_input"]))
    capsys.readouterr()
    assert main(["verify", str(ref), "--results", str(theirs)]) == 1
    out = capsys.readouterr().out
    for words in ("weight_grad  FAILED", "weight_grad_one_sample", "depends on  batch>1", "input_grad   passed",
                  "forward      not checked: no result given", "reproduce   case "):
        assert words in out, words


def test_export_in_the_tensorflow_layout(tmp_path: Path) -> None:
    out = tmp_path / "tf"
    assert main(["export", "--examples", "5", "--convention", "tensorflow", "--ndim", "2", "--out", str(out)]) == 0
    index = json.loads((out / "cases.json").read_text())
    for entry in index["cases"]:
        x = np.load(out / entry["files"]["x"])
        assert list(x.shape) == entry["config"]["shapes"]["x"]
        n, c = entry["config"]["input_shape"][:2]
        assert x.shape[0] == n and x.shape[-1] == c
        assert entry["config"]["keywords"]["strides"][0] == 1


def test_verify_refuses_files_that_are_not_references(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.npz"
    junk.write_text("not a zip")
    assert main(["verify", str(junk), "--results", str(junk)]) == 2
    assert "is not an .npz file" in _error_line(capsys)
    ref = tmp_path / "ref.npz"
    assert main(["export", "--examples", "2", "--out", str(ref)]) == 0
    capsys.readouterr()
    np.savez(tmp_path / "empty.npz", nothing=np.zeros(1))
    assert main(["verify", str(ref), "--results", str(tmp_path / "empty.npz")]) == 2
    assert "holds no result of any case" in _error_line(capsys)
    np.savez(tmp_path / "other.npz", index=np.array("{}"))
    assert main(["verify", str(tmp_path / "other.npz"), "--results", str(ref)]) == 2
    assert "is not a convgrad reference" in _error_line(capsys)


def test_the_subcommands_plug_into_another_parser(module: Path, capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="convgrad")
    add_subcommands(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["test", "myconv:forward", "--examples", "10"])
    assert args.func(args) == 0
    args = parser.parse_args(["test", "myconv:forward", "--examples", "10", "--convention", "tensorflow"])
    assert args.func(args) == 1  # a torch-convention forward does not take TensorFlow's keywords
    out = capsys.readouterr().out
    assert "forward raised TypeError" in out and "strides=[1, 1, 1]" in out


def test_without_hypothesis_test_explains_and_verify_still_works(tmp_path: Path) -> None:
    ref = tmp_path / "ref.npz"
    assert main(["export", "--examples", "3", "--out", str(ref)]) == 0
    data = np.load(ref)
    np.savez(tmp_path / "theirs.npz", **{"case0/output": data["case0/output"]})
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["hypothesis"] = None
        from convgrad._conformance_cli import main
        print(main(["test", "numpy:convolve"]))
        print(main(["verify", {str(ref)!r}, "--results", {str(tmp_path / "theirs.npz")!r}]))
        """
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split()[0] == "2" and done.stdout.split()[-1] == "0", done.stdout + done.stderr
    assert done.stderr == "convgrad: error: convgrad.testing needs Hypothesis: pip install 'convgrad[testing]'\n"


@pytest.mark.parametrize("convention", ["scipy", "tensorflow"])
def test_export_and_verify_in_other_conventions(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                convention: str) -> None:
    ref = tmp_path / "ref.npz"
    assert main(["export", "--examples", "15", "--convention", convention, "--out", str(ref)]) == 0
    data = np.load(ref)
    index = json.loads(str(data["index"]))
    names = ("output", "grad_input", "grad_weight") + (("grad_bias",) if convention == "tensorflow" else ())
    theirs = {f"case{e['id']}/{name}": data[f"case{e['id']}/{name}"] for e in index["cases"] for name in names}
    np.savez(tmp_path / "same.npz", **theirs)
    assert main(["verify", str(ref), "--results", str(tmp_path / "same.npz")]) == 0
    wrong = {k: (2 * v if k.endswith("/output") else v) for k, v in theirs.items()}
    np.savez(tmp_path / "wrong.npz", **wrong)
    capsys.readouterr()
    assert main(["verify", str(ref), "--results", str(tmp_path / "wrong.npz")]) == 1
    out = capsys.readouterr().out
    assert f"{convention} convention" in out and "forward      FAILED" in out and "input_grad   passed" in out
