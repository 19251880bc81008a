"""Downloading the manifest's files: verified, transformed, written atomically, resumable.

For each file: when the copy on disk already passes (:func:`.verify.file_status`) it is kept;
otherwise the upstream file is downloaded from ``<base>/<owner>/<repo>/<commit>/<path>``, checked
against ``upstream_sha256`` (a truncated or corrupted download is tried again, with a growing
pause), turned into the staged file by the recorded transform, checked against ``sha256`` or
``pixels_sha256``, and written through a temporary file renamed into place. An interrupted run
therefore leaves only whole, verified files, and the next run downloads only what is missing.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import socket
import threading
import time
import urllib.error
import urllib.request
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from .. import __version__
from ..errors import DeepClarityError
from ..files import atomic_write
from .manifest import Entry, SetInfo, base_url
from .transforms import TransformError, apply_transform
from .verify import ALTERED, MISSING, file_status

__all__ = ["FetchError", "NetworkError", "FetchReport", "fetch_files", "download", "RETRIES", "BACKOFF_S", "TIMEOUT_S"]

RETRIES = 4          # tries per file
BACKOFF_S = 1.0      # pause before the second try; doubles for each further one
TIMEOUT_S = 60.0     # per request (connect, and each read)
_USER_AGENT = f"deepclarity/{__version__} (data fetch)"


class FetchError(DeepClarityError):
    """One file could not be fetched (after its tries) or did not verify."""


class NetworkError(FetchError):
    """The server cannot be reached at all (no network, DNS failure, connection refused)."""


class _Transient(Exception):
    """Worth another try: truncated or corrupted body, 429, 5xx, reset, timeout."""


class _Unreachable(Exception):
    """No HTTP answer at all."""


@dataclass
class FetchReport:
    downloaded: list[str] = field(default_factory=list)
    present: list[str] = field(default_factory=list)
    refetched: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    bytes_downloaded: int = 0

    @property
    def passed(self) -> bool:
        return not self.failed


def _get(url: str, timeout: float) -> bytes:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            expected = resp.headers.get("Content-Length")
            data = resp.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 429 or exc.code >= 500:
            raise _Transient(f"HTTP {exc.code} {exc.reason}") from None
        raise FetchError(f"HTTP {exc.code} {exc.reason}") from None
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, (TimeoutError, socket.timeout)):
            raise _Transient(f"timed out after {timeout:g} s") from None
        raise _Unreachable(getattr(reason, "strerror", None) or str(reason)) from None
    except http.client.IncompleteRead as exc:
        raise _Transient(f"truncated: {len(exc.partial)} bytes received") from None
    except (http.client.HTTPException, ConnectionError, TimeoutError, socket.timeout) as exc:
        raise _Transient(f"{type(exc).__name__}: {exc}") from None
    if expected is not None and expected.isdigit() and int(expected) != len(data):
        raise _Transient(f"truncated: {len(data)} of {expected} bytes received")
    return data


def download(url: str, sha256: str, *, retries: int | None = None, backoff: float | None = None,
             timeout: float | None = None, sleep: Callable[[float], None] = time.sleep) -> bytes:
    """The body at ``url``, whose SHA-256 must be ``sha256``; tried up to ``retries`` times
    (default :data:`RETRIES`), pausing ``backoff`` seconds (default :data:`BACKOFF_S`) before the
    second try and twice as long before each further one.

    Raises:
        NetworkError: no answer from the server on any try.
        FetchError: an HTTP error that another try will not fix (404), or a body that stayed
            truncated or corrupted; the message names the URL.
    """
    retries = RETRIES if retries is None else retries
    backoff = BACKOFF_S if backoff is None else backoff
    timeout = TIMEOUT_S if timeout is None else timeout
    last = ""
    unreachable = False
    for attempt in range(max(1, retries)):
        if attempt:
            sleep(backoff * 2 ** (attempt - 1))
        try:
            data = _get(url, timeout)
        except _Unreachable as exc:
            last, unreachable = str(exc), True
            continue
        except _Transient as exc:
            last, unreachable = str(exc), False
            continue
        except FetchError as exc:
            raise FetchError(f"{url}: {exc}") from None
        got = hashlib.sha256(data).hexdigest()
        if got == sha256:
            return data
        last, unreachable = f"corrupted: sha256 {got[:12]}... of {len(data)} bytes, expected {sha256[:12]}...", False
    tries = f"{retries} tries" if retries > 1 else "1 try"
    if unreachable:
        raise NetworkError(f"cannot reach {url}: {last} ({tries}; no network? a mirror can be set "
                           "with --base-url or DEEPCLARITY_DATA_URL)")
    raise FetchError(f"{url}: {last} (after {tries})")


def fetch_files(sets: Iterable[SetInfo], dest: str | os.PathLike, *, base: str | None = None,
                workers: int = 8, retries: int | None = None, backoff: float | None = None,
                timeout: float | None = None, progress: bool = True) -> FetchReport:
    """Make ``dest`` hold every file of ``sets``, verified (see the module docstring).

    The first download runs alone, so that a machine without network gets one clear error before
    anything else is tried; the rest run on ``workers`` threads. A file that fails is reported in
    :attr:`FetchReport.failed` and the others are still fetched.

    Raises:
        NetworkError: the server cannot be reached (first file, or the network went away:
            what was fetched until then stays, and a new run resumes).
    """
    dest = Path(dest)
    base = base_url(base)
    entries = [e for s in sets for e in s.entries]
    report = FetchReport()

    # 1. What is already there and verified is kept.
    with ThreadPoolExecutor(max(1, workers)) as pool:
        states = list(pool.map(lambda e: file_status(dest / e.path, e)[0], entries))
    todo: list[Entry] = []
    for entry, state in zip(entries, states):
        if state == MISSING:
            todo.append(entry)
        elif state == ALTERED:
            report.refetched.append(entry.path)
            todo.append(entry)
        else:
            report.present.append(entry.path)
    if not todo:
        return report

    bar = None
    lock = threading.Lock()
    stop = threading.Event()

    def one(entry: Entry) -> None:
        if stop.is_set():
            return
        url = entry.url(base)
        try:
            data = download(url, entry.upstream_sha256, retries=retries, backoff=backoff, timeout=timeout)
            staged = apply_transform(data, entry)
            target = dest / entry.path
            target.parent.mkdir(parents=True, exist_ok=True)
            atomic_write(target, staged)
        except NetworkError:
            stop.set()
            raise
        except TransformError as exc:
            with lock:
                report.failed.append((entry.path, f"{exc} [{url}]"))
        except FetchError as exc:
            with lock:
                report.failed.append((entry.path, str(exc)))
        except OSError as exc:
            with lock:
                report.failed.append((entry.path, f"cannot write {dest / entry.path}: {exc.strerror or exc}"))
        else:
            with lock:
                report.downloaded.append(entry.path)
                report.bytes_downloaded += len(data)
        finally:
            if bar is not None:
                bar.update()
                bar.set_postfix_str(f"{report.bytes_downloaded / 1e6:.0f} MB", refresh=False)

    one(todo[0])  # alone, before the progress bar: no network -> one error line naming this URL
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), initial=1, desc="fetching", unit="file")
    try:
        if len(todo) > 1:
            with ThreadPoolExecutor(max(1, workers)) as pool:
                futures = [pool.submit(one, e) for e in todo[1:]]
                try:
                    done, _ = wait(futures, return_when=FIRST_EXCEPTION)
                except BaseException:
                    stop.set()
                    pool.shutdown(wait=True, cancel_futures=True)
                    raise
                for f in futures:
                    if f.done() and not f.cancelled() and f.exception() is not None:
                        stop.set()
                        pool.shutdown(wait=True, cancel_futures=True)
                        exc = f.exception()
                        if isinstance(exc, NetworkError):
                            raise NetworkError(f"{exc}; {len(report.downloaded)} files were fetched before "
                                               "it failed, run the same command again to resume") from None
                        raise exc
    finally:
        if bar is not None:
            bar.close()
    return report
