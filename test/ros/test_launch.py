"""What the launch files start, for given launch arguments; and the files they name.

``launch``/``launch_ros`` have no wheels and cannot be installed here, so each launch file's
``generate_launch_description`` runs against minimal in-test fakes of the launch API (the
``Fake*`` classes below, installed in ``sys.modules`` for the test only). :func:`run_launch`
then does what ``ros2 launch`` does with the description: it takes each declared argument's
default unless the command line gives it, calls the ``OpaqueFunction`` callbacks with that
context and keeps the nodes whose condition holds. The tests assert on the resulting nodes:
executables, parameter files, parameter overrides, remappings, arguments.

The package is "installed" into a temporary share folder exactly as ``setup.py``'s
``data_files`` say (``setup()`` is called with a fake that records its arguments), so a launch
file naming a config file that is not installed fails here. Executables are checked against
``setup.py``'s console scripts and ``setup.cfg``'s script folder (``lib/<package>``, where
``ros2 run`` looks). The parameters files and the RViz config are checked against the node's
declarations.
"""

from __future__ import annotations

import configparser
import importlib
import importlib.util
import shutil
import sys
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from glob import glob
from pathlib import Path
from typing import Any

import pytest
import yaml
from package_metadata import setup_arguments
from ros_harness import import_ros_module

import_ros_module("rclpy")

from seqace_ros.ros.params import SPECS_BY_NAME, validate_parameter  # noqa: E402
from seqace_ros.ros.transport_profiles import (  # noqa: E402
    TRANSPORT_PROFILES,
    profile_parameters,
)

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = "seqace_ros"


# --- fakes of the launch API: just what the launch files use ----------------------------------


@dataclass
class FakeLaunchContext:
    """Fake ``launch.launch_context.LaunchContext``: the launch arguments' values."""

    launch_configurations: dict[str, str]


@dataclass(frozen=True)
class FakeLaunchConfiguration:
    """Fake ``launch.substitutions.LaunchConfiguration``: the value of a launch argument."""

    name: str

    def perform(self, context: FakeLaunchContext) -> str:
        return context.launch_configurations[self.name]


@dataclass(frozen=True)
class FakeDeclareLaunchArgument:
    """Fake ``launch.actions.DeclareLaunchArgument``."""

    name: str
    default_value: str | None = None
    description: str = ""


@dataclass(frozen=True)
class FakeOpaqueFunction:
    """Fake ``launch.actions.OpaqueFunction``: a callback returning more actions."""

    function: Callable[[FakeLaunchContext], list[Any]]


@dataclass(frozen=True)
class FakeShutdown:
    """Fake ``launch.actions.Shutdown``."""

    reason: str = ""


@dataclass(frozen=True)
class FakeIfCondition:
    """Fake ``launch.conditions.IfCondition``: true for 'true'/'1', false for 'false'/'0'."""

    predicate: FakeLaunchConfiguration

    def evaluate(self, context: FakeLaunchContext) -> bool:
        value = self.predicate.perform(context).strip().lower()
        if value not in ("true", "1", "false", "0"):
            raise ValueError(f"IfCondition needs true/false/1/0, got {value!r}")
        return value in ("true", "1")


@dataclass(frozen=True)
class FakeNode:
    """Fake ``launch_ros.actions.Node``: its arguments, as given."""

    package: str
    executable: str
    name: str | None = None
    output: str | None = None
    parameters: list[Any] = field(default_factory=list)
    remappings: list[tuple[str, str]] = field(default_factory=list)
    arguments: list[str] = field(default_factory=list)
    condition: FakeIfCondition | None = None
    on_exit: Any = None


@dataclass(frozen=True)
class FakeLaunchDescription:
    """Fake ``launch.launch_description.LaunchDescription``."""

    entities: list[Any]


def fake_launch_modules(share: Path) -> dict[str, types.ModuleType]:
    """The fake modules, by import name; ``get_package_share_directory`` returns ``share``."""
    contents: dict[str, dict[str, object]] = {
        "launch": {},
        "launch.actions": {"DeclareLaunchArgument": FakeDeclareLaunchArgument,
                           "OpaqueFunction": FakeOpaqueFunction, "Shutdown": FakeShutdown},
        "launch.conditions": {"IfCondition": FakeIfCondition},
        "launch.launch_context": {"LaunchContext": FakeLaunchContext},
        "launch.launch_description": {"LaunchDescription": FakeLaunchDescription},
        "launch.substitutions": {"LaunchConfiguration": FakeLaunchConfiguration},
        "launch_ros": {},
        "launch_ros.actions": {"Node": FakeNode},
        "ament_index_python": {},
        "ament_index_python.packages": {
            "get_package_share_directory": lambda package: str(share.parent / package)},
    }
    modules = {}
    for name, attributes in contents.items():
        module = types.ModuleType(name)
        module.__dict__.update(attributes)
        modules[name] = module
    return modules


# --- the installed package, as setup.py describes it ----------------------------------------


@dataclass(frozen=True)
class Installed:
    """What ``setup.py`` installs: the share folder and the console scripts."""

    share: Path  # <prefix>/share/seqace_ros, filled as data_files says
    console_scripts: dict[str, str]  # executable name -> "module:function"
    script_dir: str  # setup.cfg's install_scripts


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    recorded = setup_arguments()
    prefix = tmp_path_factory.mktemp("install")
    for destination, files in recorded["data_files"]:
        (prefix / destination).mkdir(parents=True, exist_ok=True)
        for file in files:
            shutil.copy(ROOT / file, prefix / destination)
    scripts = dict(line.split(" = ") for line in recorded["entry_points"]["console_scripts"])
    setup_cfg = configparser.ConfigParser()
    setup_cfg.read(ROOT / "setup.cfg")
    return Installed(prefix / "share" / recorded["name"], scripts,
                     setup_cfg["install"]["install_scripts"])


def run_launch(launch_file: Path, share: Path, **arguments: str) -> list[FakeNode]:
    """The nodes ``ros2 launch`` would start for these ``name:=value`` arguments."""
    patch = pytest.MonkeyPatch()
    for name, module in fake_launch_modules(share).items():
        patch.setitem(sys.modules, name, module)
    try:
        spec = importlib.util.spec_from_file_location(launch_file.stem.replace(".", "_"),
                                                      launch_file)
        assert spec is not None
        assert spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        description = module.generate_launch_description()
    finally:
        patch.undo()
    declared = [e for e in description.entities if isinstance(e, FakeDeclareLaunchArgument)]
    unknown = set(arguments) - {argument.name for argument in declared}
    assert not unknown, f"not launch arguments of {launch_file.name}: {sorted(unknown)}"
    context = FakeLaunchContext({a.name: a.default_value for a in declared
                                 if a.default_value is not None} | arguments)
    nodes: list[FakeNode] = []
    for entity in description.entities:
        actions = (entity.function(context) if isinstance(entity, FakeOpaqueFunction)
                   else [entity])
        nodes += [action for action in actions if isinstance(action, FakeNode)
                  and (action.condition is None or action.condition.evaluate(context))]
    return nodes


def launch_relocalization(installed: Installed, **arguments: str) -> list[FakeNode]:
    return run_launch(ROOT / "launch" / "relocalization.launch.py", installed.share,
                      **arguments)


def launch_mapping(installed: Installed, **arguments: str) -> list[FakeNode]:
    return run_launch(ROOT / "launch" / "mapping.launch.py", installed.share, **arguments)


def assert_ours_and_installed(node: FakeNode, installed: Installed) -> None:
    """The node is one of this package's console scripts, installed where ``ros2 run`` looks,
    its entry point has a callable ``main``, and every file it is given is installed."""
    assert node.package == PACKAGE
    assert installed.script_dir == f"$base/lib/{PACKAGE}"
    module_name, function = installed.console_scripts[node.executable].split(":")
    assert callable(getattr(importlib.import_module(module_name), function))
    files = [p for p in node.parameters if isinstance(p, str)]
    for path in files + [a for a in node.arguments if a.startswith(str(installed.share))]:
        assert Path(path).is_file(), f"{node.executable} is given {path}, which is not installed"


# --- relocalization.launch.py ------------------------------------------------------------------


def test_relocalization_defaults_start_the_node_alone_with_the_installed_params(
    installed: Installed,
) -> None:
    (node,) = launch_relocalization(installed)
    assert node.executable == node.name == "relocalization_node"
    assert_ours_and_installed(node, installed)
    assert node.parameters == [str(installed.share / "config" / "relocalization.yaml")]
    assert sorted(node.remappings) == [
        ("camera_info", "/camera/camera_info"),
        ("image", "/camera/image_raw"),
        ("image/compressed", "/camera/image_raw/compressed"),
    ]


def test_relocalization_map_and_camera_namespace_arguments(installed: Installed) -> None:
    (node,) = launch_relocalization(installed, map="/maps/kitchen.safetensors",
                                    camera_namespace="/robot/camera/color/")
    # the map overrides only map_path, after (so over) the params file
    assert node.parameters == [str(installed.share / "config" / "relocalization.yaml"),
                               {"map_path": "/maps/kitchen.safetensors"}]
    # the namespace's trailing slash is dropped
    assert dict(node.remappings) == {
        "image": "/robot/camera/color/image_raw",
        "image/compressed": "/robot/camera/color/image_raw/compressed",
        "camera_info": "/robot/camera/color/camera_info",
    }


def test_relocalization_trigger_argument_overrides_only_the_trigger(installed: Installed) -> None:
    (node,) = launch_relocalization(installed, trigger="on_demand")
    assert node.parameters == [str(installed.share / "config" / "relocalization.yaml"),
                               {"trigger": "on_demand"}]
    (node,) = launch_relocalization(installed, map="/maps/k.map", trigger="on_demand")
    assert node.parameters[1] == {"map_path": "/maps/k.map", "trigger": "on_demand"}
    assert validate_parameter("trigger", "on_demand") is None


def test_relocalization_params_file_argument_replaces_the_installed_one(
    installed: Installed, tmp_path: Path
) -> None:
    mine = tmp_path / "mine.yaml"
    mine.write_text("{}\n")
    (node,) = launch_relocalization(installed, params_file=str(mine))
    assert node.parameters == [str(mine)]


@pytest.mark.parametrize("profile", sorted(TRANSPORT_PROFILES))
def test_relocalization_transport_profile_sets_transport_and_qos_over_the_params_file(
    installed: Installed, profile: str
) -> None:
    (node,) = launch_relocalization(installed, transport=profile, map="/maps/k.safetensors")
    expected = TRANSPORT_PROFILES[profile] | {"map_path": "/maps/k.safetensors"}
    assert node.parameters == [str(installed.share / "config" / "relocalization.yaml"), expected]
    for name, value in expected.items():
        assert validate_parameter(name, value) is None, (name, value)


def test_relocalization_transport_profiles_and_the_shipped_default() -> None:
    # the shipped default (params file, node): raw images over reliable QoS, the raw_reliable
    # profile; compressed frames over best effort (they fit one datagram, and match any
    # publisher); best effort for raw only by choice
    assert {name: SPECS_BY_NAME[name].default for name in TRANSPORT_PROFILES["raw_reliable"]} \
        == TRANSPORT_PROFILES["raw_reliable"]
    assert TRANSPORT_PROFILES["compressed"] == {"image_transport": "compressed",
                                                "qos_reliability": "best_effort"}
    assert profile_parameters("") == {}
    with pytest.raises(ValueError, match="unknown transport profile 'udp'; choose one of "
                       "raw_reliable, compressed, raw_best_effort"):
        profile_parameters("udp")


def test_relocalization_unknown_transport_profile_fails_the_launch(installed: Installed) -> None:
    with pytest.raises(ValueError, match="unknown transport profile 'fast'"):
        launch_relocalization(installed, transport="fast")


@pytest.mark.parametrize("rviz", ["true", "True", "1"])
def test_relocalization_rviz_true_adds_rviz_with_the_installed_config(
    installed: Installed, rviz: str
) -> None:
    node, viewer = launch_relocalization(installed, rviz=rviz)
    assert node.executable == "relocalization_node"
    assert (viewer.package, viewer.executable) == ("rviz2", "rviz2")
    assert viewer.arguments == ["-d", str(installed.share / "config" / "seqace.rviz")]
    assert (installed.share / "config" / "seqace.rviz").is_file()
    assert "<exec_depend>rviz2</exec_depend>" in (installed.share / "package.xml").read_text()


def test_relocalization_rviz_rejects_a_non_boolean(installed: Installed) -> None:
    assert len(launch_relocalization(installed, rviz="false")) == 1
    with pytest.raises(ValueError, match="true/false"):
        launch_relocalization(installed, rviz="yes please")


# --- mapping.launch.py ---------------------------------------------------------------------------


def test_mapping_defaults_keep_the_params_file_values_and_end_the_launch(
    installed: Installed,
) -> None:
    (node,) = launch_mapping(installed)
    assert node.executable == node.name == "mapping_node"
    assert_ours_and_installed(node, installed)
    assert node.parameters == [str(installed.share / "config" / "mapping.yaml")]
    assert isinstance(node.on_exit, FakeShutdown)  # one-shot: the launch ends with the node
    assert node.remappings == []


@pytest.mark.parametrize(("arguments", "overrides"), [
    ({"bag": "/data/run1"}, {"bag_path": "/data/run1"}),
    ({"map": "/maps/k.safetensors"}, {"map_path": "/maps/k.safetensors"}),
    ({"bag": "/data/run1.bag", "map": "/maps/k.safetensors"},
     {"bag_path": "/data/run1.bag", "map_path": "/maps/k.safetensors"}),
])
def test_mapping_bag_and_map_arguments_override_only_their_parameters(
    installed: Installed, arguments: Mapping[str, str], overrides: dict[str, str]
) -> None:
    (node,) = launch_mapping(installed, **arguments)
    assert node.parameters == [str(installed.share / "config" / "mapping.yaml"), overrides]


def test_launch_files_are_installed(installed: Installed) -> None:
    launch_files = sorted(Path(p).name for p in glob(str(ROOT / "launch" / "*.launch.py")))
    assert launch_files == ["mapping.launch.py", "relocalization.launch.py"]
    for name in launch_files:
        assert (installed.share / "launch" / name).is_file()


# --- the files the launch files pass -------------------------------------------------------------


def test_every_yaml_key_is_a_declared_and_valid_parameter(installed: Installed) -> None:
    content = yaml.safe_load((installed.share / "config" / "relocalization.yaml").read_text())
    assert list(content) == ["/**"]
    parameters = content["/**"]["ros__parameters"]
    unknown = set(parameters) - set(SPECS_BY_NAME)
    assert not unknown, f"keys the node does not declare: {sorted(unknown)}"
    missing = set(SPECS_BY_NAME) - set(parameters)
    assert not missing, f"declared parameters missing from the YAML: {sorted(missing)}"
    for name, value in parameters.items():
        assert validate_parameter(name, value) is None, (name, value)
        assert value == SPECS_BY_NAME[name].default, f"{name}: YAML and declared default differ"


def test_validation_rejects_bad_values_with_reasons() -> None:
    assert "must be one of auto, cpu, cuda" in validate_parameter("device", "tpu")
    assert validate_parameter("mode", "sequence") is None
    assert "must be one of single, sequence" in validate_parameter("mode", "batch")
    assert "must be of type int, got float" in validate_parameter("min_inliers", 3.5)
    assert "must be in [4, 100000]" in validate_parameter("min_inliers", 2)
    assert "must be finite" in validate_parameter("ransac_threshold_px", float("nan"))
    assert "must not be empty" in validate_parameter("map_frame", "")
    assert "leading slash" in validate_parameter("odom_frame", "/odom")
    assert "leading slash" in validate_parameter("base_frame", "/base_link")
    assert validate_parameter("base_frame", "") is None  # the camera frame itself
    assert "must be one of continuous, on_demand" in validate_parameter("trigger", "hourly")
    assert "must be in [1, 100000]" in validate_parameter("relocalize_frames", 0)
    assert "unknown parameter" in validate_parameter("nope", 1)


def test_rviz_config_shows_pose_path_inliers_and_tf(installed: Installed) -> None:
    rviz = yaml.safe_load((installed.share / "config" / "seqace.rviz").read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    by_class = {d["Class"]: d for d in displays}
    assert by_class["rviz_default_plugins/PoseWithCovariance"]["Topic"]["Value"] == "/pose"
    assert by_class["rviz_default_plugins/Path"]["Topic"]["Value"] == "/path"
    assert by_class["rviz_default_plugins/PointCloud2"]["Topic"]["Value"] == "/inliers"
    assert "rviz_default_plugins/TF" in by_class
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == "map"


def test_package_xml_lists_the_runtime_dependencies(installed: Installed) -> None:
    text = (installed.share / "package.xml").read_text()
    for dependency in ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_srvs",
                       "diagnostic_msgs", "tf2_ros", "tf2_msgs", "launch", "launch_ros",
                       "rviz2"):
        assert f"<exec_depend>{dependency}</exec_depend>" in text
