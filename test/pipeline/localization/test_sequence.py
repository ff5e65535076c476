"""Sequence-mode settings and registration (fast; the behaviour is tested on real frames in
``test_sequence_real.py``)."""

from __future__ import annotations

import pytest

from seqace_ros.pipeline.localization.modes import MODES
from seqace_ros.pipeline.localization.sequence import SequenceConfig
from seqace_ros.pipeline.localization.single import LocalizationError, LocalizerConfig


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
    assert config.flow.image_scale < 1.0  # flow on a downscaled image
    assert "sequence" in MODES
    assert "single" in MODES
