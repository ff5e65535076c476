"""Training cost of the scene head: seconds per step for several batch sizes, printed as JSON.

Mapping time is almost all training (``timing_s.train`` in a map report), and a training step
is almost all the head's matrix products, so its cost is steps x batch size x head size. This
benchmark times :func:`~seqace_ros.pipeline.mapping.trainer.train_head` itself (the real loop:
batch gather, head, loss, backward, AdamW) on a buffer of random features of a 700-frame
mapping run (1500 patches per frame, RGB-D depths), for each ``--batch-sizes`` value and each
``--heads`` size (default: the preset's head), in fp32 (what a CPU without native bf16 runs)
and, where the CPU multiplies bf16 natively, also in bf16. The settings run interleaved,
``--rounds`` times each, so load on a shared machine hits them alike; the median step time of
each is reported with its ratio to the first head and batch size and the training time of the
preset's steps it implies.

Usage::

    OMP_NUM_THREADS=2 .venv/bin/python bench/train_step_bench.py --threads 2 \
        --batch-sizes 5120,3584,2560,1792 [--heads 256x1,192x1,384x1,256x2] [--steps 40] \
        [--rounds 3] [--json OUT.json]
"""

from __future__ import annotations

import argparse
import statistics
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from bench_report import emit_report, platform_info

from seqace_ros.core.head import HeadConfig
from seqace_ros.pipeline.mapping.buffer import FeatureBuffer
from seqace_ros.pipeline.mapping.config import MappingConfig, preset
from seqace_ros.pipeline.mapping.trainer import autocast_dtype, train_head

#: A 700-frame mapping run with the cpu preset's 1500 patches per frame.
FRAMES, PATCHES_PER_FRAME = 700, 1500


def random_buffer(frames: int, patches_per_frame: int, channels: int,
                  seed: int = 0) -> FeatureBuffer:
    """A buffer of the given size with random features, pixels and depths (1-2 m), frames
    2 m in front of the world origin looking along +z (fx = fy = 525 px, 640x480)."""
    n = frames * patches_per_frame
    generator = torch.Generator().manual_seed(seed)
    K_F33 = torch.tensor([[525.0, 0.0, 320.0], [0.0, 525.0, 240.0], [0.0, 0.0, 1.0]])
    T_cam_world_F44 = torch.eye(4).repeat(frames, 1, 1)
    T_cam_world_F44[:, 2, 3] = 2.0
    return FeatureBuffer(
        features_NC=torch.randn(n, channels, generator=generator).half(),
        pixels_N2=torch.rand(n, 2, generator=generator) * torch.tensor([640.0, 480.0]),
        frame_ids_N=torch.randint(0, frames, (n,), generator=generator),
        salient_N=torch.zeros(n, dtype=torch.bool),
        K_F33=K_F33.repeat(frames, 1, 1), T_cam_world_F44=T_cam_world_F44,
        camera_centres_F3=np.zeros((frames, 3)),
        depths_N=1.0 + torch.rand(n, generator=generator))


def seconds_per_step(buffer: FeatureBuffer, config: MappingConfig) -> float:
    """Wall time of ``config.iterations`` training steps on ``buffer``, per step."""
    _, stats = train_head(buffer, config.head, torch.zeros(3), config, torch.device("cpu"),
                          progress=False)
    return stats.seconds / stats.iterations


def parse_heads(text: str, base: HeadConfig) -> list[HeadConfig]:
    """``WIDTHxBLOCKS`` sizes, comma-separated (e.g. ``256x1,192x1``), as heads like ``base``;
    empty: ``[base]``."""
    if not text:
        return [base]
    heads = []
    for size in text.split(","):
        width, blocks = size.split("x")
        heads.append(replace(base, width=int(width), num_blocks=int(blocks)))
    return heads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", default="5120,3584,2560,1792",
                        help="comma-separated patches per step; the first is the reference")
    parser.add_argument("--heads", default="",
                        help="comma-separated head sizes WIDTHxBLOCKS (default: the preset's); "
                             "the first is the reference")
    parser.add_argument("--preset", default="cpu", help="mapping preset (head, steps)")
    parser.add_argument("--steps", type=int, default=40, help="steps timed per round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--json", type=Path, default=None, help="report file to write")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    base = preset(args.preset, depth=True)
    batch_sizes = [int(b) for b in args.batch_sizes.split(",")]
    heads = parse_heads(args.heads, base.head)
    precisions = {"fp32": False}
    if autocast_dtype(torch.device("cpu"), enabled=True) == torch.bfloat16:
        precisions["bf16"] = True
    buffer = random_buffer(FRAMES, PATCHES_PER_FRAME, base.head.in_channels)
    settings = [(name, head, batch) for name in precisions for head in range(len(heads))
                for batch in batch_sizes]
    times: dict[tuple[str, int, int], list[float]] = {setting: [] for setting in settings}
    seconds_per_step(buffer, replace(base, iterations=5, mixed_precision=False))  # warm-up
    for _ in range(args.rounds):
        for name, head, batch in settings:
            config = replace(base, head=heads[head], iterations=args.steps, batch_size=batch,
                             mixed_precision=precisions[name])
            times[(name, head, batch)].append(seconds_per_step(buffer, config))
    results = []
    for name, head, batch in settings:
        median = statistics.median(times[(name, head, batch)])
        reference = statistics.median(times[(name, 0, batch_sizes[0])])
        results.append({
            "precision": name, "head_width": heads[head].width,
            "head_blocks": heads[head].num_blocks, "batch_size": batch,
            "median_s_per_step": round(median, 5),
            "ratio_to_reference": round(median / reference, 3),
            "train_s_for_preset_steps": round(median * base.iterations, 1),
            "all_s_per_step": [round(t, 5) for t in times[(name, head, batch)]]})
    emit_report({"benchmark": "train_step", "preset": args.preset,
                 "preset_iterations": base.iterations, "head": base.head.to_dict(),
                 "reference_batch_size": batch_sizes[0], "buffer_patches": len(buffer),
                 "threads": args.threads, "steps_per_round": args.steps, "rounds": args.rounds,
                 "cpu_capabilities": sorted(k for k, v in torch.cpu.get_capabilities().items()
                                            if v is True),
                 "results": results, "platform": platform_info()}, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
