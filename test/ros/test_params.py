"""The node parameters' translation into the localization mode's settings."""

from __future__ import annotations

from typing import Any

import pytest
from ros_harness import import_ros_module

import_ros_module("rcl_interfaces.msg")

from seqace_ros.pipeline.localization.covariance import (  # noqa: E402
    CALIBRATED_MAP_ERROR,
    MapErrorModel,
)
from seqace_ros.pipeline.localization.refinement import RefinementConfig  # noqa: E402
from seqace_ros.pipeline.localization.sequence import SequenceConfig  # noqa: E402
from seqace_ros.pipeline.localization.single import LocalizerConfig  # noqa: E402
from seqace_ros.ros.params import PARAMETER_SPECS, RelocalizationParams  # noqa: E402

pytestmark = pytest.mark.ros


def _params(**overrides: Any) -> RelocalizationParams:
    values = {spec.name: spec.default for spec in PARAMETER_SPECS}
    values.update(overrides)
    return RelocalizationParams(**values)


def test_mode_config_carries_the_frame_settings_of_either_mode() -> None:
    overrides = {"num_keypoints": 800, "ransac_hypotheses": 32, "ransac_threshold_px": 8.0,
                 "ransac_seed": -1, "min_inliers": 30, "refine": True, "recover": False,
                 "keyframe_max_depth_m": 2.0, "keyframe_max_disagreement_m": 0.03,
                 "keyframe_min_near_inliers": 40}
    frame = LocalizerConfig(top_k=800, max_hypotheses=32, threshold_px=8.0, seed=None,
                            min_inliers=30, refine=True,
                            refinement=RefinementConfig(recover=False, max_point_depth_m=2.0,
                                                        max_point_disagreement_m=0.03,
                                                        min_near_inliers=40))
    assert _params(mode="single", **overrides).mode_config() == frame
    assert _params(mode="sequence", sequence_length=7, **overrides).mode_config() == (
        SequenceConfig(localizer=frame, buffer_length=7))


def test_map_error_of_the_published_covariance_defaults_to_the_calibrated_one() -> None:
    assert _params().map_error_model() == CALIBRATED_MAP_ERROR
    params = _params(covariance_map_translation_std_m=0.05, covariance_map_rotation_std_deg=1.5)
    assert params.map_error_model() == MapErrorModel(0.05, 1.5)
