"""Mode settings, registration and status (fast; the sequence behaviour is tested on real
frames in ``test_sequence_real.py``, its gate in ``test_sequence_gate.py``)."""

from __future__ import annotations

import pytest

from seqace_ros.pipeline.localization.modes import MODE_CONFIGS, MODE_NAMES, mode_config
from seqace_ros.pipeline.localization.sequence import SequenceConfig, SequenceStatus
from seqace_ros.pipeline.localization.single import (
    FrameStatus,
    LocalizationError,
    LocalizerConfig,
    PoseSource,
)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"fusion": "average"}, "fusion"),
        ({"buffer_length": 0}, "buffer_length"),
        ({"max_conflicts": 0}, "max_conflicts"),
        ({"min_tracked": 3}, "min_tracked"),
        ({"min_tracked": 50, "max_local_points": 40}, "max_local_points"),
        ({"gate_translation_m": 0.0}, "gate_translation_m"),
        ({"gate_rotation_deg": -1.0}, "gate_rotation_deg"),
        ({"max_gap_s": 0.0}, "max_gap_s"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"smoothing": 1.5}, "smoothing"),
        ({"refined_smoothing": 0.0}, "refined_smoothing"),
        ({"refined_smoothing": 1.5}, "refined_smoothing"),
    ],
)
def test_bad_settings_are_rejected(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(LocalizationError, match=message):
        SequenceConfig(**overrides)  # type: ignore[arg-type]


def test_defaults_and_registration() -> None:
    config = SequenceConfig()
    assert config.localizer == LocalizerConfig()
    assert config.fusion == "joint"
    assert 0.0 < config.smoothing < 1.0  # temporal smoothing is on by default
    assert config.smoothing < config.refined_smoothing < 1.0  # refined poses weigh more
    assert config.flow.image_scale < 1.0  # flow on a downscaled image
    assert MODE_NAMES == ("single", "sequence")
    assert mode_config("sequence") == config
    assert mode_config("single") == LocalizerConfig()


def test_registry_names_each_config_by_its_mode() -> None:
    frame = LocalizerConfig(top_k=500, min_inliers=20)
    for name, config in MODE_CONFIGS.items():
        assert config.mode == name
        assert type(config.with_frame(frame)) is type(config)
    assert LocalizerConfig().with_frame(frame) == frame
    assert SequenceConfig(buffer_length=3).with_frame(frame) == SequenceConfig(
        localizer=frame, buffer_length=3)
    assert not LocalizerConfig.uses_odometry
    assert SequenceConfig.uses_odometry
    with pytest.raises(LocalizationError, match="unknown localization mode 'multi'"):
        mode_config("multi")


def test_status_values_are_text_by_name() -> None:
    assert FrameStatus().values() == {"source": "none", "refinement": ""}
    status = SequenceStatus(PoseSource.SEQUENCE, tracked_points=120, local_points=400,
                            reset_reason="stamp gap", single_success=True,
                            refinement="refined: 80 of 120 keyframe matches agree")
    assert status.values() == {
        "source": "sequence", "refinement": "refined: 80 of 120 keyframe matches agree",
        "tracked_points": "120", "local_points": "400",
        "reset_reason": "stamp gap", "single_success": "True", "conflicts": "0",
        "smoothed": "False",
    }
