"""Datasets, videos, frame sampling and few-shot episodes."""
