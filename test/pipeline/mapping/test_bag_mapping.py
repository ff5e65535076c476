"""Bag mapping end to end (issue 7): four real bag forms map as well as the folder dataset.

The bags are written with ``rosbags`` (through ``bag_writer``) from the shared redkitchen dev
frames 0-499:

1. rosbag2 mcap, raw bgr8 images, TF chain ``map -> odom -> base_link -> camera_optical``
   (extrinsic on ``/tf_static``; ``map -> odom`` at 10 Hz and ``odom -> base_link`` at 45 Hz
   sampled from the continuous ground-truth trajectory, images at 7.5 Hz);
2. rosbag2 sqlite3, JPEG ``CompressedImage``, ``nav_msgs/Odometry`` of ``base_link``;
3. ROS 1 bag, raw images, ``PoseStamped`` of the camera;
4. image-only mcap bag with a TUM trajectory file.

Every bag form, at every scale, must:

- hand the trainer the folder's frames: :class:`BagDataset` (what :func:`map_bag` trains on)
  yields the same frames in the same order and with the same stamps, intrinsics and image size,
  the same pixels (raw forms: exactly; JPEG: within :data:`MAX_JPEG_MEAN_ABS`), and the same
  poses (within :data:`POSE_TOLERANCES` of the form). A wrong frame pairing, a colour-channel
  swap, a wrong calibration or a wrong pose chain fails this at once;
- map successfully (all frames used, report written);
- for the lossless forms (:data:`LOSSLESS_FORMS`, the folder's pixels and poses unchanged):
  train the folder's map weight for weight, which proves the whole bag path feeds the trainer
  exactly what the folder path does;
- reach, on the mean of :data:`SEEDS` maps, a recall at 5 cm / 5 deg no more than
  :data:`MAX_RECALL_DROP` below the folder maps' mean with the same seeds.

The recall check is one-sided: a bag map may be better (the TF-chain bag's re-interpolated
poses are slightly smoother than the ground truth), only a loss counts. It is taken on the mean
of three seeds because one map's recall varies with the training seed by about as much as the
bound (the seed study is in the README, "Maps from bags against the folder map").

CI budget (default): every 4th frame of 0-499 (125 frames), the ``test`` preset with 300 steps
at network height 256, one seed, identical for the folder map and the four bag maps; the
``seqace eval`` code (single-frame localizer, ``summarize``) on every 4th query of 500-699.
Maps this cheap have almost no recall at 5 cm / 5 deg, so at CI scale the frame checks and the
weight-for-weight check are the ones that can fail; the recall check is meaningful at the
acceptance scale (``SEQACE_BAG_COMPARISON=full``: all frames 0-499, all queries 500-699, the
``cpu`` preset as users run it, three seeds: fifteen maps, hours on a 2-core machine).

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

from seqace_ros.core.geometry import pose_error
from seqace_ros.core.map_file import load_map
from seqace_ros.datasets.bag import BagConfig, BagDataset, BagError
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
#: frames 0-499, all queries 500-699, the ``cpu`` preset as users run it and three seeds; by
#: default it runs on the CI subset below with one seed.
FULL_SCALE = os.environ.get("SEQACE_BAG_COMPARISON") == "full"
MAP_FRAMES = range(0, 500) if FULL_SCALE else range(0, 500, 4)
QUERY_FRAMES = range(500, 700) if FULL_SCALE else range(500, 700, 4)
CONFIG: MappingConfig = (preset("cpu") if FULL_SCALE
                         else preset("test", iterations=300, image_height=256))
SEEDS = (0, 1, 2) if FULL_SCALE else (0,)
#: Largest drop of the bag maps' mean recall (5 cm / 5 deg) below the folder maps' mean.
MAX_RECALL_DROP = 0.03
BAG_FORMS = ("mcap_raw_tf_chain", "sqlite_jpeg_odometry", "ros1_raw_pose", "mcap_images_tum")
#: Bag forms that carry the folder's images and poses unchanged (raw pixels, poses as float64
#: messages): mapping them must train exactly the folder's map, weight for weight. The others
#: change the training data slightly (JPEG, re-interpolated TF, TUM text precision).
LOSSLESS_FORMS = ("ros1_raw_pose",)
#: Largest mean absolute pixel difference (0-255) of a JPEG frame from the folder's image. JPEG
#: at quality 95 stays well below it; the neighbouring mapping frame or a red/blue swap is an
#: order of magnitude above it.
MAX_JPEG_MEAN_ABS = 2.0


@dataclasses.dataclass(frozen=True)
class PoseTolerance:
    """How far a bag form's poses may be from the folder's (camera centre and rotation)."""

    max_m: float
    median_m: float
    max_deg: float


#: Messages carry the poses as float64, so odometry (composed with the static extrinsic), pose
#: and TUM poses are the folder's to rounding. The TF chain re-interpolates the ground truth at
#: the image stamps from ``odom -> base_link`` samples, which smooths it by a few millimetres at
#: most; the median bound keeps that tight while the max bound allows the fastest motion. The
#: pixel check (exact for raw images) catches a wrong pairing that the pose bounds could not.
POSE_TOLERANCES = {
    "mcap_raw_tf_chain": PoseTolerance(max_m=0.01, median_m=0.001, max_deg=0.5),
    "sqlite_jpeg_odometry": PoseTolerance(max_m=1e-6, median_m=1e-6, max_deg=1e-3),
    "ros1_raw_pose": PoseTolerance(max_m=1e-6, median_m=1e-6, max_deg=1e-3),
    "mcap_images_tum": PoseTolerance(max_m=1e-6, median_m=1e-6, max_deg=1e-3),
}


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


def map_folder(comparison: Comparison, seed: int) -> dict:
    """The folder map with this seed (same frames and settings as the bags), evaluated."""
    dataset = FolderDataset(comparison.data)
    started = time.perf_counter()
    path = map_with_report(
        dataset, MAP_FRAMES, dataclasses.replace(CONFIG, seed=seed),
        comparison.work / f"folder-s{seed}.safetensors",
        {"kind": "folder", "path": str(comparison.data)},
        FrameAccounting(len(dataset), len(MAP_FRAMES),
                        {"outside_frame_range": len(dataset) - len(MAP_FRAMES)}),
        device="cpu", progress=False,
    )
    result = evaluate(path, comparison.data)
    result["map"] = path
    print(f"folder seed {seed}: recall 5cm/5deg {result['recall_5cm_5deg']:.3f}, median "
          f"{result['median_translation_cm']:.1f} cm, {time.perf_counter() - started:.0f} s")
    return result


@pytest.fixture(scope="module")
def folder_results(comparison: Comparison) -> list[dict]:
    """The folder maps, one per seed of :data:`SEEDS`, evaluated with seqace eval."""
    return [map_folder(comparison, seed) for seed in SEEDS]


def map_bag_form(comparison: Comparison, form: str, bag: Path, bag_config: BagConfig,
                 seed: int) -> dict:
    """Map the bag with this seed and evaluate the map with seqace eval."""
    started = time.perf_counter()
    path = map_bag(bag, bag_config, dataclasses.replace(CONFIG, seed=seed),
                   comparison.work / f"{form}-s{seed}.safetensors", device="cpu",
                   progress=False)
    result = evaluate(path, comparison.data)
    result["report"] = json.loads(ReportPaths.for_map(path).json.read_text())
    result["map"] = path
    print(f"{form} seed {seed}: recall 5cm/5deg {result['recall_5cm_5deg']:.3f}, median "
          f"{result['median_translation_cm']:.1f} cm, {time.perf_counter() - started:.0f} s")
    return result


def assert_bag_frames_match_folder(form: str, bag: Path, bag_config: BagConfig,
                                   folder_frames: list[PosedFrame]) -> None:
    """What the trainer gets from the bag equals the folder's frames within the form's bounds."""
    with BagDataset(bag, bag_config) as bag_frames:
        frames = list(bag_frames)
    assert len(frames) == len(folder_frames)
    translations_m, rotations_deg = [], []
    for got, expected in zip(frames, folder_frames, strict=True):
        assert got.stamp_ns == expected.stamp_ns, got.name
        assert got.image_rgb.shape == expected.image_rgb.shape, got.name
        np.testing.assert_array_equal(got.intrinsics.K, expected.intrinsics.K, err_msg=got.name)
        difference = np.abs(got.image_rgb.astype(np.int16) - expected.image_rgb).mean()
        assert difference <= (MAX_JPEG_MEAN_ABS if "jpeg" in form else 0.0), (got.name,
                                                                               difference)
        assert got.T_world_cam is not None
        translation_m, rotation_deg = pose_error(got.T_world_cam, expected.T_world_cam)
        translations_m.append(translation_m)
        rotations_deg.append(rotation_deg)
    tolerance = POSE_TOLERANCES[form]
    assert max(translations_m) <= tolerance.max_m, max(translations_m)
    assert float(np.median(translations_m)) <= tolerance.median_m, np.median(translations_m)
    assert max(rotations_deg) <= tolerance.max_deg, max(rotations_deg)


@pytest.mark.slow
@pytest.mark.parametrize("form", BAG_FORMS)
def test_bag_feeds_the_folder_frames_and_maps_no_worse(
    form: str, comparison: Comparison, folder_results: list[dict]
) -> None:
    bag, bag_config = write_bag(form, comparison.work, comparison.frames,
                                comparison.T_world_cam_N44)
    try:
        assert_bag_frames_match_folder(form, bag, bag_config, comparison.frames)
        results = [map_bag_form(comparison, form, bag, bag_config, seed) for seed in SEEDS]
    finally:
        shutil.rmtree(bag) if bag.is_dir() else bag.unlink()  # raw bags are ~115 MB
    for result in results:
        assert result["n_queries"] == len(QUERY_FRAMES)
        report = result["report"]
        assert report["frames"]["used"] == len(MAP_FRAMES)
        assert report["frames"]["in_source"] == len(MAP_FRAMES)
        assert report["source"]["kind"] == "bag"
        assert len(report["training"]["loss_curve"]["step"]) == CONFIG.iterations // 20 + 1
    if form in LOSSLESS_FORMS:
        for result, folder in zip(results, folder_results, strict=True):
            assert_same_weights(result["map"], folder["map"])
    bag_recall = float(np.mean([r["recall_5cm_5deg"] for r in results]))
    folder_recall = float(np.mean([r["recall_5cm_5deg"] for r in folder_results]))
    assert bag_recall >= folder_recall - MAX_RECALL_DROP - 1e-9, (form, bag_recall,
                                                                   folder_recall)


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
