"""Screen-like images (deepclarity.pixelation.screens and Detector's screen verdict): censor
mosaics told from an interface's own grid by their colours."""

from __future__ import annotations

import numpy as np
import pytest
from skimage import data as skdata

import deepclarity.detect as detect_mod
from deepclarity.degrade import censor_regions, jpeg, pixelate
from deepclarity.detect import SCREEN_BOX_P, SCREEN_CENSOR, Detection, Detector, box_crops, locate
from deepclarity.eval import censor as ec
from deepclarity.pixelation import (GridEstimate, box_area, estimate_grid, find_censor_mosaics, is_censor_mosaic,
                                   screen_like)
from deepclarity.pixelation.screens import SCREEN_SHARE, coarsest_split, grow_censor, mosaic_colours


def _screen(h: int = 200, w: int = 480, seed: int = 0) -> np.ndarray:
    """A light 'screenshot': a panel, a button row and lines of dark, coloured text strokes."""
    rng = np.random.default_rng(seed)
    img = np.full((h, w, 3), 246, np.uint8)
    img[:24] = (40, 60, 90)  # title bar
    img[h - 30:h - 8, 16:96] = (0, 120, 215)  # a button
    for top in range(34, h - 50, 22):
        x = 10
        while x < w - 30:
            word = int(rng.integers(14, 50))
            colour = rng.integers(10, 120, 3)
            for sx in range(x, min(w - 10, x + word), 2):
                ys = top + int(rng.integers(0, 7))
                img[ys:top + 15, sx:sx + 1] = colour
            x += word + int(rng.integers(6, 14))
    return img


def _iou(truth, boxes, h, w) -> float:
    return ec.box_iou([t.to_record() for t in truth],
                      [{"x": b[0], "y": b[1], "w": b[2] - b[0], "h": b[3] - b[1]} for b in boxes], h, w)


def test_screen_like_separates_screens_from_photos():
    assert screen_like(_screen()) >= SCREEN_SHARE
    for photo in (skdata.astronaut(), skdata.coffee(), skdata.chelsea()):
        photo = np.ascontiguousarray(photo)
        assert screen_like(photo) < SCREEN_SHARE
        assert screen_like(jpeg(photo, 60)) < SCREEN_SHARE
        assert screen_like(pixelate(photo, 4)) < SCREEN_SHARE
    assert screen_like(np.zeros((0, 5, 3), np.uint8)) == 0.0


@pytest.mark.parametrize("block", [6, 7])
def test_censored_text_on_a_screen_is_found_with_its_block(block):
    # A strip of block-averaged text three or four blocks high: its box's evidence runs into the
    # text around it, so its grid is only found one and a half blocks in (boxes.CORE_MARGIN).
    img = _screen(seed=block)
    box = (60, 52, 60 + 28 * block, 52 + 4 * block)  # over two lines of text
    out, truth = censor_regions(img, [box], block, phases=[(2, 3)], mode="average")
    found = find_censor_mosaics(out)
    assert found, block
    assert _iou(truth, [b for b, _ in found], *out.shape[:2]) >= 0.6
    assert found[0][1].block_size == pytest.approx(block, rel=0.1)


def test_interface_grids_are_not_censor_mosaics():
    # Flat widgets on an 8 px grid: cells of a very few colours, however regular the grid.
    ui = np.full((160, 320, 3), 240, np.uint8)
    for y in range(0, 160, 16):
        for x in range(0, 320, 16):
            if (x // 16 + y // 16) % 3 == 0:
                ui[y:y + 8, x:x + 8] = (30, 90, 200)
    grid = GridEstimate(8.0, (8.0, 8.0), (0.0, 0.0), 0.95)
    distinct, major = mosaic_colours(ui, (0, 0, 320, 160), grid)
    assert distinct <= 2 and major == 1.0
    assert not is_censor_mosaic(ui, (0, 0, 320, 160), grid)
    assert find_censor_mosaics(ui) == []
    assert find_censor_mosaics(_screen(seed=3)) == []
    # The same grid over a block-averaged picture is a censor's: many in-between colours.
    photo = pixelate(np.ascontiguousarray(skdata.astronaut()[:160, :320]), 8)
    assert is_censor_mosaic(photo, (0, 0, 320, 160), grid)
    # ... but not when the blocks are too fine to be a censor's.
    assert not is_censor_mosaic(photo, (0, 0, 320, 160), GridEstimate(3.0, (3.0, 3.0), (0.0, 0.0), 0.95))


def _fake_probs(monkeypatch, fn):
    calls = iter(range(10 ** 6))
    monkeypatch.setattr(Detector, "tile_probabilities",
                        lambda self, crops: np.array([fn(next(calls)) for _ in crops], np.float32))


def test_network_firing_on_a_tile_or_two_of_a_clean_screen_is_overruled(monkeypatch, stub_detector):
    img = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)  # 600x480: 12 tiles
    # As shipped (one tile is enough for the mixed-training network) the network's verdict stands...
    _fake_probs(monkeypatch, lambda i: 0.99 if i < 2 else 0.05)
    assert detect_mod.MIN_SCREEN_TILES == 1 and stub_detector.detect(img).basis == "screen: network"
    # ... and where a network needs more tiles (the photo-only one: 3), a tile or two is overruled.
    monkeypatch.setattr(detect_mod, "MIN_SCREEN_TILES", 3)
    _fake_probs(monkeypatch, lambda i: 0.99 if i < 2 else 0.05)
    det = stub_detector.detect(img)
    assert det.probability == pytest.approx(0.99)
    assert not det.pixelated and det.regions == [] and det.basis == "screen: interface grid"
    assert det.to_record()["basis"] == "screen: interface grid"
    # Without the check the network's verdict stands.
    stub_detector.screen_check = False
    _fake_probs(monkeypatch, lambda i: 0.99 if i < 2 else 0.05)
    alone = stub_detector.detect(img)
    assert alone.pixelated and alone.basis == "network"


def _sees_boxes(monkeypatch, p: float):
    """The network, shown crops centred on a box (``Detector.box_probability``), scores it ``p``."""
    monkeypatch.setattr(Detector, "box_probability", lambda self, rgb, box: p)


def test_a_censor_the_tiles_missed_is_found_where_the_network_sees_it_centred(monkeypatch, stub_detector):
    img = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)
    out, truth = censor_regions(img, [(60, 252, 228, 276)], 6, phases=[(1, 5)], mode="average")
    _fake_probs(monkeypatch, lambda i: 0.05)
    _sees_boxes(monkeypatch, 0.99)
    det = stub_detector.detect(out)
    assert det.pixelated and det.basis == SCREEN_CENSOR
    assert _iou(truth, [r.xyxy for r in det.regions], *out.shape[:2]) >= 0.6
    assert det.block_size == pytest.approx(6, rel=0.1)
    # The restorer's boxes are these (locate keeps boxes it is given), not the empty tiles'.
    assert locate(out, det, 0.5) is det
    # Boxes of blocks the network does not call pixelated, centred on them, are the interface's.
    _sees_boxes(monkeypatch, SCREEN_BOX_P - 0.01)
    det = stub_detector.detect(out)
    assert not det.pixelated and det.regions == [] and det.basis == "network"


def test_a_censor_the_network_sees_beats_the_tiles_that_fired(monkeypatch, stub_detector):
    # A one-line censor fires the tile that holds it; its box is the censor's, not the tile's.
    img = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)
    out, truth = censor_regions(img, [(60, 252, 228, 276)], 6, phases=[(1, 5)], mode="average")
    rows, cols, tiles = detect_mod.tile_grid(*out.shape[:2], stub_detector.max_tiles)
    fired = next(t for t in tiles if t[0] <= 264 < t[1] and t[2] <= 144 < t[3])  # the censor's centre
    _fake_probs(monkeypatch, lambda i: 0.99 if tiles[i % len(tiles)] == fired else 0.05)
    _sees_boxes(monkeypatch, 0.99)
    det = stub_detector.detect(out)
    assert det.pixelated and det.basis == SCREEN_CENSOR
    assert _iou(truth, [r.xyxy for r in det.regions], *out.shape[:2]) >= 0.6


def test_box_crops_centre_the_network_on_a_box():
    img = np.arange(300 * 900 * 3, dtype=np.uint32).reshape(300, 900, 3).astype(np.uint8)
    (one,) = box_crops(img, (400, 100, 440, 120))  # centred: rows 30-190, columns 340-500
    assert one.shape == (160, 160, 3) and np.array_equal(one, img[30:190, 340:500])
    # A box longer than a crop: one every half crop along it, the last flush with its end.
    crops = box_crops(img, (10, 100, 600, 116))
    assert len(crops) == 7 and all(c.shape == (160, 160, 3) for c in crops)
    assert np.array_equal(crops[0], img[28:188, 10:170]) and np.array_equal(crops[-1], img[28:188, 440:600])
    # Near an edge the crop moves inside; an image under a crop is mirrored out to one.
    assert np.array_equal(box_crops(img, (880, 0, 900, 10))[0], img[0:160, 740:900])
    small = img[:40, :100]
    (padded,) = box_crops(small, (10, 10, 30, 20))
    assert padded.shape == (160, 160, 3) and np.array_equal(padded[:40, :100], small)


@pytest.mark.parametrize("mode", ["average", "nearest"])
@pytest.mark.parametrize("block, phase_x", [(6, 3), (12, 6)])  # phases whose samples hit the strokes
def test_a_piece_of_a_text_censor_grows_to_the_whole_censor(mode, block, phase_x):
    # The box search often finds a few cells of a one-line censor; the cells beyond it on its grid
    # are flat up to the censor's ends, and the letters past them are not.
    img = _screen(seed=1)
    out, truth = censor_regions(img, [(60, 52, 300, 67)], block, phases=[(phase_x, 3)], mode=mode)
    assert (out[52:67, 60:300] != img[52:67, 60:300]).any(axis=2).mean() > 0.25
    grid = GridEstimate(float(block), (float(block),) * 2, (float(phase_x), 3.0), 0.9)
    piece = (60 + 3 * block + 3, 52, 60 + 6 * block + 3, 67)
    x0, y0, x1, y1 = grow_censor(out, piece, grid)
    assert _iou(truth, [(x0, y0, x1, y1)], *out.shape[:2]) >= 0.85
    assert 60 - block < x0 and x1 < 300 + block and (y0, y1) == (52, 67)
    # Clean text is no censor to grow into.
    assert grow_censor(img, piece, grid) == piece


def test_the_coarsest_grid_a_censors_cells_split_is_its_own():
    # Nearest-sample text repeats the background over neighbouring cells, so a half or a third of
    # the block fits too; only the true block has no colour change inside its cells.
    img = np.ascontiguousarray(skdata.astronaut()[100:196, 100:340])
    for block, phase in ((12, (5, 7)), (8, (0, 3))):
        out, _ = censor_regions(img, [(0, 0, 240, 96)], block, phases=[phase], mode="nearest")
        own = GridEstimate(float(block), (float(block),) * 2, tuple(map(float, phase)), 0.9)
        for k in (2, 3, 4):
            if block % k:
                continue
            fine = GridEstimate(block / k, (block / k,) * 2, tuple(p % (block / k) for p in own.phase_xy), 0.9)
            found = coarsest_split(out, (0, 0, 240, 96), fine)
            assert found.block_xy == own.block_xy and found.phase_xy == own.phase_xy, (block, k)
        assert coarsest_split(out, (0, 0, 240, 96), own) == own
    # A few cells that all look alike say nothing.
    flat = np.full((48, 48, 3), 200, np.uint8)
    fine = GridEstimate(4.0, (4.0, 4.0), (0.0, 0.0), 0.9)
    assert coarsest_split(flat, (0, 0, 48, 48), fine) == fine


def test_a_text_censor_the_network_found_gets_its_boxs_block_not_its_tiles(monkeypatch, stub_detector):
    img = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)  # 600x480: 12 tiles of 160
    out, truth = censor_regions(img, [(60, 252, 228, 276)], 6, phases=[(1, 5)], mode="average")
    rows, cols, tiles = detect_mod.tile_grid(*out.shape[:2], stub_detector.max_tiles)
    fired = next(t for t in tiles if t[0] <= 264 < t[1] and t[2] <= 144 < t[3])  # the censor's centre
    _fake_probs(monkeypatch, lambda i: 0.99 if tiles[i % len(tiles)] == fired else 0.05)
    det = stub_detector.detect(out)
    assert det.pixelated and det.basis == "screen: network"
    assert det.regions and box_area(det.regions[0].xyxy) < 0.1 * out.shape[0] * out.shape[1]
    assert det.block_size == pytest.approx(6, rel=0.1) and det.block_size == det.regions[0].block_size
    assert det.phase == det.regions[0].phase
    # The grid measured over the whole tile (the clean text around the censor too) is not the censor's.
    mask = np.zeros(out.shape[:2], bool)
    mask[fired[0]:fired[1], fired[2]:fired[3]] = True
    tile_grid = estimate_grid(out, mask)
    assert not (tile_grid.found and abs(tile_grid.block_size - 6) <= 0.6)


def test_full_pixelation_of_a_screen_keeps_the_network_verdict(monkeypatch, stub_detector):
    img = pixelate(np.concatenate([_screen(seed=s) for s in range(3)], axis=0), 3)
    _fake_probs(monkeypatch, lambda i: 0.99)
    det = stub_detector.detect(img)
    assert det.pixelated and det.basis == "screen: network"
    assert [r.xyxy for r in det.regions] == [(0, 0, img.shape[1], img.shape[0])]


def _fires_on_the_first_image_only(monkeypatch):
    """The network fires on every tile of the image detected, never on the half image the
    HiDPI check judges next (as the shipped network does on interfaces at 1x)."""
    calls = []

    def fake(self, crops):
        calls.append(len(crops))
        return np.full(len(crops), 0.99 if len(calls) == 1 else 0.05, np.float32)

    monkeypatch.setattr(Detector, "tile_probabilities", fake)
    return calls


def _doubled(img: np.ndarray) -> np.ndarray:
    return np.repeat(np.repeat(img, 2, axis=0), 2, axis=1)


@pytest.mark.parametrize("quality", [None, 90])
def test_an_interface_doubled_all_over_is_not_pixelated(monkeypatch, stub_detector, quality):
    # A HiDPI x2 screenshot (every pixel doubled by nearest neighbour) is the interface as designed
    # (training.synth_v2 labels it clean): it is judged by the image it doubles. Blocks of 3 px
    # on the same screen, or a photo doubled (not screen-like), stay pixelated.
    from deepclarity.detect import SCREEN_HIDPI

    screen = np.concatenate([_screen(seed=s) for s in range(2)], axis=0)
    doubled = jpeg(_doubled(screen), quality) if quality else _doubled(screen)
    calls = _fires_on_the_first_image_only(monkeypatch)
    det = stub_detector.detect(doubled)
    assert not det.pixelated and det.basis == SCREEN_HIDPI and det.regions == [] and det.block_size is None
    assert len(calls) == 2 and det.probability == pytest.approx(0.99)  # the network's score is kept
    _fires_on_the_first_image_only(monkeypatch)
    tripled = pixelate(np.repeat(np.repeat(screen, 3, axis=0), 3, axis=1), 3)
    assert stub_detector.detect(tripled).basis == "screen: network"
    _fires_on_the_first_image_only(monkeypatch)
    photo = np.ascontiguousarray(skdata.astronaut()[::2, ::2])
    assert stub_detector.detect(_doubled(photo)).pixelated


@pytest.mark.parametrize("shift", [0, 1])
def test_a_censor_in_a_doubled_interface_is_found_in_the_image_it_doubles(monkeypatch, stub_detector, shift):
    # Censored at 1x (6 px blocks), then doubled (and cropped by ``shift`` px: a one-pixel cell
    # opens each row and column): found by its colours in the half image, its box and blocks
    # doubled back onto the image; the clean doubled screen next to it is not pixelated.
    screen = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)
    censored, truth = censor_regions(screen, [(60, 252, 228, 276)], 6, phases=[(1, 5)], mode="average")
    doubled = np.ascontiguousarray(_doubled(censored)[shift:, shift:])
    _fires_on_the_first_image_only(monkeypatch)
    _sees_boxes(monkeypatch, 0.99)
    det = stub_detector.detect(doubled)
    assert det.pixelated and det.basis == SCREEN_CENSOR
    x0, y0, x1, y1 = (2 * v - shift for v in truth[0].xyxy)
    (bx0, by0, bx1, by1), = [r.xyxy for r in det.regions]
    inter = max(0, min(x1, bx1) - max(x0, bx0)) * max(0, min(y1, by1) - max(y0, by0))
    assert inter / ((x1 - x0) * (y1 - y0) + (bx1 - bx0) * (by1 - by0) - inter) >= 0.6
    assert det.block_size == pytest.approx(12, rel=0.1)
    # The doubled grid's phase lands on the doubled blocks' edges (censor phase (1, 5) at 1x).
    px, py = det.regions[0].phase
    assert min((px - (2 * 1 - shift)) % 12, (2 * 1 - shift - px) % 12) <= 1.0
    assert min((py - (2 * 5 - shift)) % 12, (2 * 5 - shift - py) % 12) <= 1.0


def test_a_screen_pixelated_by_four_is_undoubled_once(monkeypatch, stub_detector):
    # Blocks of 4 px from pixel 0 are pixels doubled twice: the half image (blocks of 2) is judged
    # as it is, not halved again into a clean quarter (HiDPI x2 is clean, pixelation by 4 is not).
    screen = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)
    calls = []

    def fake(self, crops):  # fires on the image and its half, not on a quarter
        calls.append(len(crops))
        return np.full(len(crops), 0.99 if len(calls) <= 2 else 0.05, np.float32)

    monkeypatch.setattr(Detector, "tile_probabilities", fake)
    det = stub_detector.detect(pixelate(_doubled(screen), 4))
    assert det.pixelated and det.basis == "screen: network" and len(calls) == 2
    assert [r.xyxy for r in det.regions] == [(0, 0, 960, 1200)]


def test_nearest_doubled_finds_the_doubling_grid_and_nothing_else():
    from deepclarity.pixelation import nearest_doubled

    screen = np.concatenate([_screen(seed=s) for s in range(2)], axis=0)
    for shift in (0, 1):
        found = nearest_doubled(np.ascontiguousarray(_doubled(screen)[shift:, shift:]))
        assert found is not None
        grid, half = found
        assert grid.block_xy == (2.0, 2.0) and grid.phase_xy == (float(shift), float(shift))
        np.testing.assert_array_equal(half[1:, 1:], screen[1:, 1:])
    assert nearest_doubled(jpeg(_doubled(screen), 90)) is not None
    # Not doubled: the screen itself, pixelation by 3 or by a factor near 2, a flat image.
    assert nearest_doubled(screen) is None
    assert nearest_doubled(pixelate(_doubled(screen), 3)) is None
    assert nearest_doubled(pixelate(screen, 2.04)) is None
    assert nearest_doubled(np.full((64, 64, 3), 200, np.uint8)) is None


def test_one_network_pass_judged_every_way_is_detect_with_those_settings(monkeypatch, stub_detector):
    # Detector.score + Detector.verdict(screen_check=, look=) is what detect gives with those
    # settings (the evaluation's rule tables judge one pass several ways); here the check overrules
    # the network on a clean screen (two tiles fired, three needed) and the network stands without it.
    monkeypatch.setattr(detect_mod, "MIN_SCREEN_TILES", 3)
    img = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)
    _fake_probs(monkeypatch, lambda i: 0.99 if i % 12 < 2 else 0.05)
    network = stub_detector.score(img)
    assert network.pixelated and network.regions == [] and network.block_size is None
    for screen_check in (True, False):
        judged = stub_detector.verdict(img, network, screen_check=screen_check, look=False)
        stub_detector.screen_check, stub_detector.second_look = screen_check, False
        assert judged.to_record() == stub_detector.detect(img).to_record()
        assert judged.pixelated is not screen_check
    stub_detector.screen_check = stub_detector.second_look = True
    assert stub_detector.verdict(img, network).basis == "screen: interface grid"


def test_photos_keep_the_network_verdict(monkeypatch, stub_detector):
    monkeypatch.setattr(detect_mod, "MIN_SCREEN_TILES", 3)  # one tile would be overruled on a screen
    _fake_probs(monkeypatch, lambda i: 0.99 if i == 0 else 0.05)
    det = stub_detector.detect(np.ascontiguousarray(skdata.astronaut()))
    assert det.pixelated and det.basis == "network"
    assert Detection(True, 0.9, None, None, np.zeros((1, 1), np.float32)).basis == "network"


def test_detect_app_says_why_a_screen_verdict_differs_from_its_score():
    from deepclarity.apps.detect_app import DetectRow, _caption

    row = DetectRow("ui.png", pixelated=False, probability=0.99, basis="screen: interface grid")
    assert _caption(row).endswith("clean, p = 0.990 (screen: interface grid)")
    assert row.to_record()["basis"] == "screen: interface grid"
    assert "(" not in _caption(DetectRow("photo.png", pixelated=True, probability=0.99, basis="network"))


def test_a_censor_on_a_screenshot_is_reported_not_restored(monkeypatch, stub_detector):
    # Restoring text censors gains nothing measurable and can lose (eval_restore --suite censor):
    # the restorer leaves them as they are and says why.
    from deepclarity.apps.render import action_words
    from deepclarity.restore import Action, Restorer

    img = np.concatenate([_screen(seed=s) for s in range(3)], axis=0)
    out, _ = censor_regions(img, [(60, 252, 228, 276)], 6, phases=[(1, 5)], mode="average")
    _fake_probs(monkeypatch, lambda i: 0.05)
    _sees_boxes(monkeypatch, 0.99)
    restorer = Restorer("bicubic", device="cpu")
    restorer.detector = stub_detector
    res = restorer.restore(out)
    assert res.pixelated and res.action is Action.NO_GRID
    assert [b.status for b in res.boxes] == ["text"] and res.over_text == res.boxes
    assert np.array_equal(res.image.pixels, out)
    assert "letters cannot be recovered" in action_words(res, 1.0, "bicubic")
    assert res.to_record()["boxes"][0]["status"] == "text"
