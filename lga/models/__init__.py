"""Backbones, fusion, matching, the LGA model and its baselines."""
