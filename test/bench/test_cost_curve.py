"""bench/cost_curve.py and bench/train_step_bench.py: the cost of a training setting is its
steps x batch size against the preset's, recalls come from the benchmark reports unchanged,
and a training step is timed on the real training loop."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from cost_curve import plot, rows_of
from train_step_bench import parse_heads, random_buffer, seconds_per_step

from seqace_ros.pipeline.mapping.config import preset


def _report(path: Path, batch_size: int | None, iterations: int | None, seed: int,
            recalls: dict[str, float]) -> Path:
    """A splits_bench.py report of split A with one RGB-D map, its self-check and two modes."""
    modes = {mode: {"recall_5cm_5deg": value, "recall_2cm_2deg": value / 4}
             for mode, value in recalls.items()}
    path.write_text(json.dumps({
        "benchmark": "splits", "preset": "cpu", "iterations": iterations,
        "batch_size": batch_size, "seed": seed,
        "results": {"A": {"n_queries": 350, "rgbd": {
            "map": "m.map", "mapping_seconds": 100.0,
            "self_check": {"recall_5cm_5deg": 1.0, "recall_2cm_2deg": 1.0}, **modes}}}}))
    return path


def test_rows_give_each_setting_its_relative_cost(tmp_path: Path) -> None:
    cpu = preset("cpu")
    full = rows_of(_report(tmp_path / "full.json", None, None, 0,
                           {"single": 0.64, "sequence": 0.70}))
    half_batch = rows_of(_report(tmp_path / "b.json", cpu.batch_size // 2, None, 1,
                                 {"single": 0.62, "sequence": 0.66}))
    half_steps = rows_of(_report(tmp_path / "i.json", None, cpu.iterations // 2, 0,
                                 {"single": 0.60, "sequence": 0.65}))
    assert [(r["mode"], r["relative_cost"]) for r in full] == [("single", 1.0),
                                                               ("sequence", 1.0)]
    assert {r["relative_cost"] for r in half_batch + half_steps} == {0.5}
    assert (half_batch[0]["batch_size"], half_batch[0]["iterations"]) == (
        cpu.batch_size // 2, cpu.iterations)
    assert (half_steps[0]["batch_size"], half_steps[0]["iterations"]) == (
        cpu.batch_size, cpu.iterations // 2)
    assert half_batch[1]["recall_5cm_5deg"] == 0.66
    assert half_batch[1]["recall_2cm_2deg"] == 0.66 / 4
    assert half_batch[0]["seed"] == 1
    plot(full + half_batch + half_steps, tmp_path / "curve.png")
    assert (tmp_path / "curve.png").stat().st_size > 10_000


def test_a_timed_step_runs_the_training_loop() -> None:
    config = preset("test", iterations=3, batch_size=64, depth=True)
    buffer = random_buffer(frames=4, patches_per_frame=50, channels=config.head.in_channels)
    assert len(buffer) == 200
    assert buffer.features_NC.dtype == torch.float16
    assert buffer.depths_N is not None
    assert bool((buffer.depths_N >= 1.0).all())
    assert seconds_per_step(buffer, config) > 0.0


def test_head_sizes_parse_and_other_heads_are_not_costed_as_patches(tmp_path: Path) -> None:
    base = preset("cpu").head
    assert parse_heads("", base) == [base]
    wide, deep = parse_heads("384x1,256x2", base)
    assert (wide.width, wide.num_blocks, wide.in_channels) == (384, 1, base.in_channels)
    assert (deep.width, deep.num_blocks) == (256, 2)
    path = _report(tmp_path / "w.json", None, None, 0, {"single": 0.5})
    report = json.loads(path.read_text())
    path.write_text(json.dumps({**report, "head_width": 384, "head_blocks": None}))
    with pytest.raises(ValueError, match="another head size"):
        rows_of(path)
