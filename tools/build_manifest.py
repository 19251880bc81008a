#!/usr/bin/env python
"""Generate the data manifest that ships in the package, and the size figure in docs/DATA.md.

Reads the shared datasets' ``MANIFEST.json`` (default: ``$DEEPCLARITY_DATA/MANIFEST.json``, else
``../shared/datasets/MANIFEST.json``), checks every staged file beside it against its ``sha256``,
adds its size in ``bytes`` and a description per set, and writes
``deepclarity/data/manifest.json.gz`` (compact JSON, gzip without a timestamp, so the same input
gives the same bytes). Then it refreshes the block between ``<!-- data:size -->`` and
``<!-- /data:size -->`` in ``docs/DATA.md`` from the manifest it wrote.

    python -m tools.build_manifest            # regenerate both
    python -m tools.build_manifest --check    # exit 1 when either is stale
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "deepclarity" / "data" / "manifest.json.gz"
DOCS = ROOT / "docs" / "DATA.md"
FORMAT = 1
FIELDS = ("file", "source", "commit", "upstream_sha256", "transform", "sha256", "pixels_sha256", "mode", "size")
BLOCK = re.compile(r"(<!-- data:size -->\n)(.*?)(<!-- /data:size -->)", re.S)

#: What each collection is (from the datasets README); sets not listed get an empty description.
DESCRIPTIONS = {
    "train/bsds400": "BSDS500 train + test splits (Berkeley segmentation photos)",
    "train/t91": "T91, the classic super-resolution training set",
    "train/polyu40": "PolyU real-world noisy-image dataset, clean 500-shot mean images, downscaled x2",
    "train/realsr16": "RealSR (NTIRE19) validation ground truth, DSLR",
    "train/imagenet-sample": "one ImageNet photo for each of 334 classes",
    "train/screens": "documentation screenshots of a web-app framework (UI, charts, tables, code, text)",
    "benchmark/Set5": "Set5 (color)",
    "benchmark/Set14": "Set14 (color)",
    "benchmark/B100": "BSDS500 val split, the B100 / BSD100 benchmark",
    "benchmark/Kodak24": "Kodak lossless true-color suite",
    "benchmark/McMaster18": "McMaster color set",
    "benchmark/Screens": "screenshots from another project's docs and UI test snapshots",
}


def default_source() -> Path:
    env = os.environ.get("DEEPCLARITY_DATA")
    return (Path(env) if env else ROOT.parent / "shared" / "datasets") / "MANIFEST.json"


def build(source: Path, *, verify: bool = True) -> dict:
    """The shipped manifest's document for the shared ``MANIFEST.json`` at ``source``.

    Raises:
        SystemExit: a staged file is missing or (with ``verify``) differs from its ``sha256``.
    """
    shared = json.loads(Path(source).read_text())
    root = Path(source).parent
    sets = {}
    for name, files in shared.items():
        parent = Path(name).parent
        records = []
        for rec in files:
            staged = root / parent / rec["file"]
            try:
                data = staged.read_bytes()
            except OSError as exc:
                raise SystemExit(f"build_manifest: {staged}: {exc.strerror or exc}")
            if verify and hashlib.sha256(data).hexdigest() != rec["sha256"]:
                raise SystemExit(f"build_manifest: {staged} does not match its sha256 in {source}")
            out = {k: rec[k] for k in FIELDS if k in rec}
            out["bytes"] = len(data)
            records.append(out)
        sets[name] = {"description": DESCRIPTIONS.get(name, ""), "files": records}
    return {"format": FORMAT, "url": "https://raw.githubusercontent.com/<owner>/<repo>/<commit>/<path>",
            "sets": sets}


def encode(doc: dict) -> bytes:
    """Compact JSON, gzip-compressed with no timestamp or file name (reproducible bytes)."""
    text = json.dumps(doc, separators=(",", ":"), ensure_ascii=True) + "\n"
    return gzip.compress(text.encode(), compresslevel=9, mtime=0)


def decode(blob: bytes) -> dict:
    return json.loads(gzip.decompress(blob))


def _mb(n: int) -> str:
    return f"{n / 1e6:.0f} MB"


def size_block(doc: dict) -> str:
    """The Markdown the docs show between the ``data:size`` markers."""
    split: dict[str, list[int]] = {}
    for name, s in doc["sets"].items():
        top = name.split("/", 1)[0]
        counts = split.setdefault(top, [0, 0])
        counts[0] += len(s["files"])
        counts[1] += sum(f["bytes"] for f in s["files"])
    files = sum(c[0] for c in split.values())
    total = sum(c[1] for c in split.values())
    parts = ", ".join(f"`{top}/` {c[0]} files, {_mb(c[1])}" for top, c in split.items())
    return (f"**{_mb(total)}** on disk for all {files} files ({parts}); "
            "`deepclarity data list` prints these figures from the manifest.\n")


def render_docs(text: str, doc: dict) -> str:
    if not BLOCK.search(text):
        raise SystemExit(f"build_manifest: no <!-- data:size --> block in {DOCS}")
    return BLOCK.sub(lambda m: m.group(1) + size_block(doc) + m.group(3), text)


def _write(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, default=None, help="the shared MANIFEST.json (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=OUT, help="the manifest to write (default: %(default)s)")
    parser.add_argument("--docs", type=Path, default=DOCS, help="the page whose size block to refresh")
    parser.add_argument("--check", action="store_true", help="only report whether the outputs are up to date")
    args = parser.parse_args(argv)
    source = args.source or default_source()
    if not source.is_file():
        raise SystemExit(f"build_manifest: {source} not found (give --source, the shared MANIFEST.json)")
    doc = build(source)
    blob = encode(doc)
    docs_old = args.docs.read_text() if args.docs.is_file() else None
    docs_new = render_docs(docs_old, doc) if docs_old is not None else None
    if args.check:
        stale = []
        if not args.out.is_file() or decode(args.out.read_bytes()) != doc:
            stale.append(str(args.out))
        if docs_old is not None and docs_new != docs_old:
            stale.append(str(args.docs))
        if stale:
            print(f"out of date: {', '.join(stale)}; run python -m tools.build_manifest", file=sys.stderr)
            return 1
        return 0
    if not args.out.is_file() or args.out.read_bytes() != blob:
        _write(args.out, blob)
        print(f"wrote {args.out} ({len(blob)} bytes, {sum(len(s['files']) for s in doc['sets'].values())} files)")
    if docs_new is not None and docs_new != docs_old:
        _write(args.docs, docs_new.encode())
        print(f"updated {args.docs}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
