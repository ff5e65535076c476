"""Mapping: train a scene head from posed images (ACE recipe)."""

from seqace_ros.pipeline.mapping.config import PRESETS, AugmentConfig, MappingConfig, preset
from seqace_ros.pipeline.mapping.mapper import map_scene

__all__ = ["PRESETS", "AugmentConfig", "MappingConfig", "map_scene", "preset"]
