"""evaluation/second_look_rule.py: the second look's effect on training photos, the network alone
against the look, per slice."""

from __future__ import annotations

import numpy as np
from PIL import Image
from skimage import data as skdata

from evaluation import second_look_rule


def test_second_look_rule_table(tmp_path, rule_table_rows):
    photos = tmp_path / "data" / "train" / "bsds400"
    photos.mkdir(parents=True)
    for i, img in enumerate([skdata.astronaut()[::2, ::2], skdata.coffee()[::2, ::2], skdata.chelsea()]):
        Image.fromarray(np.ascontiguousarray(img)).save(photos / f"p{i}.png")
    out = tmp_path / "rule.md"
    assert second_look_rule.main(["--data", str(tmp_path / "data"), "--every", "1", "--out", str(out)]) == 0
    # every photo from the second on: 2 photos
    rows = rule_table_rows(out.read_text(), "second_look_rule", second_look_rule.SLICES, 2)
    assert rows[-1][1] == "pixelated" and rows[0][1] == "clean"
    assert second_look_rule.main(["--data", str(tmp_path / "empty")]) == 1
