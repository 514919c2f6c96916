"""The smaller configuration of the same geometry class: valid, no larger, same class; explain verifies on it."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given

import convgrad as cg
from convgrad._explain import VERIFY_FULL_WORK, _work, verification_geometry
from convgrad._geometry import Geometry, conv_geometry, transpose_geometry
from convgrad._matrix import matrix_geometry
from convgrad._recipes import Numbers
from convgrad._small import SMALL_OUTPUTS, operation_shapes, small_geometry
from strategies import Config, conv_configs
from trust_cases import TConfig, transposed_configs


def _same_class(a: Geometry, b: Geometry) -> None:
    for name in ("kernel", "stride", "dilation", "pad_lo", "pad_hi", "padding_mode", "groups", "batched", "n"):
        assert getattr(a, name) == getattr(b, name), name
    assert Numbers(a).remainder == Numbers(b).remainder
    ca, cb = a.c_in // a.groups, a.c_out // a.groups
    sa, sb = b.c_in // b.groups, b.c_out // b.groups
    assert (ca == 1) == (sa == 1) and (cb == 1) == (sb == 1)
    assert np.sign(ca - cb) == np.sign(sa - sb)


def _no_larger(a: Geometry, b: Geometry) -> None:
    assert b.c_in <= a.c_in and b.c_out <= a.c_out
    assert all(s <= t for s, t in zip(b.in_size, a.in_size))
    assert all(min(q, SMALL_OUTPUTS) <= r <= q for q, r in zip(a.out_size, b.out_size))


@given(conv_configs(dims=(1, 2, 3), max_channels_per_group=5, max_extra=12, allow_unbatched=False))
def test_small_forward_geometry_is_a_valid_member_of_the_class(cfg: Config) -> None:
    geom = conv_geometry(cfg.x_shape, cfg.w_shape, **cfg.kwargs())
    small = small_geometry(geom)
    _same_class(geom, small)
    _no_larger(geom, small)
    # the smaller shapes, checked from scratch with the same arguments, give back the same geometry
    again = conv_geometry((small.n, small.c_in) + small.in_size, small.weight_shape, stride=geom.stride,
                          padding=tuple(zip(geom.pad_lo, geom.pad_hi)), dilation=geom.dilation, groups=geom.groups,
                          padding_mode=geom.padding_mode)
    assert again == small


@given(transposed_configs(dims=(1, 2, 3), max_size=9))
def test_small_transposed_geometry_is_a_valid_member_of_the_class(cfg: TConfig) -> None:
    kw = cfg.kwargs()
    geom = transpose_geometry(cfg.x_shape, cfg.w_shape, **kw)
    small = small_geometry(geom)
    _same_class(geom, small)
    _no_larger(geom, small)
    x, w, _ = operation_shapes(small, True)
    again = transpose_geometry(x, w, stride=geom.stride, padding=tuple(zip(geom.pad_lo, geom.pad_hi)),
                               output_padding=Numbers(geom).remainder, dilation=geom.dilation, groups=geom.groups)
    assert again == small


def test_padding_modes_keep_a_large_enough_input() -> None:
    # reflect needs the input larger than the padding, circular at least as large: the smaller input grows
    for mode, smallest in (("reflect", 7), ("circular", 6), ("replicate", 1), ("zeros", 1)):
        geom = conv_geometry((1, 1, 40), (1, 1, 3), stride=1, padding=6, padding_mode=mode)
        small = small_geometry(geom)
        assert small.in_size == (smallest,)  # the smallest the mode allows: padding 6 needs many outputs
        assert small.out_size == (smallest + 12 - 2,)


@pytest.mark.parametrize(
    ("args", "kwargs", "x_small"),
    [
        (((1, 64, 128, 128), (64, 64, 3, 3)), {}, (1, 2, 5, 5)),
        (((4, 32, 61, 61), (48, 32, 3, 3)), {"stride": 2, "padding": (1, 2)}, (2, 2, 5, 3)),
        (((2, 64, 200), (64, 64, 5)), {"dilation": 3, "padding": 4, "padding_mode": "reflect"}, (2, 2, 7)),
        (((2, 64, 50, 50), (128, 1, 3, 3)), {"groups": 64, "stride": 3, "padding": 1}, (2, 64, 8, 8)),
        (((2, 96, 40, 40), (96, 24, 4, 4)), {"groups": 4, "stride": 2, "transposed": True, "output_padding": 1},
         (2, 8, 3, 3)),
        (((1, 8, 20, 20, 20), (8, 8, 3, 3, 3)), {"stride": 2, "padding": 1}, (1, 2, 6, 6, 6)),
    ],
)
def test_large_configurations_are_verified_on_a_smaller_one(args: tuple[Any, ...], kwargs: dict[str, Any],
                                                            x_small: tuple[int, ...]) -> None:
    e = cg.explain(*args, **kwargs)
    assert e.verified
    assert e.verified_on is not None and e.verified_on[0] == x_small
    x, w, y = e.verified_on
    assert np.prod(x) + np.prod(w) + np.prod(y) < 20_000
    statuses = {(r.gradient, r.form): r for r in e.recipes}
    for gradient in ("input", "weight", "bias"):
        for form in ("call", "explicit", "pytorch"):
            r = statuses[(gradient, form)]
            assert r.status == "verified", (r.gradient, r.form, r.note)
            assert r.status_line.startswith(f"verified on x {x} * w {w}, max error")
    note = e.notes[-1]
    assert note.startswith(f"the recipes were verified on x {x} * w {w} -> y {y}, a smaller configuration")
    assert "same kernel, stride, dilation, padding, padding mode, groups and" in note
    assert e.to_dict()["verified_on"] == {"input_shape": list(x), "weight_shape": list(w), "output_shape": list(y)}
    # the code shown is the full configuration's (its numbers), not the smaller one's
    assert e.recipes_for("input")[0].code == cg.explain(*args, **kwargs).recipes_for("input")[0].code
    # the verification configuration is small, and of the same geometry class
    geom = matrix_geometry(args[0], args[1], **{"stride": 1, "padding": 0, "dilation": 1, "groups": 1,
                                                "padding_mode": "zeros", "transposed": False, "output_padding": 0,
                                                **kwargs})
    small = verification_geometry(geom)
    assert _work(small) <= VERIFY_FULL_WORK < _work(dataclasses.replace(geom, n=small.n))
    _same_class(dataclasses.replace(geom, n=small.n), small)


def test_small_configurations_are_verified_as_they_are() -> None:
    e = cg.explain((2, 3, 6, 6), (4, 3, 3, 3), stride=2, padding=1)
    assert e.verified_on is None and e.to_dict()["verified_on"] is None
    assert all(" on " not in r.status_line for r in e.recipes)
    assert not any("verified on" in n for n in e.notes)


def test_more_than_two_samples_are_verified_on_two_and_say_so() -> None:
    e = cg.explain((8, 1, 5), (1, 1, 3))
    assert e.verified and e.verified_on == ((2, 1, 5), (1, 1, 3), (2, 1, 3))
    assert e.recipes[0].status_line.startswith("verified on 2 of the 8 samples, max error")
    assert "2 of the 8 samples" in e.notes[-1]
