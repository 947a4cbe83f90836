"""Factor arithmetic, held-out splits and the procedural Shapes3D-style scenes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tutorial_lib.data import (
    FALCOR3D_SPACE,
    ISAAC3D_SPACE,
    SHAPES3D_HOLDOUT,
    SHAPES3D_SPACE,
    ProceduralShapes3D,
    render_scenes,
)


def test_factor_index_round_trip_follows_c_order() -> None:
    space = SHAPES3D_SPACE
    assert space.n_images == 480_000
    assert FALCOR3D_SPACE.n_images == 233_280 and ISAAC3D_SPACE.n_images == 737_280
    index = np.random.default_rng(0).integers(0, space.n_images, 1000)
    assert np.array_equal(space.index_of(space.factors_of(index)), index)
    assert space.index_of(np.array([[0, 0, 0, 0, 0, 1]]))[0] == 1
    assert space.index_of(np.array([[1, 0, 0, 0, 0, 0]]))[0] == 48_000
    assert space.index_of(np.array([[9, 9, 9, 7, 3, 14]]))[0] == space.n_images - 1


def test_factor_values_convert_to_indices_and_back() -> None:
    factors = SHAPES3D_SPACE.factors_of(np.arange(0, 480_000, 997))
    values = SHAPES3D_SPACE.values_of(factors)
    assert values[:, 3].min() >= 0.75 and values[:, 5].max() <= 30.0
    assert np.array_equal(SHAPES3D_SPACE.factors_from_values(values), factors)
    with pytest.raises(ValueError, match="orientation"):
        SHAPES3D_SPACE.factors_from_values(values + np.array([0, 0, 0, 0, 0, 1.0]))


def test_held_out_fraction_matches_the_block() -> None:
    factors = SHAPES3D_SPACE.factors_of(np.arange(SHAPES3D_SPACE.n_images))
    held = SHAPES3D_HOLDOUT.mask(SHAPES3D_SPACE, factors)
    assert held.mean() == pytest.approx(SHAPES3D_HOLDOUT.fraction(SHAPES3D_SPACE))
    assert SHAPES3D_HOLDOUT.fraction(SHAPES3D_SPACE) == pytest.approx(0.1125)


def test_each_shapes3d_factor_changes_the_scene_where_it_should() -> None:
    base = np.array([2, 5, 8, 3, 0, 7])
    scenes = []
    for position in range(6):
        moved = base.copy()
        moved[position] = (moved[position] + 2) % SHAPES3D_SPACE.sizes[position]
        scenes.append(moved)
    images = render_scenes(np.stack([base, *scenes]))
    reference, changed = images[0], images[1:]
    top_left, bottom_left = (slice(0, 6), slice(0, 6)), (slice(58, 64), slice(0, 6))

    def differs(image: torch.Tensor, region: tuple[slice, slice]) -> bool:
        return bool(
            (image[:, region[0], region[1]] - reference[:, region[0], region[1]]).abs().max()
            > 0.05
        )

    assert differs(changed[0], bottom_left) and not differs(changed[0], top_left)  # floor
    assert differs(changed[1], top_left) and not differs(changed[1], bottom_left)  # wall
    for position in (2, 3, 4, 5):  # object hue, scale, shape, orientation move the centre
        centre = (slice(24, 60), slice(16, 48))
        assert differs(changed[position], centre), SHAPES3D_SPACE.names[position]


def test_the_four_shapes_have_different_silhouettes() -> None:
    factors = np.array([[0, 0, 5, 7, shape, 7] for shape in range(4)])
    images = render_scenes(factors)
    for a in range(4):
        for b in range(a + 1, 4):
            assert float((images[a] - images[b]).abs().mean()) > 0.005, (a, b)


def test_procedural_sequence_varies_one_factor_and_matches_rendering() -> None:
    dataset = ProceduralShapes3D("train", n_steps=7, n_sequences=20, seed=1)
    item = dataset[3]
    frames, factors = item["frames"], item["factors"].numpy()
    assert frames.shape == (8, 3, 64, 64) and frames.min() >= 0 and frames.max() <= 1
    varied = np.flatnonzero((factors != factors[0]).any(axis=0))
    assert varied.tolist() == [SHAPES3D_SPACE.position(dataset.varied[item["factor"]])]
    assert np.array_equal(np.diff(factors[:, varied[0]]), np.ones(7))
    assert torch.allclose(frames, render_scenes(factors), atol=1e-6)
    assert torch.equal(item["gates"].argmax(dim=1), torch.full((7,), item["factor"]))


def test_procedural_test_split_holds_out_its_combinations() -> None:
    train = ProceduralShapes3D("train", n_steps=7, n_sequences=40)
    test = ProceduralShapes3D("test", n_steps=7, n_sequences=40)
    for i in range(40):
        _, train_factors = train.sequence_factors(i)
        _, test_factors = test.sequence_factors(i)
        assert not SHAPES3D_HOLDOUT.mask(SHAPES3D_SPACE, train_factors).any()
        assert SHAPES3D_HOLDOUT.mask(SHAPES3D_SPACE, test_factors).any()


def test_shapes_factor_cannot_make_eight_frame_sequences() -> None:
    with pytest.raises(ValueError, match="factor shape has 4 values"):
        ProceduralShapes3D(varied=("shape",), n_steps=7)
