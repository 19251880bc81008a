"""What the commands share: exit codes, report formatting and output, input expansion."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Sequence

from ..errors import DeepClarityError

__all__ = ["EXIT_OK", "EXIT_PARTIAL", "EXIT_FATAL", "write_output", "refuse_report_over_input", "quiet_opencv",
           "expand_inputs", "format_records", "split_names", "missing_subcommand", "non_negative_float"]

EXIT_OK, EXIT_PARTIAL, EXIT_FATAL = 0, 1, 2


def write_output(text: str, output: str | None) -> None:
    """``text`` to the file ``output`` (atomically, newline-terminated) or to stdout."""
    if output:
        from ..files import atomic_write

        try:
            atomic_write(Path(output), (text if text.endswith("\n") else text + "\n").encode())
        except OSError as exc:
            raise DeepClarityError(f"cannot write {output}: {exc.strerror or exc}") from None
    else:
        print(text)


def refuse_report_over_input(report: str | None, inputs: set[Path], flag: str) -> None:
    """A report file must never replace one of the images being read (``-o photos/a.png`` typed
    for ``-o report.csv``): refuse before any work is done."""
    if report and Path(report).resolve() in inputs:
        raise DeepClarityError(f"{flag} {report} is one of the input images; refusing to overwrite it")


def quiet_opencv() -> None:
    """OpenCV logs its own warnings straight to stderr (a truncated 16-bit PNG prints "PNG input
    buffer is incomplete") next to the one-line error we report for that file; keep them out
    unless the user set ``OPENCV_LOG_LEVEL``."""
    if os.environ.get("OPENCV_LOG_LEVEL"):
        return
    try:
        import cv2

        cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)
    except Exception:  # pragma: no cover - an OpenCV build without the logging module
        pass


def expand_inputs(paths: Sequence[str], recursive: bool) -> list[Path]:
    """Files named on the command line, plus the images inside named folders (``-r``: sub-folders too).

    Files are kept whatever their extension (a bad one gets its own error record); inside folders
    only image extensions count. Order: as given, folder contents sorted; duplicates dropped.
    """
    from ..io import list_images

    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            out.extend(list_images(path, recursive=recursive))
        else:
            out.append(path)
    return list(dict.fromkeys(out))


def format_records(records: list[dict], fmt: str, columns: list[str]) -> str:
    """Records as a JSON list, CSV with a header, or an aligned text table."""
    if fmt == "json":
        return json.dumps(records, indent=2)
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        writer = csv.DictWriter(buf, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        for r in records:
            writer.writerow({k: "" if r.get(k) is None else r.get(k) for k in columns})
        return buf.getvalue().rstrip("\n")
    cells = [[("" if r.get(k) is None else str(r.get(k))) for k in columns] for r in records]
    widths = [max([len(c)] + [len(row[i]) for row in cells]) for i, c in enumerate(columns)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(columns, widths)).rstrip()]
    lines += ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in cells]
    return "\n".join(lines)


def split_names(chunks: Sequence[str]) -> list[str]:
    """``["a,b", "c"]`` -> ``["a", "b", "c"]``, lower-cased (names given space or comma separated)."""
    return [m.strip().lower() for chunk in chunks for m in chunk.split(",") if m.strip()]


def missing_subcommand(parser: argparse.ArgumentParser) -> int:
    """A command group called without its task: its help on stderr, exit code 2."""
    parser.print_help(sys.stderr)
    return EXIT_FATAL


def non_negative_float(text: str) -> float:
    """An ``argparse`` type: a finite float >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number >= 0, got {text!r}")
    return value
