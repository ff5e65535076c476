"""The mapping request: built from a name -> value mapping alike for the command line and the
node (ROS's "" and 0 for unset), one error type for bad options; and the typed mapping stats."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from seqace_ros.pipeline.mapping import preset
from seqace_ros.pipeline.mapping.mapper import MappingStats, SequenceStats
from seqace_ros.pipeline.mapping.request import (
    BAG_FIELDS,
    FIELDS_BY_NAME,
    TRAINING_FIELDS,
    BagSource,
    FolderSource,
    MappingRequest,
    MappingRequestError,
    parse_pinhole,
    values_from_parameters,
)


def test_folder_request_takes_defaults_and_overrides() -> None:
    request = MappingRequest.from_values({"dataset": Path("scene"), "map_path": "m.map",
                                          "preset": "test", "iterations": 30, "seed": 4,
                                          "batch_size": 700, "augmentation_passes": 3,
                                          "intrinsics": "500,501,320,240", "focal": None})
    assert request.source == FolderSource(Path("scene"), ":", (500.0, 501.0, 320.0, 240.0))
    assert request.map_path == Path("m.map")
    assert request.config == preset("test", iterations=30, seed=4, batch_size=700,
                                    augmentation_passes=3)
    assert request.device == "auto"
    assert request.summary() == "scene (frames :) -> m.map, 30 steps"


def test_bag_request_builds_the_bag_config() -> None:
    request = MappingRequest.from_values({
        "bag_path": "run.bag", "map_path": "m.map", "pose_source": "odometry",
        "pose_topic": "/odom", "max_gap_s": 0.05, "min_translation_m": 0.1, "max_frames": 20,
        "sequence": True})
    assert isinstance(request.source, BagSource)
    bag = request.source.config
    assert request.source.path == Path("run.bag")
    assert bag.image_topic == "/camera/image_raw"
    assert (bag.poses.source, bag.poses.topic, bag.poses.max_gap_s) == ("odometry", "/odom", 0.05)
    assert (bag.selection.min_translation_m, bag.selection.max_frames) == (0.1, 20)
    assert request.config == preset("cpu", sequence=True)


def test_node_parameters_unset_text_and_zero_mean_default() -> None:
    parameters = {f.name: f.parameter_default for f in (*BAG_FIELDS, *TRAINING_FIELDS)}
    parameters.update(bag_path="run.bag", map_path="m.map")
    values = values_from_parameters(parameters)
    assert values["pose_topic"] is None
    assert values["max_frames"] is None
    assert values["iterations"] is None
    assert values["batch_size"] is None
    assert values["augmentation_passes"] is None
    assert values["seed"] == 0  # has a default: 0 is a value
    assert values["sequence"] is False
    request = MappingRequest.from_values(values)
    assert request.config == preset("cpu")
    assert isinstance(request.source, BagSource)
    assert request.source.config.selection.max_frames is None
    assert request.source.config.camera_info_topic is None
    assert values["keyframes"] is None  # -1: the preset's (its 0 means none)
    assert request.config.keyframes == preset("cpu").keyframes
    none = MappingRequest.from_values(values_from_parameters({**parameters, "keyframes": 0}))
    assert none.config.keyframes.count == 0
    assert none.config.keyframes.keypoints == preset("cpu").keyframes.keypoints
    assert values["head_width"] is None  # 0: unset
    assert values["head_blocks"] is None  # -1: unset (its 0 means no extra blocks)
    bare = MappingRequest.from_values(values_from_parameters({**parameters, "head_blocks": 0}))
    assert bare.config.head == replace(preset("cpu").head, num_blocks=0)


def test_head_width_and_blocks_replace_the_presets_head_only() -> None:
    request = MappingRequest.from_values({"dataset": "d", "map_path": "m", "head_width": 384,
                                          "head_blocks": 2})
    assert request.config.head == replace(preset("cpu").head, width=384, num_blocks=2)
    assert request.config == replace(preset("cpu"), head=request.config.head)
    narrow = MappingRequest.from_values({"dataset": "d", "map_path": "m", "preset": "gpu",
                                         "head_width": 192})
    assert (narrow.config.head.width, narrow.config.head.num_blocks) == (192, 1)


@pytest.mark.parametrize(("values", "match"), [
    ({"bag_path": "b", "map_path": ""}, "bag_path and map_path are required"),
    ({"dataset": "d"}, "dataset and map_path are required"),
    ({"map_path": "m"}, "either bag_path"),
    ({"bag_path": "b", "dataset": "d", "map_path": "m"}, "either bag_path"),
    ({"bag_path": "b", "map_path": "m", "frames": "0:3"}, "unknown bag mapping options"),
    ({"dataset": "d", "map_path": "m", "threads": 2},
     r"unknown folder mapping options \[.threads.\]"),
    ({"bag_path": "b", "map_path": "m", "preset": "fast"}, "unknown mapping preset 'fast'"),
    ({"bag_path": "b", "map_path": "m", "iterations": 0}, "iterations and batch_size must be"),
    ({"dataset": "d", "map_path": "m", "batch_size": 0}, "iterations and batch_size must be"),
    ({"dataset": "d", "map_path": "m", "augmentation_passes": 0}, "augmentation_passes, "),
    ({"dataset": "d", "map_path": "m", "head_width": 0}, "head needs in_channels > 0, width > 0"),
    ({"bag_path": "b", "map_path": "m", "pose_source": "odometry"}, "needs a topic"),
    ({"bag_path": "b", "map_path": "m", "max_frames": 0}, "max_frames must be >= 1"),
    ({"bag_path": "b", "map_path": "m", "min_rotation_deg": -1.0}, "must be >= 0"),
    ({"bag_path": "b", "map_path": "m", "image_topic": ""}, "image_topic must not be empty"),
    ({"dataset": "d", "map_path": "m", "intrinsics": "1,2"}, "4 numbers"),
    ({"dataset": "d", "map_path": "m", "depth_to_colour": "0,0,0"},
     "depth_to_colour is for RGB-D mapping; give depth too"),
    ({"bag_path": "b", "map_path": "m", "depth_to_colour": "0,0,0"}, "give depth_topic too"),
    ({"dataset": "d", "map_path": "m", "depth": True, "depth_to_colour": "1,2"},
     "3 or 7 finite numbers"),
    ({"dataset": "d", "map_path": "m", "depth": True, "depth_to_colour": "0,0,0,0,0,0,2"},
     "unit length"),
])
def test_bad_options_are_one_error_type(values: dict[str, object], match: str) -> None:
    with pytest.raises(MappingRequestError, match=match):
        MappingRequest.from_values(values)  # type: ignore[arg-type]


def test_rgbd_requests_carry_depth_and_the_extrinsic() -> None:
    folder = MappingRequest.from_values({"dataset": "d", "map_path": "m", "depth": True,
                                         "depth_to_colour": "-0.025,0,0"})
    assert folder.config.depth
    assert isinstance(folder.source, FolderSource)
    assert folder.source.depth
    np.testing.assert_allclose(folder.source.T_colour_depth[:3, 3], [-0.025, 0.0, 0.0])
    bag = MappingRequest.from_values({"bag_path": "b", "map_path": "m",
                                      "depth_topic": "/depth", "depth_to_colour":
                                      "0,0.01,0,0,0,0.7071068,0.7071068"})
    assert bag.config.depth
    assert isinstance(bag.source, BagSource)
    assert bag.source.config.depth_topic == "/depth"
    T = np.asarray(bag.source.config.T_colour_depth)
    np.testing.assert_allclose(T[:3, :3], [[0, -1, 0], [1, 0, 0], [0, 0, 1]], atol=1e-6)
    np.testing.assert_allclose(T[:3, 3], [0.0, 0.01, 0.0])
    assert not MappingRequest.from_values({"bag_path": "b", "map_path": "m"}).config.depth


def test_parse_pinhole() -> None:
    assert parse_pinhole(None) is None
    assert parse_pinhole("1,2,3,4") == (1.0, 2.0, 3.0, 4.0)
    with pytest.raises(MappingRequestError, match="fx,fy,cx,cy numbers"):
        parse_pinhole("a,b,c,d")


def test_fields_describe_themselves() -> None:
    for field in FIELDS_BY_NAME.values():
        assert field.help.endswith("."), field.name
        assert type(field.parameter_default) in (field.kind, str) or field.kind is float
    assert FIELDS_BY_NAME["max_gap_s"].cli_flag == "--max-gap"
    assert FIELDS_BY_NAME["pose_topic"].cli_flag == "--pose-topic"
    assert FIELDS_BY_NAME["max_frames"].parameter_default == 0
    assert FIELDS_BY_NAME["tum_file"].parameter_default == ""


def test_mapping_stats_round_trip_through_map_metadata() -> None:
    plain = MappingStats(frames=3, buffer_patches=10, salient_patches=4, encode_seconds=1.5,
                         train_seconds=2.0, iterations=5, patches_seen=50, final_loss=3.25,
                         final_valid_fraction=0.75, device="cpu")
    metadata = plain.to_metadata(preset("test"))
    assert list(metadata)[-1] == "config"
    assert metadata["config"]["iterations"] == preset("test").iterations
    assert "tracked_patches" not in metadata
    assert MappingStats.from_metadata(metadata) == plain
    assert (plain.tracked_patches, plain.tracks_seconds) == (0, 0.0)
    tracked = MappingStats(**{**plain.__dict__, "sequence": SequenceStats(2, 40, 3, 0.5)})
    metadata = tracked.to_metadata(preset("test"))
    assert metadata["tracked_patches"] == 3
    assert MappingStats.from_metadata(metadata) == tracked
    assert (tracked.tracked_patches, tracked.tracks_seconds) == (3, 0.5)
