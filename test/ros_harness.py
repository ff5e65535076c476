"""Harness for ROS 2 tests over real DDS, kept on loopback.

Plain helpers; the pytest fixtures built on them live in ``test/conftest.py``. Nothing here imports
rclpy at module level, so test sessions without ROS 2 can import this module.

- :func:`configure_loopback_dds`: a per-run ``ROS_DOMAIN_ID`` and
  ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` in ``os.environ`` (child processes inherit them).
- :func:`import_ros_module`: import an rclpy-side module, or skip the test (fail under CI) when
  ROS 2 is not installed at all. An installed but broken ROS 2 raises instead of skipping.
- :class:`BackgroundSpinner`: an executor spinning test nodes in a background thread.
- :func:`wait_for` and :class:`TopicCollector`: waits with timeouts whose errors say what was
  expected and what arrived.
- :func:`diagnostic_values`: the key/values of a node's ``/diagnostics`` message.
- :class:`NodeProcess`: a node entry point run as a subprocess with
  ``--ros-args --params-file FILE``, output captured to a log file, stopped with SIGINT then
  SIGKILL.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import pytest

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.node import Node
    from rclpy.qos import QoSProfile

DOMAIN_ID_ENV = "ROS_DOMAIN_ID"
DISCOVERY_RANGE_ENV = "ROS_AUTOMATIC_DISCOVERY_RANGE"
LOOPBACK_DISCOVERY_RANGE = "LOCALHOST"
DOMAIN_ID_OVERRIDE_ENV = "SEQACE_TEST_ROS_DOMAIN_ID"
"""Set this to pin the test run's domain (debugging); otherwise a random one is drawn per run."""
MIN_DOMAIN_ID = 1
MAX_DOMAIN_ID = 101
"""Domain IDs 0..101 map to UDP ports that are safe on Linux; 0, everyone's default, is skipped."""
NON_LOCAL_DISCOVERY_ENV = ("ROS_STATIC_PEERS", "ROS_DISCOVERY_SERVER", "ROS_LOCALHOST_ONLY")
"""Variables that could send discovery traffic off the machine (or, for the deprecated
ROS_LOCALHOST_ONLY, conflict with the discovery range); removed for the test run."""
REQUIRE_ROS_ENV = "SEQACE_REQUIRE_ROS"
"""When set (or when CI is true), a missing ROS 2 fails ROS tests instead of skipping them."""

MessageT = TypeVar("MessageT")


class HarnessConfigError(ValueError):
    """An environment variable given to the harness has an invalid value."""


def configure_loopback_dds(environ: dict[str, str] | None = None) -> int:
    """Keep DDS on loopback and give this test run its own domain.

    Sets ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and ``ROS_DOMAIN_ID`` (random in
    ``[MIN_DOMAIN_ID, MAX_DOMAIN_ID]``, or ``SEQACE_TEST_ROS_DOMAIN_ID`` when given) and removes
    the variables in :data:`NON_LOCAL_DISCOVERY_ENV`. Call it before any rclpy context exists;
    subprocesses started afterwards inherit the settings.

    Args:
        environ: The environment to change; ``os.environ`` when None.

    Returns:
        The domain ID set.

    Raises:
        HarnessConfigError: ``SEQACE_TEST_ROS_DOMAIN_ID`` is not an integer in the valid range.
    """
    env = os.environ if environ is None else environ
    override = env.get(DOMAIN_ID_OVERRIDE_ENV)
    if override is None:
        domain_id = MIN_DOMAIN_ID + secrets.randbelow(MAX_DOMAIN_ID - MIN_DOMAIN_ID + 1)
    else:
        try:
            domain_id = int(override)
        except ValueError:
            raise HarnessConfigError(
                f"{DOMAIN_ID_OVERRIDE_ENV} must be an integer in [{MIN_DOMAIN_ID}, "
                f"{MAX_DOMAIN_ID}], got {override!r}"
            ) from None
        if not MIN_DOMAIN_ID <= domain_id <= MAX_DOMAIN_ID:
            raise HarnessConfigError(
                f"{DOMAIN_ID_OVERRIDE_ENV} must be in [{MIN_DOMAIN_ID}, {MAX_DOMAIN_ID}], "
                f"got {domain_id}"
            )
    for name in NON_LOCAL_DISCOVERY_ENV:
        env.pop(name, None)
    env[DISCOVERY_RANGE_ENV] = LOOPBACK_DISCOVERY_RANGE
    env[DOMAIN_ID_ENV] = str(domain_id)
    return domain_id


def ros_required(environ: Mapping[str, str] | None = None) -> bool:
    """Whether a missing ROS 2 must fail the ROS tests rather than skip them (CI, or asked)."""
    env = os.environ if environ is None else environ
    return env.get("CI", "").lower() == "true" or bool(env.get(REQUIRE_ROS_ENV))


def setup_tool(name: str, package: str) -> str:
    """The command ``name`` next to this Python (installed by scripts/setup.sh from the PyPI
    ``package``), else on PATH; skips the calling test when absent, or fails it when
    :func:`ros_required`."""
    beside = Path(sys.executable).parent / name
    found = str(beside) if beside.is_file() else shutil.which(name)
    if found is None:
        reason = f"{name} is not installed (scripts/setup.sh installs {package})"
        if ros_required():
            pytest.fail(reason, pytrace=False)
        pytest.skip(reason)
    return found


def import_ros_module(name: str) -> ModuleType:
    """Import a module of the ROS 2 Python stack (``rclpy``, ``sensor_msgs.msg``, ...).

    When its top-level package is not installed at all, the calling test (or, at module level,
    the whole test module) is skipped with the reason, or failed when :func:`ros_required`.
    A package that is installed but fails to import raises its ImportError: a broken install
    must not look like an absent one.

    Args:
        name: Dotted module name.

    Returns:
        The imported module.
    """
    top_level = name.partition(".")[0]
    if importlib.util.find_spec(top_level) is None:
        reason = (
            f"ROS 2 is not installed: Python package {top_level!r} not found "
            f"(scripts/setup.sh installs the ROS 2 wheels)"
        )
        if ros_required():
            required = f"ROS tests must run here (CI or {REQUIRE_ROS_ENV})"
            pytest.fail(f"{reason}; {required}", pytrace=False)
        pytest.skip(reason, allow_module_level=True)
    return importlib.import_module(name)


def diagnostic_values(msg: Any) -> dict[str, str]:
    """The key/values of the first status of a ``diagnostic_msgs/DiagnosticArray``.

    Our nodes publish one status per array (the node's own).
    """
    return {kv.key: kv.value for kv in msg.status[0].values}


def wait_for(
    predicate: Callable[[], Any],
    timeout_s: float,
    description: str,
    poll_s: float = 0.01,
) -> Any:
    """Poll ``predicate`` until it returns a truthy value, and return that value.

    Args:
        predicate: Called repeatedly from this thread; must not block.
        timeout_s: Seconds to wait in total.
        description: What is awaited, for the error message ("3 images on /camera/image").
        poll_s: Seconds between calls.

    Raises:
        TimeoutError: The predicate stayed falsy for ``timeout_s`` seconds.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"timed out after {timeout_s:.1f} s waiting for {description}")
        time.sleep(poll_s)


class BackgroundSpinner:
    """Spins nodes of one rclpy context in a daemon thread, for tests that wait in the main thread.

    Nodes made with :meth:`create_node` belong to the spinner and are destroyed by :meth:`stop`;
    nodes passed to :meth:`add_node` are only spun. An exception raised in a callback stops the
    spinning and is re-raised by :meth:`stop`.
    """

    def __init__(self, context: Context, poll_s: float = 0.02) -> None:
        """Create the executor; call :meth:`start` to begin spinning.

        Args:
            context: An initialised rclpy context.
            poll_s: Longest time one wait of the executor blocks, seconds.
        """
        from rclpy.executors import SingleThreadedExecutor

        self._context = context
        self._poll_s = poll_s
        self._executor = SingleThreadedExecutor(context=context)
        self._owned_nodes: list[Node] = []
        self._stop_requested = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._spin, name="ros-test-spinner", daemon=True)

    def create_node(self, name: str) -> Node:
        """Create a node in the spinner's context, spin it, and destroy it on :meth:`stop`."""
        import rclpy

        node = rclpy.create_node(name, context=self._context)
        self._owned_nodes.append(node)
        self._executor.add_node(node)
        return node

    def add_node(self, node: Node) -> None:
        """Spin a node that the caller keeps and destroys."""
        self._executor.add_node(node)

    def start(self) -> None:
        """Start spinning in the background thread."""
        self._thread.start()

    def _spin(self) -> None:
        from rclpy.executors import ExternalShutdownException

        try:
            while not self._stop_requested.is_set() and self._context.ok():
                self._executor.spin_once(timeout_sec=self._poll_s)
        except ExternalShutdownException:
            pass
        except BaseException as error:  # re-raised in the test thread by stop()
            self._error = error

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop spinning, destroy the owned nodes and shut the executor down.

        Raises:
            RuntimeError: The spinning thread did not finish within ``timeout_s``, or a
                callback raised (the callback's exception is chained).
        """
        self._stop_requested.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                raise RuntimeError(f"the ROS spinner thread did not stop within {timeout_s} s")
        for node in self._owned_nodes:
            self._executor.remove_node(node)
            node.destroy_node()
        self._owned_nodes.clear()
        self._executor.shutdown()
        if self._error is not None:
            raise RuntimeError("a ROS callback raised while spinning") from self._error


class TopicCollector(Generic[MessageT]):
    """Subscribes to a topic and keeps every message received, in arrival order (thread-safe)."""

    def __init__(
        self, node: Node, msg_type: type[MessageT], topic: str, qos: QoSProfile | int
    ) -> None:
        """Create the subscription on ``node`` (which must be spun, e.g. by a BackgroundSpinner).

        Args:
            node: Node that owns the subscription.
            msg_type: Message class, e.g. ``sensor_msgs.msg.Image``.
            topic: Topic name.
            qos: QoS profile, or a history depth for the default (reliable, volatile) profile.
        """
        self.topic = topic
        self._messages: list[MessageT] = []
        self._condition = threading.Condition()
        self.subscription = node.create_subscription(msg_type, topic, self._on_message, qos)

    def _on_message(self, message: MessageT) -> None:
        with self._condition:
            self._messages.append(message)
            self._condition.notify_all()

    @property
    def messages(self) -> list[MessageT]:
        """A copy of the messages received so far."""
        with self._condition:
            return list(self._messages)

    def wait_for(self, count: int, timeout_s: float) -> list[MessageT]:
        """Block until at least ``count`` messages have arrived; return the first ``count``.

        Raises:
            TimeoutError: Fewer than ``count`` messages arrived within ``timeout_s`` seconds.
        """
        with self._condition:
            arrived = self._condition.wait_for(lambda: len(self._messages) >= count, timeout_s)
            if not arrived:
                raise TimeoutError(
                    f"timed out after {timeout_s:.1f} s waiting for {count} message(s) on "
                    f"{self.topic}: received {len(self._messages)}"
                )
            return list(self._messages[:count])


def write_params_file(path: Path, parameters: Mapping[str, Any], node_name: str = "/**") -> Path:
    """Write a ROS 2 parameters YAML file: ``{node_name: {ros__parameters: parameters}}``.

    Args:
        path: Where to write.
        parameters: Parameter names to values (bool, int, float, str, or lists of one of those).
        node_name: Fully qualified node name, or the ``/**`` wildcard for every node.

    Returns:
        ``path``.
    """
    import yaml

    path.write_text(yaml.safe_dump({node_name: {"ros__parameters": dict(parameters)}}))
    return path


def _default_sigint() -> None:
    """In the child before exec: SIGINT back to its default action (see NodeProcess.start)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class NodeProcess:
    """A ROS 2 node entry point run as a subprocess, with its parameters given as a params file.

    The child inherits this process's environment (so the test run's ``ROS_DOMAIN_ID`` and
    loopback discovery range), plus ``PYTHONUNBUFFERED=1`` and ``extra_env``. Its stdout and
    stderr go to ``<work_dir>/<name>.log``.
    """

    def __init__(
        self,
        target: str | Path | Sequence[str],
        work_dir: Path,
        parameters: Mapping[str, Any] | None = None,
        name: str = "node",
        ros_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> None:
        """Describe the process; :meth:`start` launches it.

        Args:
            target: A module name (``"seqace_ros.ros.relocalization_node"``, run with
                ``python -m``), the path of a Python script, or a whole command (a list: an
                installed executable, a shell that sources a workspace first).
            work_dir: Existing directory for the params file, the log and the child's cwd.
            parameters: Parameters for every node in the process; no params file when empty.
            name: Label for the files and messages.
            ros_args: More arguments after ``--ros-args`` (e.g. ``["-r", "image:=/cam"]``).
            extra_env: Environment variables added to the inherited ones.
        """
        if isinstance(target, list | tuple):
            program = list(target)
        elif isinstance(target, Path):
            if not target.is_file():
                raise FileNotFoundError(f"node script not found: {target}")
            program = [sys.executable, str(target)]
        else:
            program = [sys.executable, "-m", target]
        self.name = name
        self.work_dir = work_dir
        self.log_path = work_dir / f"{name}.log"
        self.params_path: Path | None = None
        arguments = ["--ros-args", *ros_args]
        if parameters:
            self.params_path = write_params_file(work_dir / f"{name}.params.yaml", parameters)
            arguments += ["--params-file", str(self.params_path)]
        self.command = [*program, *arguments]
        self._env = {**os.environ, "PYTHONUNBUFFERED": "1", **(extra_env or {})}
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        """Process ID of the started child."""
        return self._started().pid

    @property
    def returncode(self) -> int | None:
        """Exit status once the child has exited (negative: killed by that signal), else None."""
        return self._started().poll()

    def start(self) -> NodeProcess:
        """Launch the child. Returns self."""
        if self._popen is not None:
            raise RuntimeError(f"{self.name} was already started")
        with self.log_path.open("wb") as log:
            self._popen = subprocess.Popen(
                self.command,
                cwd=self.work_dir,
                env=self._env,
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # A test run started in the background (`cmd &` in a script) inherits SIGINT
                # ignored, and exec keeps it ignored: give the child the default handler so
                # stop()'s SIGINT means what it means for a node started from a terminal.
                preexec_fn=_default_sigint,
            )
        return self

    def _started(self) -> subprocess.Popen[bytes]:
        if self._popen is None:
            raise RuntimeError(f"{self.name} has not been started")
        return self._popen

    def is_running(self) -> bool:
        """Whether the child has been started and has not exited."""
        return self._popen is not None and self._popen.poll() is None

    def log_text(self) -> str:
        """Everything the child has written to stdout and stderr so far."""
        if not self.log_path.exists():
            return ""
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, timeout_s: float) -> None:
        """Block until ``text`` appears in the child's output.

        Raises:
            TimeoutError: It did not appear within ``timeout_s``; the message has the log tail.
            RuntimeError: The child exited first.
        """

        def logged() -> bool:
            if text in self.log_text():
                return True
            if not self.is_running():
                raise RuntimeError(f"{text!r} never logged before exit: {self.describe()}")
            return False

        try:
            wait_for(logged, timeout_s, f"{text!r} in the output of {self.name}", poll_s=0.05)
        except TimeoutError as error:
            raise TimeoutError(f"{error}\n{self.describe()}") from None

    def describe(self, tail_lines: int = 40) -> str:
        """Command, state and the last lines of output, for failure messages."""
        if self._popen is None:
            state = "not started"
        elif self._popen.poll() is None:
            state = f"running (pid {self._popen.pid})"
        else:
            state = f"exited with status {self._popen.returncode}"
        tail = "\n".join(self.log_text().splitlines()[-tail_lines:])
        return (
            f"--- {self.name}: {state}\n--- command: {' '.join(self.command)}\n"
            f"--- last {tail_lines} lines of {self.log_path}:\n{tail}"
        )

    def wait(self, timeout_s: float) -> int:
        """Wait for a child that exits by itself; return its exit status.

        Raises:
            TimeoutError: Still running after ``timeout_s``; the message has the output tail.
        """
        try:
            return self._started().wait(timeout_s)
        except subprocess.TimeoutExpired:
            raise TimeoutError(
                f"{self.name} still running after {timeout_s:.1f} s\n{self.describe()}"
            ) from None

    def stop(self, sigint_timeout_s: float = 10.0, kill_timeout_s: float = 5.0) -> int | None:
        """Stop the child: SIGINT, then SIGKILL if it has not exited after ``sigint_timeout_s``.

        Safe to call again, or on a child that already exited or never started.

        Returns:
            The exit status (negative when a signal ended it), or None if never started.
        """
        if self._popen is None:
            return None
        if self._popen.poll() is None:
            self._popen.send_signal(signal.SIGINT)
            try:
                self._popen.wait(sigint_timeout_s)
            except subprocess.TimeoutExpired:
                self._popen.kill()
                self._popen.wait(kill_timeout_s)
        return self._popen.returncode

    def __enter__(self) -> NodeProcess:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def wait_diagnostic_status(diagnostics: TopicCollector[Any], since: int,
                           predicate: Callable[[Any], bool], what: str,
                           timeout_s: float = 30.0) -> Any:
    """The first ``diagnostic_msgs/DiagnosticStatus`` in the DiagnosticArray messages that
    ``diagnostics`` collects, from message ``since`` on, that satisfies ``predicate``; waits
    up to ``timeout_s``.

    Raises:
        TimeoutError: none did; the message names ``what`` and the last diagnostics.
    """
    def find() -> Any:
        for message in diagnostics.messages[since:]:
            for status in message.status:
                if predicate(status):
                    return status
        return None

    try:
        return wait_for(find, timeout_s, what)
    except TimeoutError:
        last = diagnostics.messages[-1:] or [None]
        raise TimeoutError(f"{what}; last diagnostics: {last[0]}") from None
