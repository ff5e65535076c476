"""The C++ RANSAC loop alone, with a mock estimator (cpp_ransac/tests/ransac_loop_test.cpp).

Built with the C++ compiler that builds the extension, then run; each check prints a line.
"""

from __future__ import annotations

import shutil
import subprocess
import sysconfig
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SOURCE = REPO / "cpp_ransac" / "tests" / "ransac_loop_test.cpp"


def _compiler() -> str:
    configured = (sysconfig.get_config_var("CXX") or "").split()
    for candidate in [*configured[:1], "c++", "g++", "clang++"]:
        if candidate and shutil.which(candidate):
            return candidate
    pytest.skip("no C++ compiler found (the extension build needs one too)")


@pytest.mark.slow
def test_ransac_loop_with_mock_estimator(tmp_path: Path):
    binary = tmp_path / "ransac_loop_test"
    build = subprocess.run(
        [_compiler(), "-std=c++17", "-O2", "-Wall", "-Wextra", "-Werror",
         f"-I{REPO / 'cpp_ransac' / 'include'}", str(SOURCE), "-o", str(binary)],
        capture_output=True, text=True,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr
    run = subprocess.run([str(binary)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert len(lines) == 12
    assert all(line.startswith("PASS") for line in lines), run.stdout
