"""`limn serve` (also `python -m limn serve`): parses the options, loads the models, runs uvicorn.

Signals are handled here, not by uvicorn, so that shutdown has a grace period of its own: on
SIGTERM or SIGINT new work is answered 503 and /readyz turns false while the server keeps
listening; queued and running work (and fetching the results of jobs that were under way) has
``--grace`` seconds; what is left then is cancelled through the library and answered 503; then
uvicorn closes the connections and the process exits 0. A second signal stops at once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import signal
import sys
import time
from typing import Iterator, List, Optional

from .config import ServeConfig, parse_bytes

__all__ = ["main", "build_parser", "config_from_args"]

log = logging.getLogger("limn.serve")


def _pixels(text: str) -> int:
    """A pixel count: "9000000", "9M" (10^6) or "3000x3000"."""
    t = text.strip().lower()
    if "x" in t:
        w, _, h = t.partition("x")
        if w.isdigit() and h.isdigit():
            return int(w) * int(h)
    scale = {"k": 1000, "m": 1000 ** 2, "g": 1000 ** 3}.get(t[-1:], 1)
    digits = t[:-1] if scale > 1 else t
    try:
        return int(float(digits) * scale)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid pixel count {text!r}: expected e.g. 9000000, 9M or 3000x3000")


def _bytes(text: str) -> int:
    try:
        return parse_bytes(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e))


def build_parser() -> argparse.ArgumentParser:
    d = ServeConfig()
    p = argparse.ArgumentParser(
        prog="limn serve",
        description="Serve limn models over HTTP: the /v1 API, async jobs, the Open Inference Protocol (/v2), "
                    "health checks, Prometheus metrics and a web page at /. Models are given by registry name "
                    "(fetched with `limn models fetch NAME`) or by file; with no --model the built-in "
                    "classical-cartoon model is served.")
    a = p.add_argument
    a("--host", default=d.host, help=f"address to bind (default {d.host}; 0.0.0.0 for every interface)")
    a("--port", type=int, default=d.port, help=f"TCP port (default {d.port})")
    a("--model", "-m", dest="models", action="append", default=[], metavar="NAME|FILE",
      help="a cartoon model; repeat to serve several (requests choose one by its loaded name: the registry "
           "name or the file's stem)")
    a("--head", dest="heads", action="append", default=[], metavar="NAME|FILE",
      help="a head cartoon model, for compound stylization (needs --detector)")
    a("--restorer", dest="restorers", action="append", default=[], metavar="NAME|FILE",
      help="a face_restore model (needs --detector)")
    a("--detector", dest="detectors", action="append", default=[], metavar="NAME|FILE", help="a face_detect model")
    a("--device", default=d.device, help="auto, cpu, cuda or cuda:N (default auto)")
    a("--precision", default=d.precision, help="auto, fp32, fp16, bf16 or tf32 (default auto)")
    a("--memory-limit", type=_bytes, default=d.memory_limit, metavar="BYTES",
      help="memory limn may use on the device, e.g. 2G (default: no cap)")
    a("--max-pixels", type=_pixels, default=d.max_pixels, metavar="N",
      help=f"refuse larger images with 413 (e.g. 9M or 3000x3000; default {d.max_pixels})")
    a("--max-upload", type=_bytes, default=d.max_upload, metavar="BYTES",
      help=f"refuse larger request bodies with 413, e.g. 20M (default {d.max_upload})")
    a("--queue", type=int, default=d.queue, metavar="N", help=f"requests waiting per model; more get 429 "
                                                               f"(default {d.queue})")
    a("--concurrency", type=int, default=d.concurrency, metavar="N",
      help=f"requests running at once per model (default {d.concurrency})")
    a("--timeout", type=float, default=d.timeout, metavar="SECONDS",
      help=f"deadline of each request, queue wait included; 504 after it (0: none; default {d.timeout:g})")
    a("--api-key", default=os.environ.get("LIMN_API_KEY") or None, metavar="KEY",
      help="require 'Authorization: Bearer KEY' on the API routes (default: $LIMN_API_KEY)")
    a("--auth-health", action="store_true", help="the API key protects /healthz, /readyz and /metrics too")
    a("--cors-origin", dest="cors_origins", action="append", default=[], metavar="ORIGIN",
      help="allow cross-origin requests from ORIGIN (repeatable; default: CORS off)")
    a("--grace", type=float, default=d.grace, metavar="SECONDS",
      help=f"on SIGTERM/SIGINT, time for queued and running work before it is cancelled (default {d.grace:g})")
    a("--access-log", default=d.access_log, metavar="FILE", help="JSON-lines access log ('-': standard output)")
    a("--job-ttl", type=float, default=d.job_ttl, metavar="SECONDS",
      help=f"seconds a finished job's result is kept (default {d.job_ttl:g})")
    a("--job-max", type=int, default=d.job_max, metavar="N", help=f"jobs kept at most (default {d.job_max})")
    a("--job-max-bytes", type=_bytes, default=d.job_max_bytes, metavar="BYTES",
      help=f"bytes of job results kept at most (default {d.job_max_bytes})")
    a("--no-jobs", dest="jobs", action="store_false",
      help="turn the asynchronous jobs API off (/v1/jobs answers 501; the web page then waits on the "
           "synchronous routes): for several servers behind a load balancer without sticky sessions, where "
           "a job's later requests may reach another server (always off with --ray)")
    a("--log-level", default="info", choices=["debug", "info", "warning", "error"], help="default info")
    r = p.add_argument_group(
        "Ray Serve (--ray; needs pip install 'limn[ray]')",
        "Deploy the same app on a Ray cluster, one replica per GPU or per --cpus-per-replica cores, each "
        "loading the models once. --queue is then Ray's queue in front of the replicas (429 past it), "
        "--concurrency is per replica, --timeout the replica's deadline (Ray's own request timeout is 5 s "
        "longer) and --grace each replica's drain; /v1/jobs is off (501).").add_argument
    r("--ray", action="store_true", help="serve on Ray: start a local Ray instance, or join --address")
    r("--address", default=None, metavar="ADDR",
      help="the Ray cluster to join: host:6379, ray://host:10001, or auto (the one this machine belongs to)")
    r("--replicas", default="1", metavar="N|auto",
      help="replicas (default 1); auto: Ray autoscales between --min-replicas and --max-replicas")
    r("--min-replicas", type=int, default=None, metavar="N", help="--replicas auto: fewest replicas (default 1)")
    r("--max-replicas", type=int, default=None, metavar="N",
      help="--replicas auto: most replicas (default: one per GPU of the cluster, else its CPUs / "
           "--cpus-per-replica)")
    r("--target-ongoing", type=float, default=None, metavar="N",
      help="--replicas auto: requests per replica the autoscaler aims at (default --concurrency)")
    r("--max-ongoing", type=int, default=None, metavar="N",
      help="requests Ray sends one replica at once (default 2 x --concurrency; the rest wait in Ray's queue)")
    r("--cpus-per-replica", type=float, default=1.0, metavar="N",
      help="CPU cores reserved per replica, also its threads (default 1)")
    r("--gpus-per-replica", type=float, default=None, metavar="N",
      help="GPUs per replica (default: 1 where the device is not cpu and the cluster has GPUs, else 0)")
    r("--proxy-location", default="HeadOnly", choices=["HeadOnly", "EveryNode"],
      help="where Ray's HTTP proxies listen on --host:--port (default HeadOnly: one address; EveryNode "
           "behind a load balancer)")
    return p


_RAY_ONLY = {"address": None, "replicas": "1", "min_replicas": None, "max_replicas": None, "target_ongoing": None,
             "max_ongoing": None, "cpus_per_replica": 1.0, "gpus_per_replica": None, "proxy_location": "HeadOnly"}


def _check_ray_options(args: argparse.Namespace) -> None:
    if args.ray:
        return
    for name, default in _RAY_ONLY.items():
        if getattr(args, name) != default:
            raise ValueError(f"--{name.replace('_', '-')} needs --ray")


def config_from_args(args: argparse.Namespace) -> ServeConfig:
    fields = {k: v for k, v in vars(args).items() if k in ServeConfig.__dataclass_fields__}
    config = ServeConfig(**fields)
    if config.timeout is not None and config.timeout <= 0:
        config.timeout = None
    return config


def _setup_logging(level: str) -> None:
    from .app import RequestIdFilter

    handler = logging.StreamHandler(sys.stderr)
    handler.addFilter(RequestIdFilter())
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def main(argv: Optional[List[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        _check_ray_options(args)
        config = config_from_args(args)
        config.check()
    except ValueError as e:
        print(f"limn serve: {e}", file=sys.stderr)
        return 2
    _setup_logging(args.log_level)
    if args.ray:
        return _serve_on_ray(config, args)

    import limn

    from .app import create_app
    from .service import Service

    try:
        service = Service(config)
    except (limn.Error, ValueError, OSError) as e:
        print(f"limn serve: cannot load the models: {e}", file=sys.stderr)
        return 1
    app = create_app(config, service)
    try:
        status = asyncio.run(_serve(app, config))
    finally:
        if app.state.access_log not in (None, sys.stdout):
            app.state.access_log.close()
    if service.in_library:
        # Past the grace, cancelled calls may still be finishing their current step (a tile, or a
        # whole image for one-step models); every answer has been sent, so do not wait for them.
        log.info("exiting with %d cancelled library call(s) still finishing a step", service.in_library)
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    return status


def _serve_on_ray(config: ServeConfig, args: argparse.Namespace) -> int:
    try:
        from limn.ray import run_cli
    except ModuleNotFoundError as e:
        if (e.name or "").split(".")[0] != "ray":
            raise
        print("limn serve --ray: ray is not installed; install it with: pip install 'limn[ray]'", file=sys.stderr)
        return 3
    return run_cli(config, args)


def _margin(grace: float) -> float:
    """Seconds of the grace kept for cancelling what is left and closing connections."""
    return min(3.0, grace / 4)


async def _serve(app, config: ServeConfig) -> int:
    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn without its signal handlers: main() handles SIGTERM and SIGINT itself."""

        @contextlib.contextmanager
        def capture_signals(self) -> Iterator[None]:
            yield

        def install_signal_handlers(self) -> None:  # uvicorn < 0.29
            pass

    uconfig = uvicorn.Config(app, host=config.host, port=config.port, log_config=None, access_log=False,
                             lifespan="off", server_header=False,
                             timeout_graceful_shutdown=max(1.0, _margin(config.grace) / 2))
    server = Server(uconfig)
    loop = asyncio.get_running_loop()
    shutdown: List[asyncio.Task] = []

    def on_signal(sig: signal.Signals) -> None:
        if not shutdown:
            log.info("%s: draining (grace %gs)", sig.name, config.grace)
            shutdown.append(loop.create_task(_drain(server, app, config)))
        else:
            log.warning("%s again: stopping now", sig.name)
            shutdown[0].cancel()
            app.state.service.cancel_all("drain")
            server.should_exit = True
            server.force_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    try:
        await server.serve()
    except SystemExit:  # uvicorn exits when it cannot bind; it has logged why
        return 1
    if shutdown:
        with contextlib.suppress(asyncio.CancelledError):
            await shutdown[0]
    if not server.started:
        return 1
    log.info("stopped")
    return 0


async def _drain(server, app, config: ServeConfig) -> None:
    """Grace: new work 503, admitted work and the results of jobs under way finish; then cancel."""
    service, jobs = app.state.service, app.state.jobs
    start = time.monotonic()
    service.begin_drain()
    under_way = jobs.unsettled_ids()
    work_end = start + max(0.0, config.grace - _margin(config.grace))
    while (service.busy or not jobs.settled(under_way)) and time.monotonic() < work_end:
        await asyncio.sleep(0.05)
    finished = await service.drain(work_end, cancel_wait=_margin(config.grace) / 2)
    log.info("drained in %.2fs%s", time.monotonic() - start, "" if finished else " (work was cancelled)")
    server.should_exit = True
