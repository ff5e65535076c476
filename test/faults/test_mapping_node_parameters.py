"""mapping_node given a parameter of the wrong type or out of its range: one ``[ERROR]`` line,
exit 1, nothing written (rclpy's parameter exceptions become a MappingRequestError, the one
user-error type the node catches)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from ros_harness import import_ros_module, wait_for


@pytest.mark.ros
@pytest.mark.parametrize(("change", "fragment"), [
    ({"iterations": "many"}, "iterations"),
    ({"max_gap_s": -1.0}, "max_gap_s"),
])
def test_bad_parameter_exits_1_with_one_error_line(
    tmp_path: Path, start_ros_process: Any, change: dict[str, Any], fragment: str
) -> None:
    import_ros_module("rclpy")
    out = tmp_path / "out"
    out.mkdir()
    node = start_ros_process("seqace_ros.ros.mapping_node", {
        "bag_path": str(tmp_path / "none"), "map_path": str(out / "m.safetensors"), **change,
    }, name="mapping")
    wait_for(lambda: not node.is_running(), 120, "mapping_node to exit", poll_s=0.2)
    errors = [line for line in node.log_text().splitlines() if "[ERROR]" in line]
    assert node.returncode == 1, node.describe()
    assert len(errors) == 1, node.describe()
    assert "mapping failed: " in errors[0]
    assert fragment in errors[0]
    assert "Traceback" not in node.log_text()
    assert list(out.iterdir()) == []
