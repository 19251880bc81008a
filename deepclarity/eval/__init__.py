"""Evaluation as library code: benchmark slices and metrics for super-resolution (:mod:`.sr`),
detection (:mod:`.detect`, with the confusion-matrix image in :mod:`.confusion`) and restoration
(:mod:`.restore`); ``evaluation/`` holds thin command-line wrappers over these."""
