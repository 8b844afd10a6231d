"""Helpers for tests and benchmarks: generated meetings with known ground truth (`synth`:
espeak-ng + sox) and the scores to check results against it (`metrics`: WER, DER)."""
