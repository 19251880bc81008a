"""Evaluation as library code: benchmark slices and metrics for super-resolution (:mod:`.sr`),
detection and restoration; ``evaluation/`` holds thin command-line wrappers over these."""
