"""The convgrad command's errors: one line ``convgrad: error: ...`` on stderr, exit status 2, never a traceback."""

from __future__ import annotations

import pathlib
import subprocess
import sys
import tracemalloc
from typing import Any

import pytest

from convgrad import cli

SMALL = ["--input", "1x1x5", "--weight", "1x1x3"]


def _one_error(capsys: pytest.CaptureFixture[str], argv: list[str]) -> str:
    """Run ``convgrad argv`` in-process; it must fail with exit status 2 and one line, printing nothing else."""
    code = cli.main(argv)
    out, err = capsys.readouterr()
    assert code == 2, (out, err)
    assert out == ""
    assert err.count("\n") == 1 and err.startswith("convgrad: error: ") and "Traceback" not in err
    return err


@pytest.mark.parametrize(
    ("argv", "pattern"),
    [
        (["check", *SMALL, "--seed", "-1"], "seed must be >= 0; got -1"),
        (["check", *SMALL, "--seed", "4294967296"], "seed must be <= 4294967295; got 4294967296"),
        (["check", *SMALL, "--stride", "99999999999999999999999"],
         "stride must be <= 2147483647; got 99999999999999999999999"),
        (["explain", *SMALL, "--stride", "99999999999999999999999"], "stride must be <= 2147483647"),
        (["matrix", *SMALL, "--dilation", "99999999999999999999999"], "dilation must be <= 2147483647"),
        (["check", "--input", "1x1x30000x30000", "--weight", "1x1x3x3", "--full"],
         "checking x (1, 1, 30000, 30000) * w (1, 1, 3, 3) -> y (1, 1, 29998, 29998), needing about"),
        (["check", "--input", "1x1x30000x30000", "--weight", "1x1x3x3", "--transposed", "--full"],
         "checking x (1, 1, 30000, 30000) * w (1, 1, 3, 3) -> y (1, 1, 30002, 30002), needing about"),
        (["matrix", "--input", "1x1x30000x30000", "--weight", "1x1x3x3"], "MiB to build, more than the workspace"),
        (["explain", "--input", "1x1x5", "--weight", "1x1x3", "--groups", "2"], "groups=2 does not divide"),
    ],
)
def test_bad_values_are_one_line(capsys: pytest.CaptureFixture[str], argv: list[str], pattern: str) -> None:
    assert pattern in _one_error(capsys, argv)


def test_a_too_large_check_is_refused_before_allocating(capsys: pytest.CaptureFixture[str]) -> None:
    tracemalloc.start()
    try:
        err = _one_error(capsys, ["check", "--input", "1x1x30000x30000", "--weight", "1x1x3x3", "--full"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert "more than the workspace budget of 256.0 MiB (raise it with convgrad.workspace_budget)" in err
    assert peak < 16 * 2**20


def test_explaining_a_huge_configuration_is_quick_and_small(capsys: pytest.CaptureFixture[str]) -> None:
    """explain never allocates the configuration itself: it verifies on a smaller one of its geometry class."""
    cli.main(["explain", *SMALL])  # the one-time imports
    capsys.readouterr()
    tracemalloc.start()
    try:
        code = cli.main(["explain", "--input", "1x1x30000x30000", "--weight", "1x1x3x3"])
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    out, err = capsys.readouterr()
    assert code == 0 and err == ""
    assert "the recipes were verified on x (1, 1, 5, 5) * w (1, 1, 3, 3) -> y (1, 1, 3, 3)" in out
    assert peak < 64 * 2**20


@pytest.mark.parametrize("command", ["explain", "matrix"])
def test_plot_files_are_checked_before_any_work(capsys: pytest.CaptureFixture[str], tmp_path: pathlib.Path,
                                                command: str) -> None:
    pytest.importorskip("matplotlib")
    err = _one_error(capsys, [command, *SMALL, "--plot", str(tmp_path / "missing" / "e.png")])
    assert f"--plot: cannot write '{tmp_path / 'missing' / 'e.png'}': the directory" in err and "does not exist" in err
    err = _one_error(capsys, [command, *SMALL, "--plot", str(tmp_path / "e.xyz")])
    assert "matplotlib does not write '.xyz' files (it writes " in err and ".png" in err
    (tmp_path / "file").write_text("")
    assert "does not exist" in _one_error(capsys, [command, *SMALL, "--plot", str(tmp_path / "file" / "e.png")])


@pytest.mark.parametrize("error", [ValueError("bad\nvalue"), TypeError("bad type"), MemoryError(),
                                   OSError(28, "No space left on device"), PermissionError(13, "Permission denied")])
def test_every_usage_error_is_one_line(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                                       error: BaseException) -> None:
    def fail(*args: Any, **kwargs: Any) -> Any:
        raise error

    monkeypatch.setattr(cli, "explain", fail)
    err = _one_error(capsys, ["explain", *SMALL])
    assert err == f"convgrad: error: {cli._one_line(error)}\n"
    assert cli._one_line(ValueError("bad\nvalue")) == "bad value" and cli._one_line(MemoryError()) == "MemoryError"


def test_other_exceptions_are_not_turned_into_usage_errors(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "gradcheck", lambda *a, **k: (_ for _ in ()).throw(AssertionError("not a usage error")))
    with pytest.raises(AssertionError, match="not a usage error"):
        cli.main(["check", *SMALL])


# ----------------------------------------------------------------------------- missing packages, in a fresh process


def _without(package: str, argv: list[str]) -> subprocess.CompletedProcess[str]:
    code = (
        "import sys\n"
        f"sys.modules[{package!r}] = None\n"
        "from convgrad.cli import main\n"
        f"raise SystemExit(main({argv!r}))\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=120)


def test_explain_plot_without_matplotlib_prints_nothing_but_one_line(tmp_path: pathlib.Path) -> None:
    done = _without("matplotlib", ["explain", *SMALL, "--plot", str(tmp_path / "e.png")])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "convgrad: error: --plot needs matplotlib: pip install 'convgrad[plot]'\n"
    assert not (tmp_path / "e.png").exists()


def test_matrix_without_scipy_is_one_line() -> None:
    done = _without("scipy", ["matrix", *SMALL])
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr == "convgrad: error: matrix needs SciPy: pip install 'convgrad[sparse]'\n"


def test_the_installed_command() -> None:
    command = pathlib.Path(sys.executable).with_name("convgrad")
    if not command.exists():
        pytest.skip("the convgrad script is not installed next to this Python")
    for argv in (["check", *SMALL, "--seed", "-1"], ["explain", *SMALL, "--stride", "99999999999999999999999"]):
        done = subprocess.run([str(command), *argv], capture_output=True, text=True, check=False, timeout=120)
        assert done.returncode == 2 and done.stdout == ""
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("convgrad: error: ")
        assert "Traceback" not in done.stderr
