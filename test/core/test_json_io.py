"""The one JSON report writer: NaN and inf as null (nested too), dataclasses, atomic files."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from seqace_ros.core.json_io import json_ready, json_text, write_json


@dataclass(frozen=True)
class _Figures:
    median_cm: float
    counts: tuple[int, ...]


def test_non_finite_numbers_become_null_at_any_depth() -> None:
    value = {"a": math.inf, "b": [1.5, -math.inf, {"c": math.nan}], "d": np.float64("nan"),
             "e": (2, math.nan), "f": "text", "g": True, "h": None}
    assert json_ready(value) == {"a": None, "b": [1.5, None, {"c": None}], "d": None,
                                 "e": [2, None], "f": "text", "g": True, "h": None}


def test_dataclasses_are_written_as_their_fields() -> None:
    assert json_ready(_Figures(math.inf, (1, 2))) == {"median_cm": None, "counts": [1, 2]}
    assert json_ready({"x": _Figures(3.0, ())}) == {"x": {"median_cm": 3.0, "counts": []}}


def test_text_is_standard_json(tmp_path: Path) -> None:
    text = json_text({"median": math.nan, "n": 3})
    assert "NaN" not in text
    assert not text.endswith("\n")
    path = write_json(tmp_path / "r.json", {"median": math.nan, "n": 3})
    assert path.read_text() == text + "\n"
    assert json.loads(path.read_text()) == {"median": None, "n": 3}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["r.json"]  # no temporary file left


def test_missing_folder_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        write_json(tmp_path / "none" / "r.json", {})
