"""``deepclarity data fetch|check|list``: get the training and benchmark data, verify a copy, show
what the manifest holds. :func:`add_data_commands` hooks them into the main parser.

Exit codes: 0 everything verified; 1 some files are missing, altered or failed to download;
2 a fatal error (no network, unknown set, unreadable manifest), one line on stderr.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from ..datasets import default_data_dir, default_fetch_dir
from .fetch import RETRIES, fetch_files
from .manifest import DEFAULT_BASE_URL, Manifest, SetInfo, load_manifest

__all__ = ["add_data_commands", "cmd_fetch", "cmd_check", "cmd_list", "describe_sets", "format_size"]

TERMS = ("These are research datasets, each under its own terms (see its repository); they are not "
         "part of DeepClarity and are not redistributed by it.")


def format_size(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e9:.2f} GB" if n >= 1e9 else f"{n / 1e6:.1f} MB"


def _origin(s: SetInfo) -> str:
    return ", ".join(f"github.com/{repo} @ {commit[:10]}" for repo, commit in s.repos)


def describe_sets(sets: list[SetInfo]) -> str:
    """One line per set: name, file count, size, what it is, where it comes from; then the terms."""
    lines = []
    for s in sets:
        what = f" -- {s.description}" if s.description else ""
        n = len(s.entries)
        lines.append(f"  {s.name}: {n} file{'s' * (n != 1)}, {format_size(s.bytes)}{what}; from {_origin(s)}")
    return "\n".join(lines + [TERMS])


def _manifest(args) -> Manifest:
    return load_manifest(args.manifest)


def cmd_fetch(args) -> int:
    manifest = _manifest(args)
    sets = manifest.select(args.sets)
    dest = args.dest or default_fetch_dir()
    total = sum(len(s.entries) for s in sets)
    size = sum(s.bytes or 0 for s in sets) or None
    print(f"Fetching {total} files ({format_size(size)}) into {dest}:")
    print(describe_sets(sets), flush=True)
    report = fetch_files(sets, dest, base=args.base_url, workers=args.workers, retries=args.retries,
                         progress=not args.quiet)
    for path in report.refetched:
        print(f"re-fetched (was altered): {path}")
    for path, message in report.failed:
        print(f"failed: {path}: {message}", file=sys.stderr)
    print(f"{len(report.downloaded)} downloaded ({format_size(report.bytes_downloaded)}), "
          f"{len(report.present)} already there and verified, {len(report.failed)} failed; data in {dest}")
    if report.failed:
        print(f"Run the same command again to retry, or `deepclarity data check {dest}` for a report.",
              file=sys.stderr)
        return 1
    return 0


def cmd_check(args) -> int:
    from .verify import check_files

    manifest = _manifest(args)
    sets = manifest.select(args.sets)
    root = args.dir
    if not os.path.isdir(root):
        print(f"deepclarity: error: {root}: no such folder (run `deepclarity data fetch --dest {root}`)",
              file=sys.stderr)
        return 1
    report = check_files(root, sets, workers=args.workers, progress=not args.quiet)
    if args.format == "json":
        print(json.dumps(report.as_dict(), indent=2))
    else:
        print(report.table())
        total = report.total()
        verdict = ("all files verified" if report.passed else
                   f"{total.missing} missing, {total.altered} altered: run `deepclarity data fetch --dest {root}`"
                   + (" " + " ".join(args.sets) if args.sets else "") + " to repair")
        print(f"{root}: {verdict}")
    return 0 if report.passed else 1


def cmd_list(args) -> int:
    manifest = _manifest(args)
    sets = manifest.select(args.sets)
    rows = [{"set": s.name, "files": len(s.entries), "bytes": s.bytes, "size": format_size(s.bytes),
             "source": _origin(s), "description": s.description} for s in sets]
    total = sum(s.bytes or 0 for s in sets) if all(s.bytes is not None for s in sets) else None
    if args.format == "json":
        print(json.dumps({"sets": rows, "files": sum(r["files"] for r in rows), "bytes": total}, indent=2))
        return 0
    w = max(len(r["set"]) for r in rows)
    for r in rows:
        print(f"{r['set']:<{w}}  {r['files']:>5}  {r['size']:>9}  {r['source']}")
    print(f"{'total':<{w}}  {sum(r['files'] for r in rows):>5}  {format_size(total):>9}  on disk once fetched")
    print(TERMS)
    return 0


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("sets", nargs="*", metavar="SET",
                   help="sets to use: e.g. train/bsds400, Set5, train, benchmark (default: all)")
    p.add_argument("--manifest", metavar="FILE",
                   help="another manifest (.json or .json.gz) instead of the one shipped with the package")


def add_data_commands(sub) -> None:
    """Add the ``data`` command (``fetch``, ``check``, ``list``) to the main parser's sub-parsers."""
    data = sub.add_parser(
        "data", help="get and verify the training and benchmark data",
        description="The research data behind training and the benchmarks (not shipped with the package): "
                    "every file pinned to a public repository, a commit and checksums.")
    dsub = data.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    p = dsub.add_parser(
        "fetch", help="download, verify and unpack the data sets (resumable)",
        description="Download each file at its pinned commit, check it against its checksum, apply the "
                    "recorded transform, verify the result and write it atomically. Files already there "
                    "and verified are skipped, so an interrupted run resumes. Exit code 1 when some files "
                    "failed, 2 when the server cannot be reached.")
    _common(p)
    p.add_argument("--dest", metavar="DIR",
                   help="datasets root to fill (default: $DEEPCLARITY_DATA, else the user data folder, "
                        f"{default_fetch_dir()})")
    p.add_argument("--base-url", metavar="URL", default=None,
                   help=f"download from this mirror (default: $DEEPCLARITY_DATA_URL or {DEFAULT_BASE_URL})")
    p.add_argument("--workers", type=int, default=8, metavar="N", help="parallel downloads (default 8)")
    p.add_argument("--retries", type=int, default=None, metavar="N",
                   help=f"tries per file for truncated or corrupted downloads (default {RETRIES})")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_fetch)

    p = dsub.add_parser(
        "check", help="verify a datasets folder: counts, checksums, what is missing or altered",
        description="Compare DIR with the manifest: a file passes when its sha256 matches, or when its "
                    "decoded pixels do (an image re-encoded by another Pillow version). Exit code 0 when "
                    "every file passes, 1 otherwise. Images the manifest does not list are counted as extra.")
    p.add_argument("dir", metavar="DIR",
                   help=f"datasets root (the scripts' default --data is {default_data_dir()})")
    _common(p)
    p.add_argument("--workers", type=int, default=4, metavar="N", help="files hashed in parallel (default 4)")
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_check)

    p = dsub.add_parser("list", help="the sets in the manifest: files, size on disk, origin")
    _common(p)
    p.add_argument("--format", choices=["table", "json"], default="table")
    p.set_defaults(func=cmd_list)
