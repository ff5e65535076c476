"""The mapping node: map the posed images of a rosbag, log progress, exit when the map is written.

Run it as ``ros2 run seqace_ros mapping_node --ros-args -p bag_path:=BAG -p map_path:=MAP``
(or ``--params-file config/mapping.yaml``), or with
``python -m seqace_ros.ros.mapping_node --ros-args ...``, or through
``launch/mapping.launch.py``. The work is :func:`seqace_ros.pipeline.mapping.bag_mapping.map_bag`,
the same as ``seqace bag-map``; the node only turns its parameters into the configs and logs.

Exit status: 0 once the map and its report are written (the last log line says where);
1 with one ``[ERROR]`` line when mapping fails or a parameter is bad (nothing is written);
130 when interrupted (nothing is written).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node

from seqace_ros.core.encoder import EncoderError
from seqace_ros.core.map_file import MapFileError
from seqace_ros.datasets.bag import BagConfig, BagError
from seqace_ros.datasets.bag_poses import POSE_SOURCES, PoseSourceConfig
from seqace_ros.datasets.frame_selection import FrameSelectionConfig
from seqace_ros.pipeline.mapping.bag_mapping import map_bag
from seqace_ros.pipeline.mapping.buffer import MappingDataError
from seqace_ros.pipeline.mapping.config import PRESETS, MappingConfig, preset
from seqace_ros.pipeline.mapping.report import MappingProgress, ReportPaths
from seqace_ros.ros.params import ParameterSpec, ParameterValue

NODE_NAME = "mapping_node"
#: Logged (with the path) once the map and its report are written.
MAP_WRITTEN_LOG = "map written:"

MAPPING_PARAMETER_SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec("bag_path", "", "Bag to map: a rosbag2 folder (sqlite3 or mcap) or a ROS 1 "
                  ".bag file. Required.", read_only=True),
    ParameterSpec("map_path", "", "Map file to write (.safetensors); the report NAME.report.json, "
                  "NAME.trajectory.png and NAME.loss.png goes beside it. Required.",
                  read_only=True),
    ParameterSpec("image_topic", "/camera/image_raw", "sensor_msgs/Image or CompressedImage "
                  "topic in the bag.", read_only=True),
    ParameterSpec("camera_info_topic", "", "CameraInfo topic; empty: next to the image topic "
                  "(/cam/image_raw -> /cam/camera_info).", read_only=True),
    ParameterSpec("calibration_file", "", "Camera-info YAML used instead of the CameraInfo "
                  "topic; empty: use the topic.", read_only=True),
    ParameterSpec("camera_frame", "", "Optical frame of the images; empty: their "
                  "header.frame_id.", read_only=True),
    ParameterSpec("pose_source", "tf", "Where camera poses come from: tf (/tf and /tf_static), "
                  "odometry (nav_msgs/Odometry on pose_topic), pose (PoseStamped or "
                  "PoseWithCovarianceStamped on pose_topic) or tum (tum_file).",
                  choices=POSE_SOURCES, read_only=True),
    ParameterSpec("map_frame", "map", "World frame of the map.", read_only=True),
    ParameterSpec("pose_topic", "", "Odometry or pose topic (pose_source odometry or pose).",
                  read_only=True),
    ParameterSpec("tum_file", "", "TUM trajectory file, 'stamp tx ty tz qx qy qz qw' "
                  "(pose_source tum).", read_only=True),
    ParameterSpec("body_frame", "", "Frame the pose topic or TUM poses describe; empty: the "
                  "camera frame. /tf_static links it to the camera.", read_only=True),
    ParameterSpec("max_gap_s", 0.1, "Largest time between an image and its pose samples, "
                  "seconds.", bounds=(0.0, 3600.0), read_only=True),
    ParameterSpec("min_translation_m", 0.0, "Skip frames that moved less than this since the "
                  "last kept one (metres), unless they turned min_rotation_deg; 0: off.",
                  bounds=(0.0, 1000.0), read_only=True),
    ParameterSpec("min_rotation_deg", 0.0, "See min_translation_m (degrees); 0: off.",
                  bounds=(0.0, 180.0), read_only=True),
    ParameterSpec("max_frames", 0, "Map with at most this many frames, evenly spaced; 0: all.",
                  bounds=(0, 10_000_000), read_only=True),
    ParameterSpec("preset", "cpu", "Mapping preset (training settings).",
                  choices=tuple(sorted(PRESETS)), read_only=True),
    ParameterSpec("iterations", 0, "Training steps; 0: the preset's.", bounds=(0, 10_000_000),
                  read_only=True),
    ParameterSpec("sequence", False, "SeqACE's sequence loss: feature tracks across the bag's "
                  "frames (in temporal order) and the reprojection of tracked patches into "
                  "their keyframe.", read_only=True),
    ParameterSpec("seed", 0, "Random seed of augmentation and training.", bounds=(0, 2**31 - 1),
                  read_only=True),
    ParameterSpec("device", "auto", "Training device: auto (CUDA when available), cpu or cuda.",
                  choices=("auto", "cpu", "cuda"), read_only=True),
    ParameterSpec("progress_period_s", 5.0, "Seconds between progress log lines while encoding "
                  "and training (stage changes are always logged).", bounds=(0.0, 3600.0),
                  read_only=True),
)


class MappingParameterError(ValueError):
    """A node parameter has a value mapping cannot use."""


class _ProgressLog:
    """Logs mapping progress: every stage change, and within a stage at most once a period."""

    def __init__(self, node: Node, period_s: float) -> None:
        self._logger = node.get_logger()
        self._period_s = period_s
        self._stage = ""
        self._last_log = 0.0

    def __call__(self, event: MappingProgress) -> None:
        now = time.monotonic()
        new_stage = event.stage != self._stage
        finished = event.total > 0 and event.done >= event.total
        if not (new_stage or finished or now - self._last_log >= self._period_s):
            return
        self._stage, self._last_log = event.stage, now
        count = f" {event.done}/{event.total}" if event.total > 1 else ""
        detail = f": {event.detail}" if event.detail else ""
        self._logger.info(f"{event.stage}{count}{detail}")


class MappingNode(Node):
    """Declares the mapping parameters; :meth:`run` maps the bag they name."""

    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        self._values: dict[str, ParameterValue] = {
            spec.name: self.declare_parameter(spec.name, spec.default, spec.descriptor()).value
            for spec in MAPPING_PARAMETER_SPECS
        }

    def _text(self, name: str) -> str | None:
        value = str(self._values[name])
        return value or None

    def _path(self, name: str) -> Path | None:
        value = self._text(name)
        return None if value is None else Path(value)

    def bag_config(self) -> BagConfig:
        """The bag reading settings of the parameters.

        Raises:
            MappingParameterError: an inconsistent pose source or selection.
        """
        max_frames = int(self._values["max_frames"])
        try:
            poses = PoseSourceConfig(
                source=str(self._values["pose_source"]),  # type: ignore[arg-type]
                map_frame=str(self._values["map_frame"]),
                topic=self._text("pose_topic"),
                tum_file=self._path("tum_file"),
                body_frame=self._text("body_frame"),
                max_gap_s=float(self._values["max_gap_s"]),
            )
            selection = FrameSelectionConfig(
                min_translation_m=float(self._values["min_translation_m"]),
                min_rotation_deg=float(self._values["min_rotation_deg"]),
                max_frames=max_frames or None,
            )
        except ValueError as error:
            raise MappingParameterError(str(error)) from None
        image_topic = self._text("image_topic")
        if image_topic is None:
            raise MappingParameterError("image_topic must not be empty")
        return BagConfig(
            image_topic=image_topic,
            camera_info_topic=self._text("camera_info_topic"),
            calibration_file=self._path("calibration_file"),
            camera_frame=self._text("camera_frame"),
            poses=poses,
            selection=selection,
            progress=True,  # tqdm on stderr while the bag is read (one pass, no log events)
        )

    def mapping_config(self) -> MappingConfig:
        """The training settings of the parameters.

        Raises:
            MappingParameterError: an unknown preset or a bad override.
        """
        overrides: dict[str, object] = {"seed": int(self._values["seed"]),
                                        "sequence": bool(self._values["sequence"])}
        if int(self._values["iterations"]) > 0:
            overrides["iterations"] = int(self._values["iterations"])
        try:
            return preset(str(self._values["preset"]), **overrides)
        except ValueError as error:
            raise MappingParameterError(str(error)) from None

    def run(self) -> Path:
        """Map the bag; returns the map path.

        Raises:
            MappingParameterError: bad parameters.
            MappingOutputError, BagError, MappingDataError, ...: see ``map_bag``.
        """
        bag_path, map_path = self._path("bag_path"), self._path("map_path")
        if bag_path is None or map_path is None:
            raise MappingParameterError(
                "parameters bag_path and map_path are required, got "
                f"bag_path={self._values['bag_path']!r}, map_path={self._values['map_path']!r}"
            )
        bag_config, mapping_config = self.bag_config(), self.mapping_config()
        self.get_logger().info(
            f"mapping {bag_path} (image topic {bag_config.image_topic}, pose source "
            f"{bag_config.poses.source}) -> {map_path}, preset {self._values['preset']}, "
            f"{mapping_config.iterations} steps"
        )
        progress_log = _ProgressLog(self, float(self._values["progress_period_s"]))
        return map_bag(bag_path, bag_config, mapping_config, map_path,
                       device=str(self._values["device"]), progress=False,
                       on_progress=progress_log)


#: Failures that end the node with one error line (bad input, not a bug).
_MAPPING_ERRORS = (MappingParameterError, BagError, MappingDataError, EncoderError, MapFileError,
                   OSError, InvalidParameterTypeException, InvalidParameterValueException)


def main(args: list[str] | None = None) -> None:
    """Entry point: map, log the outcome, shut down; exits non-zero on failure.

    Raises:
        SystemExit: with status 1 when mapping fails (after one error log line), 130 when
            interrupted.
    """
    rclpy.init(args=args)
    node: MappingNode | None = None
    status = 0
    try:
        node = MappingNode()
        path = node.run()
        report = ReportPaths.for_map(path)
        node.get_logger().info(f"{MAP_WRITTEN_LOG} {path} (report: {report.json}, "
                               f"{report.trajectory_png.name}, {report.loss_png.name})")
    except _MAPPING_ERRORS as error:
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        logger = node.get_logger() if node is not None else rclpy.logging.get_logger(NODE_NAME)
        logger.error(f"mapping failed: {message}")
        status = 1
    except KeyboardInterrupt:
        print(f"{NODE_NAME}: interrupted; no map written", file=sys.stderr)
        status = 130
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if status:
        sys.exit(status)


if __name__ == "__main__":
    main()
