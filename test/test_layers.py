"""The layering of README's Architecture section: imports point one way, ROS stays in ros/."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "seqace_ros"

#: layer -> the seqace_ros layers it must not import
FORBIDDEN = {
    "core": ("datasets", "pipeline", "ros", "cli"),
    "ransac": ("datasets", "pipeline", "ros", "cli"),
    "datasets": ("pipeline", "ros", "cli"),
    "pipeline": ("ros", "cli"),
}
ROS_MODULES = ("rclpy", "launch", "launch_ros", "tf2_ros", "sensor_msgs", "geometry_msgs",
               "nav_msgs", "std_srvs", "diagnostic_msgs", "visualization_msgs", "tf2_msgs")


def imported_modules(path: Path) -> set[str]:
    """Absolute module names a source file imports (anywhere in it, lazily too)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def sources(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_layers_import_only_downwards(layer: str) -> None:
    files = sources(layer)
    assert files, f"no sources in seqace_ros/{layer}"
    wrong = [(path.relative_to(PACKAGE), name) for path in files
             for name in imported_modules(path)
             if any(name == f"seqace_ros.{up}" or name.startswith(f"seqace_ros.{up}.")
                    for up in FORBIDDEN[layer])]
    assert wrong == []


def test_nothing_outside_ros_imports_ros() -> None:
    outside = [p for p in PACKAGE.rglob("*.py") if "ros" not in p.relative_to(PACKAGE).parts[:1]]
    assert len(outside) > 50
    wrong = [(path.relative_to(PACKAGE), name) for path in outside
             for name in imported_modules(path) if name.split(".")[0] in ROS_MODULES]
    assert wrong == []
