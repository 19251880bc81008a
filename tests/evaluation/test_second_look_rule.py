"""evaluation/second_look_rule.py: the second look's effect on training photos, the network alone
against the look, per slice."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data as skdata

from evaluation import second_look_rule


def test_second_look_rule_table(tmp_path):
    photos = tmp_path / "data" / "train" / "bsds400"
    photos.mkdir(parents=True)
    for i, img in enumerate([skdata.astronaut()[::2, ::2], skdata.coffee()[::2, ::2], skdata.chelsea()]):
        Image.fromarray(np.ascontiguousarray(img)).save(photos / f"p{i}.png")
    out = tmp_path / "rule.md"
    assert second_look_rule.main(["--data", str(tmp_path / "data"), "--every", "1", "--out", str(out)]) == 0
    text = out.read_text()
    assert text.startswith("`python -m evaluation.second_look_rule --data ")
    rows = [line for line in text.splitlines() if line.startswith("| ") and "---" not in line][1:]
    assert [r.split(" | ")[0][2:] for r in rows] == list(second_look_rule.SLICES)
    for r in rows:
        cells = r.strip("| ").split(" | ")
        assert cells[2] == "2" and all(c.endswith("%") for c in cells[3:])  # every 1st from the 2nd: 2 photos
    assert rows[-1].split(" | ")[1] == "pixelated" and rows[0].split(" | ")[1] == "clean"
    assert second_look_rule.main(["--data", str(tmp_path / "empty")]) == 1
