"""Parameters of the relocalization node: declarations, validation and the typed snapshot.

Every parameter is declared from :data:`PARAMETER_SPECS` with a ``ParameterDescriptor``
(description, integer/float range, read-only flag); choices that ROS descriptors cannot express
are listed in ``additional_constraints`` and checked by :func:`validate_parameter`, which the
node runs in its on-set callback so ``ros2 param set`` gets the reason of a rejection. The
node reads a frozen :class:`RelocalizationParams` snapshot, replaced as a whole after each
accepted change.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor
from rclpy.node import Node

from seqace_ros.core.camera import DEFAULT_MAX_IMAGE_PIXELS
from seqace_ros.pipeline.localization.covariance import CALIBRATED_MAP_ERROR, MapErrorModel
from seqace_ros.pipeline.localization.modes import MODE_NAMES, ModeConfig, mode_config
from seqace_ros.pipeline.localization.policy import (
    TRIGGER_MODES,
    ConfidenceGate,
    PriorGate,
)
from seqace_ros.pipeline.localization.sequence import SequenceConfig
from seqace_ros.pipeline.localization.single import LocalizerConfig

ParameterValue = bool | int | float | str
_LOCALIZER_DEFAULTS = LocalizerConfig()
_SEQUENCE_DEFAULTS = SequenceConfig()


@dataclass(frozen=True)
class ParameterSpec:
    """One declared parameter.

    Attributes:
        name: parameter name (also the :class:`RelocalizationParams` field).
        default: default value; its Python type is the parameter's type.
        description: what it does, with units.
        choices: allowed string values (empty: any).
        bounds: inclusive (min, max) for numbers.
        read_only: only settable at start-up (parameters file or command line).
    """

    name: str
    default: ParameterValue
    description: str
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    read_only: bool = False

    def descriptor(self) -> ParameterDescriptor:
        """The ``ParameterDescriptor`` the node declares."""
        descriptor = ParameterDescriptor(
            name=self.name, description=self.description, read_only=self.read_only
        )
        if self.choices:
            descriptor.additional_constraints = f"one of: {', '.join(self.choices)}"
        if self.bounds is not None and isinstance(self.default, bool):
            raise TypeError(f"{self.name}: a bool parameter cannot have bounds")
        if self.bounds is not None and isinstance(self.default, int):
            descriptor.integer_range = [
                IntegerRange(from_value=int(self.bounds[0]), to_value=int(self.bounds[1]), step=1)
            ]
        elif self.bounds is not None:
            descriptor.floating_point_range = [
                FloatingPointRange(from_value=self.bounds[0], to_value=self.bounds[1], step=0.0)
            ]
        return descriptor


PARAMETER_SPECS: tuple[ParameterSpec, ...] = (
    ParameterSpec("map_path", "", "Map file (.safetensors) to localize against. Changing it at run "
                  "time validates the file, then loads it off the callback thread and swaps it "
                  "in atomically; a bad map is rejected and the current one kept. Empty: no map "
                  "(nothing is published; diagnostics say so)."),
    ParameterSpec("device", "auto", "Inference device: auto (CUDA when available), cpu or cuda.",
                  choices=("auto", "cpu", "cuda"), read_only=True),
    ParameterSpec("mode", "single", "Relocalization mode: single (each frame alone) or sequence "
                  "(also uses map points tracked from the last sequence_length frames; "
                  "~/reset clears them).", choices=MODE_NAMES, read_only=True),
    ParameterSpec("sequence_length", _SEQUENCE_DEFAULTS.buffer_length, "Frames a tracked map "
                  "point is carried in the sequence mode (mode: sequence).",
                  bounds=(1, 64), read_only=True),
    ParameterSpec("num_keypoints", _LOCALIZER_DEFAULTS.top_k, "Salient patches regressed and "
                  "given to RANSAC per image.", bounds=(16, 20000)),
    ParameterSpec("ransac_hypotheses", _LOCALIZER_DEFAULTS.max_hypotheses, "RANSAC hypotheses "
                  "per image.", bounds=(1, 100000)),
    ParameterSpec("ransac_threshold_px", _LOCALIZER_DEFAULTS.threshold_px, "RANSAC inlier "
                  "threshold in pixels of the image scaled to the map's image height (480 for "
                  "the presets); scaled to the camera's image size at run time.",
                  bounds=(0.1, 100.0)),
    ParameterSpec("ransac_seed", 0 if _LOCALIZER_DEFAULTS.seed is None else
                  _LOCALIZER_DEFAULTS.seed, "RANSAC random seed (same seed, same image: same "
                  "pose, as offline). -1: a different random sequence each frame.",
                  bounds=(-1, 2**31 - 1)),
    ParameterSpec("min_inliers", _LOCALIZER_DEFAULTS.min_inliers, "Fewer RANSAC inliers than "
                  "this: no pose is published and diagnostics say why.", bounds=(4, 100000)),
    ParameterSpec("refine", False, "Refine each pose against the map's keyframes (maps made "
                  "with keyframes, the mapping presets' default): higher recall away from the "
                  "mapping views for more time per frame (README, Benchmarks). Rejected for a "
                  "map without keyframes."),
    ParameterSpec("recover", _LOCALIZER_DEFAULTS.refinement.recover, "With refine on: where "
                  "the head finds no pose, or the keyframes do not confirm its pose and a pose "
                  "from the keyframes the image's keypoints vote for has more inliers, use "
                  "that pose (at least 100 agreeing matches; a descriptor search over the "
                  "strongest keypoints of every keyframe on such a frame)."),
    ParameterSpec("keyframe_max_depth_m", _LOCALIZER_DEFAULTS.refinement.max_point_depth_m,
                  "With refine on: keyframe points deeper than this (m) in their keyframe's "
                  "camera are not matched; 0: no limit. Far points carry depth-sensor and "
                  "mapping-pose errors that grow with distance (README, Benchmarks: measured "
                  "limits for Kinect-class depth).", bounds=(0.0, 100.0)),
    ParameterSpec("keyframe_max_disagreement_m",
                  _LOCALIZER_DEFAULTS.refinement.max_point_disagreement_m,
                  "With refine on and a map whose keyframe points are sensor depth: those "
                  "points are matched only up to the depth where neighbouring keyframes' points "
                  "of the same keypoint disagree by a median of this many metres (measured "
                  "once per map at load; with keyframe_max_depth_m too, the nearer limit "
                  "holds); 0: off.", bounds=(0.0, 1.0)),
    ParameterSpec("keyframe_min_near_inliers",
                  _LOCALIZER_DEFAULTS.refinement.min_near_inliers,
                  "With refine on and a keyframe depth limit: where the keyframe points within "
                  "the limit give fewer agreeing matches than this (a view of far surfaces), "
                  "the points beyond it are matched too; 0: never.", bounds=(0, 100000)),
    ParameterSpec("covariance_map_translation_std_m", CALIBRATED_MAP_ERROR.translation_std_m,
                  "Map error in the published covariance: standard deviation (metres, per map "
                  "axis) of the local shift of the map the inliers see, added to the solver's "
                  "Gauss-Newton covariance. Default: calibrated so that the 95 % ellipsoid holds "
                  "about 95 % of the pose errors (README, Covariance).", bounds=(0.0, 10.0)),
    ParameterSpec("covariance_map_rotation_std_deg", CALIBRATED_MAP_ERROR.rotation_std_deg,
                  "Map error in the published covariance: standard deviation (degrees, per map "
                  "axis) of the local rotation of the map the inliers see, about their median "
                  "point. Default: calibrated with covariance_map_translation_std_m.",
                  bounds=(0.0, 90.0)),
    ParameterSpec("map_frame", "map", "Frame of the map: the pose's header frame and the TF "
                  "parent."),
    ParameterSpec("odom_frame", "", "Frame the TF estimate hangs under map_frame (REP-105). "
                  "Empty (automatic): when the camera frame (image header.frame_id) has a parent "
                  "in TF, the root of its tree (e.g. odom), else the camera frame itself. Set "
                  "(e.g. odom): always that frame. Either way TF map_frame -> frame is computed "
                  "at the image stamp from the estimate and frame -> camera looked up in TF, so "
                  "the chain equals the estimate; in sequence mode frame -> camera is also the "
                  "odometry."),
    ParameterSpec("tf_settle_s", 2.0, "odom_frame empty: a camera frame without a parent in "
                  "TF is taken for a root (TF map_frame -> camera) only once TF has been "
                  "received this long (seconds since start); until then no TF is published, so "
                  "that a robot tree arriving late never finds its camera with a second parent.",
                  bounds=(0.0, 60.0)),
    ParameterSpec("publish_tf", True, "Broadcast the estimate on /tf."),
    ParameterSpec("trigger", "continuous", "continuous: localize every frame. on_demand: "
                  "localize only after a ~/relocalize call, until relocalize_frames poses are "
                  "accepted or relocalize_timeout_s passes; frames in between are dropped on "
                  "arrival, before decoding.", choices=TRIGGER_MODES),
    ParameterSpec("relocalize_frames", 1, "on_demand: poses accepted per ~/relocalize call "
                  "before the node goes idle again.", bounds=(1, 100000)),
    ParameterSpec("relocalize_timeout_s", 10.0, "~/relocalize answers once a pose is accepted "
                  "or after this many seconds (success false); on_demand: the localizing "
                  "window also closes then.", bounds=(0.1, 3600.0)),
    ParameterSpec("base_frame", "base_link", "The robot's base frame: /initialpose carries its "
                  "pose (camera pose composed with camera -> base_frame from TF), and a pose "
                  "prior is its pose. Empty: the camera frame itself."),
    ParameterSpec("publish_initial_pose", False, "Publish confident poses of base_frame in "
                  "map_frame on 'initialpose' (geometry_msgs/PoseWithCovarianceStamped, what "
                  "nav2's AMCL listens to), at most once per initial_pose_min_period_s."),
    ParameterSpec("initial_pose_min_inliers", 100, "Fewest RANSAC inliers for a pose to go "
                  "to initialpose.", bounds=(4, 100000)),
    ParameterSpec("initial_pose_max_position_std_m", 0.1, "Largest position standard "
                  "deviation (worst direction, metres) of the base pose for initialpose.",
                  bounds=(0.0001, 100.0)),
    ParameterSpec("initial_pose_max_rotation_std_deg", 2.0, "Largest rotation standard "
                  "deviation (worst axis, degrees) of the base pose for initialpose.",
                  bounds=(0.001, 180.0)),
    ParameterSpec("initial_pose_min_period_s", 5.0, "Least time between two initialpose "
                  "messages, seconds (each one resets AMCL's particle filter).",
                  bounds=(0.0, 86400.0)),
    ParameterSpec("prior_topic", "", "Pose prior (geometry_msgs/PoseWithCovarianceStamped of "
                  "base_frame in map_frame), e.g. initialpose (RViz's 2D Pose Estimate); this "
                  "node's own initialpose messages are ignored. Poses farther from the latest "
                  "prior than prior_max_distance_m or prior_max_rotation_deg are rejected. "
                  "Empty: no prior.", read_only=True),
    ParameterSpec("prior_max_distance_m", 1.0, "Largest distance from the prior, metres.",
                  bounds=(0.001, 100000.0)),
    ParameterSpec("prior_max_rotation_deg", 45.0, "Largest rotation from the prior, degrees "
                  "(180: position only).", bounds=(0.1, 180.0)),
    ParameterSpec("prior_max_age_s", 60.0, "A prior stamped more than this before the image "
                  "no longer applies, seconds.", bounds=(0.1, 1e9)),
    ParameterSpec("publish_inliers", True, "Publish the inlier map points as a PointCloud2 on "
                  "'inliers' (for RViz)."),
    ParameterSpec("image_transport", "raw", "raw: subscribe 'image' (sensor_msgs/Image); "
                  "compressed: subscribe 'image/compressed' (sensor_msgs/CompressedImage).",
                  choices=("raw", "compressed"), read_only=True),
    ParameterSpec("image_is_rectified", False, "The image topic carries rectified images "
                  "(image_rect of image_proc): intrinsics from camera_info P (fx', fy', cx', cy'), "
                  "no undistortion, as image_geometry does. false: raw images, camera_info K "
                  "and D, undistorted by the node.", read_only=True),
    ParameterSpec("max_image_pixels", DEFAULT_MAX_IMAGE_PIXELS, "Most pixels (width x height) "
                  "an image or camera_info may describe; larger ones are refused before "
                  "anything of their size is allocated (compressed images: as declared by "
                  "their JPEG/PNG header), and diagnostics say why.",
                  bounds=(1024, 1_000_000_000), read_only=True),
    ParameterSpec("qos_reliability", "reliable", "Reliability of the image and camera_info "
                  "subscriptions: reliable (large raw images arrive; a best-effort publisher "
                  "is not received, and diagnostics say so) or best_effort (sensor-data QoS, "
                  "matches any publisher, but loses large raw images: README, Large images "
                  "over DDS).", choices=("reliable", "best_effort"), read_only=True),
    ParameterSpec("qos_depth", 5, "History depth of the image and camera_info subscriptions.",
                  bounds=(1, 100), read_only=True),
    ParameterSpec("path_max_length", 1000, "Most poses kept in the published path (oldest "
                  "dropped).", bounds=(1, 100000)),
    ParameterSpec("camera_info_timeout_s", 5.0, "A camera_info older than this (seconds, "
                  "arrival time) counts as missing: frames are skipped, diagnostics warn.",
                  bounds=(0.1, 3600.0)),
    ParameterSpec("camera_info_tolerance_s", 1.0, "Each image is paired with the camera_info "
                  "of its stamp, else the newest stamped at most this many seconds before it; "
                  "with none, the latest is used if the camera has not changed lately "
                  "(diagnostics: camera_info_pairing, camera_info_fallbacks), else the frame "
                  "is refused. 0: exact stamps only.", bounds=(0.0, 3600.0)),
    ParameterSpec("tf_timeout_s", 0.1, "How long to wait for TF at the image stamp (the frame "
                  "under map_frame -> camera, camera -> base_frame), seconds.",
                  bounds=(0.0, 5.0)),
    ParameterSpec("diagnostics_period_s", 1.0, "Period of /diagnostics messages, seconds.",
                  bounds=(0.1, 60.0), read_only=True),
)
SPECS_BY_NAME: dict[str, ParameterSpec] = {spec.name: spec for spec in PARAMETER_SPECS}
#: Parameters naming a TF frame.
FRAME_PARAMETERS = ("map_frame", "odom_frame", "base_frame")


@dataclass(frozen=True)
class RelocalizationParams:
    """A consistent snapshot of the node's parameters (see :data:`PARAMETER_SPECS`)."""

    map_path: str
    device: str
    mode: str
    sequence_length: int
    num_keypoints: int
    ransac_hypotheses: int
    ransac_threshold_px: float
    ransac_seed: int
    min_inliers: int
    refine: bool
    recover: bool
    keyframe_max_depth_m: float
    keyframe_max_disagreement_m: float
    keyframe_min_near_inliers: int
    covariance_map_translation_std_m: float
    covariance_map_rotation_std_deg: float
    map_frame: str
    odom_frame: str
    tf_settle_s: float
    publish_tf: bool
    trigger: str
    relocalize_frames: int
    relocalize_timeout_s: float
    base_frame: str
    publish_initial_pose: bool
    initial_pose_min_inliers: int
    initial_pose_max_position_std_m: float
    initial_pose_max_rotation_std_deg: float
    initial_pose_min_period_s: float
    prior_topic: str
    prior_max_distance_m: float
    prior_max_rotation_deg: float
    prior_max_age_s: float
    publish_inliers: bool
    image_transport: str
    image_is_rectified: bool
    max_image_pixels: int
    qos_reliability: str
    qos_depth: int
    path_max_length: int
    camera_info_timeout_s: float
    camera_info_tolerance_s: float
    tf_timeout_s: float
    diagnostics_period_s: float

    def localizer_config(self) -> LocalizerConfig:
        """The localizer settings these parameters ask for."""
        return replace(
            _LOCALIZER_DEFAULTS,
            top_k=self.num_keypoints,
            max_hypotheses=self.ransac_hypotheses,
            threshold_px=self.ransac_threshold_px,
            min_inliers=self.min_inliers,
            seed=None if self.ransac_seed < 0 else self.ransac_seed,
            refine=self.refine,
            refinement=replace(_LOCALIZER_DEFAULTS.refinement, recover=self.recover,
                               max_point_depth_m=self.keyframe_max_depth_m,
                               max_point_disagreement_m=self.keyframe_max_disagreement_m,
                               min_near_inliers=self.keyframe_min_near_inliers),
        )

    def mode_config(self) -> ModeConfig:
        """The settings of ``mode`` these parameters ask for: the single-frame settings, and
        ``sequence_length`` as the buffer of the sequence mode (the one mode with a node
        parameter of its own)."""
        config = mode_config(self.mode).with_frame(self.localizer_config())
        if isinstance(config, SequenceConfig):
            config = replace(config, buffer_length=self.sequence_length)
        return config

    def map_error_model(self) -> MapErrorModel:
        """The map error of the published covariance."""
        return MapErrorModel(self.covariance_map_translation_std_m,
                             self.covariance_map_rotation_std_deg)

    def confidence_gate(self) -> ConfidenceGate:
        """The gate a pose passes before it goes to initialpose."""
        return ConfidenceGate(self.initial_pose_min_inliers, self.initial_pose_max_position_std_m,
                              self.initial_pose_max_rotation_std_deg)

    def prior_gate(self) -> PriorGate:
        """The gate a pose passes against the prior (with prior_topic set)."""
        return PriorGate(self.prior_max_distance_m, self.prior_max_rotation_deg,
                         self.prior_max_age_s)

    def updated(self, values: Mapping[str, ParameterValue]) -> RelocalizationParams:
        """A copy with ``values`` applied."""
        return replace(self, **values)  # type: ignore[arg-type]


if {f.name for f in fields(RelocalizationParams)} != set(SPECS_BY_NAME):
    raise RuntimeError("RelocalizationParams and PARAMETER_SPECS name different parameters")


def validate_parameter(name: str, value: object) -> str | None:
    """Why ``value`` is not acceptable for parameter ``name``, or ``None`` when it is.

    Checks what descriptors cannot: choices, non-empty frame names, finite numbers. Types and
    ranges are also checked (rclpy checks them too).
    """
    spec = SPECS_BY_NAME.get(name)
    if spec is None:
        return f"unknown parameter {name!r}"
    expected = type(spec.default)
    if type(value) is not expected:
        return f"{name} must be of type {expected.__name__}, got {type(value).__name__} {value!r}"
    if isinstance(value, float) and not math.isfinite(value):
        return f"{name} must be finite, got {value}"
    if spec.bounds is not None and not spec.bounds[0] <= value <= spec.bounds[1]:  # type: ignore[operator]
        return f"{name} must be in [{spec.bounds[0]}, {spec.bounds[1]}], got {value}"
    if spec.choices and value not in spec.choices:
        return f"{name} must be one of {', '.join(spec.choices)}; got {value!r}"
    if name == "map_frame" and not value:
        return "map_frame must not be empty"
    if name in FRAME_PARAMETERS and isinstance(value, str) and value.startswith("/"):
        return f"{name} must not start with '/' (tf2 frame ids have no leading slash): {value!r}"
    return None


def declare_parameters(node: Node) -> RelocalizationParams:
    """Declare every parameter on ``node`` and return the resulting snapshot.

    Values come from the parameters file or command line (``--ros-args -p``), else the
    defaults. Register the node's on-set callback before calling this: rclpy runs it on the
    declared values too, so a bad start-up value fails with its reason.
    """
    values = {
        spec.name: node.declare_parameter(spec.name, spec.default, spec.descriptor()).value
        for spec in PARAMETER_SPECS
    }
    return RelocalizationParams(**values)
