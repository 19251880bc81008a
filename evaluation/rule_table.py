"""The scaffolding shared by the rule tables (``screens_rule``, ``second_look_rule``): what a
detection rule changes on the training data where its thresholds were chosen, per slice, as the
share of images called pixelated with and without it."""

from __future__ import annotations

import argparse
import shlex
import sys
import time
from pathlib import Path

from deepclarity.datasets import default_data_dir
from deepclarity.eval.detect_report import environment
from deepclarity.files import atomic_write

RESULTS = Path(__file__).resolve().parent / "results"


def rule_parser(doc: str, *, every: int, every_help: str, out_name: str) -> argparse.ArgumentParser:
    """``--data --every --seed --threads --out``, as every rule table takes them."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=default_data_dir())
    parser.add_argument("--every", type=int, default=every, help=every_help)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=RESULTS / out_name)
    return parser


def write_rule_table(module: str, argv: list[str] | None, intro: str, columns: list[str],
                     rows: list[tuple[str, str, int, list[int]]], started: float, out: Path) -> None:
    """Write (and print) the table: the command, ``intro``, one row per slice ``(name, label,
    images, counts)`` with each count as a share of the images under ``columns``, and the
    environment with the seconds since ``started``."""
    command = f"python -m evaluation.{module} " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{command.strip()}`", "", intro, "",
             "| slice | label | images | " + " | ".join(columns) + " |",
             "|---|---|---:|" + "---:|" * len(columns)]
    for name, label, n, counts in rows:
        lines.append(f"| {name} | {label} | {n} | " + " | ".join(f"{c / n:.1%}" for c in counts) + " |")
    env_text, _ = environment("cpu", ["canny"])
    lines += ["", f"{env_text}; {time.perf_counter() - started:.0f} s", ""]
    atomic_write(out, "\n".join(lines).encode())
    print("\n".join(lines))
