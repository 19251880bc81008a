"""evaluation/screens_rule.py: the screenshot check's effect on train/screens, the network alone
against the check, per slice."""

from __future__ import annotations

import numpy as np
from PIL import Image

from evaluation import screens_rule
from training.carriers import render_text


def test_screens_rule_table(tmp_path, rule_table_rows):
    screens = tmp_path / "data" / "train" / "screens"
    screens.mkdir(parents=True)
    for i in range(2):
        Image.fromarray(render_text(200, 320, np.random.default_rng(i))).save(screens / f"s{i}.png")
    out = tmp_path / "rule.md"
    assert screens_rule.main(["--data", str(tmp_path / "data"), "--every", "1", "--out", str(out)]) == 0
    rows = rule_table_rows(out.read_text(), "screens_rule", screens_rule.SLICES, 2)
    # Rendered text on a flat background is screen-like, so the check runs on every clean screenshot.
    assert rows[0][3] == "100.0%"
    assert screens_rule.main(["--data", str(tmp_path / "empty")]) == 1
