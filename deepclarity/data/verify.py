"""Checking a datasets folder against the manifest: what is there, missing or altered.

A file passes when its SHA-256 is the recorded one, or, failing that, when its decoded pixels are
(an image re-encoded by another Pillow version, or fetched with one, is still the same data).
"""

from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from ..io import list_images
from .manifest import Entry, SetInfo
from .transforms import pixels_sha256_of_bytes

__all__ = ["OK", "SAME_PIXELS", "MISSING", "ALTERED", "file_status", "check_files", "CheckReport", "SetCount"]

OK, SAME_PIXELS, MISSING, ALTERED = "ok", "same pixels", "missing", "altered"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def file_status(path: Path, entry: Entry) -> tuple[str, str]:
    """``(status, detail)`` of the file at ``path`` for ``entry``: :data:`OK` (same bytes),
    :data:`SAME_PIXELS` (other bytes, same decoded pixels), :data:`MISSING` or :data:`ALTERED`."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return MISSING, ""
    except OSError as exc:
        return ALTERED, f"unreadable: {exc.strerror or exc}"
    if sha256_bytes(data) == entry.sha256:
        return OK, ""
    try:
        pixels = pixels_sha256_of_bytes(data)
    except Exception as exc:  # truncated or not an image
        return ALTERED, f"not a readable image ({len(data)} bytes): {str(exc).splitlines()[0][:80]}"
    if pixels == entry.pixels_sha256:
        return SAME_PIXELS, ""
    return ALTERED, "other pixels than recorded"


@dataclass
class SetCount:
    name: str
    expected: int = 0
    ok: int = 0
    same_pixels: int = 0
    missing: int = 0
    altered: int = 0
    extra: int = 0

    @property
    def passed(self) -> bool:
        return self.missing == 0 and self.altered == 0


@dataclass
class CheckReport:
    root: Path
    sets: list[SetCount] = field(default_factory=list)
    #: ``(status, path relative to root, detail)`` for every file that is not OK, and extras.
    problems: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(s.passed for s in self.sets)

    def total(self) -> SetCount:
        t = SetCount("total")
        for s in self.sets:
            for k in ("expected", "ok", "same_pixels", "missing", "altered", "extra"):
                setattr(t, k, getattr(t, k) + getattr(s, k))
        return t

    def as_dict(self) -> dict:
        row = lambda s: {k: getattr(s, k) for k in ("name", "expected", "ok", "same_pixels", "missing",  # noqa: E731
                                                   "altered", "extra")}
        return {"root": str(self.root), "passed": self.passed, "sets": [row(s) for s in self.sets],
                "total": row(self.total()),
                "problems": [{"status": st, "path": p, "detail": d} for st, p, d in self.problems]}

    def table(self, max_problems: int = 20) -> str:
        cols = ("set", "files", "ok", "same pixels", "missing", "altered", "extra")
        rows = [(s.name, s.expected, s.ok, s.same_pixels, s.missing, s.altered, s.extra)
                for s in self.sets + [self.total()]]
        widths = [max(len(str(r[i])) for r in rows + [cols]) for i in range(len(cols))]
        fmt = lambda r: "  ".join(str(v).ljust(w) if i == 0 else str(v).rjust(w)  # noqa: E731
                                  for i, (v, w) in enumerate(zip(r, widths)))
        lines = [fmt(cols), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows[:-1]]
        lines += [fmt(["-" * w for w in widths]), fmt(rows[-1])]
        shown = self.problems[:max_problems]
        lines += [f"{st}: {p}" + (f" ({d})" if d else "") for st, p, d in shown]
        if len(self.problems) > len(shown):
            lines.append(f"... and {len(self.problems) - len(shown)} more (--format json lists all)")
        return "\n".join(lines)


def check_files(root: str | os.PathLike, sets: Iterable[SetInfo], *, workers: int = 4,
                progress: bool = False) -> CheckReport:
    """Verify every file of ``sets`` under ``root``; also count images in a set's folder that the
    manifest does not list (``extra``; reported, not a failure)."""
    root = Path(root)
    sets = list(sets)
    report = CheckReport(root)
    entries = [e for s in sets for e in s.entries]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(entries), desc="checking", unit="file", leave=False)

    def one(entry: Entry) -> tuple[str, str]:
        result = file_status(root / entry.path, entry)
        if bar is not None:
            bar.update()
        return result

    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = dict(zip((e.path for e in entries), pool.map(one, entries)))
    if bar is not None:
        bar.close()
    for s in sets:
        count = SetCount(s.name, expected=len(s.entries))
        for e in s.entries:
            status, detail = results[e.path]
            attr = {OK: "ok", SAME_PIXELS: "same_pixels", MISSING: "missing", ALTERED: "altered"}[status]
            setattr(count, attr, getattr(count, attr) + 1)
            if status in (MISSING, ALTERED):
                report.problems.append((status, e.path, detail))
        folder = root / s.name
        if folder.is_dir():
            known = {e.path for e in s.entries}
            for p in list_images(folder, recursive=True):
                rel = p.relative_to(root).as_posix()
                if rel not in known:
                    count.extra += 1
                    report.problems.append(("extra", rel, "not in the manifest"))
        report.sets.append(count)
    return report
