"""A real install: ``colcon build`` of this package in a temporary workspace, checked and run.

The package's tracked files (as a user's clone has them) are copied to ``<ws>/src/seqace_ros``
and built with the ``colcon`` that ``scripts/setup.sh`` installs next to the test's Python (or
the one on PATH in a ROS distribution), so against the environment setup.sh made: the same
Python, rclpy and message packages. The install space must hold what ``ros2 run`` and
``ros2 launch`` look for (the two node executables under ``lib/seqace_ros/``, the ament index
entry, launch, config and RViz files under ``share/seqace_ros/``) and the compiled RANSAC
extension. Then the installed ``relocalization_node`` executable is started from a shell that
sourced ``install/setup.bash`` (with no PYTHONPATH of its own) and must publish poses for real
frames over DDS; the extension it loaded must be the installed one.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from package_metadata import setup_arguments
from ros_harness import TopicCollector, import_ros_module, setup_tool

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = "seqace_ros"
EXECUTABLES = ("relocalization_node", "mapping_node")
QUERY_FRAMES = range(500, 505)


def colcon_command() -> str:
    """The colcon next to this Python (scripts/setup.sh), else on PATH; skip (fail in CI)."""
    return setup_tool("colcon", "colcon-common-extensions")


@pytest.fixture(scope="module")
def install_space(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``<ws>/install`` after ``colcon build`` of a copy of the tracked files."""
    colcon = colcon_command()
    workspace = tmp_path_factory.mktemp("colcon_ws")
    source = workspace / "src" / PACKAGE
    tracked = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, check=True,
                             capture_output=True).stdout.decode().split("\0")
    for name in filter(None, tracked):
        if (ROOT / name).is_file():  # a tracked file deleted in the work tree is left out
            (source / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, source / name)
    result = subprocess.run(
        [colcon, "build", "--packages-select", PACKAGE, "--event-handlers", "console_direct+"],
        cwd=workspace, capture_output=True, text=True, timeout=1200)
    assert result.returncode == 0, f"colcon build failed:\n{result.stdout[-6000:]}\n" \
        f"{result.stderr[-3000:]}"
    return workspace / "install"


def test_install_space_holds_what_ros2_run_and_launch_look_for(install_space: Path) -> None:
    prefix = install_space / PACKAGE
    for executable in EXECUTABLES:
        path = prefix / "lib" / PACKAGE / executable
        assert path.is_file(), f"{path} missing"
        assert path.stat().st_mode & 0o111, f"{path} is not executable"
        assert path.read_text().startswith("#!"), f"{path} has no interpreter line"
    assert (prefix / "share" / "ament_index" / "resource_index" / "packages" / PACKAGE).is_file()
    share = prefix / "share" / PACKAGE
    data_files = dict(setup_arguments()["data_files"])
    launch_files = sorted(Path(f).name for f in data_files[f"share/{PACKAGE}/launch"])
    assert launch_files == ["mapping.launch.py", "relocalization.launch.py"]
    config_files = sorted(Path(f).name for f in data_files[f"share/{PACKAGE}/config"])
    assert config_files == ["mapping.yaml", "relocalization.yaml", "seqace.rviz"]
    for name in launch_files:
        assert (share / "launch" / name).read_bytes() == (ROOT / "launch" / name).read_bytes()
    for name in config_files:
        assert (share / "config" / name).read_bytes() == (ROOT / "config" / name).read_bytes()
    assert (share / "package.xml").read_bytes() == (ROOT / "package.xml").read_bytes()
    (extension,) = prefix.glob("lib/python3*/site-packages/seqace_ros/ransac/_ransac*.so")
    assert extension.is_file()


def sourced(install_space: Path, *command: str) -> list[str]:
    """``command`` run by bash after sourcing the workspace, without the caller's PYTHONPATH."""
    script = 'source "$1/setup.bash" && shift && exec "$@"'
    return ["env", "-u", "PYTHONPATH", "bash", "-c", script, "bash", str(install_space),
            *command]


def test_the_sourced_workspace_imports_the_installed_package(install_space: Path) -> None:
    probe = ("import seqace_ros.ransac._ransac as r, seqace_ros.ros.relocalization_node as n;"
             "print(r.__file__); print(n.__file__)")
    result = subprocess.run(sourced(install_space, sys.executable, "-c", probe),
                            capture_output=True, text=True, timeout=120, cwd=install_space)
    assert result.returncode == 0, result.stderr
    for line in result.stdout.split():
        assert line.startswith(str(install_space / PACKAGE)), line


@pytest.mark.ros
@pytest.mark.real_data
def test_the_installed_relocalization_node_publishes_poses(
    install_space: Path, start_ros_process, ros_node, dev_map_path: Path, dev_data: Path,
) -> None:
    import_ros_module("rclpy")
    from geometry_msgs.msg import PoseWithCovarianceStamped
    from sensor_msgs.msg import CameraInfo, Image

    from seqace_ros.datasets.folder import FolderDataset
    from seqace_ros.ros import conversions
    from seqace_ros.ros.relocalization_node import MAP_READY_LOG

    executable = install_space / PACKAGE / "lib" / PACKAGE / "relocalization_node"
    node = start_ros_process(
        sourced(install_space, str(executable)),
        {"map_path": str(dev_map_path), "device": "cpu", "num_keypoints": 1000},
        name="installed_relocalization_node",
        ros_args=["-r", "image:=/installed/image", "-r", "camera_info:=/installed/camera_info"])
    node.wait_for_log(MAP_READY_LOG, timeout_s=300)
    poses = TopicCollector(ros_node, PoseWithCovarianceStamped, "/pose", 50)
    image_pub = ros_node.create_publisher(Image, "/installed/image", 5)
    info_pub = ros_node.create_publisher(CameraInfo, "/installed/camera_info", 5)
    deadline = time.monotonic() + 30
    while image_pub.get_subscription_count() == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    dataset = FolderDataset(dev_data)
    for k, index in enumerate(QUERY_FRAMES):
        frame = dataset[index]
        stamp_ns = 10**12 + k * 100_000_000
        info_pub.publish(conversions.camera_info_msg(frame.intrinsics, stamp_ns, "camera"))
        time.sleep(0.05)
        image_pub.publish(conversions.image_msg_from_rgb(frame.image_rgb, "bgr8", stamp_ns,
                                                         "camera"))
        try:
            poses.wait_for(k + 1, timeout_s=30)
        except TimeoutError:
            continue  # a frame without a pose (too few inliers) still lets the next one through
    received = poses.messages
    print(f"{len(received)} poses for {len(QUERY_FRAMES)} frames from {executable}")
    assert len(received) >= len(QUERY_FRAMES) - 1, node.describe()
    assert {p.header.frame_id for p in received} == {"map"}
    maps = Path(f"/proc/{node.pid}/maps").read_text()
    loaded = {line.split()[-1] for line in maps.splitlines() if "_ransac" in line}
    assert loaded, "the node never loaded the RANSAC extension"
    assert all(path.startswith(str(install_space / PACKAGE)) for path in loaded), loaded
