"""Write a copy of a map with its keyframe descriptors stored another way, for comparisons on
the same head and keyframes.

Mapping ends with this step (``Keyframes.quantize``, ``KeyframeConfig.descriptor_bytes``); done
again on a map that stores float16 descriptors, it gives the map that mapping with
``--keyframe-descriptor-bytes M`` would have written, without training again (training is not
bit-identical from run to run, so maps trained again would differ in more than the
descriptors). The copy's ``MAP.report.json`` is the source's with the new file and keyframe
sizes (``splits_bench.py`` reads a cached map's report).

    .venv/bin/python bench/quantize_keyframes.py SRC.map DST.map --descriptor-bytes 16

Prints one JSON object: the sizes before and after and the mean cosine similarity between the
descriptors and their decoding (the codes' fidelity).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

from seqace_ros.core.json_io import write_json
from seqace_ros.core.map_file import load_map, save_map
from seqace_ros.pipeline.mapping.report import ReportPaths


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", type=Path, help="map with float16 keyframe descriptors")
    parser.add_argument("out", type=Path, help="map to write")
    parser.add_argument("--descriptor-bytes", type=int, default=16,
                        help="product-quantization codes per descriptor (a divisor of 64)")
    args = parser.parse_args()
    scene_map = load_map(args.source)
    keyframes = scene_map.keyframes
    if keyframes is None or keyframes.quantized is not None:
        raise SystemExit(f"quantize_keyframes: {args.source} has no float16 keyframe descriptors")
    quantized = keyframes.quantize(args.descriptor_bytes)
    save_map(replace(scene_map, keyframes=quantized), args.out)
    report = json.loads(ReportPaths.for_map(args.source).json.read_text())
    report["map"] |= {"path": str(args.out), "bytes": args.out.stat().st_size,
                      "keyframe_bytes": quantized.nbytes}
    write_json(ReportPaths.for_map(args.out).json, report)
    print(json.dumps({"source": str(args.source), "out": str(args.out),
                      "descriptor_bytes": args.descriptor_bytes,
                      "keypoints": len(keyframes.descriptors_ND),
                      "map_bytes": [args.source.stat().st_size, args.out.stat().st_size],
                      "keyframe_bytes": [keyframes.nbytes, quantized.nbytes],
                      "mean_cosine": round(quantized.similarity_scale, 4)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
