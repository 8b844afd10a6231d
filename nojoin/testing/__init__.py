"""Helpers for tests and benchmarks: generated meetings with known ground truth."""
