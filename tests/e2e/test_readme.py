"""The README's result tables are exactly the evaluation scripts' output files."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_readme_tables_match_results():
    res = subprocess.run([sys.executable, str(ROOT / "evaluation" / "update_readme.py"), "--check"],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr


def test_every_results_block_has_a_source_file():
    import re

    names = re.findall(r"<!-- results:([\w.-]+) -->", (ROOT / "README.md").read_text())
    assert names, "README has no generated result blocks"
    for name in names:
        assert (ROOT / "evaluation" / "results" / f"{name}.md").is_file(), name
