"""The mapping node: map the posed images of a rosbag, log progress, exit when the map is written.

Run it as ``ros2 run seqace_ros mapping_node --ros-args -p bag_path:=BAG -p map_path:=MAP``
(or ``--params-file config/mapping.yaml``), or with
``python -m seqace_ros.ros.mapping_node --ros-args ...``, or through
``launch/mapping.launch.py``. Its parameters are the fields of a bag
:class:`~seqace_ros.pipeline.mapping.request.MappingRequest` (the options of ``seqace bag-map``),
plus ``progress_period_s``; the node only builds the request, runs it and logs.

Exit status: 0 once the map and its report are written (the last log line says where);
1 with one ``[ERROR]`` line when mapping fails or a parameter is bad (nothing is written);
130 on SIGINT, 143 on SIGTERM: the mapping stops at its next check point (a training step, a
frame, a bag message; well under 2 s), writes nothing and leaves no temporary file (see
:mod:`seqace_ros.core.stop`). The node does not spin, so rclpy's own signal handlers are not
installed. After rclpy is shut down the process ends with ``os._exit`` (output flushed first):
interpreter finalisation with DDS and torch threads still around is skipped, as it once
crashed the process after its work was done.
"""

from __future__ import annotations

import ctypes
import os
import sys
import time
from pathlib import Path
from typing import NoReturn

import rclpy
from rclpy.exceptions import InvalidParameterTypeException, InvalidParameterValueException
from rclpy.node import Node
from rclpy.signals import SignalHandlerOptions

from seqace_ros.core.errors import SeqaceError
from seqace_ros.core.stop import StopRequested, stop_on_signals
from seqace_ros.pipeline.mapping.report import ReportPaths
from seqace_ros.pipeline.mapping.request import (
    BAG_FIELDS,
    TRAINING_FIELDS,
    MappingRequest,
    MappingRequestError,
    run_request,
    values_from_parameters,
)
from seqace_ros.pipeline.mapping.run import MappingProgress
from seqace_ros.ros.params import ParameterSpec, ParameterValue

NODE_NAME = "mapping_node"
#: Logged (with the path) once the map and its report are written.
MAP_WRITTEN_LOG = "map written:"

#: The request's fields (all read at start-up only), then the node's own.
MAPPING_PARAMETER_SPECS: tuple[ParameterSpec, ...] = (
    *(ParameterSpec(f.name, f.parameter_default, f.help, choices=f.choices,
                    bounds=f.parameter_bounds, read_only=True)
      for f in (*BAG_FIELDS, *TRAINING_FIELDS)),
    ParameterSpec("progress_period_s", 5.0, "Seconds between progress log lines while encoding "
                  "and training (stage changes are always logged).", bounds=(0.0, 3600.0),
                  read_only=True),
)
_REQUEST_FIELD_NAMES = frozenset(f.name for f in (*BAG_FIELDS, *TRAINING_FIELDS))


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
        """Declare the parameters.

        Raises:
            MappingRequestError: a parameter given with the wrong type or out of its range.
        """
        super().__init__(NODE_NAME)
        try:
            self._values: dict[str, ParameterValue] = {
                spec.name: self.declare_parameter(spec.name, spec.default,
                                                  spec.descriptor()).value
                for spec in MAPPING_PARAMETER_SPECS
            }
        except (InvalidParameterTypeException, InvalidParameterValueException) as error:
            self.destroy_node()
            raise MappingRequestError(str(error)) from None

    def request(self) -> MappingRequest:
        """The mapping request of the parameters (unset text is ``""``, unset numbers 0).

        Raises:
            MappingRequestError: missing or inconsistent parameters.
        """
        return MappingRequest.from_values(values_from_parameters(
            {name: value for name, value in self._values.items()
             if name in _REQUEST_FIELD_NAMES}))

    def run(self) -> Path:
        """Map the bag; returns the map path.

        Raises:
            MappingRequestError: bad parameters.
            MappingOutputError, BagError, MappingDataError, ...: see ``run_request``.
        """
        request = self.request()
        self.get_logger().info(f"mapping {request.summary()}, preset {self._values['preset']}")
        progress_log = _ProgressLog(self, float(self._values["progress_period_s"]))
        return run_request(request, progress=False, on_progress=progress_log)


def main(args: list[str] | None = None) -> NoReturn:
    """Entry point: map, log the outcome, shut down, exit with the status.

    Exits 0 when the map is written, 1 after one error log line when mapping fails (a
    :class:`~seqace_ros.core.errors.SeqaceError`), 130 / 143 when stopped by SIGINT / SIGTERM.
    """
    status = 0
    with stop_on_signals():
        rclpy.init(args=args, signal_handler_options=SignalHandlerOptions.NO)
        node: MappingNode | None = None
        try:
            node = MappingNode()
            path = node.run()
            report = ReportPaths.for_map(path)
            node.get_logger().info(f"{MAP_WRITTEN_LOG} {path} (report: {report.json}, "
                                   f"{report.trajectory_png.name}, {report.loss_png.name})")
        except SeqaceError as error:
            message = str(error).splitlines()[0] if str(error) else type(error).__name__
            logger = node.get_logger() if node is not None else rclpy.logging.get_logger(
                NODE_NAME)
            logger.error(f"mapping failed: {message}")
            status = 1
        except StopRequested as stop:
            print(f"{NODE_NAME}: {stop}; no map written", file=sys.stderr)
            status = stop.exit_status
        except KeyboardInterrupt:  # a SIGINT before the stop handlers were installed
            print(f"{NODE_NAME}: interrupted; no map written", file=sys.stderr)
            status = 130
        finally:
            if node is not None:
                node.destroy_node()
            rclpy.try_shutdown()
    _exit(status)


def _exit(status: int) -> NoReturn:
    """Flush Python's and C's output streams, then end the process with ``status`` at once."""
    sys.stdout.flush()
    sys.stderr.flush()
    ctypes.CDLL(None).fflush(None)
    os._exit(status)


if __name__ == "__main__":
    main()
