"""Static checks of the launch file, the parameters file and the RViz config.

``launch``/``launch_ros`` are not installed here, so the launch file is parsed with ``ast``
rather than run. The parameters file is checked against the node's declarations
(:data:`seqace_ros.ros.params.PARAMETER_SPECS`), types and validation included.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from ros_harness import import_ros_module

import_ros_module("rclpy")

from seqace_ros.ros.params import SPECS_BY_NAME, validate_parameter  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
LAUNCH_FILE = ROOT / "launch" / "relocalization.launch.py"
PARAMS_FILE = ROOT / "config" / "relocalization.yaml"
RVIZ_FILE = ROOT / "config" / "seqace.rviz"


@pytest.fixture(scope="module")
def launch_tree() -> ast.Module:
    return ast.parse(LAUNCH_FILE.read_text(), filename=str(LAUNCH_FILE))


def constants(tree: ast.Module) -> dict[str, object]:
    """Module-level NAME = <literal> assignments."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name):
                    found[target.id] = node.value.value
    return found


def calls(tree: ast.Module, name: str) -> list[ast.Call]:
    return [
        node for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and ((isinstance(node.func, ast.Name) and node.func.id == name)
             or (isinstance(node.func, ast.Attribute) and node.func.attr == name))
    ]


def resolve(node: ast.expr, names: dict[str, object]) -> object:
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name) and node.id in names:
        return names[node.id]
    return None


def keyword(call: ast.Call, name: str) -> ast.expr | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


def test_setup_py_installs_the_entry_point_launch_and_config() -> None:
    setup_text = (ROOT / "setup.py").read_text()
    assert "relocalization_node = seqace_ros.ros.relocalization_node:main" in setup_text
    assert 'glob("launch/*.launch.py")' in setup_text
    assert 'glob("config/*.yaml") + glob("config/*.rviz")' in setup_text


def test_launch_file_declares_its_arguments(launch_tree: ast.Module) -> None:
    declared = {
        resolve(call.args[0], {}) for call in calls(launch_tree, "DeclareLaunchArgument")
    }
    assert declared == {"map", "params_file", "camera_namespace", "rviz"}
    used = {
        resolve(call.args[0], {}) for call in calls(launch_tree, "LaunchConfiguration")
    }
    assert used == declared


def test_launch_file_runs_the_real_executable_with_the_params_file(
    launch_tree: ast.Module,
) -> None:
    names = constants(launch_tree)
    nodes = calls(launch_tree, "Node")
    packages = [resolve(keyword(n, "package"), names) for n in nodes]
    executables = [resolve(keyword(n, "executable"), names) for n in nodes]
    assert ("seqace_ros", "relocalization_node") in list(zip(packages, executables, strict=True))
    # The executable is the console script setup.py installs, and the module has main().
    assert (ROOT / "seqace_ros" / "ros" / "relocalization_node.py").is_file()
    node_source = ast.parse((ROOT / "seqace_ros" / "ros" / "relocalization_node.py").read_text())
    assert any(isinstance(n, ast.FunctionDef) and n.name == "main" for n in node_source.body)
    # The default params file is the package's config/relocalization.yaml, which exists.
    assert names["PARAMS_FILE"] == PARAMS_FILE.name
    assert PARAMS_FILE.is_file()
    assert names["RVIZ_CONFIG"] == RVIZ_FILE.name
    assert RVIZ_FILE.is_file()
    # The node is given the params file and its camera topics are remapped.
    source = LAUNCH_FILE.read_text()
    assert 'LaunchConfiguration("params_file")' in source
    for topic in ("image", "image/compressed", "camera_info"):
        assert f'("{topic}", f"{{camera_namespace}}/' in source


def test_every_yaml_key_is_a_declared_and_valid_parameter() -> None:
    content = yaml.safe_load(PARAMS_FILE.read_text())
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
    assert "unknown parameter" in validate_parameter("nope", 1)


def test_rviz_config_shows_pose_path_inliers_and_tf() -> None:
    rviz = yaml.safe_load(RVIZ_FILE.read_text())
    displays = rviz["Visualization Manager"]["Displays"]
    by_class = {d["Class"]: d for d in displays}
    assert by_class["rviz_default_plugins/PoseWithCovariance"]["Topic"]["Value"] == "/pose"
    assert by_class["rviz_default_plugins/Path"]["Topic"]["Value"] == "/path"
    assert by_class["rviz_default_plugins/PointCloud2"]["Topic"]["Value"] == "/inliers"
    assert "rviz_default_plugins/TF" in by_class
    assert rviz["Visualization Manager"]["Global Options"]["Fixed Frame"] == "map"


def test_package_xml_lists_the_runtime_dependencies() -> None:
    text = (ROOT / "package.xml").read_text()
    for dependency in ("rclpy", "sensor_msgs", "geometry_msgs", "nav_msgs", "std_srvs",
                       "diagnostic_msgs", "tf2_ros", "tf2_msgs", "launch_ros", "rviz2"):
        assert f"<exec_depend>{dependency}</exec_depend>" in text
