"""Server plumbing every DeepClarity app shares: command line, launch, queue, time limit, errors.

* :func:`add_server_arguments` / :func:`parse_app_args`: ``--host``, ``--port``, ``--share``,
  ``--max-file-size``, ``--concurrency``, ``--queue-size``, ``--time-limit``, ``--device``,
  ``--threads``, ``--precision``, ``--backend``; :func:`apply_runtime_args` applies them before models
  load.
* :func:`launch_kwargs` / :func:`queue_kwargs`: what goes to ``Blocks.launch`` and
  ``Blocks.queue``; :func:`launch_app` does both.
* :class:`TimeLimit`: the per-request time limit every event runs under.
* :func:`user_error`: a message (a library error, a bad parameter) as a one-line ``gr.Error``.
* :func:`model_status`: the "unavailable" banner lines for models whose weights are missing or
  broken; :func:`example_files`: the example images that ship with the repository.

Conventions: bind 127.0.0.1 unless told otherwise, every event goes through the queue with a
concurrency limit and runs under a time limit, uploads have a size limit, the API is public so
``gradio_client`` works, and a library error reaches the user as one line, never a traceback.
Gradio is imported inside the functions that need it, so ``detect_app.py --help`` answers at once.
"""

from __future__ import annotations

import argparse
import contextvars
import html
import logging
import os
import threading
import time
from pathlib import Path
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DeepClarityError
from ..inference import BACKENDS, PRECISIONS

if TYPE_CHECKING:  # pragma: no cover
    import gradio as gr

__all__ = [
    "DEFAULT_HOST", "DEFAULT_PORT", "DEFAULT_MAX_FILE_SIZE", "DEFAULT_CONCURRENCY", "DEFAULT_QUEUE_SIZE",
    "DEFAULT_TIME_LIMIT_S", "EXAMPLES_DIR", "TimeLimit", "add_server_arguments", "parse_app_args",
    "apply_runtime_args", "launch_kwargs", "queue_kwargs", "launch_app", "user_error", "as_time_limit",
    "example_files", "model_status",
]

log = logging.getLogger(__name__)

#: Where the apps listen unless ``--host`` / ``$GRADIO_SERVER_NAME`` say otherwise: this machine only.
DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 7860
#: Largest upload Gradio accepts (its own syntax: "<n><b|kb|mb|gb>").
DEFAULT_MAX_FILE_SIZE = "50mb"
#: Requests run at once per event (the model is shared; more would only contend for the cores).
DEFAULT_CONCURRENCY = 1
#: Requests allowed to wait in the queue before new ones are turned away.
DEFAULT_QUEUE_SIZE = 64
#: Seconds one request may compute (queueing not counted) before its user gets an error
#: (``--time-limit``; see :class:`TimeLimit`). The largest input (2 MP) through the slowest model
#: is about 45 s of model time on 2 CPU cores (README, bench sr: 2.9 s per 480x270 frame), so
#: this leaves room for reading, encoding and a busy machine.
DEFAULT_TIME_LIMIT_S = 120.0
#: The example images shipped with the repository (made by ``examples/make_examples.py``).
EXAMPLES_DIR = Path(__file__).resolve().parents[2] / "examples"


def _env_port(default: int) -> int:
    raw = os.environ.get("GRADIO_SERVER_PORT")
    if not raw:
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"GRADIO_SERVER_PORT must be an integer, got {raw!r}") from None


def add_server_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the flags every app shares: where to listen, limits, device. Returns ``parser``.

    ``--host`` and ``--port`` default to ``$GRADIO_SERVER_NAME`` / ``$GRADIO_SERVER_PORT`` (the
    Makefile sets them), else 127.0.0.1:7860.
    """
    server = parser.add_argument_group("server")
    server.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME") or DEFAULT_HOST,
                        help="address to bind (default: $GRADIO_SERVER_NAME or %(default)s; "
                             "0.0.0.0 exposes the app to the network)")
    server.add_argument("--port", type=int, default=_env_port(DEFAULT_PORT),
                        help="port (default: $GRADIO_SERVER_PORT or %(default)s)")
    server.add_argument("--share", action="store_true",
                        help="also open a public gradio.live link (off by default)")
    server.add_argument("--max-file-size", default=DEFAULT_MAX_FILE_SIZE, metavar="SIZE",
                        help="largest accepted upload, e.g. 20mb (default %(default)s)")
    server.add_argument("--concurrency", type=int, default=DEFAULT_CONCURRENCY, metavar="N",
                        help="requests processed at once (default %(default)s)")
    server.add_argument("--queue-size", type=int, default=DEFAULT_QUEUE_SIZE, metavar="N",
                        help="requests that may wait in the queue (default %(default)s)")
    server.add_argument("--time-limit", type=float, default=DEFAULT_TIME_LIMIT_S, metavar="SECONDS",
                        help="longest a request may compute before its user gets an error "
                             "(default %(default)g; queueing not counted)")
    compute = parser.add_argument_group("compute")
    compute.add_argument("--device", default="auto", help="auto, cpu or cuda (default auto)")
    compute.add_argument("--threads", type=int, default=None, metavar="N",
                         help="CPU threads for PyTorch (default: $DEEPCLARITY_THREADS or all cores)")
    compute.add_argument("--precision", choices=PRECISIONS, default=None,
                         help="generators' autocast (default: $DEEPCLARITY_PRECISION or auto, the measured "
                              "fastest that keeps PSNR within 0.02 dB)")
    compute.add_argument("--backend", choices=BACKENDS, default=None,
                         help="generators' backend: torch or onnx (default: $DEEPCLARITY_BACKEND or auto)")
    return parser


def parse_app_args(argv: Sequence[str] | None = None, *, prog: str | None = None,
                   description: str | None = None) -> argparse.Namespace:
    """Parse an app's command line (only the shared flags; build your own parser with
    :func:`add_server_arguments` to add more). Bad values exit with a usage error."""
    parser = add_server_arguments(argparse.ArgumentParser(prog=prog, description=description))
    args = parser.parse_args(argv)
    if not 0 < args.port < 65536:
        parser.error(f"--port must be in 1..65535, got {args.port}")
    if args.concurrency < 1:
        parser.error("--concurrency must be at least 1")
    if args.queue_size < 1:
        parser.error("--queue-size must be at least 1")
    if not 0 < args.time_limit < float("inf"):  # also refuses NaN
        parser.error(f"--time-limit must be a positive number of seconds, got {args.time_limit:g}")
    return args


def launch_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``gr.Blocks.launch`` from parsed app arguments."""
    return {
        "server_name": args.host,
        "server_port": args.port,
        "share": bool(args.share),
        "max_file_size": args.max_file_size,
        "show_error": False,         # gr.Error messages still show; other exceptions stay in the log
        "enable_monitoring": False,  # no /monitoring dashboard
    }


def queue_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for ``gr.Blocks.queue``: a concurrency limit and a bounded queue.

    ``api_open=False`` makes direct REST calls join the queue too, so the limit holds for every
    client (``gradio_client`` goes through the queue anyway).
    """
    return {
        "default_concurrency_limit": int(args.concurrency),
        "max_size": int(args.queue_size),
        "api_open": False,
    }


def apply_runtime_args(args: argparse.Namespace) -> None:
    """Apply the compute flags that must take effect before models load (``--threads``, and
    ``--precision``/``--backend`` as the process defaults of :mod:`deepclarity.inference`)."""
    for flag, env in (("precision", "DEEPCLARITY_PRECISION"), ("backend", "DEEPCLARITY_BACKEND")):
        if getattr(args, flag, None):
            os.environ[env] = getattr(args, flag)
    if getattr(args, "threads", None) is not None or os.environ.get("DEEPCLARITY_THREADS"):
        from ..runtime import configure_threads

        configure_threads(getattr(args, "threads", None))


def launch_app(app: gr.Blocks, args: argparse.Namespace, **overrides: Any):
    """Queue ``app`` and launch it as the parsed arguments say; ``overrides`` win (e.g.
    ``prevent_thread_lock=True``). Returns what ``launch`` returns: ``(app, local_url, share_url)``."""
    app.queue(**queue_kwargs(args))
    return app.launch(**{**launch_kwargs(args), **overrides})


def user_error(message: str) -> gr.Error:
    """A ``gr.Error`` showing ``message`` as one line (HTML-escaped: the modal renders HTML, and
    messages carry user-chosen file names), without a traceback in the server log. It stays on
    the page until the user closes it (Gradio's default hides it after 10 s, leaving only the
    outputs' "Error" badges)."""
    import gradio as gr

    line = " ".join(str(message).split())
    return gr.Error(html.escape(line, quote=False), duration=None, print_exception=False)


class TimeLimit:
    """The per-request time limit of one app: :meth:`run` does an event's work, and a request
    that computes for longer than ``seconds`` gets a ``gr.Error`` instead of its result.

    **How.** Python cannot stop a thread in the middle of a PyTorch operation (and killing one
    would leave the shared models and caches in an unknown state), so the limit is enforced at the
    edge: the work runs in a worker thread of its own, the request waits for it at most
    ``seconds``, and when the time is up the user is told so at once while the worker is left to
    finish in the background; its result is then discarded.

    **No pile-up.** Gradio frees the request's concurrency slot as soon as the error is raised, so
    the abandoned ("overdue") worker would otherwise compute alongside the next requests, and a
    series of slow inputs could stack up workers until the machine stalls. Instead, a request
    does not start its work while any overdue worker of this app is still running: it waits for
    it, that wait counting against its own time limit, and if the overdue worker is still busy
    when the limit is reached the request is refused with a message saying so. So the app never
    computes more than its queue's concurrency limit of requests at once, every request answers
    within about ``seconds`` of starting, and once the overdue worker ends requests are served
    normally again. (While one is overdue, free concurrency slots wait too: an app with
    ``--concurrency 4`` briefly runs fewer than 4.)

    The clock starts when the request leaves the queue; time spent queueing is not counted.
    One instance is shared by all the events of an app (they share its models and cores).

    Args:
        seconds: the limit, > 0.
        hint: what the timeout message suggests, e.g. "Try a smaller image."
    """

    def __init__(self, seconds: float = DEFAULT_TIME_LIMIT_S, *, hint: str = ""):
        seconds = float(seconds)
        if not 0 < seconds < float("inf"):
            raise ValueError(f"the time limit must be a positive number of seconds, got {seconds}")
        self.seconds = seconds
        self.hint = hint
        self._cond = threading.Condition()
        self._overdue: set[threading.Thread] = set()  # timed out, still running

    @property
    def overdue(self) -> int:
        """Workers that ran over the limit and are still running."""
        with self._cond:
            return len(self._overdue)

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until no overdue worker is running (at most ``timeout`` s); True if none is."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._overdue, timeout)

    def describe(self) -> str:
        """The limit in words for the page, e.g. ``"120 s of processing per request"``."""
        return f"{self.seconds:g} s of processing per request"

    def run(self, fn, /, *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` in a worker thread, within the limit: its result, or its
        exception re-raised as is (a ``gr.Error`` stays one).

        Raises:
            gr.Error: the work took longer than the limit, or an earlier request's overdue work
                was still running when it was reached.
        """
        deadline = time.monotonic() + self.seconds
        with self._cond:
            if not self._cond.wait_for(lambda: not self._overdue, self.seconds):
                raise user_error(
                    "The server is still finishing an earlier request that ran over the time limit "
                    f"of {self.seconds:g} s, so this one was not started. Please try again in a moment.")

        box: dict[str, Any] = {}
        done = threading.Event()
        context = contextvars.copy_context()  # Gradio keeps request-local state in context variables
        started = time.monotonic()

        def work() -> None:
            try:
                box["value"] = context.run(fn, *args, **kwargs)
            except BaseException as exc:  # handed to the request, or dropped when it is overdue
                box["error"] = exc
            finally:
                with self._cond:
                    done.set()
                    if worker in self._overdue:
                        self._overdue.discard(worker)
                        log.warning("an overdue request finished after %.1f s (limit %g s); its result "
                                    "was discarded", time.monotonic() - started, self.seconds)
                        box.clear()
                    self._cond.notify_all()

        worker = threading.Thread(target=work, name="deepclarity-request", daemon=True)
        worker.start()
        done.wait(max(0.0, deadline - time.monotonic()))
        with self._cond:  # decided under the lock the worker finishes under: finished or overdue, not both
            if not done.is_set():
                self._overdue.add(worker)
                log.warning("a request ran over the time limit of %g s; its user was told, and it "
                            "is left to finish in the background", self.seconds)
                raise user_error(f"Time limit exceeded: processing took longer than {self.seconds:g} s, "
                                 f"the limit for one request. {self.hint}".strip())
        if "error" in box:
            raise box.pop("error")
        return box.pop("value")


def as_time_limit(value: float | TimeLimit | None, hint: str) -> TimeLimit:
    """A :class:`TimeLimit` from a builder's ``time_limit`` argument (seconds, an instance, or
    ``None`` for the default); an instance without a hint gets ``hint``."""
    if isinstance(value, TimeLimit):
        value.hint = value.hint or hint
        return value
    return TimeLimit(DEFAULT_TIME_LIMIT_S if value is None else value, hint=hint)


def example_files(folder: str | os.PathLike, pattern: str = "*.png") -> list[Path]:
    """The example images in ``folder`` (sorted); empty when the folder is absent (an installed
    package has no ``examples/``)."""
    folder = Path(folder)
    return sorted(p for p in folder.glob(pattern) if p.is_file()) if folder.is_dir() else []


def model_status(models: Sequence[tuple[str, str, Callable[[], object]]], *, preload: bool) -> list[str]:
    """One Markdown line per model that cannot be used, for the banner at the top of a page.

    Args:
        models: ``(label, registry name, load)`` per model the page offers; ``load()`` loads it
            (into its shared cache) and raises :class:`~deepclarity.errors.DeepClarityError`
            when it cannot.
        preload: load the models whose weights are present now, so a broken weight file is
            reported here instead of on the first request. Missing weights never stop an app.
    """
    from ..models import get_spec
    from .render import md

    problems = []
    for label, name, load in models:
        spec = get_spec(name)
        if not spec.has_weights:
            problems.append(f"**{label}** is unavailable: no trained weights at `{spec.weights_path}` "
                            "(train them with the scripts in `training/`).")
            continue
        if preload:
            try:
                load()
            except DeepClarityError as exc:
                problems.append(f"**{label}** is unavailable: {md(exc)}")
    return problems
