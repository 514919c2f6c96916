"""Animations: GIF and HTML files, what each frame computes (against convgrad), capping, errors."""

from __future__ import annotations

import pathlib
from typing import Any

import numpy as np
import pytest

import convgrad as cg

pytest.importorskip("matplotlib")
PIL = pytest.importorskip("PIL")

from convgrad._animate import Animation, animate  # noqa: E402


def _gif(path: pathlib.Path) -> tuple[int, tuple[int, int], list[Any]]:
    from PIL import Image

    with Image.open(path) as im:
        frames = []
        for i in range(im.n_frames):
            im.seek(i)
            frames.append(np.asarray(im.convert("RGB")))
        return im.n_frames, im.size, frames


def test_gif_has_every_position_and_the_right_size(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "window.gif"
    anim = animate((1, 1, 5, 5), (1, 1, 3, 3), stride=2, padding=1, path=str(path))
    assert isinstance(anim, Animation) and anim.kind == "forward"
    count, size, frames = _gif(path)
    assert count == anim.frames == 9 > 1  # one frame per output position
    assert size == anim.size and frames[0].shape[:2] == (size[1], size[0])
    assert not np.array_equal(frames[0], frames[1])  # the window moves
    assert len(repr(anim).splitlines()) == 1 and "9 frames" in repr(anim)


def test_html_uses_the_javascript_player(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "window.html"
    anim = animate((1, 1, 7), (1, 1, 3), dilation=2, path=str(path))
    page = path.read_text()
    assert anim.frames == 3 and page.count("data:image/png;base64,") == 3
    assert "<script" in page and "Animation" in page
    assert anim._repr_html_().count("data:image/png;base64,") == 3


def test_frames_compute_what_convgrad_computes() -> None:
    rng = np.random.default_rng(0)
    x, w, g = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 2)), rng.standard_normal((2, 4, 3, 4))
    kw: dict[str, Any] = {"stride": 2, "padding": (1, 2), "dilation": (1, 2)}
    ref = cg.conv_backward(g, x, w, **kw)
    one = cg.conv_backward(g[:1, :1], x[:1, :1], w[:1, :1], **kw)  # the drawn channel pair
    assert np.allclose(animate(x, w, **kw).result, cg.conv(x[:1, :1], w[:1, :1], **kw)[0, 0])
    assert np.allclose(animate(x, w, grad_output=g, kind="input_grad", **kw).result, one.input[0, 0])
    assert np.allclose(animate(x, w, grad_output=g, kind="weight_grad", **kw).result, one.weight[0, 0])
    assert np.allclose(animate(x, w, grad_output=g, kind="zero_insertion", **kw).result, one.input[0, 0])
    assert ref.input.shape == x.shape


def test_reflect_padding_adds_the_copies_back() -> None:
    rng = np.random.default_rng(1)
    x, w, g = rng.standard_normal((1, 1, 6)), rng.standard_normal((1, 1, 3)), rng.standard_normal((1, 1, 4))
    anim = animate(x, w, grad_output=g, kind="input_grad", stride=2, padding=2, padding_mode="reflect")
    ref = cg.conv_input_grad(g, w, input_shape=x.shape, stride=2, padding=2, padding_mode="reflect")
    assert np.allclose(anim.result, ref[0, 0]) and anim.frames == 5  # four positions and the padding adjoint
    with pytest.raises(ValueError, match=r"grad_output.shape \(1, 1, 3\) must equal the shape of y, \(1, 1, 4\)"):
        animate(x, w, grad_output=g[..., :3], kind="input_grad", stride=2, padding=2)


def test_transposed_views() -> None:
    rng = np.random.default_rng(2)
    x, w, g = rng.standard_normal((1, 1, 3, 3)), rng.standard_normal((1, 1, 3, 3)), rng.standard_normal((1, 1, 6, 6))
    kw: dict[str, Any] = {"stride": 2, "padding": 1, "output_padding": 1}
    forward = animate(x, w, transposed=True, **kw)
    assert forward.kind == "forward" and forward.frames == 36
    assert np.allclose(forward.result, cg.conv_transpose(x, w, **kw)[0, 0])
    grads = cg.conv_transpose_backward(g, x, w, **kw)
    assert np.allclose(animate(x, w, grad_output=g, kind="input_grad", transposed=True, **kw).result,
                       grads.input[0, 0])
    assert np.allclose(animate(x, w, grad_output=g, kind="weight_grad", transposed=True, **kw).result,
                       grads.weight[0, 0])


def test_three_d_is_drawn_as_depth_slices() -> None:
    anim = animate((1, 1, 4, 5, 5), (1, 1, 2, 3, 3), stride=2, padding=1)
    titles = [ax.get_title() for ax in anim.figure.axes]
    assert anim.frames == 27 and sum("depth" in t for t in titles) == 5  # 2 input slices, 2 kernel, 1 output
    x, w = np.arange(100.0).reshape(1, 1, 4, 5, 5), np.ones((1, 1, 2, 3, 3))
    assert np.allclose(animate(x, w, stride=2, padding=1).result, cg.conv(x, w, stride=2, padding=1)[0, 0])


def test_long_animations_are_subsampled_and_say_so() -> None:
    anim = animate((1, 1, 12, 12), (1, 1, 3, 3), max_frames=10)
    assert anim.frames == 10 and anim.positions == 100
    assert "showing 10 of 100 positions, evenly spaced" in anim.note
    big = cg.explain((8, 64, 56, 56), (64, 64, 3, 3), padding=1).animate(max_frames=5)
    assert big.frames == 5 and "animated for x (1, 2, 3, 3)" in big.note


def test_explanation_animate_uses_the_users_numbers(tmp_path: pathlib.Path) -> None:
    x = 10 * np.arange(25.0).reshape(1, 1, 5, 5)
    w = np.arange(9.0).reshape(1, 1, 3, 3)
    anim = cg.explain(x, w).animate(str(tmp_path / "mine.gif"))
    assert "numbers: your arrays" in anim.note
    assert np.array_equal(anim.result, cg.conv(x, w)[0, 0])
    assert (tmp_path / "mine.gif").stat().st_size > 10_000


@pytest.mark.parametrize(
    ("kwargs", "exc", "pattern"),
    [
        ({"kind": "backward"}, ValueError, r"kind must be one of \('forward', 'input_grad'"),
        ({"path": "a.mp4"}, ValueError, r"an animation is written as .gif or .html; got '.mp4'"),
        ({"path": "/no/such/dir/a.gif"}, FileNotFoundError, r"the directory '/no/such/dir' does not exist"),
        ({"max_frames": 1}, ValueError, r"max_frames must be >= 2"),
        ({"fps": 0}, ValueError, r"fps must be a number from 0.1 to 60"),
        ({"stride": 0}, ValueError, r"stride must be >= 1"),
    ],
)
def test_errors(kwargs: dict[str, Any], exc: type, pattern: str) -> None:
    with pytest.raises(exc, match=pattern):
        animate((1, 1, 5, 5), (1, 1, 3, 3), **kwargs)


def test_four_dimensions_are_refused() -> None:
    with pytest.raises(ValueError, match="animations are drawn for 1-, 2- and 3-d convolutions; this one has 4"):
        animate((1, 1, 3, 3, 3, 3), (1, 1, 2, 2, 2, 2))


def test_exported_as_convgrad_animate() -> None:
    if "animate" not in dir(cg):
        pytest.skip("convgrad.animate is not exported by convgrad/__init__.py yet")
    assert cg.animate is animate
