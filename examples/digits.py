"""Train a small CNN on scikit-learn's 8×8 handwritten digits with NumPy and convgrad only.

The network is conv 1→8 3×3 (padding 1), ReLU, conv 8→16 3×3 (stride 2,
padding 1), ReLU, linear 256→10, trained with Adam on softmax cross-entropy.
Its forward and backward passes are written out below in NumPy; convgrad
supplies the convolutions and their exact gradients. No autograd.

``--compare-torch`` trains the same network from the same initial weights on
the same batches with ``torch.nn``, autograd and ``torch.optim.Adam`` (float64),
epoch by epoch alongside, and prints the largest loss difference of each epoch.
``--plot FILE`` draws the loss curves (both, and their difference, with
``--compare-torch``).

Progress bars (tqdm) are shown only when stderr is a terminal, so a log file
gets the epoch lines and nothing else; ``--no-progress`` turns them off on a
terminal too. Each epoch's line is printed when the epoch ends.

A network this small runs fastest on one thread: with ``OMP_NUM_THREADS=1``
(NumPy's BLAS and PyTorch) the 20 epochs with the comparison take about 5 s on
two cores; with the default threads of both libraries, on a busy machine, 40–60 s.

Usage::

    pip install -e ".[examples]"
    python examples/digits.py                  # 97.8% test accuracy in 20 epochs
    OMP_NUM_THREADS=1 python examples/digits.py --compare-torch --plot digits_losses.png   # and the PyTorch twin
    python examples/digits.py --quick          # 3 epochs, for CI
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

import convgrad as cg

Params = dict[str, np.ndarray]

CONV1 = {"padding": 1}
CONV2 = {"stride": 2, "padding": 1}


# ----------------------------------------------------------------------------- data and initial weights


def load_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``(x_train, y_train, x_test, y_test)``: 8×8 images, shape (N, 1, 8, 8); a stratified 75/25 split.

    Pixels are standardised with the training set's mean and standard deviation.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    images = (digits.images / 16.0).astype(np.float64)[:, np.newaxis]
    x_train, x_test, y_train, y_test = train_test_split(
        images, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )
    mean, std = x_train.mean(), x_train.std()
    return (x_train - mean) / std, y_train, (x_test - mean) / std, y_test


def init_params(rng: np.random.Generator) -> Params:
    """``torch.nn``'s default initialisation: weights and biases uniform in ±1/√fan_in."""
    shapes = {"w1": (8, 1, 3, 3), "b1": (8,), "w2": (16, 8, 3, 3), "b2": (16,), "w3": (10, 256), "b3": (10,)}
    fan_in = {"1": 9, "2": 72, "3": 256}
    return {name: rng.uniform(-1, 1, shape) / np.sqrt(fan_in[name[1]]) for name, shape in shapes.items()}


def batches(n: int, batch_size: int, epochs: int, rng: np.random.Generator) -> list[list[np.ndarray]]:
    """The index batches of every epoch, drawn once so that both trainers see the same ones."""
    count = max(1, n // batch_size)  # near-equal batches: no tiny remainder batch
    return [np.array_split(rng.permutation(n), count) for _ in range(epochs)]


# ----------------------------------------------------------------------------- the network, by hand


def forward(p: Params, x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Logits ``(N, 10)`` and what the backward pass needs."""
    z1 = cg.conv(x, p["w1"], p["b1"], **CONV1)  # (N, 8, 8, 8)
    a1 = np.maximum(z1, 0.0)
    z2 = cg.conv(a1, p["w2"], p["b2"], **CONV2)  # (N, 16, 4, 4)
    a2 = np.maximum(z2, 0.0)
    h = a2.reshape(len(x), -1)  # (N, 256)
    logits = h @ p["w3"].T + p["b3"]
    return logits, {"x": x, "z1": z1, "a1": a1, "z2": z2, "h": h}


def cross_entropy(logits: np.ndarray, labels: np.ndarray) -> tuple[float, np.ndarray]:
    """Mean softmax cross-entropy and its gradient with respect to the logits."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(labels))
    grad = np.exp(log_p)
    grad[rows, labels] -= 1.0
    return float(-log_p[rows, labels].mean()), grad / len(labels)


def backward(p: Params, cache: dict[str, np.ndarray], d_logits: np.ndarray) -> Params:
    """Gradients of the loss with respect to every parameter."""
    grads = {"w3": d_logits.T @ cache["h"], "b3": d_logits.sum(axis=0)}
    d_z2 = (d_logits @ p["w3"]).reshape(cache["z2"].shape) * (cache["z2"] > 0)  # linear, then ReLU
    g2 = cg.conv_backward(d_z2, cache["a1"], p["w2"], **CONV2)
    grads["w2"], grads["b2"] = g2.weight, g2.bias
    d_z1 = g2.input * (cache["z1"] > 0)
    grads["w1"] = cg.conv_weight_grad(d_z1, cache["x"], weight_shape=p["w1"].shape, **CONV1)  # no input grad needed
    grads["b1"] = cg.conv_bias_grad(d_z1)
    return grads


@dataclass
class Adam:
    """Adam (Kingma & Ba, arXiv:1412.6980), in the same operation order as ``torch.optim.Adam``."""

    lr: float
    betas: tuple[float, float] = (0.9, 0.999)
    eps: float = 1e-8
    t: int = 0
    m: Params = field(default_factory=dict)
    v: Params = field(default_factory=dict)

    def step(self, p: Params, grads: Params) -> None:
        self.t += 1
        b1, b2 = self.betas
        for k, g in grads.items():
            self.m[k] = b1 * self.m.get(k, 0.0) + (1 - b1) * g
            self.v[k] = b2 * self.v.get(k, 0.0) + (1 - b2) * g * g
            denom = np.sqrt(self.v[k]) / np.sqrt(1 - b2**self.t) + self.eps
            p[k] = p[k] - (self.lr / (1 - b1**self.t)) * self.m[k] / denom


def predict(p: Params, x: np.ndarray, chunk: int = 512) -> np.ndarray:
    return np.concatenate([forward(p, x[i : i + chunk])[0].argmax(axis=1) for i in range(0, len(x), chunk)])


# ----------------------------------------------------------------------------- training loops


@dataclass
class Run:
    """One training run: the loss of every step, test accuracy and seconds per epoch."""

    name: str
    losses: list[list[float]] = field(default_factory=list)
    accuracy: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)


def progress_wanted(disabled: bool) -> bool:
    """Progress bars only on a terminal: a log file would get every redraw of the bar."""
    return not disabled and sys.stderr.isatty()


def _bar(batches: list[np.ndarray], desc: str, enabled: bool) -> Any:
    if not enabled:
        return batches
    from tqdm import tqdm

    return tqdm(batches, desc=desc, leave=False, unit="batch", file=sys.stderr)


class NumpyTrainer:
    """The NumPy + convgrad network."""

    name = "convgrad"

    def __init__(self, data: tuple[np.ndarray, ...], params: Params, lr: float, gamma: float) -> None:
        self.data, self.gamma = data, gamma
        self.p = {k: v.copy() for k, v in params.items()}
        self.adam = Adam(lr)

    def epoch(self, batches: Iterable[np.ndarray]) -> list[float]:
        x_train, y_train = self.data[0], self.data[1]
        losses = []
        for idx in batches:
            logits, cache = forward(self.p, x_train[idx])
            loss, d_logits = cross_entropy(logits, y_train[idx])
            self.adam.step(self.p, backward(self.p, cache, d_logits))
            losses.append(loss)
        self.adam.lr *= self.gamma  # exponential learning-rate decay, once per epoch
        return losses

    def accuracy(self) -> float:
        return float((predict(self.p, self.data[2]) == self.data[3]).mean())


class TorchTrainer:
    """The same network with torch.nn, autograd and torch.optim.Adam, in float64."""

    name = "torch"

    def __init__(self, data: tuple[np.ndarray, ...], params: Params, lr: float, gamma: float) -> None:
        import torch

        self.torch = torch
        self.data = tuple(torch.from_numpy(a) for a in data)
        self.net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 8, 3, padding=1), torch.nn.ReLU(),
            torch.nn.Conv2d(8, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
            torch.nn.Flatten(), torch.nn.Linear(256, 10),
        ).double()
        names = {"0.weight": "w1", "0.bias": "b1", "2.weight": "w2", "2.bias": "b2", "5.weight": "w3",
                 "5.bias": "b3"}
        self.net.load_state_dict({key: torch.from_numpy(params[name]) for key, name in names.items()})
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=lr)
        self.schedule = torch.optim.lr_scheduler.ExponentialLR(self.optimizer, gamma=gamma)

    def epoch(self, batches: Iterable[np.ndarray]) -> list[float]:
        x_train, y_train = self.data[0], self.data[1]
        losses = []
        for idx in batches:
            self.optimizer.zero_grad()
            loss = self.torch.nn.functional.cross_entropy(self.net(x_train[idx]), y_train[idx])
            loss.backward()
            self.optimizer.step()
            losses.append(loss.item())
        self.schedule.step()
        return losses

    def accuracy(self) -> float:
        with self.torch.no_grad():
            return float((self.net(self.data[2]).argmax(dim=1) == self.data[3]).double().mean())


def train(trainers: Sequence[Any], plan: list[list[np.ndarray]], progress: bool,
          on_epoch: Callable[[int, list[Run]], None] = lambda epoch, runs: None) -> list[Run]:
    """Train every trainer epoch by epoch on the same batches; ``on_epoch`` runs after each epoch."""
    runs = [Run(t.name) for t in trainers]
    for epoch, batches in enumerate(plan, start=1):
        for trainer, run in zip(trainers, runs):
            start = time.perf_counter()
            bar = _bar(batches, f"{run.name} epoch {epoch}/{len(plan)}", progress)
            run.losses.append(trainer.epoch(bar))
            run.epoch_seconds.append(time.perf_counter() - start)
            if progress:
                bar.close()
        on_epoch(epoch, runs)
    for trainer, run in zip(trainers, runs):
        run.accuracy = trainer.accuracy()
    return runs


def train_numpy(data: tuple[np.ndarray, ...], params: Params, plan: list[list[np.ndarray]], lr: float,
                gamma: float, progress: bool) -> Run:
    """The NumPy + convgrad network, trained alone."""
    return train([NumpyTrainer(data, params, lr, gamma)], plan, progress)[0]


def train_torch(data: tuple[np.ndarray, ...], params: Params, plan: list[list[np.ndarray]], lr: float,
                gamma: float, progress: bool) -> Run:
    """The torch.nn network, trained alone."""
    return train([TorchTrainer(data, params, lr, gamma)], plan, progress)[0]


def max_differences(a: Run, b: Run) -> list[float]:
    """The largest |loss difference| over the steps of each epoch."""
    return [float(np.max(np.abs(np.subtract(x, y)))) for x, y in zip(a.losses, b.losses)]


def plot(runs: Sequence[Run], path: str) -> None:
    """The loss curves (per step) and, for two runs, their difference, saved as a PNG."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    two = len(runs) > 1
    fig = Figure(figsize=(8.5, 6 if two else 4.5))
    FigureCanvasAgg(fig)
    axes = fig.subplots(2, 1, sharex=True, height_ratios=(3, 1)) if two else [fig.subplots()]
    top = axes[0]
    curves = [np.concatenate(r.losses) for r in runs]
    steps = np.arange(1, len(curves[0]) + 1)
    for run, curve, style in zip(runs, curves, ("-", "--")):
        top.plot(steps, curve, style, label=f"{run.name} (test accuracy {run.accuracy:.2%})", linewidth=1.2)
    top.set_yscale("log")
    top.set_ylabel("training loss (per batch)")
    top.legend()
    title = ("8×8 digits: the same CNN trained with convgrad (NumPy)\nand with PyTorch autograd, same weights and "
             "batches" if two else "8×8 digits: a CNN trained with NumPy and convgrad")
    fig.suptitle(title, fontsize=11)
    if two:
        bottom = axes[1]
        bottom.semilogy(steps, np.maximum(np.abs(curves[0] - curves[1]), 1e-18), color="k", linewidth=0.8)
        bottom.set_ylabel("|difference|\n(0 drawn at 1e-18)")
        bottom.set_xlabel("step")
    else:
        top.set_xlabel("step")
    fig.tight_layout(rect=(0, 0, 1, 0.95 if not two else 0.955))
    fig.savefig(path, dpi=120)


# ----------------------------------------------------------------------------- command line


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="training epochs")
    parser.add_argument("--batch-size", type=int, default=32, help="images per batch (about)")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam's initial learning rate")
    parser.add_argument("--gamma", type=float, default=0.8, help="learning-rate decay per epoch")
    parser.add_argument("--seed", type=int, default=0, help="random seed of the split, the weights and the batches")
    parser.add_argument("--quick", action="store_true", help="a short run for CI: 3 epochs (96.9%%)")
    parser.add_argument("--compare-torch", action="store_true",
                        help="also train the torch.nn twin, epoch by epoch alongside, and compare the losses")
    parser.add_argument("--plot", metavar="PNG", default=None,
                        help="draw the loss curves to this file (both and their difference with --compare-torch); "
                        "nothing is written without it")
    parser.add_argument("--no-progress", action="store_true",
                        help="no progress bars (they are shown only when stderr is a terminal anyway)")
    args = parser.parse_args(argv)
    if args.quick:
        args.epochs = 3
    return args


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Train (and compare); returns the runs and the per-epoch loss differences."""
    data = load_data(args.seed)
    rng = np.random.default_rng(args.seed)
    params = init_params(rng)
    plan = batches(len(data[0]), args.batch_size, args.epochs, rng)
    print(f"digits: {len(data[0])} training, {len(data[2])} test images; {args.epochs} epochs of "
          f"{len(plan[0])} batches", flush=True)
    trainers: list[Any] = [NumpyTrainer(data, params, args.lr, args.gamma)]
    if args.compare_torch:
        trainers.append(TorchTrainer(data, params, args.lr, args.gamma))

    def report(epoch: int, runs: list[Run]) -> None:
        line = f"epoch {epoch:2d}"
        for r in runs:
            line += f"  {r.name} loss {np.mean(r.losses[-1]):.4f} ({r.epoch_seconds[-1]:.2f} s)"
        if len(runs) > 1:
            line += f"  max |loss difference| {max_differences(runs[0], runs[1])[-1]:.1e}"
        print(line, flush=True)

    runs = train(trainers, plan, progress_wanted(args.no_progress), report)
    result: dict[str, Any] = {"convgrad": runs[0]}
    if args.compare_torch:
        result["torch"] = runs[1]
        result["differences"] = max_differences(runs[0], runs[1])
    for r in runs:
        print(f"{r.name}: test accuracy {r.accuracy:.2%}, {np.mean(r.epoch_seconds):.2f} s per epoch")
    if args.compare_torch:
        print(f"largest |loss difference| over all steps: {max(result['differences']):.1e}")
    if args.plot is not None:
        plot(runs, args.plot)
        print(f"loss curves saved to {args.plot}")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    run(parse_args(argv))
    return 0


if __name__ == "__main__":
    sys.exit(main())
