"""Bag mapping end to end (issue 7): four real bag forms map as well as the folder dataset.

The bags are written with ``rosbags`` (through ``bag_writer``) from the shared redkitchen dev
frames 0-499:

1. rosbag2 mcap, raw bgr8 images, TF chain ``map -> odom -> base_link -> camera_optical``
   (extrinsic on ``/tf_static``; ``map -> odom`` at 10 Hz and ``odom -> base_link`` at 45 Hz
   sampled from the continuous ground-truth trajectory, images at 7.5 Hz);
2. rosbag2 sqlite3, JPEG ``CompressedImage``, ``nav_msgs/Odometry`` of ``base_link``;
3. ROS 1 bag, raw images, ``PoseStamped`` of the camera;
4. image-only mcap bag with a TUM trajectory file.

CI budget (documented subset): every 4th frame of 0-499 (125 frames), the ``test`` preset with
300 steps at network height 256, identical for the folder map and the four bag maps; the
``seqace eval`` code (single-frame localizer, ``summarize``) on every 4th query of 500-699
(50 frames). Each bag must map successfully (all 125 frames used, report written) and its map
must be within 3 recall points (5 cm / 5 deg) of the folder map. The ROS 1 bag carries the
folder's pixels and poses unchanged, so its map must equal the folder map weight for weight:
at any scale, that proves the whole bag path (reading, frame selection and order, calibration,
poses) feeds the trainer exactly what the folder path does.

Known weakness, measured (2026-11, shared 2-core machine): maps this cheap reach 0 % recall at
5 cm / 5 deg on these queries, so at CI scale the recall check only catches a bag map that is
much BETTER or worse than a folder map that itself fails; and their median error is dominated
by the training seed (folder map, seed 0 / 1 / 2: median 45 / 404 / 474 cm), so no median
comparison is made.

Acceptance-scale runs (``SEQACE_BAG_COMPARISON=full``: 500 frames, 200 queries), recall
5cm/5deg, folder map first:

- cpu preset as users run it (6000 bf16 steps), 2 threads, 47 min on the shared 2-core machine
  (2026-11-22): folder 0.855; mcap TF chain 0.905 (+5.0: FAILS the 3-point bound, by being
  better); sqlite JPEG + odometry 0.845 (-1.0); ROS 1 PoseStamped 0.855 (bit-identical images
  and poses: the same map); image-only + TUM 0.865 (+1.0).
- the cpu network with 2000 steps, 1 thread, 67 min (2026-11-21): folder 0.625; TF chain 0.590
  (-3.5: FAILS); sqlite 0.650 (+2.5); ROS 1 0.625 (0); TUM 0.640 (+1.5).

The TF-chain poses differ from the folder's by a median 0.3 mm / 0.03 deg (max 5.1 mm over
the 500 frames) and have 27 % less frame-to-frame jitter than the ground truth; its gap
changed sign between the two runs. One map's recall is a draw: the folder map alone with seeds
0-4 (cpu preset, 2 threads; 0-2 bf16, 3-4 fp32 on a CPU without bf16) gives 0.855 / 0.820 /
0.830 / 0.790 / 0.880 (std 3.4 points), the TF-chain bag with the same seeds 0.905 / 0.890 /
0.855 / 0.810 / 0.870: a mean 3.1 points better (not significant), with the lower median error
in all five pairs. The 3-point bound between two single maps is at the noise level of one map.

Bad input (missing topic, no overlapping pose, unconnected TF, truncated bag, unwritable
output) must raise a clear error and leave no map behind; those tests use small bags.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from data_paths import require_redkitchen
from tf_chain_bag import FRAME_PERIOD_NS, T0_NS, T_BASE_CAM, T_BASE_CAM_ROWS, write_tf_chain_bag

from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.bag import BagConfig, BagError
from seqace_ros.datasets.bag_poses import PoseSourceConfig
from seqace_ros.datasets.bag_writer import BagWriter, FramesBagConfig, write_frames_bag
from seqace_ros.datasets.base import PosedFrame
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.datasets.trajectory import write_tum_trajectory
from seqace_ros.pipeline.evaluation import evaluate_frames, summarize
from seqace_ros.pipeline.localization.modes import create_localizer, mode_config
from seqace_ros.pipeline.mapping import MappingConfig, preset
from seqace_ros.pipeline.mapping.bag_mapping import map_bag
from seqace_ros.pipeline.mapping.report import FrameAccounting, MappingOutputError, ReportPaths
from seqace_ros.pipeline.mapping.run import map_with_report

pytestmark = pytest.mark.real_data

#: ``SEQACE_BAG_COMPARISON=full`` runs the comparison at the acceptance scale: all mapping
#: frames 0-499, all queries 500-699 and the ``cpu`` preset as users run it (five maps of
#: about 8 minutes each on 2 idle cores with bf16); by default it runs on the CI subset below.
FULL_SCALE = os.environ.get("SEQACE_BAG_COMPARISON") == "full"
MAP_FRAMES = range(0, 500) if FULL_SCALE else range(0, 500, 4)
QUERY_FRAMES = range(500, 700) if FULL_SCALE else range(500, 700, 4)
CONFIG: MappingConfig = (preset("cpu") if FULL_SCALE
                         else preset("test", iterations=300, image_height=256))
MAX_RECALL_GAP = 0.03
BAG_FORMS = ("mcap_raw_tf_chain", "sqlite_jpeg_odometry", "ros1_raw_pose", "mcap_images_tum")
#: Bag forms that carry the folder's images and poses unchanged (raw pixels, poses as float64
#: messages): mapping them must train exactly the folder's map, weight for weight. The others
#: change the training data slightly (JPEG, re-interpolated TF, TUM text precision).
LOSSLESS_FORMS = ("ros1_raw_pose",)


def stamp_of(index: int) -> int:
    return T0_NS + index * FRAME_PERIOD_NS


def write_bag(form: str, folder: Path, frames: list[PosedFrame],
              T_world_cam_N44: np.ndarray) -> tuple[Path, BagConfig]:
    """Write one of the four bag forms; returns the bag and the config to read it."""
    image_topic = "/camera/image_raw"
    if form == "mcap_raw_tf_chain":
        path = folder / form
        write_tf_chain_bag(path, frames, T_world_cam_N44)
        poses = PoseSourceConfig(source="tf", map_frame="map")
    elif form == "sqlite_jpeg_odometry":
        path, image_topic = folder / form, "/camera/image_raw/compressed"
        write_frames_bag(path, frames, FramesBagConfig(
            storage="sqlite3", image_topic=image_topic, transport="jpeg", jpeg_quality=95,
            poses="odometry", pose_topic="/odom", body_frame="base_link",
            T_body_cam=T_BASE_CAM_ROWS,
        ))
        poses = PoseSourceConfig(source="odometry", topic="/odom")
    elif form == "ros1_raw_pose":
        path = folder / f"{form}.bag"
        write_frames_bag(path, frames, FramesBagConfig(
            storage="ros1", poses="pose", pose_topic="/camera_pose"))
        poses = PoseSourceConfig(source="pose", topic="/camera_pose")
    else:
        path = folder / form
        write_frames_bag(path, frames, FramesBagConfig(storage="mcap", poses="none"))
        tum = write_tum_trajectory(
            folder / f"{form}.tum.txt",
            np.array([f.stamp_ns for f in frames]),
            np.stack([f.T_world_cam for f in frames]),
        )
        poses = PoseSourceConfig(source="tum", tum_file=tum)
    return path, BagConfig(image_topic=image_topic, poses=poses, progress=False)


def evaluate(map_path: Path, data: Path) -> dict:
    """The ``seqace eval`` report (same code: single-frame localizer, ``summarize``) of the
    map on :data:`QUERY_FRAMES` (``seqace eval`` itself takes only contiguous ranges)."""
    localizer = create_localizer(load_map(map_path), mode_config("single"), torch.device("cpu"))
    evaluations = evaluate_frames(localizer, FolderDataset(data), QUERY_FRAMES, progress=False)
    return summarize(evaluations, "single", map_path.stat().st_size).to_dict()


@dataclasses.dataclass(frozen=True)
class Comparison:
    """The shared inputs of the comparison: data, mapping frames, work folder."""

    data: Path
    work: Path
    frames: list[PosedFrame]
    T_world_cam_N44: np.ndarray  # ground truth of all frames 0-499 (the TF trajectory)


@pytest.fixture(scope="module")
def comparison(tmp_path_factory: pytest.TempPathFactory) -> Comparison:
    data = require_redkitchen()
    dataset = FolderDataset(data)
    return Comparison(
        data=data,
        work=tmp_path_factory.mktemp("bag_mapping"),
        frames=[dataclasses.replace(dataset[i], stamp_ns=stamp_of(i)) for i in MAP_FRAMES],
        T_world_cam_N44=np.stack([dataset.pose(i) for i in range(500)]),
    )


@pytest.fixture(scope="module")
def folder_result(comparison: Comparison) -> dict:
    """The folder map (same frames and settings as the bags), evaluated with seqace eval."""
    dataset = FolderDataset(comparison.data)
    started = time.perf_counter()
    path = map_with_report(
        dataset, MAP_FRAMES, CONFIG, comparison.work / "folder.safetensors",
        {"kind": "folder", "path": str(comparison.data)},
        FrameAccounting(len(dataset), len(MAP_FRAMES),
                        {"outside_frame_range": len(dataset) - len(MAP_FRAMES)}),
        device="cpu", progress=False,
    )
    result = evaluate(path, comparison.data)
    result["map"] = path
    print(f"folder: recall 5cm/5deg {result['recall_5cm_5deg']:.3f}, median "
          f"{result['median_translation_cm']:.1f} cm, {time.perf_counter() - started:.0f} s")
    return result


def bag_result(comparison: Comparison, form: str) -> dict:
    """Write the bag, map it, evaluate the map with seqace eval; the bag is deleted after."""
    started = time.perf_counter()
    bag, bag_config = write_bag(form, comparison.work, comparison.frames,
                                comparison.T_world_cam_N44)
    try:
        path = map_bag(bag, bag_config, CONFIG, comparison.work / f"{form}.safetensors",
                       device="cpu", progress=False)
    finally:
        shutil.rmtree(bag) if bag.is_dir() else bag.unlink()  # raw bags are ~115 MB
    result = evaluate(path, comparison.data)
    result["report"] = json.loads(ReportPaths.for_map(path).json.read_text())
    result["map"] = path
    print(f"{form}: recall 5cm/5deg {result['recall_5cm_5deg']:.3f}, median "
          f"{result['median_translation_cm']:.1f} cm, {time.perf_counter() - started:.0f} s")
    return result


@pytest.mark.slow
@pytest.mark.parametrize("form", BAG_FORMS)
def test_bag_map_recall_matches_folder_map(
    form: str, comparison: Comparison, folder_result: dict
) -> None:
    bag = bag_result(comparison, form)
    assert bag["n_queries"] == folder_result["n_queries"] == len(QUERY_FRAMES)
    gap = abs(bag["recall_5cm_5deg"] - folder_result["recall_5cm_5deg"])
    assert gap <= MAX_RECALL_GAP + 1e-9, (form, bag, folder_result)
    report = bag["report"]
    assert report["frames"]["used"] == len(MAP_FRAMES)
    assert report["frames"]["in_source"] == len(MAP_FRAMES)
    assert report["source"]["kind"] == "bag"
    assert len(report["training"]["loss_curve"]["step"]) == CONFIG.iterations // 20 + 1
    if form in LOSSLESS_FORMS:
        assert_same_weights(bag["map"], folder_result["map"])


def assert_same_weights(map_a: Path, map_b: Path) -> None:
    """The two maps' head weights are bit-identical."""
    weights_a, weights_b = load_map(map_a).state_dict, load_map(map_b).state_dict
    assert weights_a.keys() == weights_b.keys()
    for name, tensor in weights_a.items():
        assert torch.equal(tensor, weights_b[name]), f"{name} differs"


# --- bad input: each raises one clear error and leaves no map ---------------------------------


@pytest.fixture(scope="module")
def small_frames() -> list[PosedFrame]:
    """Ten dev frames (every 5th), 160x120, stamped at 6 Hz."""
    dataset = FolderDataset(require_redkitchen())
    frames = []
    for k, index in enumerate(range(0, 50, 5)):
        frame = dataset[index]
        image = cv2.resize(frame.image_rgb, (160, 120), interpolation=cv2.INTER_AREA)
        frames.append(dataclasses.replace(
            frame, image_rgb=image, intrinsics=frame.intrinsics.resized(160, 120),
            stamp_ns=T0_NS + k * 166_666_667,
        ))
    return frames


def map_must_fail(bag: Path, config: BagConfig, out: Path, error: type[Exception],
                  match: str) -> str:
    before = set(out.parent.iterdir()) if out.parent.is_dir() else set()
    with pytest.raises(error, match=match) as raised:
        map_bag(bag, config, preset("test", iterations=20), out, device="cpu", progress=False)
    after = set(out.parent.iterdir()) if out.parent.is_dir() else set()
    assert after == before, f"left behind: {sorted(after - before)}"
    return str(raised.value)


def test_missing_topic_lists_the_topics(tmp_path: Path, small_frames: list[PosedFrame]) -> None:
    bag = write_frames_bag(tmp_path / "bag", small_frames, FramesBagConfig())
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    message = map_must_fail(bag, BagConfig("/cam/image", progress=False),
                            out_dir / "m.safetensors", BagError, "/cam/image is not in bag")
    assert "/camera/image_raw (sensor_msgs/msg/Image)" in message
    assert "/camera/camera_info" in message
    assert "\n" not in message


def test_no_pose_overlapping_the_images(tmp_path: Path, small_frames: list[PosedFrame]) -> None:
    bag = write_frames_bag(tmp_path / "bag", small_frames, FramesBagConfig(poses="none"))
    late = np.array([f.stamp_ns + 3_600 * 10**9 for f in small_frames])
    tum = write_tum_trajectory(tmp_path / "t.txt", late,
                               np.stack([f.T_world_cam for f in small_frames]))
    config = BagConfig("/camera/image_raw", progress=False,
                       poses=PoseSourceConfig(source="tum", tum_file=tum))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    map_must_fail(bag, config, out_dir / "m.safetensors", BagError, "no pose within 0.1 s")


def test_tf_chain_that_never_connects(tmp_path: Path, small_frames: list[PosedFrame]) -> None:
    bag = tmp_path / "bag"
    with BagWriter(bag, "mcap") as writer:
        first = small_frames[0].stamp_ns
        writer.write_transforms(first, [("base_link", "camera_optical", T_BASE_CAM)], static=True)
        for frame in small_frames:
            writer.write_image("/camera/image_raw", frame.stamp_ns, frame.image_rgb,
                               "camera_optical")
            writer.write_camera_info("/camera/camera_info", frame.stamp_ns, frame.intrinsics,
                                     "camera_optical")
            writer.write_transforms(frame.stamp_ns, [("map", "odom", np.eye(4))])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    message = map_must_fail(bag, BagConfig("/camera/image_raw", progress=False),
                            out_dir / "m.safetensors", BagError, "never connects 'map'")
    assert "{map, odom}" in message
    assert "{base_link, camera_optical}" in message


@pytest.mark.parametrize("storage", ["mcap", "ros1"])
def test_truncated_bag(tmp_path: Path, small_frames: list[PosedFrame], storage: str) -> None:
    path = tmp_path / ("bag.bag" if storage == "ros1" else "bag")
    write_frames_bag(path, small_frames, FramesBagConfig(storage=storage))  # type: ignore[arg-type]
    data_file = path if storage == "ros1" else next(path.glob("*.mcap"))
    data_file.write_bytes(data_file.read_bytes()[: data_file.stat().st_size // 2])
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    map_must_fail(path, BagConfig("/camera/image_raw", progress=False),
                  out_dir / "m.safetensors", BagError, "truncated or corrupt|cannot read")


def test_unwritable_output_fails_before_reading(
    tmp_path: Path, small_frames: list[PosedFrame]
) -> None:
    bag = write_frames_bag(tmp_path / "bag", small_frames, FramesBagConfig())
    config = BagConfig("/camera/image_raw", progress=False)
    map_must_fail(bag, config, tmp_path / "missing" / "m.safetensors", MappingOutputError,
                  "does not exist")
    (tmp_path / "a_file").write_text("")
    map_must_fail(bag, config, tmp_path / "a_file" / "m.safetensors", MappingOutputError,
                  "is not a folder")
    map_must_fail(bag, config, tmp_path, MappingOutputError, "is a folder")
    # A bag that does not exist is not read either when the output is bad: output first.
    map_must_fail(tmp_path / "no_bag", config, tmp_path / "missing" / "m.safetensors",
                  MappingOutputError, "does not exist")
