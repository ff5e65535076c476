"""The evaluation report keys DESIGN.md fixes (shared by the tests that check reports)."""

DESIGN_REPORT_KEYS = frozenset({
    "n_queries", "recall_5cm_5deg", "recall_2cm_2deg", "recall_1cm_1deg",
    "median_translation_cm", "median_rotation_deg", "mean_latency_ms", "hz", "mode", "map_bytes",
})
