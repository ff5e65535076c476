"""Shared pytest setup: DDS kept on loopback in a per-run domain, ROS 2 and real-data fixtures.

``pytest_configure`` sets ``ROS_DOMAIN_ID`` (random per run) and
``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` in ``os.environ`` before any test runs, so every
rclpy context of the run and every subprocess it starts inherits them.

ROS fixtures (tests using them get the ``ros`` marker, if they lack it; they skip with the reason
when ROS 2 is not installed, and fail instead under CI):

- ``ros_context``: a fresh, initialised ``rclpy.Context`` per test, shut down even on failure.
- ``ros_spinner``: a :class:`ros_harness.BackgroundSpinner` on that context.
- ``ros_node``: a helper node spun in the background, named after the test.
- ``start_ros_process``: starts node entry points as subprocesses with a params file, and stops
  them (SIGINT, then SIGKILL) at teardown, printing their output for failure reports.

Real-data fixtures (session scope; they skip with the reason when the dev data are absent):

- ``dev_data``: the redkitchen_dev folder.
- ``dev_map_path``: the one real map the real-data tests share (:mod:`real_map`), trained once
  per clean clone and cached in pytest's cache directory.
- ``dev_scene_map``: that map, loaded.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from data_paths import require_redkitchen
from real_map import dev_map_file
from ros_harness import (
    DISCOVERY_RANGE_ENV,
    BackgroundSpinner,
    NodeProcess,
    configure_loopback_dds,
    import_ros_module,
)

if TYPE_CHECKING:
    from rclpy.context import Context
    from rclpy.node import Node

    from seqace_ros.core.map_file import SceneMap

_DOMAIN_ID_KEY = pytest.StashKey[int]()


def pytest_configure(config: pytest.Config) -> None:
    """Put this run's DDS on loopback, in its own domain, before any test starts."""
    config.stash[_DOMAIN_ID_KEY] = configure_loopback_dds()


def pytest_report_header(config: pytest.Config) -> str:
    """Name the run's DDS domain in the header, to match it with node logs."""
    return (
        f"ROS 2 DDS: ROS_DOMAIN_ID={config.stash[_DOMAIN_ID_KEY]}, {DISCOVERY_RANGE_ENV}=LOCALHOST"
    )


_ROS_FIXTURES = frozenset({"ros_context", "ros_spinner", "ros_node", "start_ros_process"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that uses a ROS fixture ``ros``, so ``-m "not ros"`` leaves it out."""
    for item in items:
        if _ROS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.ros)


@pytest.fixture
def ros_domain_id(pytestconfig: pytest.Config) -> int:
    """The ROS_DOMAIN_ID of this test run."""
    return pytestconfig.stash[_DOMAIN_ID_KEY]


@pytest.fixture
def ros_context() -> Iterator[Context]:
    """A fresh rclpy context for one test, without rclpy's signal handlers (pytest keeps SIGINT)."""
    rclpy = import_ros_module("rclpy")
    from rclpy.context import Context
    from rclpy.signals import SignalHandlerOptions

    context = Context()
    rclpy.init(context=context, signal_handler_options=SignalHandlerOptions.NO)
    try:
        yield context
    finally:
        context.try_shutdown()


@pytest.fixture
def ros_spinner(ros_context: Context) -> Iterator[BackgroundSpinner]:
    """Spins the test's nodes in a background thread; stops and destroys them at teardown."""
    spinner = BackgroundSpinner(ros_context)
    spinner.start()
    try:
        yield spinner
    finally:
        spinner.stop()


@pytest.fixture
def ros_node(request: pytest.FixtureRequest, ros_spinner: BackgroundSpinner) -> Node:
    """A helper node for the test (subscriptions, publishers), already spinning."""
    name = re.sub(r"\W", "_", f"test_{request.node.name}")[:200]
    return ros_spinner.create_node(name)


StartRosProcess = Callable[..., NodeProcess]


@pytest.fixture
def start_ros_process(tmp_path: Path) -> Iterator[StartRosProcess]:
    """Factory that starts node entry points as subprocesses; they are all stopped at teardown.

    ``start_ros_process(target, parameters=None, *, name="node", ros_args=(), extra_env=None)``
    takes the arguments of :class:`ros_harness.NodeProcess` (``target``: module name for
    ``python -m``, a script ``Path`` or a command list) and returns the started process. At
    teardown each still running process gets SIGINT, then SIGKILL; its command, state and
    output tail are printed, which pytest shows with the report of a failed test.
    """
    import_ros_module("rclpy")
    processes: list[NodeProcess] = []

    def start(
        target: str | Path | Sequence[str],
        parameters: Mapping[str, Any] | None = None,
        *,
        name: str = "node",
        ros_args: Sequence[str] = (),
        extra_env: Mapping[str, str] | None = None,
    ) -> NodeProcess:
        if any(process.name == name for process in processes):
            raise ValueError(f"a process named {name!r} was already started in this test")
        process = NodeProcess(target, tmp_path, parameters, name, ros_args, extra_env)
        processes.append(process)
        return process.start()

    try:
        yield start
    finally:
        for process in reversed(processes):
            process.stop()
            print(process.describe())


@pytest.fixture(scope="session")
def dev_data() -> Path:
    """The dev data folder; skips (with the reason) when it is absent."""
    return require_redkitchen()


@pytest.fixture(scope="session")
def dev_map_path(dev_data: Path, pytestconfig: pytest.Config) -> Path:
    """The shared real map's file (see :mod:`real_map`), trained on first use and cached."""
    return dev_map_file(dev_data, Path(pytestconfig.cache.mkdir("seqace_ros_test_maps")))


@pytest.fixture(scope="session")
def dev_scene_map(dev_map_path: Path) -> SceneMap:
    """The shared real map, loaded."""
    from seqace_ros.core.map_file import load_map

    return load_map(dev_map_path)
