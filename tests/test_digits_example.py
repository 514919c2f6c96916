"""The digits example: a NumPy-only CNN trained with convgrad, in its short mode, against its PyTorch twin."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "digits.py"

# The short mode (3 epochs) reaches 96.9% on this split (seed 0); the full run (20 epochs) 97.8%.
QUICK_ACCURACY = 0.95
# Both networks compute in float64 from the same weights on the same batches: the losses agree to rounding.
LOSS_AGREEMENT = 1e-10


@pytest.fixture(scope="module")
def digits() -> ModuleType:
    pytest.importorskip("sklearn")
    spec = importlib.util.spec_from_file_location("digits_example", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up here
    spec.loader.exec_module(module)
    return module


def test_quick_run_learns_and_matches_torch(digits: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "losses.png"
    result = digits.run(digits.parse_args(["--quick", "--compare-torch", "--plot", str(plot), "--no-progress"]))
    ours, theirs = result["convgrad"], result["torch"]
    assert ours.accuracy >= QUICK_ACCURACY
    assert len(result["differences"]) == 3
    assert max(result["differences"]) <= LOSS_AGREEMENT
    assert abs(ours.accuracy - theirs.accuracy) <= 1 / 450  # at most one test image apart
    # the loss really fell: the last epoch's mean is well below the first's
    assert np.mean(ours.losses[-1]) < 0.5 * np.mean(ours.losses[0])
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    out = capsys.readouterr().out
    assert "max |loss difference|" in out and "test accuracy" in out


def test_main_returns_zero(digits: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    assert digits.main(["--quick", "--epochs", "1", "--no-progress"]) == 0
    assert "convgrad: test accuracy" in capsys.readouterr().out


def test_hand_written_backward_matches_finite_differences(digits: ModuleType) -> None:
    """The example's own backward pass (ReLU, linear, softmax cross-entropy, convgrad) is exact."""
    rng = np.random.default_rng(1)
    params = digits.init_params(rng)
    x, labels = rng.standard_normal((3, 1, 8, 8)), np.array([1, 7, 3])

    def loss(p: dict[str, np.ndarray]) -> float:
        return float(digits.cross_entropy(digits.forward(p, x)[0], labels)[0])

    logits, cache = digits.forward(params, x)
    grads = digits.backward(params, cache, digits.cross_entropy(logits, labels)[1])
    for name, value in params.items():
        direction = rng.standard_normal(value.shape)
        plus = {**params, name: value + 1e-6 * direction}
        minus = {**params, name: value - 1e-6 * direction}
        numeric = (loss(plus) - loss(minus)) / 2e-6
        assert float(np.vdot(grads[name], direction)) == pytest.approx(numeric, rel=1e-6, abs=1e-9), name


# ----------------------------------------------------------------------------- the command's manners


def test_a_log_gets_epoch_lines_and_no_progress_bars(digits: ModuleType, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """Not a terminal: no tqdm redraws; no file written unless asked; every epoch's line as it ends."""
    monkeypatch.chdir(tmp_path)
    seen: list[int] = []
    original = digits.train

    def spy(trainers: Any, plan: Any, progress: bool, on_epoch: Any) -> Any:
        assert progress is False  # stderr is not a terminal here
        return original(trainers, plan, progress, lambda e, runs: (seen.append(len(runs[0].losses)), on_epoch(e, runs)))

    monkeypatch.setattr(digits, "train", spy)
    assert digits.main(["--epochs", "2"]) == 0
    out, err = capsys.readouterr()
    assert "\r" not in out + err and err == ""
    assert seen == [1, 2]  # the line of epoch e is printed once e epochs are done, not at the end
    assert [line.split()[1] for line in out.splitlines() if line.startswith("epoch")] == ["1", "2"]
    assert list(tmp_path.iterdir()) == []


def test_plot_without_the_comparison(digits: ModuleType, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "alone.png"
    digits.run(digits.parse_args(["--epochs", "1", "--plot", str(path)]))
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert f"loss curves saved to {path}" in capsys.readouterr().out


def test_help_shows_the_defaults(digits: ModuleType, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        digits.parse_args(["--help"])
    out = capsys.readouterr().out
    assert "(default: 20)" in out and "(default: 0.01)" in out and "(default: 0.8)" in out
