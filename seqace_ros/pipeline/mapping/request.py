"""One mapping request for every front end: ``seqace map``, ``seqace bag-map``, ``mapping_node``.

Each mapping option is declared once, as a :class:`RequestField` of :data:`FOLDER_FIELDS`,
:data:`BAG_FIELDS` or :data:`TRAINING_FIELDS` (name, type, default, help, choices, bounds).
The command line turns the fields into arguments, the node into parameters; both hand
:meth:`MappingRequest.from_values` a name -> value mapping and run the request with
:func:`run_request`. Bad options raise :class:`MappingRequestError`, and every failure a user
can cause is a :class:`~seqace_ros.core.errors.SeqaceError`. A new option is one more field
plus its use in :meth:`MappingRequest.from_values`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.geometry import transform_from_translation_quaternion
from seqace_ros.datasets.bag import BagConfig
from seqace_ros.datasets.bag_poses import POSE_SOURCES, PoseSourceConfig
from seqace_ros.datasets.base import parse_frame_range
from seqace_ros.datasets.folder import FolderDataset
from seqace_ros.datasets.frame_selection import FrameSelectionConfig
from seqace_ros.pipeline.mapping.bag_mapping import map_bag
from seqace_ros.pipeline.mapping.config import PRESETS, MappingConfig, preset
from seqace_ros.pipeline.mapping.report import FrameAccounting, check_output_path
from seqace_ros.pipeline.mapping.run import ProgressCallback, map_with_report

FieldValue = bool | int | float | str | Path


class MappingRequestError(SeqaceError, ValueError):
    """Mapping options that make no request: unknown, missing or inconsistent."""


@dataclass(frozen=True)
class RequestField:
    """One option of a mapping request.

    Attributes:
        name: key in the value mapping, and the node parameter's name.
        kind: type of the value: ``str``, ``int``, ``float``, ``bool`` or ``Path``.
        default: the value when none is given; ``None``: unset (the library decides).
        help: what it does, with units (the command-line help and parameter description).
        flag: command-line spelling: ``--some-flag`` (default: ``--`` and the name with
            dashes), or a bare word for a positional argument.
        choices: allowed values (empty: any).
        bounds: inclusive (min, max) of a number (the node parameter's range).
        required: a request without a value for it is an error.
        parameter_unset: the node parameter value that means unset, for a number whose 0 is
            a value (default: 0 and ``""`` mean unset, see :attr:`parameter_default`).
    """

    name: str
    kind: type
    default: FieldValue | None
    help: str
    flag: str = ""
    choices: tuple[str, ...] = ()
    bounds: tuple[float, float] | None = None
    required: bool = False
    parameter_unset: int | None = None

    @property
    def cli_flag(self) -> str:
        """The command-line spelling (see ``flag``)."""
        return self.flag or "--" + self.name.replace("_", "-")

    @property
    def parameter_default(self) -> FieldValue:
        """The node parameter's default: ROS parameters have no ``None``, so an unset field is
        declared as ``""`` (text, paths) or 0 (numbers), which :func:`values_from_parameters`
        reads back as unset."""
        if self.default is not None:
            return self.default
        if self.parameter_unset is not None:
            return self.parameter_unset
        return {int: 0, float: 0.0}.get(self.kind, "")

    @property
    def parameter_bounds(self) -> tuple[float, float] | None:
        """The node parameter's range: :attr:`bounds`, widened to take ``parameter_unset``."""
        if self.bounds is None or self.parameter_unset is None:
            return self.bounds
        return min(self.bounds[0], self.parameter_unset), self.bounds[1]

    def check(self, value: FieldValue) -> None:
        """Reject a number outside :attr:`bounds` (NaN and infinity included); numbers without
        bounds are checked where they are used.

        Raises:
            MappingRequestError: naming the field, its range and the value.
        """
        if self.bounds is None or isinstance(value, bool | str | Path):
            return
        low, high = self.bounds
        if not (math.isfinite(value) and low <= value <= high):
            raise MappingRequestError(
                f"{self.name} must be >= {self.kind(low)} and <= {self.kind(high)}, got {value}")


FOLDER_FIELDS: tuple[RequestField, ...] = (
    RequestField("dataset", Path, None, "Dataset folder in the 7-Scenes or ACE layout.",
                 flag="dataset", required=True),
    RequestField("frames", str, ":", "Frame range START:END (END exclusive; either side may "
                 "be empty), or several joined by commas: 0:200,400:700."),
    RequestField("intrinsics", str, None, "Pinhole fx,fy,cx,cy in pixels, for folders without "
                 "calibration files."),
    RequestField("focal", float, None, "Single focal length in pixels, principal point at the "
                 "image centre, for folders without calibration files."),
)

#: Shared by folder and bag mapping.
DEPTH_TO_COLOUR_FIELD = RequestField(
    "depth_to_colour", str, None, "RGB-D: the depth camera's pose in the colour camera, "
    "T_colour_depth, as 'x,y,z' (metres) or 'x,y,z,qx,qy,qz,qw' (OpenCV optical frames). "
    "Unset: a bag's TF between the two optical frames; a 7-Scenes folder with its own "
    "depth-intrinsics.txt the Kinect v1 layout; otherwise depth registered to colour.")

#: Folder options that only mapping takes (``seqace eval`` and ``localize`` read no depth).
FOLDER_MAPPING_FIELDS: tuple[RequestField, ...] = (
    RequestField("depth", bool, False, "RGB-D mapping: read each frame's depth image "
                 "(frame-XXXXXX.depth.png, or depth/<stem>.png in the ACE layout; 16-bit "
                 "millimetres) and use it as 3D supervision beside the reprojection loss."),
    DEPTH_TO_COLOUR_FIELD,
)

BAG_FIELDS: tuple[RequestField, ...] = (
    RequestField("bag_path", Path, None, "Bag to map: a rosbag2 folder (sqlite3 or mcap) or a "
                 "ROS 1 .bag file.", flag="bag", required=True),
    RequestField("image_topic", str, "/camera/image_raw", "sensor_msgs/Image or "
                 "CompressedImage topic in the bag."),
    RequestField("camera_info_topic", str, None, "CameraInfo topic; unset: next to the image "
                 "topic (/cam/image_raw -> /cam/camera_info)."),
    RequestField("calibration_file", Path, None, "Camera-info YAML used instead of the "
                 "CameraInfo topic.", flag="--calibration"),
    RequestField("camera_frame", str, None, "Optical frame of the images; unset: their "
                 "header.frame_id."),
    RequestField("pose_source", str, "tf", "Where camera poses come from: tf (/tf and "
                 "/tf_static), odometry (nav_msgs/Odometry on pose_topic), pose (PoseStamped or "
                 "PoseWithCovarianceStamped on pose_topic) or tum (tum_file).",
                 choices=POSE_SOURCES),
    RequestField("map_frame", str, "map", "World frame of the map."),
    RequestField("pose_topic", str, None, "Odometry or pose topic (pose_source odometry or "
                 "pose)."),
    RequestField("tum_file", Path, None, "TUM trajectory file, 'stamp tx ty tz qx qy qz qw' "
                 "(pose_source tum)."),
    RequestField("body_frame", str, None, "Frame the pose topic or TUM poses describe; unset: "
                 "the camera frame. /tf_static links it to the camera."),
    RequestField("max_gap_s", float, 0.1, "Largest time between an image and its pose "
                 "samples, seconds.", flag="--max-gap", bounds=(0.0, 3600.0)),
    RequestField("min_translation_m", float, 0.0, "Skip frames that moved less than this since "
                 "the last kept one (metres), unless they turned min_rotation_deg; 0: off.",
                 flag="--min-translation", bounds=(0.0, 1000.0)),
    RequestField("min_rotation_deg", float, 0.0, "See min_translation_m (degrees); 0: off.",
                 flag="--min-rotation", bounds=(0.0, 180.0)),
    RequestField("max_frames", int, None, "Map with at most this many frames, evenly spaced; "
                 "unset: all.", bounds=(0, 10_000_000)),
    RequestField("depth_topic", str, None, "RGB-D mapping: depth image topic (16UC1 "
                 "millimetres or 32FC1 metres, 0 or non-finite invalid), each image paired "
                 "with the nearest depth image in time; unset: RGB only."),
    RequestField("depth_camera_info_topic", str, None, "CameraInfo of the depth images; "
                 "unset: next to the depth topic."),
    DEPTH_TO_COLOUR_FIELD,
)

TRAINING_FIELDS: tuple[RequestField, ...] = (
    RequestField("map_path", Path, None, "Map file to write (.safetensors); its report "
                 "NAME.report.json, NAME.trajectory.png and NAME.loss.png go beside it.",
                 flag="--out", required=True),
    RequestField("preset", str, "cpu", "Mapping preset (training settings).",
                 choices=tuple(sorted(PRESETS))),
    RequestField("iterations", int, None, "Training steps; unset: the preset's.",
                 bounds=(0, 10_000_000)),
    RequestField("batch_size", int, None, "Patches per training step; unset: the preset's. "
                 "Training time grows with steps x batch size; at the same product, fewer "
                 "patches per step with the preset's steps keep more accuracy than fewer "
                 "steps (README, Benchmarks).", bounds=(0, 10_000_000)),
    RequestField("augmentation_passes", int, None, "Augmented copies of each mapping image in "
                 "the training buffer (each adds encoding time and buffer memory); unset: the "
                 "preset's.", bounds=(0, 64)),
    RequestField("head_width", int, None, "Width of the scene head's layers; unset: the "
                 "preset's (cpu 256, gpu 512). Training and inference time grow about with its "
                 "square; a narrower head loses accuracy away from the mapping views (README, "
                 "Benchmarks).", bounds=(0, 4096)),
    RequestField("head_blocks", int, None, "Residual blocks of three layers after the head's "
                 "first block; unset (node parameter: -1): the preset's (1).", bounds=(0, 16),
                 parameter_unset=-1),
    RequestField("sequence", bool, False, "SeqACE's sequence loss: feature tracks across the "
                 "frames (in temporal order) and the reprojection of tracked patches into their "
                 "keyframe."),
    RequestField("keyframes", int, None, "Keyframes stored in the map for pose refinement "
                 "(seqace eval/localize --refine), spread over the mapping poses; unset (node "
                 "parameter: -1): the preset's (96; test: 8); 0: none.", bounds=(0, 100_000),
                 parameter_unset=-1),
    RequestField("keyframe_descriptor_bytes", int, None, "Bytes each keyframe keypoint "
                 "descriptor is stored in: product-quantization codes (a divisor of 64), or 0 "
                 "for 64 float16 values (128 bytes, a map about four times as large); unset "
                 "(node parameter: -1): the preset's (16).", bounds=(0, 64),
                 parameter_unset=-1),
    RequestField("seed", int, 0, "Random seed of augmentation and training.",
                 bounds=(0, 2**31 - 1)),
    RequestField("device", str, "auto", "Torch device: auto (CUDA when available), cpu or cuda.",
                 choices=("auto", "cpu", "cuda")),
)

FIELDS_BY_NAME: dict[str, RequestField] = {
    f.name: f for f in (*FOLDER_FIELDS, *FOLDER_MAPPING_FIELDS, *BAG_FIELDS, *TRAINING_FIELDS)}


def _numbers(text: str, expected: str) -> list[float]:
    """The comma-separated numbers of ``text``; ``expected`` names them in the error."""
    try:
        return [float(v) for v in text.split(",")]
    except ValueError as error:
        raise MappingRequestError(f"{expected} numbers, got {text!r}") from error


def parse_pinhole(text: str | None) -> tuple[float, float, float, float] | None:
    """``"fx,fy,cx,cy"`` (pixels) as four floats; ``None`` stays ``None``.

    Raises:
        MappingRequestError: not four comma-separated numbers.
    """
    if text is None:
        return None
    values = _numbers(text, "intrinsics must be fx,fy,cx,cy")
    if len(values) != 4:
        raise MappingRequestError(f"intrinsics need 4 numbers fx,fy,cx,cy, got {len(values)}")
    return values[0], values[1], values[2], values[3]


def parse_extrinsic(text: str | None) -> NDArray[np.float64] | None:
    """``"x,y,z"`` or ``"x,y,z,qx,qy,qz,qw"`` (metres, unit quaternion) as a 4x4 transform;
    ``None`` stays ``None``.

    Raises:
        MappingRequestError: not 3 or 7 comma-separated finite numbers, or a quaternion far
            from unit length.
    """
    if text is None:
        return None
    values = np.array(_numbers(text, "depth_to_colour must be x,y,z or x,y,z,qx,qy,qz,qw"))
    if len(values) not in (3, 7) or not np.all(np.isfinite(values)):
        raise MappingRequestError(
            f"depth_to_colour needs 3 or 7 finite numbers (x,y,z[,qx,qy,qz,qw]), got {text!r}")
    q_xyzw = values[3:] if len(values) == 7 else np.array([0.0, 0.0, 0.0, 1.0])
    if abs(np.linalg.norm(q_xyzw) - 1.0) > 1e-3:
        raise MappingRequestError(f"depth_to_colour quaternion must have unit length, got "
                                  f"{q_xyzw.tolist()}")
    return transform_from_translation_quaternion(values[:3], q_xyzw)


def values_from_parameters(
    parameters: Mapping[str, FieldValue],
) -> dict[str, FieldValue | None]:
    """Node parameter values as request values: a field with no default that still holds its
    parameter default (``""`` or 0, see :attr:`RequestField.parameter_default`) is unset."""
    values: dict[str, FieldValue | None] = {}
    for name, value in parameters.items():
        field = FIELDS_BY_NAME.get(name)
        unset = (field is not None and field.default is None
                 and type(value) is type(field.parameter_default)
                 and value == field.parameter_default)
        values[name] = None if unset else value
    return values


@dataclass(frozen=True)
class FolderSource:
    """Posed frames in a dataset folder.

    Attributes:
        path: the dataset folder (7-Scenes or ACE layout).
        frames: frame range ``START:END`` (END exclusive).
        pinhole: (fx, fy, cx, cy) in pixels for folders without calibration files.
        focal: single focal length in pixels (principal point at the image centre).
        depth: also read the frames' depth images (RGB-D mapping).
        T_colour_depth: (4, 4) depth-to-colour extrinsic; ``None``: the folder's default.
    """

    path: Path
    frames: str = ":"
    pinhole: tuple[float, float, float, float] | None = None
    focal: float | None = None
    depth: bool = False
    T_colour_depth: NDArray[np.float64] | None = None

    def open(self, require_poses: bool) -> tuple[FolderDataset, Sequence[int]]:
        """The dataset and the indices of the frame range.

        Raises:
            DatasetError: a missing or unreadable folder, a bad focal length.
            MappingRequestError: a malformed frame range or one outside the dataset.
        """
        dataset = FolderDataset(self.path, pinhole=self.pinhole, focal=self.focal,
                                require_poses=require_poses, depth=self.depth,
                                T_colour_depth=self.T_colour_depth)
        try:
            return dataset, parse_frame_range(self.frames, len(dataset))
        except ValueError as error:
            raise MappingRequestError(str(error)) from error


@dataclass(frozen=True)
class BagSource:
    """Posed images in a bag.

    Attributes:
        path: rosbag2 folder (sqlite3 or mcap) or ROS 1 ``.bag`` file.
        config: topics, pose source and frame selection (``progress`` is set by
            :func:`run_request`).
    """

    path: Path
    config: BagConfig


@dataclass(frozen=True)
class MappingRequest:
    """A mapping job: the frames to map, the map to write, how to train.

    Attributes:
        source: a folder or a bag of posed frames.
        map_path: the map file to write (the report goes beside it).
        config: training settings.
        device: torch device (``auto``: CUDA when present).
    """

    source: FolderSource | BagSource
    map_path: Path
    config: MappingConfig
    device: str = "auto"

    @classmethod
    def from_values(cls, values: Mapping[str, FieldValue | None]) -> MappingRequest:
        """The request of a name -> value mapping of :data:`FIELDS_BY_NAME` fields.

        A request for a bag names ``bag_path`` (with :data:`BAG_FIELDS`), one for a folder
        names ``dataset`` (with :data:`FOLDER_FIELDS`); both take :data:`TRAINING_FIELDS`.
        A value of ``None`` or a missing name takes the field's default.

        Raises:
            MappingRequestError: an unknown name, a field of the other source, a missing
                required value, or values the configs reject (the message says which).
        """
        is_bag = "bag_path" in values
        if is_bag == ("dataset" in values):
            raise MappingRequestError("a mapping request names either bag_path (a bag) or "
                                      f"dataset (a folder), got {sorted(values)}")
        fields = (*(BAG_FIELDS if is_bag else (*FOLDER_FIELDS, *FOLDER_MAPPING_FIELDS)),
                  *TRAINING_FIELDS)
        unknown = sorted(set(values) - {f.name for f in fields})
        if unknown:
            raise MappingRequestError(
                f"unknown {'bag' if is_bag else 'folder'} mapping options {unknown}; known: "
                f"{sorted(f.name for f in fields)}")
        given = {f.name: f.default if values.get(f.name) is None else values[f.name]
                 for f in fields}
        for field in fields:
            if given[field.name] is not None:
                field.check(given[field.name])  # type: ignore[arg-type]
        required = [f.name for f in fields if f.required]
        if any(given[name] in (None, "") for name in required):
            raise MappingRequestError(
                f"{' and '.join(required)} are required, got "
                + ", ".join(f"{name}={given[name]!r}" for name in required))
        depth = bool(given["depth_topic"] if is_bag else given["depth"])
        if given["depth_to_colour"] is not None and not depth:
            raise MappingRequestError(
                "depth_to_colour is for RGB-D mapping; give "
                f"{'depth_topic' if is_bag else 'depth'} too, or drop it")
        overrides: dict[str, object] = {"seed": given["seed"], "sequence": given["sequence"],
                                        "depth": depth}
        for name in ("iterations", "batch_size", "augmentation_passes"):
            if given[name] is not None:
                overrides[name] = given[name]
        try:
            config = preset(str(given["preset"]), **overrides)
            head = config.head
            if given["head_width"] is not None:
                head = replace(head, width=int(given["head_width"]))  # type: ignore[arg-type]
            if given["head_blocks"] is not None:
                head = replace(head, num_blocks=int(given["head_blocks"]))  # type: ignore[arg-type]
            config = replace(config, head=head)
            keyframes = config.keyframes
            if given["keyframes"] is not None:
                keyframes = replace(keyframes, count=int(given["keyframes"]))  # type: ignore[arg-type]
            if given["keyframe_descriptor_bytes"] is not None:
                keyframes = replace(keyframes, descriptor_bytes=int(
                    given["keyframe_descriptor_bytes"]))  # type: ignore[arg-type]
            config = replace(config, keyframes=keyframes)
            source = _bag_source(given) if is_bag else _folder_source(given)
        except ValueError as error:
            raise MappingRequestError(str(error)) from None
        return cls(source, Path(given["map_path"]), config, str(given["device"]))

    def summary(self) -> str:
        """One line for logs: the source, the map to write, the training steps."""
        source = self.source
        if isinstance(source, BagSource):
            what = (f"{source.path} (image topic {source.config.image_topic}, pose source "
                    f"{source.config.poses.source})")
        else:
            what = f"{source.path} (frames {source.frames})"
        return f"{what} -> {self.map_path}, {self.config.iterations} steps"


def _optional_path(value: FieldValue | None) -> Path | None:
    return None if value is None else Path(value)


def _optional_text(value: FieldValue | None) -> str | None:
    return None if value is None else str(value)


def _folder_source(given: Mapping[str, FieldValue | None]) -> FolderSource:
    focal = given["focal"]
    return FolderSource(Path(given["dataset"]), str(given["frames"]),
                        parse_pinhole(_optional_text(given["intrinsics"])),
                        None if focal is None else float(focal), bool(given["depth"]),
                        parse_extrinsic(_optional_text(given["depth_to_colour"])))


def _bag_source(given: Mapping[str, FieldValue | None]) -> BagSource:
    if not given["image_topic"]:
        raise MappingRequestError("image_topic must not be empty")
    max_frames = given["max_frames"]
    poses = PoseSourceConfig(
        source=str(given["pose_source"]),  # type: ignore[arg-type]
        map_frame=str(given["map_frame"]),
        topic=_optional_text(given["pose_topic"]),
        tum_file=_optional_path(given["tum_file"]),
        body_frame=_optional_text(given["body_frame"]),
        max_gap_s=float(given["max_gap_s"]),  # type: ignore[arg-type]
    )
    selection = FrameSelectionConfig(
        min_translation_m=float(given["min_translation_m"]),  # type: ignore[arg-type]
        min_rotation_deg=float(given["min_rotation_deg"]),  # type: ignore[arg-type]
        max_frames=None if max_frames is None else int(max_frames),  # type: ignore[arg-type]
    )
    return BagSource(Path(given["bag_path"]), BagConfig(
        image_topic=str(given["image_topic"]),
        camera_info_topic=_optional_text(given["camera_info_topic"]),
        calibration_file=_optional_path(given["calibration_file"]),
        camera_frame=_optional_text(given["camera_frame"]),
        poses=poses,
        selection=selection,
        depth_topic=_optional_text(given["depth_topic"]),
        depth_camera_info_topic=_optional_text(given["depth_camera_info_topic"]),
        T_colour_depth=_rows(parse_extrinsic(_optional_text(given["depth_to_colour"]))),
    ))


def _rows(T: NDArray[np.float64] | None) -> tuple[tuple[float, ...], ...] | None:
    return None if T is None else tuple(tuple(float(v) for v in row) for row in T)


def run_request(
    request: MappingRequest,
    *,
    progress: bool = True,
    on_progress: ProgressCallback | None = None,
) -> Path:
    """Map the request's frames; write the map and its report (see :func:`map_with_report`).

    The output is checked before the source is read. ``progress`` switches the tqdm bars
    (stderr) of encoding and training; the bag pass, which sends no :class:`MappingProgress`
    events, shows its bar whenever progress is wanted at all (``progress`` or
    ``on_progress``).

    Returns:
        The map path.

    Raises:
        SeqaceError: bad options (``MappingRequestError``), data (``DatasetError``,
            ``BagError``, ``MappingDataError``, ...) or output (``MappingOutputError``).
        StopRequested: a stop signal arrived (see :mod:`seqace_ros.core.stop`).
    """
    start = time.perf_counter()
    target = check_output_path(request.map_path)
    source = request.source
    if isinstance(source, BagSource):
        bag_config = replace(source.config, progress=progress or on_progress is not None)
        return map_bag(source.path, bag_config, request.config, target, device=request.device,
                       progress=progress, on_progress=on_progress)
    dataset, indices = source.open(require_poses=True)
    accounting = FrameAccounting(len(dataset), len(indices),
                                 {"outside_frame_range": len(dataset) - len(indices)})
    summary = {"kind": "folder", "path": str(source.path), "frames": source.frames}
    return map_with_report(dataset, indices, request.config, target, summary, accounting,
                           device=request.device, progress=progress, on_progress=on_progress,
                           started_at=start, read_seconds=time.perf_counter() - start)
