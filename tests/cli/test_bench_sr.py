"""`deepclarity bench sr` and the speed/size columns of the SR table (timings are reported, never asserted)."""

from __future__ import annotations

import json

import pytest

from deepclarity.bench import bench_sr, format_bench_sr
from deepclarity.cli import main
from deepclarity.eval.sr import SetResult, format_sr_table
from deepclarity.models import get_spec


def test_bench_sr_rows_on_a_small_frame():
    res = bench_sr(["bicubic", "mobilesr-seed"], device="cpu", repeats=1, frame=(24, 40),
                   options=["torch-fp32", "torch-bf16"])
    assert res["frame"] == "40x24 -> 160x96"
    assert res["cuda"] is None  # asked for the CPU only
    bic, seed = res["rows"]
    assert bic["model"] == "bicubic" and bic["params"] == 0 and set(bic["cpu_s"]) == {"torch-fp32"}
    assert bic["cpu_s"]["torch-fp32"] > 0
    assert seed["params"] == get_spec("mobilesr-seed").num_params == 121222
    assert set(seed["cpu_s"]) == {"torch-fp32", "torch-bf16"} and min(seed["cpu_s"].values()) > 0
    assert seed["weights"] == "architecture only" and seed["size_mb_fp32"] == pytest.approx(121222 * 4 / 1e6)
    table = format_bench_sr(res)
    assert "| mobilesr-seed | 121,222 | 0.485 | architecture only |" in table
    assert "CPU s/frame torch-bf16" in table and "| bicubic | - | - | n/a |" in table
    assert "GPU: none present" in table and "threads" in table


def test_bench_sr_refuses_a_detector():
    from deepclarity.errors import DeepClarityError

    with pytest.raises(DeepClarityError, match="not a super-resolution model"):
        bench_sr(["detector-canny"], device="cpu", repeats=1, frame=(8, 8))


def test_cli_bench_sr_json(capsys, monkeypatch):
    import deepclarity.bench as bench

    real = bench.bench_sr
    monkeypatch.setattr(bench, "bench_sr", lambda models, **kw: real(models, frame=(16, 24), **kw))
    assert main(["bench", "sr", "--models", "bicubic,mobilesr-seed", "--device", "cpu", "--repeats", "1",
                 "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"].startswith("deepclarity bench sr")
    assert [r["model"] for r in out["rows"]] == ["bicubic", "mobilesr-seed"]


def test_sr_table_facts_and_lpips_na_column():
    results = [SetResult("bicubic", "Set5", 5, 28.43, 0.8113, None, "backbone missing"),
               SetResult("mobilesr", "Set5", 5, 30.5, 0.86, None, "backbone missing")]
    facts = {"mobilesr": {"params": 43760, "size_mb_fp32": 0.17504, "cpu_s": 0.5}}
    table = format_sr_table(results, scale=4, facts=facts)
    assert "PSNR (dB) / SSIM / LPIPS" in table
    assert "| mobilesr | 30.50 / 0.8600 / n/a | 43,760 | 0.175 | 0.50 (2.00) |" in table
    assert "| bicubic | 28.43 / 0.8113 / n/a | - | - | - |" in table
    assert "LPIPS: n/a — backbone missing" in table
    plain = format_sr_table([SetResult("bicubic", "Set5", 5, 28.43, 0.8113, None, "not requested")], scale=4)
    assert "LPIPS" not in plain and "params" not in plain


def test_bench_train_reports_patches_per_second_per_precision(capsys):
    from deepclarity.bench import bench_train, format_bench_train

    res = bench_train(["mobilesr", "minisrresnet"], precisions=["fp32", "bf16"], batch=2, patch=8, repeats=1)
    assert [r["model"] for r in res["rows"]] == ["mobilesr", "minisrresnet"]
    for row in res["rows"]:
        assert set(row["patches_per_s"]) == {"fp32", "bf16"} and min(row["patches_per_s"].values()) > 0
    assert res["rows"][0]["params"] == get_spec("mobilesr").num_params
    table = format_bench_train(res)
    assert "| model | params (training form) | fp32 patches/s | bf16 patches/s | bf16 / fp32 |" in table
    assert main(["bench", "train", "--models", "mobilesr", "--precisions", "fp32", "--batch", "2", "--patch", "8",
                 "--repeats", "1", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["command"].startswith("deepclarity bench train") and list(out["rows"][0]["patches_per_s"]) == ["fp32"]
