"""Which depth-to-colour extrinsic fits a 7-Scenes-layout folder: a geometric check.

7-Scenes colour and depth come from two cameras (Kinect v1). For pairs of mapping frames
(``--pairs-from`` every ``--every`` frames, each against the frames ``--offsets`` later),
XFeat sparse keypoints of the colour images are matched (mutual nearest neighbours); each
matched keypoint of the first frame gets its depth from the depth image registered to the
colour camera with a candidate ``T_colour_depth`` (a pure x translation, the Kinect v1
layout, swept over ``--baselines-cm``), is lifted to 3D, moved into the second frame with the
ground-truth poses and projected. The reprojection error against its match measures the
candidate: a wrong extrinsic puts the depth of a neighbouring surface under a keypoint. The
``same-pixel`` row treats depth pixel (u, v) as colour pixel (u, v) (no registration).

Prints JSON: per candidate the median error (px), the fraction within 2 and 4 px, and the
number of matches compared (those every candidate can lift). Usage::

    .venv/bin/python bench/depth_registration.py [--data DIR] [--json OUT.json]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from bench_report import emit_report, platform_info
from mapping_bench import DEFAULT_DATA
from peer.lifting import lift_keypoints
from peer.matching import XFeatSparse

from seqace_ros.core.camera import Intrinsics
from seqace_ros.core.depth import DepthCalibration, depths_at, read_depth_m, register_depth
from seqace_ros.core.geometry import invert_transform, make_transform, transform_points
from seqace_ros.core.sparse_features import mutual_nearest_neighbours
from seqace_ros.datasets.folder import FolderDataset, read_calibration


def _candidates(baselines_cm: list[float], depth_intrinsics: Intrinsics,
                colour: Intrinsics) -> dict[str, DepthCalibration]:
    candidates = {"same-pixel": DepthCalibration(colour)}
    for baseline in baselines_cm:
        T_colour_depth = make_transform(np.eye(3), [baseline / 100.0, 0.0, 0.0])
        candidates[f"x {baseline:+.1f} cm"] = DepthCalibration(depth_intrinsics, T_colour_depth)
    return candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--pairs-from", default="0:700", help="START:END of the first frames")
    parser.add_argument("--every", type=int, default=20, help="step between first frames")
    parser.add_argument("--offsets", default="10,30", help="frames between the two of a pair")
    parser.add_argument("--baselines-cm", default="-5,-2.5,0,2.5,5",
                        help="candidate x translations of T_colour_depth (cm)")
    parser.add_argument("--max-spread", type=float, default=0.05,
                        help="depth-edge rejection of depths_at (relative spread; large: none)")
    parser.add_argument("--window", type=int, default=2, help="depths_at neighbourhood half-size")
    parser.add_argument("--json", type=Path, help="also write the report here")
    args = parser.parse_args()

    dataset = FolderDataset(args.data)
    first = dataset[0]
    colour = first.intrinsics
    depth_intrinsics = read_calibration(args.data / "depth-intrinsics.txt", colour.width,
                                        colour.height)
    candidates = _candidates([float(b) for b in args.baselines_cm.split(",")],
                             depth_intrinsics, colour)
    extractor = XFeatSparse(device="cpu")
    start, end = (int(x) for x in args.pairs_from.split(":"))
    offsets = [int(x) for x in args.offsets.split(",")]
    errors: dict[str, list[np.ndarray]] = {name: [] for name in candidates}
    features = {}

    def frame_features(index: int):
        if index not in features:
            frame = dataset[index]
            features[index] = (frame, extractor.detect(frame.image_rgb, 2048))
        return features[index]

    for a in range(start, end, args.every):
        frame_a, features_a = frame_features(a)
        depth_m = read_depth_m(args.data / f"{frame_a.name}.depth.png")
        for offset in offsets:
            if a + offset >= len(dataset):
                continue
            frame_b, features_b = frame_features(a + offset)
            index_a, index_b = mutual_nearest_neighbours(
                features_a.descriptors_ND, features_b.descriptors_ND, min_similarity=0.82)
            T_b_a = invert_transform(frame_b.T_world_cam) @ frame_a.T_world_cam
            keypoints_a = features_a.keypoints_N2[index_a]
            lifted = {}
            for name, calibration in candidates.items():
                registered = register_depth(depth_m, calibration, colour)
                lifted[name] = depths_at(keypoints_a, registered, args.window, args.max_spread)
            # compare every candidate on the matches that all of them can lift
            common = np.logical_and.reduce([valid for _, valid in lifted.values()])
            for name, (depths, _) in lifted.items():
                points_a = lift_keypoints(keypoints_a[common], depths[common], colour, np.eye(4))
                points_b = transform_points(T_b_a, points_a)
                projected = points_b[:, :2] / points_b[:, 2:3] * [colour.fx, colour.fy]
                projected += [colour.cx, colour.cy]
                errors[name].append(np.linalg.norm(
                    projected - features_b.keypoints_N2[index_b][common], axis=1))
    results = {}
    for name, chunks in errors.items():
        e = np.concatenate(chunks)
        results[name] = {"median_px": float(np.median(e)), "within_2px": float(np.mean(e < 2)),
                         "within_4px": float(np.mean(e < 4)), "lifted_matches": len(e)}
    emit_report({"benchmark": "depth_registration", "platform": platform_info(),
                 "data": str(args.data), "pairs_from": args.pairs_from, "every": args.every,
                 "offsets": offsets, "max_spread": args.max_spread,
                 "window": args.window, "candidates": results}, args.json)


if __name__ == "__main__":
    main()
