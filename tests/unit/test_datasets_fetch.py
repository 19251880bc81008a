"""deepclarity.data.fetch against a fake upstream on 127.0.0.1 (no other network): downloads are
verified, transformed and atomic; bad downloads are retried; a run resumes; no network is one error."""

from __future__ import annotations

import dataclasses

import pytest
from datasets_mini import PROXY_VARS, ROOT, Upstream, build_mini, closed_port

from deepclarity.data import fetch as fetch_mod
from deepclarity.data import load_manifest
from deepclarity.data.fetch import FetchError, NetworkError, download, fetch_files
from deepclarity.data.manifest import Manifest
from deepclarity.data.verify import check_files

SHARED = ROOT.parent / "shared" / "datasets"


@pytest.fixture(autouse=True)
def _loopback_only(monkeypatch):
    for var in PROXY_VARS + ("DEEPCLARITY_DATA_URL",):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setattr(fetch_mod, "BACKOFF_S", 0.0)


@pytest.fixture
def mini(tmp_path):
    return build_mini(tmp_path)


@pytest.fixture
def dest(tmp_path):
    return tmp_path / "data"


@pytest.fixture
def upstream(mini):
    with Upstream(mini.upstream) as server:
        yield server


def _fetch(mini, upstream, dest, **kw):
    kw.setdefault("workers", 3)
    return fetch_files(load_manifest(mini.manifest), dest, base=upstream.base_url, progress=False, **kw)


def _no_temp_files(folder):
    return [p for p in folder.rglob("*") if p.name.endswith(".tmp")] == []


def test_fetch_writes_the_staged_files_and_check_passes(mini, upstream, dest):
    report = _fetch(mini, upstream, dest)
    assert sorted(report.downloaded) == mini.paths and report.passed and not report.present
    for path in mini.paths:
        assert (dest / path).read_bytes() == (mini.staged / path).read_bytes(), path
    assert check_files(dest, load_manifest(mini.manifest)).passed
    assert upstream.total == len(mini.paths) and _no_temp_files(dest)
    assert report.bytes_downloaded == sum(len(b) for b in mini.upstream.values())


def test_a_second_run_downloads_nothing(mini, upstream, dest):
    _fetch(mini, upstream, dest)
    before = upstream.total
    report = _fetch(mini, upstream, dest)
    assert upstream.total == before and sorted(report.present) == mini.paths and not report.downloaded


def test_interrupted_run_resumes_with_only_the_missing_files(mini, upstream, dest):
    failing = mini.url_path["train/bmp/c.png"]
    upstream.faults[failing] = ["404"]
    first = _fetch(mini, upstream, dest)
    assert [p for p, _ in first.failed] == ["train/bmp/c.png"] and "404" in first.failed[0][1]
    assert failing in first.failed[0][1]  # the message names the URL
    assert not (dest / "train/bmp/c.png").exists() and _no_temp_files(dest)
    (dest / "benchmark/Tiny/f.png").unlink()  # as if the run had stopped before this one
    counts = dict(upstream.requests)
    second = _fetch(mini, upstream, dest)
    assert sorted(second.downloaded) == ["benchmark/Tiny/f.png", "train/bmp/c.png"] and second.passed
    fresh = {p: n - counts.get(p, 0) for p, n in upstream.requests.items() if n - counts.get(p, 0)}
    assert sorted(fresh) == sorted(
        upstream_path for path, upstream_path in mini.url_path.items() if path in second.downloaded)
    assert check_files(dest, load_manifest(mini.manifest)).passed


def test_corrupted_file_on_disk_is_detected_and_fetched_again(mini, upstream, dest):
    _fetch(mini, upstream, dest)
    victim = dest / "train/big/d.png"
    victim.write_bytes(victim.read_bytes()[:40])
    assert not check_files(dest, load_manifest(mini.manifest)).passed
    report = _fetch(mini, upstream, dest)
    assert report.refetched == ["train/big/d.png"] == report.downloaded
    assert upstream.count(mini.url_path["train/big/d.png"]) == 2
    assert check_files(dest, load_manifest(mini.manifest)).passed


@pytest.mark.parametrize("faults", [["corrupt"], ["truncate"], ["500", "corrupt"]])
def test_bad_downloads_are_retried(mini, upstream, dest, faults):
    url = mini.url_path["train/photos/a.jpg"]
    upstream.faults[url] = list(faults)
    report = _fetch(mini, upstream, dest, retries=3)
    assert report.passed and upstream.count(url) == len(faults) + 1
    assert (dest / "train/photos/a.jpg").read_bytes() == (mini.staged / "train/photos/a.jpg").read_bytes()


def test_a_download_that_stays_corrupted_is_reported_with_its_url(mini, upstream, dest):
    url = mini.url_path["benchmark/Tiny/g.png"]
    upstream.faults[url] = ["corrupt"] * 3
    report = _fetch(mini, upstream, dest, retries=3)
    [(path, message)] = report.failed
    assert path == "benchmark/Tiny/g.png" and upstream.count(url) == 3
    assert f"{upstream.base_url}{url}: corrupted" in message and "after 3 tries" in message
    assert not (dest / path).exists() and len(report.downloaded) == len(mini.paths) - 1


def test_backoff_doubles_between_tries(mini, upstream):
    url = mini.url_path["train/photos/a.jpg"]
    upstream.faults[url] = ["corrupt", "corrupt"]
    pauses = []
    data = download(upstream.base_url + url, fetch_mod.hashlib.sha256(mini.upstream[url]).hexdigest(),
                    retries=3, backoff=0.5, sleep=pauses.append)
    assert data == mini.upstream[url] and pauses == [0.5, 1.0]


def test_transform_mismatch_is_reported_and_nothing_written(mini, upstream, dest):
    manifest = load_manifest(mini.manifest)
    s = next(s for s in manifest if s.name == "train/big")
    s.entries = [dataclasses.replace(e, sha256="0" * 64, pixels_sha256="1" * 64) for e in s.entries]
    report = fetch_files(Manifest({s.name: s}), dest, base=upstream.base_url, progress=False)
    [(path, message)] = report.failed
    assert path == "train/big/d.png" and "other pixels than recorded" in message
    assert upstream.base_url + mini.url_path[path] in message
    assert not (dest / path).exists() and _no_temp_files(dest)


def test_no_network_is_one_error_naming_the_first_url(mini, dest):
    base = f"http://127.0.0.1:{closed_port()}"
    manifest = load_manifest(mini.manifest)
    first = manifest.entries[0].url(base)
    with pytest.raises(NetworkError) as info:
        fetch_files(manifest, dest, base=base, retries=2, progress=False)
    message = str(info.value)
    assert message.startswith(f"cannot reach {first}: ") and "\n" not in message
    assert "--base-url" in message and not dest.exists()


def test_a_missing_file_upstream_is_not_retried(mini, upstream):
    with pytest.raises(FetchError, match="HTTP 404"):
        download(upstream.base_url + "/no/such/file", "0" * 64, retries=3, sleep=pytest.fail)
    assert upstream.total == 1


def test_a_run_stopped_midway_leaves_whole_files_and_resumes(mini, upstream, dest, monkeypatch):
    real_write, written = fetch_mod.atomic_write, []

    def write_then_stop(target, data):
        if len(written) == 3:
            raise KeyboardInterrupt  # Ctrl-C while the fourth file is being written
        written.append(target.relative_to(dest).as_posix())
        return real_write(target, data)

    monkeypatch.setattr(fetch_mod, "atomic_write", write_then_stop)
    with pytest.raises(KeyboardInterrupt):
        _fetch(mini, upstream, dest, workers=1)
    monkeypatch.setattr(fetch_mod, "atomic_write", real_write)
    on_disk = sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file())
    assert on_disk == sorted(written) and len(written) == 3
    counts = dict(upstream.requests)
    report = _fetch(mini, upstream, dest)
    assert sorted(report.present) == sorted(written) and len(report.downloaded) == len(mini.paths) - 3
    again = [p for p, n in upstream.requests.items() if n > counts.get(p, 0)]
    assert len(again) == len(mini.paths) - 3
    assert check_files(dest, load_manifest(mini.manifest)).passed


@pytest.mark.data
@pytest.mark.skipif(not (SHARED / "benchmark" / "B100").is_dir(), reason="../shared/datasets is not present")
def test_fetch_the_real_manifest_from_a_loopback_mirror_of_the_shared_copy(dest):
    """Sets whose transform is ``copy``: the shared files, served as upstream, must come out identical."""
    [b100] = load_manifest().select(["benchmark/B100"])
    files = {e.url_path: (SHARED / e.path).read_bytes() for e in b100.entries}
    with Upstream(files) as mirror:
        report = fetch_files([b100], dest, base=mirror.base_url, workers=4, progress=False)
    assert report.passed and len(report.downloaded) == len(b100.entries) == mirror.total
    assert all((dest / e.path).read_bytes() == (SHARED / e.path).read_bytes() for e in b100.entries)
