"""Copy result tables from ``evaluation/results/*.md`` into README.md, so no figure is typed by hand.

The README marks each generated block as ``<!-- results:NAME -->`` ... ``<!-- /results:NAME -->``;
the block is replaced by ``evaluation/results/NAME.md``. ``--check`` exits 1 when the README is
stale (the test suite runs it).

    python -m evaluation.update_readme [--check]
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(<!-- results:([\w.-]+) -->\n)(.*?)(<!-- /results:\2 -->)", re.S)


def render(readme: str, results_dir: Path) -> str:
    def fill(match: re.Match) -> str:
        source = results_dir / f"{match.group(2)}.md"
        if not source.is_file():
            raise SystemExit(f"update_readme: {source} does not exist; run the evaluation script first")
        return match.group(1) + source.read_text().rstrip("\n") + "\n" + match.group(4)

    return BLOCK.sub(fill, readme)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--check", action="store_true", help="only report whether README.md is up to date")
    args = parser.parse_args(argv)
    readme_path = ROOT / "README.md"
    old = readme_path.read_text()
    new = render(old, ROOT / "evaluation" / "results")
    if args.check:
        if old != new:
            print("README.md is out of date: run python -m evaluation.update_readme", file=sys.stderr)
            return 1
        return 0
    if old != new:
        readme_path.write_text(new)
        print("README.md updated")
    return 0


if __name__ == "__main__":
    sys.exit(main())
