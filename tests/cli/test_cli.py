"""The command line: exit codes, one-line errors, and `eval sr` on the published protocol."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from skimage import data as skdata

from deepclarity import __version__
from deepclarity.cli import main
from deepclarity.degrade import imresize
from deepclarity.datasets import default_data_dir
from deepclarity.io import write_image
from deepclarity.metrics import psnr_y, ssim_y
from deepclarity.models import create_model, get_spec, save_weights

REPO = Path(__file__).resolve().parents[2]
BENCHMARK = default_data_dir() / "benchmark"


@pytest.fixture
def tiny_set(tmp_path: Path) -> Path:
    """A two-image benchmark folder made from scikit-image's bundled samples (odd sizes on purpose)."""
    folder = tmp_path / "bench" / "Tiny"
    folder.mkdir(parents=True)
    write_image(folder / "astronaut.png", skdata.astronaut()[100:203, 150:271])
    write_image(folder / "chelsea.png", skdata.chelsea()[50:150, 100:222])
    return folder


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepclarity", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120)


@pytest.mark.slow
def test_module_entry_point_help_and_version():
    res = run_cli("--help")
    assert res.returncode == 0
    for command in ("version", "models", "eval"):
        assert command in res.stdout
    res = run_cli("version")
    assert res.returncode == 0 and f"deepclarity {__version__}" in res.stdout


def test_console_script_installed():
    exe = shutil.which("deepclarity", path=os.path.dirname(sys.executable))
    if exe is None:
        pytest.skip("package not installed as a console script in this environment")
    res = subprocess.run([exe, "eval", "sr", "--help"], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0 and "--models" in res.stdout


def test_no_command_is_a_usage_error(capsys):
    assert main([]) == 2
    assert "usage" in capsys.readouterr().err


def test_unknown_option_exits_2():
    with pytest.raises(SystemExit) as exc:
        main(["eval", "sr", "--no-such-flag"])
    assert exc.value.code == 2


def test_models_lists_registry_as_json(capsys):
    assert main(["models", "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    names = {r["name"] for r in rows}
    assert {"detector-canny", "detector-rgb", "mobilesr", "mobilesr-rep", "minisrresnet", "minisrgan"} <= names
    seed = next(r for r in rows if r["name"] == "mobilesr-seed")
    assert seed["params"] == 121222 and seed["weights"] is None


def test_eval_sr_bicubic_json_matches_direct_computation(tiny_set, capsys):
    assert main(["eval", "sr", "--data", str(tiny_set), "--models", "bicubic", "--format", "json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["scale"] == 4
    (res,) = report["results"]
    assert res["method"] == "bicubic" and res["dataset"] == "Tiny" and res["images"] == 2
    # Recompute by hand: crop to a multiple of 4, MATLAB bicubic down and up, shave 4 px.
    psnrs, ssims = [], []
    for name in ("astronaut.png", "chelsea.png"):
        from deepclarity.io import read_rgb

        hr = read_rgb(tiny_set / name)
        hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
        sr = imresize(imresize(hr, 0.25), 4)
        psnrs.append(psnr_y(sr, hr, 4))
        ssims.append(ssim_y(sr, hr, 4))
    assert res["psnr"] == pytest.approx(np.mean(psnrs), abs=1e-9)
    assert res["ssim"] == pytest.approx(np.mean(ssims), abs=1e-9)
    assert [r["image"] for r in res["per_image"]] == ["astronaut.png", "chelsea.png"]


def test_eval_sr_table_written_to_file(tiny_set, tmp_path, capsys):
    out = tmp_path / "table.md"
    assert main(["eval", "sr", "--data", str(tiny_set.parent), "--models", "bicubic", "-o", str(out), "-q"]) == 0
    text = out.read_text()
    assert "| bicubic |" in text and "Tiny (2)" in text
    assert capsys.readouterr().out == ""


def test_eval_sr_with_weights_from_weights_dir(tiny_set, tmp_path, monkeypatch, capsys):
    """A registered model runs through the same command once its weights file exists."""
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path / "w"))
    spec = get_spec("mobilesr")
    save_weights(create_model("mobilesr", pretrained=False), tmp_path / "w" / spec.weights, {"note": "test"})
    code = main(["eval", "sr", "--data", str(tiny_set), "--models", "bicubic,mobilesr", "--format", "json",
                 "--tile", "16", "-q"])
    assert code == 0
    results = {r["method"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert set(results) == {"bicubic", "mobilesr"}
    assert np.isfinite(results["mobilesr"]["psnr"]) and 0 < results["mobilesr"]["ssim"] <= 1


@pytest.mark.parametrize("args, message", [
    (["--models", "nosuchmodel"], "unknown model 'nosuchmodel'"),
    (["--models", "detector-canny"], "not a super-resolution model"),
    (["--models", "mobilesr-seed"], "architecture kept for comparison"),
    (["--models", "bicubic", "--sets", "NoSuchSet"], "none of the sets"),
    (["--models", "bicubic", "--device", "banana"], "unknown device"),
])
def test_eval_sr_fatal_errors_are_one_line(tiny_set, args, message, capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(tmp_path / "empty"))
    assert main(["eval", "sr", "--data", str(tiny_set), "-q", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("deepclarity: error:") and message in err
    assert "\n" not in err and "Traceback" not in err


def test_eval_sr_missing_or_empty_data(tmp_path, capsys):
    assert main(["eval", "sr", "--data", str(tmp_path / "nope"), "-q"]) == 2
    assert "no such folder" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["eval", "sr", "--data", str(tmp_path / "empty"), "-q"]) == 2
    assert "no images found" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.skipif(not (BENCHMARK / "Set5").is_dir(), reason="../shared/datasets is not present")
def test_bicubic_reproduces_published_set5_set14(capsys):
    """The protocol check of DESIGN.md: bicubic x4 gives Set5 28.42 +/- 0.02 dB and Set14 26.0-26.1 dB."""
    assert main(["eval", "sr", "--data", str(BENCHMARK), "--sets", "Set5", "Set14", "--models", "bicubic",
                 "--format", "json", "-q"]) == 0
    results = {r["dataset"]: r for r in json.loads(capsys.readouterr().out)["results"]}
    assert results["Set5"]["images"] == 5 and results["Set14"]["images"] == 14
    assert abs(results["Set5"]["psnr"] - 28.42) <= 0.02
    assert 26.0 <= results["Set14"]["psnr"] <= 26.1


# ----------------------------------------------------------- one SR path, choices from the registry


@pytest.mark.parametrize("model", ["mobilesr", "bicubic"])
def test_eval_sr_scores_the_pixels_enhance_writes(model, tiny_set, tmp_path, monkeypatch, capsys):
    """``eval sr`` and ``deepclarity enhance`` run one forward path: the image ``enhance`` writes
    for the protocol's LR input is the one ``eval sr`` scores, to the last bit."""
    from helpers import write_random_weights

    from deepclarity.eval.sr import make_upscaler
    from deepclarity.io import read_rgb

    monkeypatch.setenv("DEEPCLARITY_WEIGHTS", str(write_random_weights(tmp_path / "w", ("mobilesr",))))
    hr = read_rgb(tiny_set / "chelsea.png")
    hr = hr[: hr.shape[0] // 4 * 4, : hr.shape[1] // 4 * 4]
    lr = imresize(hr, 0.25)
    (tmp_path / "lr").mkdir()
    write_image(tmp_path / "lr" / "chelsea.png", lr)
    assert main(["enhance", "-i", str(tmp_path / "lr" / "chelsea.png"), "-o", str(tmp_path / "out"), "-m", model,
                 "-s", "4", "--suffix", "", "--device", "cpu", "-q"]) == 0
    enhanced = read_rgb(tmp_path / "out" / "chelsea.png")
    np.testing.assert_array_equal(enhanced, make_upscaler(model, 4, device="cpu")(lr))
    capsys.readouterr()
    assert main(["eval", "sr", "--data", str(tiny_set), "--models", model, "--format", "json", "-q"]) == 0
    (res,) = json.loads(capsys.readouterr().out)["results"]
    scored = next(r for r in res["per_image"] if r["image"] == "chelsea.png")
    assert scored["psnr"] == psnr_y(enhanced, hr, 4)
    assert scored["ssim"] == pytest.approx(ssim_y(enhanced, hr, 4), abs=1e-9)  # summation order may vary


@pytest.fixture
def scratch_registry(monkeypatch):
    """A copy of the registry that a test may add to; the real one is put back afterwards."""
    from deepclarity.models import registry as registry_mod

    monkeypatch.setattr(registry_mod, "_REGISTRY", dict(registry_mod._REGISTRY))


def test_cli_choices_come_from_the_registry(scratch_registry, capsys):
    from deepclarity.cli import build_parser
    from deepclarity.models import TASKS, MobileSR, ModelSpec, register

    register(ModelSpec("tinysr", "sr", MobileSR, 4, "tinysr.safetensors", "a test generator"))
    register(ModelSpec("detector-edge2", "detect", lambda: create_model("detector-canny", pretrained=False), 1,
                       "detector-edge2.safetensors", "a test detector", method="edge2"))
    parser = build_parser()
    for command in ("enhance", "restore"):
        assert parser.parse_args([command, "-i", "a.png", "-o", "out", "-m", "tinysr"]).model == "tinysr"
        assert parser.parse_args([command, "-i", "a.png", "-o", "out", "-m", "bicubic"]).model == "bicubic"
    assert parser.parse_args(["restore", "-i", "a.png", "-o", "out", "--method", "edge2"]).method == "edge2"
    assert parser.parse_args(["detect", "a.png", "--method", "edge2"]).method == "edge2"
    assert parser.parse_args(["bench", "detect", "--method", "edge2"]).method == "edge2"
    for task in TASKS:
        assert parser.parse_args(["models", "--task", task]).task == task
    for bad in (["enhance", "-i", "a.png", "-o", "out", "-m", "mobilesr-seed"],  # not shipped
                ["enhance", "-i", "a.png", "-o", "out", "-m", "mobilesr-pixel"],  # a restoration variant
                ["detect", "a.png", "--method", "sobel"]):
        with pytest.raises(SystemExit):
            parser.parse_args(bad)
    assert "tinysr" in " ".join(parser.parse_args(["bench", "sr"]).models)
    assert parser.parse_args(["eval", "sr"]).models == ["bicubic"]
    capsys.readouterr()


def test_models_lists_bicubic_as_a_function_entry(capsys):
    assert main(["models", "--task", "sr", "--format", "json"]) == 0
    rows = {r["name"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows["bicubic"]["kind"] == "function" and rows["bicubic"]["params"] == 0
    assert rows["bicubic"]["weights"] is None and rows["mobilesr"]["kind"] == "network"
    assert main(["models", "--task", "sr"]) == 0
    line = next(x for x in capsys.readouterr().out.splitlines() if x.startswith("bicubic "))
    assert line.split()[-2:] == ["none", "needed"]


class _FakeRestorer:
    """Stands in for :class:`deepclarity.restore.Restorer`: records what ``restore`` was asked."""

    calls: list[dict] = []

    def __init__(self, model, **kwargs) -> None:
        self.model = model

    def restore(self, loaded, **kwargs):
        from deepclarity.restore import Action, Restored

        type(self).calls.append(kwargs)
        return Restored(loaded, Action.KEPT, False, 0.1, None, None, None, self.model, 0.0)


def test_restore_sharpen_is_passed_to_the_restorer(tmp_path, monkeypatch, capsys):
    import deepclarity.restore as restore_mod

    monkeypatch.setattr(restore_mod, "Restorer", _FakeRestorer)
    monkeypatch.setattr(_FakeRestorer, "calls", [])
    write_image(tmp_path / "a.png", skdata.astronaut()[:32, :32])
    args = ["restore", "-i", str(tmp_path / "a.png"), "-o", str(tmp_path / "out"), "-q"]
    assert main(args + ["--sharpen", "1.5"]) == 0
    assert main(args + ["--suffix", "plain"]) == 0
    assert [c["sharpen_amount"] for c in _FakeRestorer.calls] == [1.5, 0.0]
    for bad in ("-1", "nan", "inf", "much"):
        with pytest.raises(SystemExit) as exc:
            main(args + ["--sharpen", bad])
        assert exc.value.code == 2
    assert "--sharpen" in capsys.readouterr().err
