"""Synthetic scene generation: config checks, layout, textures, ray casting, trajectories."""

from __future__ import annotations

import dataclasses
import itertools

import numpy as np
import pytest

from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import pose_error
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.synthetic import (
    MAX_FRAMES_PER_PASS,
    MAX_IMAGE_SIDE,
    PRESETS,
    CameraPathError,
    SyntheticConfigError,
    SyntheticScene,
    SyntheticSceneConfig,
    preset,
)
from seqace_ros.datasets.synthetic.render import camera_rays, candidate_rays, cast_rays
from seqace_ros.datasets.synthetic.scene import from_box_frame, generate_scene
from seqace_ros.datasets.synthetic.textures import REPETITIVE_CELLS, TextureAtlas
from seqace_ros.datasets.synthetic.trajectory import generate_trajectory


def _layout_and_path(config: SyntheticSceneConfig, seed: int) -> tuple[object, np.ndarray]:
    """Scene and poses without rendering (small textures keep it fast)."""
    config = dataclasses.replace(config, seed=seed, texture_size=32)
    scene = generate_scene(config, np.random.default_rng(seed))
    return scene, generate_trajectory(config, scene, np.random.default_rng(seed + 100))


@pytest.mark.parametrize("name", ["small", "default", "repetitive"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_trajectory_keeps_clearance_and_is_smooth(name: str, seed: int) -> None:
    config = PRESETS[name]
    scene, T_world_cam_N44 = _layout_and_path(config, seed)
    assert T_world_cam_N44.shape == (config.n_frames, 4, 4)
    centres_N3 = T_world_cam_N44[:, :3, 3]
    assert scene.clearance(centres_N3).min() >= config.min_clearance_m

    mapping = T_world_cam_N44[: config.n_mapping_frames]
    steps_m, turns_deg = zip(
        *(pose_error(a, b) for a, b in itertools.pairwise(mapping)), strict=True
    )
    assert max(steps_m) < 1.5 * config.step_m + 2 * config.jitter_position_m
    assert max(turns_deg) < 2.5  # redkitchen_dev: median 0.42, max 1.42 deg per frame
    assert np.median(steps_m) > 0.5 * config.step_m  # it does move

    # Cameras look roughly level (OpenCV y axis points down in the world, z up).
    down_N3 = T_world_cam_N44[:, :3, 1]
    assert np.all(down_N3[:, 2] < -0.8)


def test_query_pass_revisits_mapped_places_from_other_viewpoints() -> None:
    config = PRESETS["small"]
    _, T_world_cam_N44 = _layout_and_path(config, 0)
    mapping = T_world_cam_N44[: config.n_mapping_frames]
    queries = T_world_cam_N44[config.n_mapping_frames :]
    # All query-mapping pairs at once: centre distances and relative rotation angles.
    translation_QM = np.linalg.norm(queries[:, None, :3, 3] - mapping[None, :, :3, 3], axis=-1)
    trace_QM = np.einsum("qij,mij->qm", queries[:, :3, :3], mapping[:, :3, :3])
    rotation_QM = np.degrees(np.arccos(np.clip((trace_QM - 1.0) / 2.0, -1.0, 1.0)))
    best_Q = np.argmin(translation_QM + 0.02 * rotation_QM, axis=1)  # 1 deg weighs as 2 cm
    rows = np.arange(len(queries))
    nearest = np.stack([translation_QM[rows, best_Q], rotation_QM[rows, best_Q]], axis=1)
    translation_m, rotation_deg = nearest.T
    assert translation_m.max() < 0.35
    assert rotation_deg.max() < 25.0
    # ... but not from the very same viewpoints.
    assert np.median(translation_m) > 0.02
    assert np.median(rotation_deg) > 1.0


def test_infeasible_room_raises_a_clear_error() -> None:
    config = preset("tiny", room_size_m=(2.0, 2.0, 2.7), n_tables=0, min_clearance_m=0.9)
    scene = generate_scene(config, np.random.default_rng(0))
    with pytest.raises(CameraPathError, match=r"keeps 1\.\d+ m from every surface"):
        generate_trajectory(config, scene, np.random.default_rng(0))


def test_varied_scene_layout_and_textures() -> None:
    scene = generate_scene(preset("tiny"), np.random.default_rng(0))
    kinds = [box.kind for box in scene.boxes]
    assert kinds.count("furniture") >= 5
    assert kinds.count("poster") == 4
    assert kinds.count("table") == 5  # a top and four legs
    walls = {scene.materials[m].texture for m in scene.room_materials}
    assert len(walls) == 6  # every wall, the floor and the ceiling look different
    assert scene.atlas.levels[0].shape[1:] == (256, 256, 3)
    # No box pokes out of the room.
    signs_83 = np.array([[x, y, z] for x in (-1, 1) for y in (-1, 1) for z in (-1, 1)], float)
    for box in scene.boxes:
        corners_83 = box.centre + from_box_frame(signs_83 * box.half_size, box.yaw_rad)
        assert np.all(corners_83 >= -1e-12)
        assert np.all(corners_83 <= np.array(scene.room_size_m) + 1e-12)


def test_repetitive_scene_shares_one_periodic_texture_except_posters() -> None:
    scene = generate_scene(preset("tiny", texture_mode="repetitive"), np.random.default_rng(3))
    texture_of = [scene.materials[box.material].texture for box in scene.boxes]
    plain = {t for box, t in zip(scene.boxes, texture_of, strict=True) if box.kind != "poster"}
    plain |= {scene.materials[m].texture for m in scene.room_materials}
    posters = [t for box, t in zip(scene.boxes, texture_of, strict=True) if box.kind == "poster"]
    assert len(plain) == 1
    assert len(set(posters)) == len(posters) == 4
    assert plain.isdisjoint(posters)
    texture = scene.atlas.levels[0][plain.pop()]
    cell = texture.shape[0] // REPETITIVE_CELLS
    np.testing.assert_array_equal(texture[:cell, :cell], texture[cell : 2 * cell, -cell:])


def test_layout_is_independent_of_frame_count() -> None:
    short = SyntheticScene(preset("tiny", n_mapping_frames=3, n_query_frames=0))
    long = SyntheticScene(preset("tiny", n_mapping_frames=5, n_query_frames=2))
    assert short.scene.boxes == long.scene.boxes
    np.testing.assert_array_equal(short.T_world_cam_N44[:3], long.T_world_cam_N44[:3])


def test_culling_gives_the_same_hits_as_testing_every_box(tiny_scene: SyntheticScene) -> None:
    rays_cam_N3 = camera_rays(tiny_scene.intrinsics)
    for T_world_cam in tiny_scene.T_world_cam_N44[::4]:
        dirs_N3 = rays_cam_N3 @ T_world_cam[:3, :3].T
        candidates = candidate_rays(
            tiny_scene.scene, tiny_scene.intrinsics, np.linalg.inv(T_world_cam)
        )
        culled = cast_rays(tiny_scene.scene, T_world_cam[:3, 3], dirs_N3, candidates)
        full = cast_rays(tiny_scene.scene, T_world_cam[:3, 3], dirs_N3)
        assert sum(c is not None and c.size < len(dirs_N3) for c in candidates) > 0
        np.testing.assert_array_equal(culled.t_N, full.t_N)
        np.testing.assert_array_equal(culled.material_N, full.material_N)


def test_cast_rays_rejects_an_origin_outside_the_room(tiny_scene: SyntheticScene) -> None:
    with pytest.raises(ValueError, match="not inside the room"):
        cast_rays(tiny_scene.scene, np.array([-1.0, 1.0, 1.0]), np.ones((4, 3)))


def test_texture_lookup_is_exact_at_texel_centres_and_wraps() -> None:
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (8, 8, 3), dtype=np.uint8) for _ in range(2)]
    atlas = TextureAtlas.from_images(images, ["a", "b"])
    assert len(atlas.levels) == 4  # 8, 4, 2, 1 texels
    rows, cols = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
    s = (cols.ravel() + 0.5) / 8
    t = (rows.ravel() + 0.5) / 8
    texture = np.ones(s.size, dtype=np.intp)
    level = np.zeros(s.size)
    expected = images[1][rows.ravel(), cols.ravel()].astype(np.float32)
    np.testing.assert_array_equal(atlas.sample(texture, s, t, level), expected)
    np.testing.assert_array_equal(atlas.sample(texture, s + 3.0, t - 1.0, level), expected)
    # Half-way between two levels is the mean of the two levels' lookups.
    coarse = atlas.sample(texture, s, t, level + 1.0)
    np.testing.assert_allclose(atlas.sample(texture, s, t, level + 0.5), (expected + coarse) / 2)
    # The coarsest level is the texture's mean colour.
    np.testing.assert_allclose(
        atlas.sample(texture[:1], s[:1], t[:1], np.array([9.0]))[0],
        images[1].reshape(-1, 3).mean(axis=0),
        atol=1.0,
    )


def test_atlas_rejects_textures_that_are_not_square_powers_of_two() -> None:
    with pytest.raises(ValueError, match="power of two"):
        TextureAtlas.from_images([np.zeros((6, 6, 3), np.uint8)], ["odd"])


def test_posed_frame_source_interface(tiny_scene: SyntheticScene) -> None:
    assert len(tiny_scene) == 20
    frame = tiny_scene[19]
    assert isinstance(frame, PosedFrame)
    assert frame.image_rgb.shape == (120, 160, 3)
    assert frame.image_rgb.dtype == np.uint8
    assert frame.name == "frame-000019"
    assert frame.stamp_ns == round(19 * 1e9 / 30.0)
    np.testing.assert_array_equal(frame.T_world_cam, tiny_scene.T_world_cam_N44[19])
    with pytest.raises(IndexError, match=r"outside \[0, 20\)"):
        tiny_scene[20]
    with pytest.raises(TypeError, match="integer"):
        tiny_scene.render_rgbd(1.5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 0}, "width must be an integer >= 16"),
        ({"texture_size": 100}, "power of two"),
        ({"texture_mode": "stripy"}, "texture_mode must be one of"),
        ({"room_size_m": (1.0, 5.0, 2.7)}, "room_size_m"),
        ({"noise_std": -1.0}, "noise_std must be >= 0"),
        ({"step_m": float("nan")}, "step_m must be a finite number"),
        ({"n_query_frames": 1.5}, "n_query_frames must be an integer"),
        # Absurd sizes: refused where the config is built, before anything is rendered.
        ({"n_mapping_frames": 10**11}, r"n_mapping_frames must be an integer >= 1 and <= 20000"),
        ({"n_query_frames": 20_001}, r"n_query_frames must be an integer >= 0 and <= 20000"),
        ({"seed": 2**31}, r"seed must be an integer >= 0 and <= 2147483647, got 2147483648"),
        ({"width": 100_000}, r"width must be an integer >= 16 and <= 2048, got 100000"),
        ({"height": 4096}, r"height must be an integer >= 16 and <= 2048"),
        ({"texture_size": 2**20}, r"texture_size must be an integer >= 16 and <= 2048"),
        ({"n_furniture": 10**6}, r"n_furniture must be an integer >= 0 and <= 32"),
        ({"n_tables": 9}, r"n_tables must be an integer >= 0 and <= 8"),
        ({"n_posters": 33}, r"n_posters must be an integer >= 0 and <= 32"),
        ({"fps": 1e300}, r"fps must be > 0 and <= 1000, got 1e\+300"),
        ({"step_m": 1e9}, r"step_m must be > 0 and <= 1"),
        ({"noise_std": 1e6}, r"noise_std must be >= 0 and <= 255"),
        ({"jitter_rotation_deg": 90.0}, r"jitter_rotation_deg must be >= 0 and <= 45"),
        ({"query_turn_deg": 181.0}, r"query_turn_deg must be >= -180 and <= 180"),
        ({"rotate_tables": 1}, r"rotate_tables must be a bool"),
    ],
)
def test_config_rejects_bad_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(SyntheticConfigError, match=message) as raised:
        preset("tiny", **overrides)
    assert isinstance(raised.value, SeqaceError)  # one line in every front end
    assert isinstance(raised.value, ValueError)  # what callers caught before


def test_config_accepts_its_limits() -> None:
    config = preset("tiny", n_mapping_frames=MAX_FRAMES_PER_PASS,
                    n_query_frames=MAX_FRAMES_PER_PASS, seed=2**31 - 1,
                    width=MAX_IMAGE_SIDE, height=MAX_IMAGE_SIDE, n_tables=8)
    assert config.n_frames == 2 * MAX_FRAMES_PER_PASS


def test_config_json_round_trip_and_unknown_keys() -> None:
    config = preset("repetitive_small", seed=7)
    assert SyntheticSceneConfig.from_json_dict(config.to_json_dict()) == config
    with pytest.raises(ValueError, match=r"unknown SyntheticSceneConfig keys \['widht'\]"):
        SyntheticSceneConfig.from_json_dict({"widht": 320})


def test_presets() -> None:
    with pytest.raises(KeyError, match="unknown synthetic scene preset 'huge'"):
        preset("huge")
    with pytest.raises(TypeError):
        preset("tiny", bogus=1)
    assert preset("tiny", seed=5).seed == 5
    assert PRESETS["default"].intrinsics.as_tuple == (525.0, 525.0, 320.0, 240.0)
    assert PRESETS["repetitive"].texture_mode == "repetitive"


@pytest.mark.parametrize(("name", "inward_m", "min_turn_deg"),
                         [("offset_10cm", 0.10, 15.0), ("offset_50cm", 0.50, 15.0),
                          ("reverse", 0.0, 40.0)])
def test_benchmark_presets_leave_the_mapping_pass(name: str, inward_m: float,
                                                  min_turn_deg: float) -> None:
    scene = SyntheticScene(preset(name, n_mapping_frames=120, n_query_frames=40))
    T = scene.T_world_cam_N44
    n = scene.config.n_mapping_frames
    distance_QM = np.linalg.norm(T[n:, None, :3, 3] - T[None, :n, :3, 3], axis=2)
    nearest_Q = distance_QM.argmin(axis=1)
    turns = [pose_error(T[n + q], T[m])[1] for q, m in enumerate(nearest_Q)]
    assert np.median(distance_QM.min(axis=1)) == pytest.approx(inward_m, abs=0.04)
    assert np.median(turns) > min_turn_deg
    query_frame = scene[n]
    assert query_frame.depth is not None  # the synthetic source is RGB-D, registered
    assert query_frame.depth.calibration.is_registered_to(query_frame.intrinsics)
