"""Relocalization against a scene map (single frame; the sequence mode builds on it)."""
