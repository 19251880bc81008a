"""Command-line wrappers that produce every number in the README and write them to ``results/``.

Run from the repository root as modules, e.g. ``python -m evaluation.eval_detect --help``. Each
wrapper parses its options, calls the library (:mod:`deepclarity.eval` and
:mod:`deepclarity.datasets`) and writes its results; none imports another.
"""
