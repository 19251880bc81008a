#!/usr/bin/env python
"""Load test of both apps: launch each on loopback, send concurrent requests through gradio_client.

    python evaluation/loadtest.py                          # 50 detection + 10 correction requests
    python evaluation/loadtest.py --detect 8 --correct 3 --name loadtest_quick

Each app runs as its own process with its defaults (queue, concurrency limit) on a free port of
127.0.0.1. All requests of a batch are submitted at once (``Client.submit``) and each one's latency
is measured from submission to its result, so queueing is included. Requests use the generated
example images in ``examples/`` (detection: every example per request; correction: one image in
Restore mode). Writes ``evaluation/results/<name>.md`` and prints it. Target: no failures.
"""

from __future__ import annotations

import argparse
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "evaluation" / "results"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def launch(script: str, port: int, log: Path, extra: list[str]) -> subprocess.Popen:
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False")
    return subprocess.Popen([sys.executable, script, "--host", "127.0.0.1", "--port", str(port), *extra],
                            cwd=ROOT, stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)


def connect(url: str, proc: subprocess.Popen, log: Path, timeout: float, download: str):
    """A gradio_client Client once the app answers (or SystemExit with the app's log tail)."""
    from gradio_client import Client

    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the app exited with code {proc.returncode}:\n{log.read_text()[-2000:]}")
        try:
            return Client(url, verbose=False, download_files=download, analytics_enabled=False)
        except Exception:  # not listening yet
            time.sleep(1.0)
    raise SystemExit(f"the app did not answer within {timeout:.0f} s:\n{log.read_text()[-2000:]}")


def run_batch(client, n: int, args: tuple, api_name: str) -> dict:
    """Submit ``n`` identical requests at once; successes, failures, latencies."""
    t0 = time.perf_counter()
    jobs = [(time.perf_counter(), client.submit(*args, api_name=api_name)) for _ in range(n)]
    latencies, errors = [], []
    for started, job in jobs:
        try:
            job.result(timeout=600)
            latencies.append(time.perf_counter() - started)
        except Exception as exc:  # counted, reported by kind
            errors.append(f"{type(exc).__name__}: {str(exc)[:120]}")
    wall = time.perf_counter() - t0
    lat = np.array(latencies) if latencies else np.array([np.nan])
    return {"requests": n, "ok": len(latencies), "failed": len(errors), "errors": sorted(set(errors)),
            "p50_s": float(np.percentile(lat, 50)), "p95_s": float(np.percentile(lat, 95)), "wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--detect", type=int, default=50, help="concurrent detection requests")
    parser.add_argument("--correct", type=int, default=10, help="concurrent correction requests")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--startup-timeout", type=float, default=180)
    parser.add_argument("--name", default="loadtest", help="output file stem in evaluation/results/ ('' = none)")
    args = parser.parse_args(argv)

    from gradio_client import handle_file

    detect_examples = sorted((ROOT / "examples" / "detect").glob("*.png"))
    correct_example = sorted((ROOT / "examples" / "correct").glob("*.png"))[0]
    plans = [
        ("detect_app.py", "/detect", args.detect,
         ([handle_file(str(p)) for p in detect_examples], "canny", 0.5),
         f"{len(detect_examples)} example images per request, method 2 (Canny)"),
        ("correct_app.py", "/correct", args.correct,
         (handle_file(str(correct_example)), "auto", "mobilesr", 1.0, 0.0, "keep"),
         f"{correct_example.name}, Restore mode (detect + de-pixelate + super-resolve), MobileSR"),
    ]
    rows = []
    with tempfile.TemporaryDirectory(prefix="deepclarity-load-") as tmp:
        for script, api, n, payload, what in plans:
            if n <= 0:
                continue
            port, log = free_port(), Path(tmp) / f"{script}.log"
            proc = launch(script, port, log, ["--device", args.device])
            try:
                client = connect(f"http://127.0.0.1:{port}/", proc, log, args.startup_timeout, tmp)
                try:
                    result = run_batch(client, n, payload, api)
                    after = run_batch(client, 1, payload, api)  # the server still answers
                finally:
                    client.close()
            finally:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            rows.append({"app": script, "endpoint": api, "what": what, **result,
                         "answers_after": after["ok"] == 1})

    import torch

    command = "python evaluation/loadtest.py " + shlex.join(argv if argv is not None else sys.argv[1:])
    lines = [f"`{command}`", "",
             "| app | endpoint | concurrent requests | ok | failed | p50 latency (s) | p95 latency (s) | "
             "wall (s) | answers afterwards |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['app']} | {r['endpoint']} | {r['requests']} | {r['ok']} | {r['failed']} | "
                     f"{r['p50_s']:.2f} | {r['p95_s']:.2f} | {r['wall_s']:.1f} | {'yes' if r['answers_after'] else 'NO'} |")
    lines.append("")
    for r in rows:
        lines.append(f"- {r['app']}: {r['what']}" + (f"; errors: {'; '.join(r['errors'])}" if r["errors"] else ""))
    lines += ["", f"Apps with their default queue and concurrency limit, device {args.device}; "
              f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}. "
              "Latency = submission to result, queueing included."]
    text = "\n".join(lines) + "\n"
    if args.name:
        from deepclarity.files import atomic_write

        RESULTS.mkdir(parents=True, exist_ok=True)
        atomic_write(RESULTS / f"{args.name}.md", text.encode())
    print(text)
    return 1 if any(r["failed"] or not r["answers_after"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
