"""The `limn serve` app as a Ray Serve application (`limn serve --ray`, `serve run limn.ray:app`).

Each replica is one ``LimnServer``: it loads the models once (limn.serve.Service), and its ASGI app
is limn.serve.create_app's, so routes, errors, limits and metrics are those of ``limn serve``.
Under Ray the options of ``limn serve`` mean:

- ``--queue N``: requests waiting in each Ray proxy beyond what the replicas hold
  (``max_queued_requests``); more are answered 429 with Retry-After, as ``limn serve`` answers a
  full queue.
- ``--concurrency N``: requests running at once in a replica, per model; a replica is sent at most
  ``--max-ongoing`` (default 2 x concurrency) requests, which wait in its own queue.
- ``--timeout S``: the replica's deadline (504, the work is cancelled in the library), counted from
  when the replica takes the request; Ray's ``request_timeout_s`` (408) is set to S + 5 around the
  whole request, Ray's queueing included.
- ``--grace S``: Ray's ``graceful_shutdown_timeout_s`` for each replica.
- Jobs (/v1/jobs) are off: a job's later requests may reach another replica (501 says so; the web
  page then waits on the synchronous route).
- ``/metrics`` shows the replica that answered (``X-Limn-Replica`` and ``X-Limn-Node`` name it on
  every response); Ray's own metrics cover the cluster.
"""

from __future__ import annotations

import dataclasses
import logging
import signal
import sys
import threading
from typing import Any, Dict, List, Optional

import ray
from ray import serve
from ray.serve.config import BackpressureConfig

from ..serve.config import ServeConfig

__all__ = ["LimnServer", "app", "build_app", "deployment_options", "run_cli"]

log = logging.getLogger("limn.serve")

APP_NAME = "limn"
#: added to --timeout for Ray's end-to-end request_timeout_s, so that the replica's own 504 (which
#: cancels the work in the library) normally answers first
TIMEOUT_MARGIN = 5.0


class _ReplicaHeaders:
    """ASGI middleware: every HTTP response names the replica and the node that answered it."""

    def __init__(self, app: Any, headers: List[tuple]) -> None:
        self.app = app
        self.headers = headers

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


@serve.deployment(name="limn")
@serve.ingress()
class LimnServer:
    """One replica: the models of ``config`` (a ServeConfig as a dict), loaded and self-tested once."""

    def __init__(self, config: Dict[str, Any]) -> None:
        from ..serve.service import Service

        self._config = ServeConfig(**config)
        self._service = Service(self._config)
        try:
            replica = serve.get_replica_context().replica_id.unique_id
        except Exception:  # outside a replica (a direct construction in a test)
            replica = "local"
        node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else "local"
        self._headers = [(b"x-limn-replica", replica.encode()), (b"x-limn-node", node.encode())]

    def __serve_build_asgi_app__(self) -> Any:
        from ..serve.app import create_app

        asgi = create_app(self._config, self._service)
        asgi.add_middleware(_ReplicaHeaders, headers=self._headers)
        return asgi

    def check_health(self) -> None:
        """Ray's health check: a replica whose models are gone (or that drains) is replaced."""
        if not self._service.ready:
            raise RuntimeError("limn: this replica is not ready (its models are not loaded, or it is draining)")

    def __del__(self) -> None:
        service = getattr(self, "_service", None)
        if service is not None:
            service.close()


def _cluster_count(resource: str) -> int:
    if not ray.is_initialized():
        return 0
    return int(ray.cluster_resources().get(resource, 0))


def deployment_options(config: ServeConfig, replicas: str = "1", *, min_replicas: Optional[int] = None,
                       max_replicas: Optional[int] = None, target_ongoing: Optional[float] = None,
                       max_ongoing: Optional[int] = None, cpus_per_replica: float = 1.0,
                       gpus_per_replica: Optional[float] = None) -> Dict[str, Any]:
    """The Ray Serve deployment options for ``config`` (see the module's docstring).

    ``replicas``: a count, or "auto" for autoscaling between ``min_replicas`` (default 1) and
    ``max_replicas`` (default: one per GPU of the cluster, else its CPUs / ``cpus_per_replica``)
    at ``target_ongoing`` requests per replica (default: --concurrency). ``gpus_per_replica``
    defaults to 1 where the device is not the CPU and the cluster has GPUs, else 0.
    """
    concurrency = config.concurrency
    known = ray.is_initialized()  # `serve run` builds the application before it connects
    if gpus_per_replica is None:
        if config.device.startswith("cuda"):
            gpus_per_replica = 1.0
        elif config.device == "auto" and known:
            gpus_per_replica = 1.0 if _cluster_count("GPU") > 0 else 0.0
        else:
            gpus_per_replica = 0.0
            if config.device == "auto":
                log.warning("the cluster's GPUs are not known when the application is built (serve run): the "
                            "replicas get no GPU; pass gpus_per_replica=1 (or device=cuda) to use them")
    if cpus_per_replica <= 0 or gpus_per_replica < 0:
        raise ValueError("--cpus-per-replica must be > 0 and --gpus-per-replica >= 0")
    max_ongoing = max_ongoing or 2 * concurrency
    if max_ongoing < 1:
        raise ValueError("--max-ongoing must be >= 1")
    actor: Dict[str, Any] = {"num_cpus": cpus_per_replica, "num_gpus": gpus_per_replica}
    if cpus_per_replica >= 1:  # LibTorch's threads: the cores reserved, whatever the environment says
        actor["runtime_env"] = {"env_vars": {"OMP_NUM_THREADS": str(int(cpus_per_replica))}}
    options: Dict[str, Any] = {
        "ray_actor_options": actor,
        "max_ongoing_requests": max_ongoing,
        "max_queued_requests": config.queue,
        "backpressure_config": BackpressureConfig(status_code=429, retry_after_s=1),
        "graceful_shutdown_timeout_s": max(1.0, config.grace),
    }
    if str(replicas).strip().lower() == "auto":
        if max_replicas is None:
            if not known:
                raise ValueError("--replicas auto needs --max-replicas here: the cluster is not known when the "
                                 "application is built (serve run)")
            if gpus_per_replica > 0:
                max_replicas = max(1, int(_cluster_count("GPU") / gpus_per_replica))
            else:
                max_replicas = max(1, int(_cluster_count("CPU") / cpus_per_replica))
        lowest = 1 if min_replicas is None else min_replicas
        if lowest < 0 or max_replicas < max(1, lowest):
            raise ValueError(f"--min-replicas {lowest} and --max-replicas {max_replicas}: need "
                             "0 <= min <= max and max >= 1")
        options["autoscaling_config"] = {"min_replicas": lowest, "max_replicas": max_replicas,
                                         "target_ongoing_requests": target_ongoing or concurrency}
    else:
        try:
            count = int(replicas)
        except ValueError:
            raise ValueError(f"--replicas expects a count or auto, not {replicas!r}")
        if count < 1:
            raise ValueError("--replicas must be >= 1")
        if min_replicas is not None or max_replicas is not None or target_ongoing is not None:
            raise ValueError("--min-replicas, --max-replicas and --target-ongoing need --replicas auto")
        options["num_replicas"] = count
    return options


def _replica_config(config: ServeConfig, max_ongoing: int) -> Dict[str, Any]:
    """The ServeConfig each replica runs: its own queue holds what Ray sends it; jobs are off."""
    fields = dataclasses.asdict(config)
    fields.update(queue=max_ongoing, jobs=False)
    return fields


def build_app(config: ServeConfig, replicas: str = "1", **ray_options: Any) -> "serve.Application":
    """The Ray Serve application serving ``config``'s models (``ray_options``: deployment_options')."""
    config.check()
    if config.access_log not in (None, "-"):
        raise ValueError("--access-log FILE is one process's file; behind Ray use --access-log - (each "
                         "replica's lines go to its Ray log)")
    options = deployment_options(config, replicas, **ray_options)
    return LimnServer.options(**options).bind(_replica_config(config, options["max_ongoing_requests"]))


def _args_to_argv(args: Dict[str, Any]) -> List[str]:
    argv: List[str] = []
    for key, value in args.items():
        flag = "--" + str(key).replace("_", "-")
        for v in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(v, bool):
                if v:
                    argv.append(flag)
            elif v is not None:
                argv += [flag, str(v)]
    return argv


def app(args: Dict[str, Any]) -> "serve.Application":
    """Ray Serve's application builder: ``serve run limn.ray:app model=NAME replicas=2`` or, in a
    Serve config file, ``import_path: limn.ray:app`` with ``args``. The keys are the long options of
    ``limn serve --ray`` (``model``, ``restorer``, ``detector``, ``queue``, ``concurrency``,
    ``timeout``, ``replicas``, ``cpus_per_replica``, ...); a list repeats an option."""
    from ..serve.cli import build_parser, config_from_args

    parser = build_parser()

    def refuse(message: str) -> None:
        raise ValueError(f"limn.ray:app: {message}")

    parser.error = refuse  # type: ignore[assignment]
    args = dict(args or {})
    cluster_wide = sorted(k for k in args if k in ("host", "port", "proxy_location", "address"))
    if cluster_wide:
        raise ValueError(f"limn.ray:app: {', '.join(cluster_wide)} belong to the cluster, not to the application: "
                         "set them in the Serve config's http_options and proxy_location, or serve run's --address")
    argv = _args_to_argv({k: v for k, v in args.items() if k != "ray"})
    parsed = parser.parse_args(argv + ["--ray"])
    config = config_from_args(parsed)
    return build_app(config, parsed.replicas, **_ray_options(parsed))


def _ray_options(parsed: Any) -> Dict[str, Any]:
    return {"min_replicas": parsed.min_replicas, "max_replicas": parsed.max_replicas,
            "target_ongoing": parsed.target_ongoing, "max_ongoing": parsed.max_ongoing,
            "cpus_per_replica": parsed.cpus_per_replica, "gpus_per_replica": parsed.gpus_per_replica}


def run_cli(config: ServeConfig, parsed: Any) -> int:
    """`limn serve --ray`: joins the cluster at --address (or starts a local one), deploys, and keeps
    the application up until SIGTERM or SIGINT, then deletes it (each replica drains for --grace)."""
    try:
        ray.init(address=parsed.address, log_to_driver=False, logging_level=logging.WARNING)
    except (ConnectionError, ValueError, RuntimeError) as e:
        print(f"limn serve: cannot reach the Ray cluster at {parsed.address}: {e}", file=sys.stderr)
        return 1
    try:
        try:
            application = build_app(config, parsed.replicas, **_ray_options(parsed))
        except ValueError as e:
            print(f"limn serve: {e}", file=sys.stderr)
            return 2
        timeout = None if config.timeout is None else config.timeout + TIMEOUT_MARGIN
        serve.start(proxy_location=parsed.proxy_location,
                    http_options={"host": config.host, "port": config.port, "request_timeout_s": timeout})
        try:
            serve.run(application, name=APP_NAME, route_prefix="/", blocking=False)
        except Exception as e:  # a replica failed to start: the models did not load
            print(f"limn serve: the Ray Serve application did not start: {e}{_replica_error()}", file=sys.stderr)
            _delete()
            return 1
        status = serve.status().applications[APP_NAME]
        replicas = sum(d.replica_states.get("RUNNING", 0) for d in status.deployments.values())
        log.info("serving on Ray: http://%s:%d/ (%d replica(s) running; cluster %s)", config.host, config.port,
                 replicas, ray.get_runtime_context().gcs_address)
        stop = threading.Event()
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
        while not stop.wait(0.5):
            pass
        log.info("stopping: deleting the application (replicas drain for up to %gs)", config.grace)
        _delete()
        log.info("stopped")
        return 0
    finally:
        ray.shutdown()


def _replica_error() -> str:
    """Why the replicas failed to start, from Serve's status (its message holds their traceback):
    the last line of it that names an error, e.g. limn's InvalidModelError for a model file."""
    try:
        status = serve.status().applications[APP_NAME]
        text = "\n".join([status.message] + [d.message for d in status.deployments.values()])
    except Exception:  # the controller is gone too
        return ""
    lines = [line.strip() for line in text.splitlines() if "Error" in line and ":" in line]
    return f"\n{lines[-1]}" if lines else ""


def _delete() -> None:
    """Deletes the application; when Serve holds no other one, shuts Serve (its proxies) down too."""
    try:
        serve.delete(APP_NAME, _blocking=True)
        if not serve.status().applications:
            serve.shutdown()
    except Exception as e:  # the cluster went away first
        log.warning("could not delete the application: %s", e)
