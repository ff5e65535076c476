"""The relocalization node: camera images in, camera poses in the map out.

Run it as ``ros2 run seqace_ros relocalization_node --ros-args --params-file FILE`` on a ROS 2
system, or ``python -m seqace_ros.ros.relocalization_node --ros-args --params-file FILE``.

Topics (relative names, remap them):

- in ``image`` (``sensor_msgs/Image``) or, with ``image_transport: compressed``,
  ``image/compressed`` (``sensor_msgs/CompressedImage``); and ``camera_info``. Reliable QoS
  by default (``qos_reliability``, ``qos_depth``): best effort loses large raw images. Frames
  lost in transport (publisher sequence or stamp gaps, :mod:`seqace_ros.ros.transport_stats`)
  and publishers with incompatible QoS are reported in the log and ``/diagnostics``.
  Each image is paired with a camera_info by stamp, as image_transport's
  ``CameraSubscriber`` does (:mod:`seqace_ros.ros.camera_info_pairing`): the one of the
  image's stamp (waiting up to 0.1 s for it on a synchronised stream), else the newest stamped
  at most ``camera_info_tolerance_s`` before the image; with none, the latest, if the camera
  has not changed among the last camera_info kept (a note in the log and ``/diagnostics``
  ``camera_info_pairing``, counted in ``camera_info_fallbacks``), else the frame is refused
  (kind ``camera_info``): after a camera change, an image is never localized with the other
  camera's intrinsics.
- out ``pose`` (``geometry_msgs/PoseWithCovarianceStamped``): the pose of the image's optical
  frame in ``map_frame``, stamped with the image stamp; calibrated covariance (solver term
  from the inliers plus the map error ``covariance_map_*``; x, y, z, roll, pitch, yaw about
  the ``map_frame`` axes, m^2 and rad^2; :mod:`seqace_ros.pipeline.localization.covariance`).
- out ``path`` (``nav_msgs/Path``): accepted poses, at most ``path_max_length``.
- out ``inliers`` (``sensor_msgs/PointCloud2``, with ``publish_inliers``): inlier map points.
- out ``/diagnostics`` (``diagnostic_msgs/DiagnosticArray``), see
  :mod:`seqace_ros.ros.diagnostics`.
- out ``/tf`` (with ``publish_tf``), never giving a frame a second parent (REP-105):
  ``map_frame -> <root of the camera's tree>`` when the image frame has a parent in TF (a
  robot: usually ``odom``), ``map_frame -> <image frame_id>`` when it is a root, or
  ``map_frame -> odom_frame`` when that is set; in each case ``root -> camera`` is looked up in
  TF at the image stamp so that the chain equals the estimate (as AMCL's ``map -> odom``).
  The choice is :class:`~seqace_ros.core.transform_tree.MapEdgeChooser`'s.
- out ``initialpose`` (with ``publish_initial_pose``): confident poses of ``base_frame`` in
  ``map_frame`` (``PoseWithCovarianceStamped``, for nav2's AMCL), rate-limited.
- in ``prior_topic`` (when set): a pose prior of ``base_frame``; poses too far from it are
  rejected (:class:`~seqace_ros.pipeline.localization.policy.PriorGate`).
- service ``~/reset`` (``std_srvs/Trigger``): clears the pending frame, the path and the
  sequence state.
- service ``~/relocalize`` (``std_srvs/Trigger``): answers once a pose is accepted (success
  and a one-line summary) or after ``relocalize_timeout_s`` (failure and why); with
  ``trigger: on_demand`` it also opens the window in which frames are localized
  (:class:`~seqace_ros.pipeline.localization.policy.RelocalizationTrigger`). It waits in its
  own thread (a helper node ``<name>_relocalize`` spun by its own executor), so the node's
  executor keeps receiving images, single-threaded as it is.

Hostile input is refused with the reason in the log and ``/diagnostics``, and the node keeps
running: a ``map_path`` whose file is not a usable map for this encoder (the parameter change
is rejected with the reason and the old map kept), a camera_info that is non-finite,
implausibly distorted, skewed or describes more than ``max_image_pixels``, an image over
that size or in an encoding that is not colour or mono intensity. When image stamps jump
back (a bag played in a loop), the TF buffer, the path and the sequence state are cleared,
and that is logged once per jump.

Threads: the executor thread only stores incoming messages (latest-frame-wins slot, never
blocks; with ``trigger: on_demand`` and no request open, images are dropped right there); one
worker thread decodes, localizes and publishes; one loader thread builds localizers for new
maps, swapped in atomically (its warm-up inference on a new map runs between the worker's
frames, never beside one); one service thread answers ``~/relocalize``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from seqace_ros.core.malloc_arenas import limit_malloc_arenas, release_free_memory

# One malloc arena for the whole process, set before importing rclpy (whose import starts
# threads) and before the node's threads first allocate (see main()); hence the imports below
# this call (E402).
# ruff: noqa: E402
limit_malloc_arenas(1)

import numpy as np
import rclpy
from diagnostic_msgs.msg import DiagnosticArray
from geometry_msgs.msg import PoseWithCovarianceStamped
from nav_msgs.msg import Path
from numpy.typing import NDArray
from rcl_interfaces.msg import SetParametersResult
from rclpy.event_handler import QoSRequestedIncompatibleQoSInfo, SubscriptionEventCallbacks
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.executors import ExternalShutdownException, SingleThreadedExecutor
from rclpy.node import Node
from rclpy.parameter import Parameter
from rclpy.qos import (
    DurabilityPolicy,
    HistoryPolicy,
    QoSProfile,
    ReliabilityPolicy,
    qos_policy_name_from_kind,
)
from rclpy.subscription import MessageInfo
from sensor_msgs.msg import CameraInfo, CompressedImage, Image, PointCloud2
from std_msgs.msg import Header
from std_srvs.srv import Trigger

from seqace_ros.core.calibration import CalibrationError, CameraCalibration
from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.device import resolve_device
from seqace_ros.core.encoder import EncoderError, encoder_signature
from seqace_ros.core.geometry import invert_transform
from seqace_ros.core.image_decoding import ImageDecodingError
from seqace_ros.core.map_file import MapFileError, SceneMap, load_map
from seqace_ros.core.transform_tree import (
    MapEdge,
    MapEdgeChooser,
    TransformError,
    TransformTreeError,
)
from seqace_ros.core.undistortion import Undistorter
from seqace_ros.pipeline.localization.covariance import (
    CovarianceError,
    attached_pose_covariance,
    calibrated_pose_covariance,
)
from seqace_ros.pipeline.localization.modes import LocalizationMode, create_localizer
from seqace_ros.pipeline.localization.policy import (
    PosePrior,
    RateLimiter,
    RelocalizationTrigger,
    RelocalizeOutcome,
)
from seqace_ros.pipeline.localization.single import LocalizationError, LocalizationResult
from seqace_ros.pipeline.localization.stream import StreamStats, StreamWorker
from seqace_ros.ros import conversions
from seqace_ros.ros.camera_info_pairing import PAIRED_LATEST, CameraInfoHistory
from seqace_ros.ros.diagnostics import NodeState, diagnostic_array
from seqace_ros.ros.params import RelocalizationParams, declare_parameters, validate_parameter
from seqace_ros.ros.tf_interface import StampedTransform, create_transform_interface
from seqace_ros.ros.transport_stats import (
    TransportStats,
    incompatible_qos_problem,
    message_origin,
)

NODE_NAME = "relocalization_node"
#: Logged once a map is in use (tests and scripts wait for it).
MAP_READY_LOG = "map ready:"
#: Logged once each time the image stamps jump back.
TIME_JUMP_LOG = "time jumped back"
#: Logged when the frame under map_frame on TF changes (tests and users look for it).
TF_EDGE_LOG = "TF: publishing"
#: The same failure (numbers aside) is logged at most once per this many seconds.
_LOG_PERIOD_S = 5.0
_NUMBERS = re.compile(r"\d+(\.\d+)?")
#: The frame a new localizer runs once before use (torch initialises its kernels then).
_WARM_UP_IMAGE = np.zeros((480, 640, 3), dtype=np.uint8)
_WARM_UP_INTRINSICS = Intrinsics(500.0, 500.0, 320.0, 240.0, 640, 480)


@dataclass(frozen=True)
class _Frame:
    """An image message as received, with its arrival time (monotonic seconds)."""

    msg: Image | CompressedImage
    received_s: float


@dataclass(frozen=True)
class _ActiveMap:
    path: str
    localizer: LocalizationMode
    has_keyframes: bool


@dataclass(frozen=True)
class _BasePose:
    """The base frame's pose (and covariance) in the map, from the camera's."""

    T_map_base: NDArray[np.float64]
    covariance_66: NDArray[np.float64]


@dataclass(frozen=True, eq=False)  # compared by identity: one per different camera
class _Camera:
    """A camera_info and what it decodes to (or why it does not); kept, with its stamp and
    arrival time, in the camera_info history and shared by the messages of the same camera."""

    msg: CameraInfo
    calibration: CameraCalibration | None
    undistorter: Undistorter | None
    problem: str


class RelocalizationNode(Node):
    """Thin ROS 2 node over the library's localization modes (``mode`` parameter)."""

    def __init__(self, **node_kwargs: Any) -> None:
        super().__init__(NODE_NAME, **node_kwargs)
        self._started = False
        self._lock = threading.Lock()
        self._active: _ActiveMap | None = None
        self._map_problem = "no map loaded yet"
        self._pending_maps: dict[str, SceneMap] = {}
        self._cameras: CameraInfoHistory[_Camera] = CameraInfoHistory()
        self._camera_info_status = "no frame paired yet"
        self._camera_info_fallbacks = 0  # frames paired with the latest camera_info (rule 3)
        self._path_poses: deque[Any] = deque(maxlen=1)
        self._last_logged_s: dict[str, float] = {}
        self._stats = StreamStats()
        self._transport = TransportStats()  # frames lost before the image callback
        self._reset_requested = threading.Event()
        self._last_stamp_ns: int | None = None  # worker thread only
        self._time_jumps = 0
        self._map_edges = MapEdgeChooser()  # worker thread only
        self._tf_status = "no pose yet"
        self._initial_pose_limiter = RateLimiter()  # worker thread only
        self._initial_pose_status = "no confident pose yet"
        self._initial_poses_published = 0
        self._own_initial_poses: deque[PoseWithCovarianceStamped] = deque(maxlen=8)
        self._prior: PosePrior | None = None
        self._prior_status = "no prior_topic"
        self._prior_rejections = 0

        self.add_on_set_parameters_callback(self._validate_parameters)
        self.add_post_set_parameters_callback(self._apply_parameters)
        self._params: RelocalizationParams = declare_parameters(self)
        params = self._params
        self._path_poses = deque(maxlen=params.path_max_length)
        self._trigger = RelocalizationTrigger(params.trigger, params.relocalize_frames)

        qos = QoSProfile(
            depth=params.qos_depth,
            history=HistoryPolicy.KEEP_LAST,
            reliability=ReliabilityPolicy.BEST_EFFORT
            if params.qos_reliability == "best_effort" else ReliabilityPolicy.RELIABLE,
            durability=DurabilityPolicy.VOLATILE,
        )
        image_events = SubscriptionEventCallbacks(
            incompatible_qos=lambda event: self._on_incompatible_qos(self._image_topic, event))
        if params.image_transport == "compressed":
            image_sub = self.create_subscription(
                CompressedImage, "image/compressed", self._on_image, qos,
                event_callbacks=image_events,
            )
        else:
            image_sub = self.create_subscription(Image, "image", self._on_image, qos,
                                                 event_callbacks=image_events)
        self._image_topic = image_sub.topic_name
        camera_info_sub = self.create_subscription(
            CameraInfo, "camera_info", self._on_camera_info, qos,
            event_callbacks=SubscriptionEventCallbacks(incompatible_qos=lambda event:
                self._on_incompatible_qos(self._camera_info_topic, event)),
        )
        self._camera_info_topic = camera_info_sub.topic_name
        self._pose_pub = self.create_publisher(PoseWithCovarianceStamped, "pose", 10)
        self._path_pub = self.create_publisher(Path, "path", 10)
        self._inliers_pub = self.create_publisher(PointCloud2, "inliers", 5)
        self._diagnostics_pub = self.create_publisher(DiagnosticArray, "/diagnostics", 10)
        self._initial_pose_pub = self.create_publisher(
            PoseWithCovarianceStamped, "initialpose", 10
        )
        self._prior_sub = None
        if params.prior_topic:
            self._prior_sub = self.create_subscription(
                PoseWithCovarianceStamped, params.prior_topic, self._on_prior, 10
            )
            self._prior_status = f"no prior received on {self._prior_sub.topic_name}"
        self._tf = create_transform_interface(self)
        self._tf_started_s = time.monotonic()
        self._reset_srv = self.create_service(Trigger, "~/reset", self._on_reset)
        self._relocalize_service = _ServiceThread(self, "relocalize", self._on_relocalize)

        self._loader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="map-loader")
        self._worker: StreamWorker[_Frame] = StreamWorker(
            self._process, self._on_worker_error, self._stats, name="relocalization-worker"
        )
        self._worker.start()
        self._diagnostics_timer = self.create_timer(
            params.diagnostics_period_s, self._publish_diagnostics
        )
        self._started = True
        if params.map_path:
            self._loader.submit(self._load_map, params.map_path, None)
        else:
            self._map_problem = "map_path is empty (set it to a map file)"
        self.get_logger().info(
            f"listening on {self._image_topic} and {self._camera_info_topic}; publishing "
            f"{self._pose_pub.topic_name} in {params.map_frame!r}; TF via {self._tf.backend}"
        )

    # --- parameters --------------------------------------------------------------------

    def _validate_parameters(self, parameters: list[Parameter]) -> SetParametersResult:
        """On-set callback: reject bad values (and unreadable maps) with the reason."""
        for parameter in parameters:
            reason = validate_parameter(parameter.name, parameter.value)
            if reason is None and self._started and parameter.name == "map_path":
                reason = self._check_new_map(parameter.value)
            if reason is None and self._started and parameter.name == "refine":
                reason = self._check_refine(bool(parameter.value))
            if reason is not None:
                message = f"rejected {parameter.name}={parameter.value!r}: {reason}"
                self.get_logger().warning(message)
                if self._started:
                    self._stats.record_error(message)
                return SetParametersResult(successful=False, reason=reason)
        return SetParametersResult(successful=True)

    def _check_refine(self, refine: bool) -> str | None:
        """Why ``refine`` cannot be turned on with the active map (``None``: it can)."""
        active = self._active
        if refine and active is not None and not active.has_keyframes:
            return f"map {active.path} has no keyframes to refine against"
        return None

    def _check_new_map(self, path: str) -> str | None:
        """Read and check a map file (fast: a few MB) against this installation's encoder;
        keep it for the loader thread. Returns why it cannot be used, or ``None``."""
        if not path:
            return None
        try:
            scene_map = load_map(path)
            signature = encoder_signature(scene_map.encoder_id)
            scene_map.check_encoder(
                signature.encoder_id, signature.weight_hash, signature.feature_dim
            )
        except (MapFileError, ValueError) as error:  # ValueError: an unknown encoder id
            active = self._active
            return f"{error}; keeping {active.path if active else 'no map'}"
        if self._params.refine and scene_map.keyframes is None:
            active = self._active
            return (f"{path} has no keyframes and refine is on; keeping "
                    f"{active.path if active else 'no map'}")
        self._pending_maps = {path: scene_map}
        return None

    def _apply_parameters(self, parameters: list[Parameter]) -> None:
        """Post-set callback: publish a new snapshot; start loading a new map."""
        if not self._started:
            return
        values = {p.name: p.value for p in parameters}
        with self._lock:
            old = self._params
            self._params = old.updated(values)
            if self._params.map_frame != old.map_frame:
                self._path_poses.clear()
            if self._params.path_max_length != old.path_max_length:
                self._path_poses = deque(self._path_poses, maxlen=self._params.path_max_length)
        self._trigger.configure(self._params.trigger, self._params.relocalize_frames)
        active = self._active
        path = self._params.map_path
        if "map_path" in values and path != (active.path if active else None):
            if path:
                self._loader.submit(self._load_map, path, self._pending_maps.pop(path, None))
            else:
                with self._lock:
                    self._active = None
                    self._map_problem = "map_path is empty (set it to a map file)"

    def _load_map(self, path: str, scene_map: SceneMap | None) -> None:
        """Loader thread: build a localizer for ``path`` and swap it in, or keep the old one."""
        params = self._params
        start = time.perf_counter()
        try:
            scene_map = scene_map if scene_map is not None else load_map(path)
            device = resolve_device(params.device)
            localizer = create_localizer(scene_map, params.mode_config(), device)
            # First inference initialises torch kernels: do it here, not on the first frame;
            # between the worker's frames, never beside one (the heap would keep room for two
            # inferences at once: StreamWorker.between_items).
            with self._worker.between_items():
                localizer.localize(_WARM_UP_IMAGE, _WARM_UP_INTRINSICS)
            localizer.reset()
        except Exception as error:  # reported: logged, in diagnostics; the old map stays
            active = self._active
            problem = f"cannot load map {path!r}: {type(error).__name__}: {error}"
            self.get_logger().error(f"{problem}; keeping {active.path if active else 'no map'}")
            with self._lock:
                if active is None:
                    self._map_problem = problem
            self._stats.record_error(problem)
            return
        with self._lock:
            if self._params.map_path != path:  # superseded while loading
                return
            self._active = _ActiveMap(path, localizer, scene_map.keyframes is not None)
            self._map_problem = ""
            self._path_poses.clear()
        self._worker.clear()
        with self._worker.between_items():  # the old localizer is no longer in use
            release_free_memory()
        self.get_logger().info(
            f"{MAP_READY_LOG} {path} ({params.mode} mode) on {device} "
            f"({time.perf_counter() - start:.2f} s)"
        )

    # --- callbacks (executor thread: store and return) -------------------------------------

    def _on_image(self, msg: Image | CompressedImage, info: MessageInfo) -> None:
        lost = self._transport.record(conversions.header_stamp_ns(msg.header),
                                      *message_origin(info))
        if lost:
            self._warn("transport", f"{lost} frame(s) lost in transport on {self._image_topic} "
                       f"before the one stamped {conversions.header_stamp_ns(msg.header)} ns: "
                       f"{self._transport.snapshot().problem()}")
        now = time.monotonic()
        if self._trigger.admit(now):  # on_demand and idle: dropped here, never decoded
            self._worker.submit(_Frame(msg, now))

    def _on_incompatible_qos(self, topic: str, event: QoSRequestedIncompatibleQoSInfo) -> None:
        message = incompatible_qos_problem(topic, qos_policy_name_from_kind(
            event.last_policy_kind), self._params.qos_reliability)
        self._stats.record_error(message)
        self.get_logger().warning(message)

    def _on_camera_info(self, msg: CameraInfo) -> None:
        """Keep the camera_info in the history (decoded once per different camera)."""
        now = time.monotonic()
        stamp_ns = conversions.header_stamp_ns(msg.header)
        camera = self._cameras.find_camera(lambda kept: _same_calibration(kept.msg, msg))
        if camera is None:
            params = self._params
            try:
                calibration = conversions.calibration_from_camera_info_msg(
                    msg, self._camera_info_topic, params.image_is_rectified,
                    params.max_image_pixels,
                )
                camera = _Camera(msg, calibration, Undistorter(calibration), "")
            except CalibrationError as error:
                camera = _Camera(msg, None, None, str(error))
                message = f"unusable camera_info: {error}"
                self._stats.record_error(message)
                self._warn("camera_info", message)
        self._cameras.add(stamp_ns, now, camera)

    def _on_reset(self, _request: Trigger.Request, response: Trigger.Response) -> Any:
        # The worker owns the localizer: it resets it before its next frame.
        self._reset_requested.set()
        dropped_pending = self._worker.clear()
        with self._lock:
            cleared = len(self._path_poses)
            self._path_poses.clear()
        response.success = True
        response.message = (
            f"cleared {cleared} path poses and {int(dropped_pending)} pending frame; the "
            f"{self._params.mode} mode's state is cleared before the next frame"
        )
        self.get_logger().info(f"reset: {response.message}")
        return response

    def _on_relocalize(self, _request: Trigger.Request, response: Trigger.Response) -> Any:
        """Open a localizing window (on_demand; from idle, the mode's state is cleared first)
        and answer with the next accepted pose, or after relocalize_timeout_s with why none
        was accepted. Runs in the service thread, which it blocks while it waits."""
        params = self._params
        start = self._stats.snapshot()
        now = time.monotonic()
        if params.trigger == "on_demand" and not self._trigger.is_open(now):
            self._reset_requested.set()  # the sequence state of an earlier window is stale
        request = self._trigger.request(now, params.relocalize_timeout_s)
        outcome = request.wait(params.relocalize_timeout_s)
        if outcome is None:
            self._trigger.withdraw(request)
            end = self._stats.snapshot()
            received = end.received - start.received
            processed = end.processed - start.processed
            last = (end.last_error if end.last_error_age_s <= params.relocalize_timeout_s
                    else "")
            outcome = RelocalizeOutcome(
                False,
                f"no pose accepted within {params.relocalize_timeout_s} s: {received} frames "
                f"received, {processed} processed"
                + (f"; last problem: {last}" if last else ""),
            )
        response.success = outcome.success
        response.message = outcome.message
        self.get_logger().info(f"relocalize: {outcome.message}")
        return response

    def _on_prior(self, msg: PoseWithCovarianceStamped) -> None:
        """Keep a pose prior of base_frame in map_frame (this node's initialposes ignored)."""
        with self._lock:
            own = list(self._own_initial_poses)
        if any(msg == published for published in own):
            return
        params = self._params
        try:
            stamp_ns, frame_id, T_map_base = (
                conversions.pose_from_pose_with_covariance_stamped_msg(msg)
            )
            if frame_id != params.map_frame:
                raise ValueError(f"its frame is {frame_id!r}, not map_frame {params.map_frame!r}")
        except ValueError as error:
            message = f"ignored a pose prior on {self._prior_sub.topic_name}: {error}"
            self._stats.record_error(message)
            self._warn("prior", message)
            return
        self._prior = PosePrior(T_map_base, stamp_ns)
        x, y, z = T_map_base[:3, 3]
        self._prior_status = f"prior received: ({x:.2f}, {y:.2f}, {z:.2f}) m, stamp {stamp_ns}"
        self.get_logger().info(self._prior_status)

    def _publish_diagnostics(self) -> None:
        active = self._active
        state = NodeState(
            map_path=active.path if active else "",
            map_problem=self._map_problem,
            mode=self._params.mode,
            tf_backend=self._tf.backend,
            image_topic=self._image_topic,
            mode_status=active.localizer.status.values() if active else {},
            time_jumps=self._time_jumps,
            transport=self._transport.snapshot(),
            trigger=self._trigger.describe(time.monotonic()),
            idle=not self._trigger.is_open(time.monotonic()),
            frames_ignored=self._trigger.ignored,
            relocalize_requests=self._trigger.requests,
            tf=self._tf_status,
            initial_pose=self._initial_pose_status if self._params.publish_initial_pose
            else "off (publish_initial_pose false)",
            initial_poses_published=self._initial_poses_published,
            prior=self._prior_status,
            prior_rejections=self._prior_rejections,
            camera_info=self._camera_info_status,
            camera_info_fallbacks=self._camera_info_fallbacks,
        )
        self._diagnostics_pub.publish(
            diagnostic_array(
                self._stats.snapshot(), state, self.get_fully_qualified_name(),
                self.get_clock().now().nanoseconds,
            )
        )

    # --- worker thread ---------------------------------------------------------------------

    def _fail(self, kind: str, message: str, inlier_ratio: float | None = None) -> None:
        """Count a frame without a pose, and log why (each kind at most every few seconds)."""
        self._stats.record_failure(message, inlier_ratio, kind)
        self._warn(kind, message)

    def _warn(self, kind: str, message: str) -> None:
        """Log ``message`` unless the same message (numbers aside) was logged just before."""
        key = f"{kind}:{_NUMBERS.sub('#', message)}"
        now = time.monotonic()
        if now - self._last_logged_s.get(key, -np.inf) >= _LOG_PERIOD_S:
            self._last_logged_s[key] = now
            self.get_logger().warning(message)

    def _on_worker_error(self, error: Exception) -> None:
        message = f"unexpected error processing a frame: {type(error).__name__}: {error}"
        self._stats.record_failure(message, kind="error")
        self.get_logger().error(message)

    def _intrinsics_for(
        self, image_rgb: NDArray[np.uint8], stamp_ns: int
    ) -> tuple[Intrinsics, NDArray[np.uint8]] | None:
        """Intrinsics for the image and the undistorted image, or ``None`` after a failure.

        The camera_info is the one of the image's stamp, else the newest stamped at most
        ``camera_info_tolerance_s`` before it, else the latest if the camera has not changed
        lately (:mod:`seqace_ros.ros.camera_info_pairing`); the latest must have arrived
        within ``camera_info_timeout_s``.
        """
        latest = self._cameras.latest()
        params = self._params
        if latest is None:
            self._fail("camera_info", f"no camera_info received on {self._camera_info_topic}")
            return None
        age_s = time.monotonic() - latest.received_s
        if age_s > params.camera_info_timeout_s:
            self._fail(
                "camera_info",
                f"camera_info missing for {age_s:.1f} s on {self._camera_info_topic} "
                f"(camera_info_timeout_s {params.camera_info_timeout_s})",
            )
            return None
        pairing = self._cameras.pair(stamp_ns, round(params.camera_info_tolerance_s * 1e9))
        self._camera_info_status = f"{pairing.how}: {pairing.note}"
        if pairing.entry is None:
            self._fail("camera_info", f"camera_info on {self._camera_info_topic}: "
                       f"{pairing.note}")
            return None
        if pairing.how == PAIRED_LATEST:
            self._camera_info_fallbacks += 1
            self._warn("camera_info", f"camera_info on {self._camera_info_topic}: "
                       f"{pairing.note}")
        camera = pairing.entry.camera
        if camera.calibration is None or camera.undistorter is None:
            self._fail("camera_info", f"unusable camera_info: {camera.problem}")
            return None
        intrinsics = camera.calibration.intrinsics
        height, width = image_rgb.shape[:2]
        if (intrinsics.width, intrinsics.height) != (width, height):
            self._fail(
                "size",
                f"image is {width}x{height} but camera_info describes "
                f"{intrinsics.width}x{intrinsics.height} images (after its roi and binning)",
            )
            return None
        return intrinsics, camera.undistorter(image_rgb)

    def _lookup(
        self, target_frame: str, source_frame: str, header: Header,
        params: RelocalizationParams,
    ) -> tuple[NDArray[np.float64] | None, str]:
        """``T_target_source`` at the image stamp, or ``None`` and why not."""
        try:
            return self._tf.lookup(
                target_frame, source_frame, conversions.header_stamp_ns(header),
                params.tf_timeout_s,
            ), ""
        except TransformError as error:
            return None, str(error)

    def _map_edge(self, header: Header, params: RelocalizationParams) -> MapEdge:
        """The frame to hang under map_frame for this image (see MapEdgeChooser)."""
        if not header.frame_id:
            return MapEdge(None, "image header.frame_id is empty")
        try:
            edge = self._map_edges.choose(
                header.frame_id, params.map_frame, params.odom_frame, self._tf.parent_of,
                time.monotonic() - self._tf_started_s, params.tf_settle_s,
            )
        except TransformTreeError as error:
            return MapEdge(None, str(error))
        if not params.publish_tf:
            status = "off (publish_tf false)"
        elif edge.child is not None:
            status = f"{params.map_frame} -> {edge.child}: {edge.reason}"
            if status != self._tf_status:
                self.get_logger().info(f"{TF_EDGE_LOG} {status}")
        else:
            status = f"none yet: {edge.reason}"
        self._tf_status = status
        return edge

    def _localize(
        self, localizer: LocalizationMode, frame: _Frame, params: RelocalizationParams,
        image_rgb: NDArray[np.uint8], intrinsics: Intrinsics,
        T_odom_cam: NDArray[np.float64] | None,
    ) -> LocalizationResult:
        """Run the mode's localizer with the current settings (worker thread only)."""
        if self._reset_requested.is_set():
            self._reset_requested.clear()
            localizer.reset()
        config = params.mode_config()
        if localizer.settings != config:
            localizer.settings = config
        header = frame.msg.header
        return localizer.localize(
            image_rgb, intrinsics, stamp_ns=conversions.header_stamp_ns(header),
            T_odom_cam=T_odom_cam,
        )

    def _check_time(self, header: Header) -> None:
        """Detect image stamps jumping back: clear TF, the path and the sequence state.

        A bag played in a loop (with or without ``use_sim_time``) restarts its stamps; the
        TF buffer would otherwise prune every new sample against the newest of the previous
        pass and lookups would fail from then on. Logged once per jump.
        """
        stamp_ns = conversions.header_stamp_ns(header)
        previous_ns, self._last_stamp_ns = self._last_stamp_ns, stamp_ns
        if previous_ns is None or stamp_ns >= previous_ns:
            return
        self._tf.clear()
        self._reset_requested.set()  # the localizer is reset before this frame
        with self._lock:
            self._path_poses.clear()
        self._time_jumps += 1
        self.get_logger().warning(
            f"{TIME_JUMP_LOG} {(previous_ns - stamp_ns) * 1e-9:.3f} s (image stamp {stamp_ns} "
            f"ns after {previous_ns} ns; a bag played in a loop?): cleared the TF buffer, the "
            f"path and the {self._params.mode} mode's state"
        )

    def _process(self, frame: _Frame) -> None:
        if not self._trigger.admit(time.monotonic()):  # the window closed while it waited
            return
        active = self._active
        params = self._params
        self._check_time(frame.msg.header)
        if active is None:
            self._fail("map", f"no map loaded: {self._map_problem}")
            return
        try:
            image_rgb = conversions.image_rgb_from_msg(frame.msg, params.max_image_pixels)
        except ImageDecodingError as error:
            self._fail("image", f"bad image on {self._image_topic}: {error}")
            return
        prepared = self._intrinsics_for(image_rgb, conversions.header_stamp_ns(frame.msg.header))
        if prepared is None:
            return
        intrinsics, image_rgb = prepared
        header = frame.msg.header
        edge = self._map_edge(header, params)
        T_child_cam = None  # also the odometry of the sequence mode (None: its fallback)
        if (active.localizer.settings.uses_odometry and edge.child is not None
                and edge.child != header.frame_id):
            T_child_cam, _ = self._lookup(edge.child, header.frame_id, header, params)
        try:
            result = self._localize(
                active.localizer, frame, params, image_rgb, intrinsics, T_child_cam
            )
        except (EncoderError, LocalizationError) as error:
            self._fail("localize", f"cannot localize the image: {error}")
            return
        if not result.success or result.T_world_cam is None:
            self._fail(
                "inliers",
                f"no pose: {result.num_inliers} inliers of {result.num_correspondences} "
                f"correspondences < min_inliers {params.min_inliers}",
                result.confidence,
            )
            return
        inliers = result.inliers_N
        try:
            covariance = calibrated_pose_covariance(
                result.T_world_cam, result.points2d_N2[inliers], result.scene_points_N3[inliers],
                intrinsics, params.map_error_model(),
            )
        except CovarianceError as error:
            self._fail("covariance", f"no pose: {error}", result.confidence)
            return
        T_map_cam = result.T_world_cam
        base: _BasePose | str = "not needed"
        if params.publish_initial_pose or self._prior_sub is not None:
            base = self._base_pose(header, params, T_map_cam, covariance)
        if self._prior_sub is not None and not self._passes_prior(
            header, params, base, result.confidence
        ):
            return
        self._publish_pose(frame, params, T_map_cam, covariance,
                           result.scene_points_N3[inliers])
        self._stats.record_success(
            1000.0 * (time.monotonic() - frame.received_s), result.confidence
        )
        if params.publish_tf:
            self._publish_tf(header, params, T_map_cam, edge, T_child_cam)
        x, y, z = T_map_cam[:3, 3]
        self._trigger.accepted(
            f"pose accepted for the image stamped {conversions.header_stamp_ns(header)} ns: "
            f"camera at ({x:.3f}, {y:.3f}, {z:.3f}) m in {params.map_frame}, "
            f"{result.num_inliers} inliers"
            + (" (recovered from the map's keyframes)" if result.recovered else "")
        )
        if params.publish_initial_pose:
            self._publish_initial_pose(header, params, base, result.num_inliers)

    def _base_pose(
        self, header: Header, params: RelocalizationParams, T_map_cam: NDArray[np.float64],
        covariance_66: NDArray[np.float64],
    ) -> _BasePose | str:
        """base_frame's pose and covariance in the map (camera -> base_frame from TF at the
        image stamp; empty base_frame: the camera's), or why it is not available."""
        if not params.base_frame or params.base_frame == header.frame_id:
            return _BasePose(T_map_cam, covariance_66)
        T_cam_base, problem = self._lookup(header.frame_id, params.base_frame, header, params)
        if T_cam_base is None:
            return f"no TF {header.frame_id!r} -> {params.base_frame!r}: {problem}"
        return _BasePose(
            T_map_cam @ T_cam_base, attached_pose_covariance(covariance_66, T_map_cam, T_cam_base)
        )

    def _passes_prior(
        self, header: Header, params: RelocalizationParams, base: _BasePose | str,
        confidence: float,
    ) -> bool:
        """Whether the pose is close enough to the prior; a rejection counts as a failure."""
        verdict = params.prior_gate().check(
            self._prior, None if isinstance(base, str) else base.T_map_base,
            conversions.header_stamp_ns(header),
        )
        self._prior_status = verdict.message
        if not verdict.accepted:
            self._prior_rejections += 1
            why = f"{verdict.message} ({base})" if isinstance(base, str) else verdict.message
            self._fail("prior", f"no pose: {why}", confidence)
        return verdict.accepted

    def _publish_initial_pose(
        self, header: Header, params: RelocalizationParams, base: _BasePose | str,
        num_inliers: int,
    ) -> None:
        """Publish base_frame's pose on initialpose when confident and not rate-limited."""
        if isinstance(base, str):
            self._initial_pose_status = f"not published: {base}"
            self._stats.record_error(f"initialpose not published: {base}")
            self._warn("initial_pose", f"initialpose not published: {base}")
            return
        problem = params.confidence_gate().problem(num_inliers, base.covariance_66)
        if problem is not None:
            self._initial_pose_status = f"not confident: {problem}"
            return
        if not self._initial_pose_limiter.try_acquire(
            time.monotonic(), params.initial_pose_min_period_s
        ):
            self._initial_pose_status = (
                f"rate-limited (initial_pose_min_period_s {params.initial_pose_min_period_s})"
            )
            return
        stamp_ns = conversions.header_stamp_ns(header)
        msg = conversions.pose_with_covariance_stamped_msg(
            base.T_map_base, base.covariance_66, params.map_frame, stamp_ns
        )
        with self._lock:
            self._own_initial_poses.append(msg)
        self._initial_pose_pub.publish(msg)
        self._initial_poses_published += 1
        self._initial_pose_status = f"published for the image stamped {stamp_ns} ns"

    def _publish_pose(
        self,
        frame: _Frame,
        params: RelocalizationParams,
        T_map_cam: NDArray[np.float64],
        covariance_66: NDArray[np.float64],
        inlier_points_N3: NDArray[np.float64],
    ) -> None:
        stamp_ns = conversions.header_stamp_ns(frame.msg.header)
        self._pose_pub.publish(
            conversions.pose_with_covariance_stamped_msg(
                T_map_cam, covariance_66, params.map_frame, stamp_ns
            )
        )
        with self._lock:
            self._path_poses.append(
                conversions.pose_stamped_msg(T_map_cam, params.map_frame, stamp_ns)
            )
            path = Path(
                header=Header(stamp=conversions.time_msg(stamp_ns), frame_id=params.map_frame),
                poses=list(self._path_poses),
            )
        self._path_pub.publish(path)
        if params.publish_inliers and self._inliers_pub.get_subscription_count() > 0:
            self._inliers_pub.publish(
                conversions.point_cloud2_msg(inlier_points_N3, params.map_frame, stamp_ns)
            )

    def _publish_tf(
        self, header: Header, params: RelocalizationParams, T_map_cam: NDArray[np.float64],
        edge: MapEdge, T_child_cam: NDArray[np.float64] | None,
    ) -> None:
        """Publish map_frame -> edge.child such that the chain to the camera is the estimate.

        Args:
            T_child_cam: ``edge.child -> camera`` at the image stamp when already looked up
                (``None``: looked up here).
        """
        camera_frame = header.frame_id
        stamp_ns = conversions.header_stamp_ns(header)
        if not camera_frame:
            self._stats.record_error("image header.frame_id is empty: no TF published")
            self._warn("tf", "image header.frame_id is empty: no TF published")
            return
        if edge.child is None:  # waiting to learn whether the camera has a parent
            return
        if edge.child == camera_frame:
            self._tf.publish([StampedTransform(params.map_frame, camera_frame, stamp_ns,
                                               T_map_cam)])
            return
        problem = ""
        if T_child_cam is None:
            T_child_cam, problem = self._lookup(edge.child, camera_frame, header, params)
        if T_child_cam is None:
            message = f"pose published but no {params.map_frame} -> {edge.child} TF: {problem}"
            self._stats.record_error(message)
            self._warn("tf", message)
            return
        T_map_child = T_map_cam @ invert_transform(T_child_cam)
        self._tf.publish([StampedTransform(params.map_frame, edge.child, stamp_ns,
                                           T_map_child)])

    def destroy_node(self) -> None:
        """Answer waiting ~/relocalize calls, stop the service thread, the worker and the
        loader, then destroy the node."""
        self._trigger.close("the node is shutting down")
        self._relocalize_service.stop()
        self._worker.stop()
        self._loader.shutdown(wait=True, cancel_futures=True)
        super().destroy_node()


class _ServiceThread:
    """A ``std_srvs/Trigger`` service ``<node>/<name>`` answered in a thread of its own.

    rclpy has no deferred service response: a callback that waits (for a pose) blocks its
    executor, and a coroutine awaiting a future makes rclpy's executor spin without sleeping.
    So the service lives on a helper node ``<node name>_<name>`` (no command-line arguments,
    no parameter services) spun by its own single-threaded executor in a daemon thread; the
    node's own executor stays single-threaded and idle between messages.
    """

    def __init__(self, owner: Node, name: str, callback: Any) -> None:
        self._node = rclpy.create_node(
            f"{owner.get_name()}_{name}", namespace=owner.get_namespace(),
            context=owner.context, use_global_arguments=False, start_parameter_services=False,
        )
        self.service = self._node.create_service(
            Trigger, f"{owner.get_fully_qualified_name()}/{name}", callback
        )
        self._executor = SingleThreadedExecutor(context=owner.context)
        self._executor.add_node(self._node)
        self._thread = threading.Thread(target=self._spin, name=f"{name}-service", daemon=True)
        self._thread.start()

    def _spin(self) -> None:
        with contextlib.suppress(ExternalShutdownException):
            self._executor.spin()

    def stop(self) -> None:
        """Stop spinning (a call in progress finishes) and destroy the helper node."""
        self._executor.shutdown(timeout_sec=1.0)
        self._thread.join(timeout=1.0)
        self._node.destroy_node()


def _same_calibration(a: CameraInfo, b: CameraInfo) -> bool:
    """Whether two camera_info messages describe the same camera (stamps aside)."""
    return (
        a.width == b.width and a.height == b.height and list(a.k) == list(b.k)
        and list(a.d) == list(b.d) and list(a.p) == list(b.p)
        and a.distortion_model == b.distortion_model
        and a.binning_x == b.binning_x and a.binning_y == b.binning_y
        and (a.roi.x_offset, a.roi.y_offset, a.roi.width, a.roi.height)
        == (b.roi.x_offset, b.roi.y_offset, b.roi.width, b.roi.height)
    )


def main(args: list[str] | None = None) -> None:
    """Entry point: run the node until Ctrl-C or external shutdown; always shuts down.

    The process runs with one glibc malloc arena, set when this module is imported (before
    any thread allocates), so that the memory each thread frees serves the others instead of
    staying in arenas of its own (:mod:`seqace_ros.core.malloc_arenas`; ``MALLOC_ARENA_MAX``
    overrides it).

    Raises:
        SystemExit: a start-up parameter value is invalid (the message says which and why).
    """
    rclpy.init(args=args)
    node: RelocalizationNode | None = None
    try:
        node = RelocalizationNode()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (InvalidParameterTypeException, InvalidParameterValueException) as error:
        raise SystemExit(f"{NODE_NAME}: {error}") from None
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()


if __name__ == "__main__":
    main()
