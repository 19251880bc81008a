"""``deepclarity data fetch|check|list`` end to end, against a fake upstream on 127.0.0.1."""

from __future__ import annotations

import json

import pytest
from datasets_mini import PROXY_VARS, ROOT, Upstream, build_mini, closed_port

from deepclarity.cli import main
from deepclarity.data import fetch as fetch_mod

SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    for var in PROXY_VARS + ("DEEPCLARITY_DATA_URL", "DEEPCLARITY_DATA"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fetch_mod, "BACKOFF_S", 0.0)


@pytest.fixture
def mini(tmp_path):
    return build_mini(tmp_path)


@pytest.fixture
def upstream(mini):
    with Upstream(mini.upstream) as server:
        yield server


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_help_for_every_data_command(capsys):
    for argv in (["data", "--help"], ["data", "fetch", "--help"], ["data", "check", "--help"], ["data", "list", "--help"]):
        with pytest.raises(SystemExit) as info:
            main(argv)
        assert info.value.code == 0
    assert "--base-url" in capsys.readouterr().out


def test_fetch_then_check(mini, upstream, tmp_path, capsys):
    dest = tmp_path / "data"
    code, out, err = run(capsys, "data", "fetch", "--manifest", str(mini.manifest), "--dest", str(dest),
                         "--base-url", upstream.base_url, "-q")
    assert code == 0, err
    assert "github.com/someone/pictures @ 0123456789" in out and "research datasets" in out
    assert "7 downloaded" in out and "0 failed" in out
    code, out, err = run(capsys, "data", "check", str(dest), "--manifest", str(mini.manifest), "-q")
    assert code == 0, err
    assert "benchmark/Tiny" in out and "all files verified" in out
    assert out.splitlines()[0].split() == ["set", "files", "ok", "same", "pixels", "missing", "altered", "extra"]


def test_env_gives_the_mirror_and_the_destination(mini, upstream, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("DEEPCLARITY_DATA_URL", upstream.base_url)
    monkeypatch.setenv("DEEPCLARITY_DATA", str(tmp_path / "env-data"))
    code, out, err = run(capsys, "data", "fetch", "tiny", "--manifest", str(mini.manifest), "-q")
    assert code == 0, err
    assert sorted(p.name for p in (tmp_path / "env-data" / "benchmark" / "Tiny").iterdir()) == ["e.png", "f.png", "g.png"]
    assert not (tmp_path / "env-data" / "train").exists() and upstream.total == 3
    code, out, _ = run(capsys, "data", "check", str(tmp_path / "env-data"), "Tiny", "--manifest", str(mini.manifest), "-q")
    assert code == 0 and "total" in out


def test_altered_file_fails_check_and_fetch_repairs_it(mini, upstream, tmp_path, capsys):
    dest = tmp_path / "data"
    common = ["--manifest", str(mini.manifest), "-q"]
    assert run(capsys, "data", "fetch", "--dest", str(dest), "--base-url", upstream.base_url, *common)[0] == 0
    (dest / "train/bmp/c.png").write_bytes(b"garbage")
    (dest / "benchmark/Tiny/g.png").unlink()
    code, out, _ = run(capsys, "data", "check", str(dest), *common)
    assert code == 1
    assert "altered: train/bmp/c.png" in out and "missing: benchmark/Tiny/g.png" in out
    assert f"deepclarity data fetch --dest {dest}" in out
    code, report, _ = run(capsys, "data", "check", str(dest), "--format", "json", *common)
    assert code == 1 and json.loads(report)["total"]["altered"] == 1
    code, out, err = run(capsys, "data", "fetch", "--dest", str(dest), "--base-url", upstream.base_url, *common)
    assert code == 0, err
    assert "re-fetched (was altered): train/bmp/c.png" in out and "2 downloaded" in out and "5 already there" in out
    assert run(capsys, "data", "check", str(dest), *common)[0] == 0


def test_a_failed_file_gives_exit_code_1_and_its_url(mini, upstream, tmp_path, capsys):
    url = mini.url_path["train/big/d.png"]
    upstream.faults[url] = ["truncate"] * 2
    code, out, err = run(capsys, "data", "fetch", "--dest", str(tmp_path / "d"), "--base-url", upstream.base_url,
                         "--manifest", str(mini.manifest), "--retries", "2", "-q")
    assert code == 1
    assert f"failed: train/big/d.png: {upstream.base_url}{url}: truncated" in err and "6 downloaded" in out


def test_no_network_is_one_line_and_exit_code_2(mini, tmp_path, capsys):
    base = f"http://127.0.0.1:{closed_port()}"
    code, out, err = run(capsys, "data", "fetch", "--dest", str(tmp_path / "d"), "--base-url", base,
                         "--manifest", str(mini.manifest), "--retries", "1")
    assert code == 2
    assert err.count("\n") == 1 and err.startswith(f"deepclarity: error: cannot reach {base}/someone/pictures/")
    assert "research datasets" in out  # the notice came first
    assert not (tmp_path / "d").exists()


def test_bad_set_name_and_missing_folder(mini, tmp_path, capsys):
    code, _, err = run(capsys, "data", "fetch", "nonesuch", "--manifest", str(mini.manifest))
    assert code == 2 and "unknown data set 'nonesuch'" in err and err.count("\n") == 1
    code, _, err = run(capsys, "data", "check", str(tmp_path / "absent"), "--manifest", str(mini.manifest))
    assert code == 1 and "no such folder" in err and "deepclarity data fetch" in err


def test_list_shows_sets_sizes_and_terms(mini, capsys):
    code, out, _ = run(capsys, "data", "list", "--manifest", str(mini.manifest))
    assert code == 0 and "train/photos" in out and "total" in out and "research datasets" in out
    code, out, _ = run(capsys, "data", "list", "--format", "json")  # the shipped manifest
    listing = json.loads(out)
    assert code == 0 and listing["files"] == sum(s["files"] for s in listing["sets"]) and listing["bytes"] > 0


@pytest.mark.data
@pytest.mark.skipif(not (SHARED / "benchmark" / "Set5").is_dir(), reason="../shared/datasets is not present")
def test_check_the_shared_copy_of_a_set(capsys):
    code, out, err = run(capsys, "data", "check", str(SHARED), "Set5", "Set14", "-q")
    assert code == 0, out + err
    assert "benchmark/Set5" in out and "benchmark/Set14" in out and "all files verified" in out
