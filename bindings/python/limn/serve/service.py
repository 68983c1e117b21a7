"""The service behind every route: the loaded models, admission (a bounded queue per model), runs
in worker threads with deadlines and cancellation through the library, and the metrics of both.

The HTTP layers (app.py for /v1, oip.py for /v2) only translate fields and statuses and call
:meth:`Service.run`; nothing here knows about HTTP beyond the status an :class:`ApiError` carries.
"""

from __future__ import annotations

import asyncio
import collections
import functools
import inspect
import logging
import math
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Deque, Dict, List, Optional, Set

import numpy as np

import limn

from .config import ServeConfig, builtin_model
from .metrics import Metrics

__all__ = ["ApiError", "LoadedModel", "Service", "Ticket", "ROLES", "OPERATIONS"]

log = logging.getLogger("limn.serve")

#: role -> the model kind it needs
ROLES = {"cartoon": "cartoon", "head": "cartoon", "restore": "face_restore", "detect": "face_detect"}
#: operation -> (role of its model, options it takes)
OPERATIONS = {
    "cartoonize": ("cartoon", ("strength", "max_side", "head")),
    "restore_faces": ("restore", ("strength",)),
    "detect_faces": ("detect", ("max_side",)),
}
_POLL = 0.05  # seconds between checks of the client, the cancel flag and the deadline


class ApiError(Exception):
    """A failure with its HTTP status, a short snake_case code and a message naming what was wrong."""

    def __init__(self, status: int, code: str, message: str, headers: Optional[Dict[str, str]] = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = dict(headers or {})
        self.reason: Optional[str] = None  # limn_failures_total reason, when not implied by the status
        self.counted = False  # already counted in limn_failures_total

    def body(self) -> Dict[str, Dict[str, str]]:
        return {"error": {"code": self.code, "message": self.message}}


@dataclass
class LoadedModel:
    name: str           # loaded name: registry name or the file's stem; the built-in is "classical-cartoon"
    role: str           # "cartoon", "head", "restore" or "detect"
    model: limn.Model
    path: str


class Ticket:
    """One piece of work through admission: state, queue position, progress and the cancel flag.

    ``cancel_reason`` says why the flag was set: "client" (gone), "deadline", "drain" (shutdown)
    or "cancelled" (a job's DELETE)."""

    def __init__(self, model: LoadedModel, op: str) -> None:
        self.model = model
        self.op = op
        self.state = "new"  # new -> queued -> running -> finished
        self.cancel = threading.Event()
        self.cancel_reason: Optional[str] = None
        self.progress = (0, 0)
        self.queue_seconds = 0.0
        self.compute_seconds = 0.0
        self.admitted_at = 0.0
        self.started = False  # the library call was handed to a worker thread
        self.turn: Optional[asyncio.Future] = None  # set while queued; resolved when a slot is ours

    def request_cancel(self, reason: str) -> None:
        if not self.cancel.is_set():
            self.cancel_reason = reason
            self.cancel.set()


class _Gate:
    """The admission of one model: at most ``concurrency`` running and ``queue`` waiting, in order."""

    def __init__(self, concurrency: int, queue: int) -> None:
        self.concurrency = concurrency
        self.queue = queue
        self.running = 0
        self.waiting: Deque[Ticket] = collections.deque()
        self.mean_seconds = 1.0  # running mean of compute seconds, for Retry-After

    def admit(self, ticket: Ticket) -> bool:
        """True: a slot is ticket's now; False: queued (ticket.turn resolves when it gets one).
        Raises ApiError 429 when the queue is full."""
        if self.running < self.concurrency and not self.waiting:
            self.running += 1
            return True
        if len(self.waiting) >= self.queue:
            raise self.refusal(ticket.model.name)
        ticket.turn = asyncio.get_running_loop().create_future()
        self.waiting.append(ticket)
        return False

    @property
    def full(self) -> bool:
        """Every slot running and every queue place taken: the next ticket gets :meth:`refusal`."""
        return self.running >= self.concurrency and len(self.waiting) >= self.queue

    def refusal(self, model_name: str) -> ApiError:
        return ApiError(429, "queue_full", f"the queue of model '{model_name}' is full ({self.queue} waiting, "
                                           f"{self.running} running); retry later",
                        {"Retry-After": str(self.retry_after())})

    def retry_after(self) -> int:
        ahead = len(self.waiting) + self.running
        return int(min(60, max(1, math.ceil(ahead / self.concurrency * self.mean_seconds))))

    def position(self, ticket: Ticket) -> Optional[int]:
        try:
            return self.waiting.index(ticket)
        except ValueError:
            return None

    def withdraw(self, ticket: Ticket) -> None:
        """Gives up ticket's place; if it was granted a slot meanwhile, passes the slot on."""
        try:
            self.waiting.remove(ticket)
        except ValueError:
            pass
        if ticket.turn is not None and ticket.turn.done() and not ticket.turn.cancelled():
            self.release()
        elif ticket.turn is not None:
            ticket.turn.cancel()

    def release(self) -> None:
        """A slot is free: it goes to the first waiting ticket, else back to the pool."""
        while self.waiting:
            nxt = self.waiting.popleft()
            if nxt.turn is not None and not nxt.turn.done():
                nxt.turn.set_result(None)
                return
        self.running -= 1


def _loaded_name(source: str, builtin: bool) -> str:
    if builtin:
        return "classical-cartoon"
    if os.path.exists(source):
        stem = os.path.basename(os.path.normpath(source))
        for ext in (".pt2", ".pt"):
            if stem.endswith(ext):
                return stem[: -len(ext)]
        return stem
    return source  # a registry name


def _size_rule(info: limn.ModelInfo) -> str:
    if info.fixed_size:
        return f"fixed {info.fixed_size[0]}x{info.fixed_size[1]}"
    if info.size_multiple > 1:
        return f"multiple of {info.size_multiple}"
    return "any"


class Service:
    """The models of one server and the work on them."""

    def __init__(self, config: ServeConfig) -> None:
        config.check()
        self.config = config
        self.models: Dict[str, LoadedModel] = {}
        self.draining = False
        self.metrics = Metrics(self.devices)
        self._gates: Dict[str, _Gate] = {}
        self._active: Set[Ticket] = set()
        self._idle = threading.Event()
        self._load_all()
        workers = sum(g.concurrency for g in self._gates.values()) + 2
        self._executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="limn-run")
        self._loaded = True

    # ---- Models ---------------------------------------------------------------------------------

    def _load_all(self) -> None:
        c = self.config
        self._loaded = False
        if c.memory_limit:
            limn.set_memory_limit(limn.resolve_device(c.device), c.memory_limit)
        plan = [(s, "cartoon", False) for s in c.models] or [(builtin_model(), "cartoon", True)]
        plan += [(s, "head", False) for s in c.heads] + [(s, "restore", False) for s in c.restorers]
        plan += [(s, "detect", False) for s in c.detectors]
        for source, role, builtin in plan:
            self._load(source, role, builtin)

    def _load(self, source: str, role: str, builtin: bool) -> None:
        name = _loaded_name(source, builtin)
        if name in self.models:
            raise ValueError(f"two models would be loaded as '{name}' ({self.models[name].path} and {source}); "
                             "rename one file")
        # Loading runs the model's embedded self-test; a failure raises here and the server does not start.
        model = limn.Model(source, self.config.device, self.config.precision, kind=ROLES[role], name=name)
        is_head = model.info.role == "head"
        if role == "head" and not is_head:
            model.close()
            raise ValueError(f"--head {source}: '{name}' is not a head model (its role is '{model.info.role}')")
        if role == "cartoon" and is_head:
            model.close()
            raise ValueError(f"--model {source}: '{name}' is a head model; load it with --head")
        path = os.path.abspath(source) if os.path.exists(source) else source
        self.models[name] = LoadedModel(name, role, model, path)
        self._gates[name] = _Gate(self.config.concurrency, self.config.queue)
        log.info("loaded %s model '%s' on %s (%s) from %s", role, name, model.info.device,
                 model.info.precision, path)

    @property
    def ready(self) -> bool:
        """All models loaded and self-tested, and not draining."""
        return self._loaded and not self.draining

    def devices(self) -> List[str]:
        return sorted({m.model.info.device for m in self.models.values()})

    def find(self, name: Optional[str], role: str) -> LoadedModel:
        """The model loaded as ``name`` (None: the first of ``role``); ApiError 404 otherwise."""
        if name is None or name == "":
            for m in self.models.values():
                if m.role == role:
                    return m
            raise ApiError(404, "model_not_found", f"no {role} model is loaded")
        m = self.models.get(name)
        if m is None:
            known = ", ".join(k for k, v in self.models.items() if v.role == role) or "none"
            raise ApiError(404, "model_not_found", f"no model named '{name}' is loaded "
                                                   f"(loaded {role} models: {known})")
        if m.role != role:
            raise ApiError(404, "model_not_found", f"model '{name}' is a {m.role} model, not a {role} model")
        return m

    def describe(self, m: LoadedModel) -> Dict[str, Any]:
        info = m.model.info
        return {"name": m.name, "kind": info.kind, "role": m.role, "device": info.device,
                "precision": info.precision, "format": info.file_format, "size_rule": _size_rule(info),
                "license": info.license, "source": info.source}

    def defaults(self) -> Dict[str, Optional[str]]:
        out: Dict[str, Optional[str]] = {}
        for role in ("cartoon", "head", "restore", "detect"):
            out[role] = next((m.name for m in self.models.values() if m.role == role), None)
        return out

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        for m in self.models.values():
            m.model.close()

    # ---- Input ----------------------------------------------------------------------------------

    def decode(self, data: bytes) -> np.ndarray:
        """An encoded image file -> HxWx3/4 uint8. 413 over max_pixels, 415 not an image, 400 corrupt."""
        if not data:
            raise self.fail(ApiError(400, "invalid_image", "the image is empty (0 bytes)"))
        try:
            # A memoryview is always the bytes, never a path (limn.load_image takes short bytes
            # naming an existing file as that file): no request field reaches the file system.
            return limn.load_image(memoryview(data), max_pixels=self.config.max_pixels)
        except limn.ImageTooLargeError as e:
            raise self.fail(ApiError(413, "image_too_large", f"{e} (this server takes at most "
                                                             f"{self.config.max_pixels} pixels)")) from None
        except limn.InvalidImageError as e:
            if _looks_like_image(data):
                raise self.fail(ApiError(400, "invalid_image", f"the image is corrupt or truncated: {e}")) from None
            raise self.fail(ApiError(415, "unsupported_media_type",
                                     f"not an image in a known format (PNG, JPEG, WebP, BMP, TGA): {e}")) from None

    def check_array(self, image: np.ndarray) -> None:
        """413 over max_pixels; 422 not a HxWx3/4 uint8 array."""
        if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 \
                or image.shape[2] not in (3, 4) or image.shape[0] < 1 or image.shape[1] < 1:
            desc = f"{image.dtype} array of shape {list(image.shape)}" if isinstance(image, np.ndarray) \
                else type(image).__name__
            raise self.fail(ApiError(422, "invalid_field",
                                     f"image: expected uint8 [height, width, 3 or 4], got {desc}"))
        h, w = image.shape[:2]
        if h * w > self.config.max_pixels:
            raise self.fail(ApiError(413, "image_too_large", f"the image is {w}x{h} = {w * h} pixels; this "
                                                             f"server takes at most {self.config.max_pixels}"))

    def fail(self, error: ApiError) -> ApiError:
        """Counts ``error`` in limn_failures_total{reason} (once) and returns it."""
        reason = _reason(error)
        if reason is not None and not error.counted:
            self.metrics.fail(reason)
        error.counted = True
        return error

    def note_request(self, request: Any, model: str, operation: str) -> None:
        """Tells the HTTP middleware the model and operation of ``request`` (for limn_requests_total)."""
        request.state.limn_model = model if model in self.models else ""
        request.state.limn_operation = operation

    # ---- Admission and runs ---------------------------------------------------------------------

    def refuse_early(self, role: str, name: Optional[str]) -> Optional[LoadedModel]:
        """Before a request's body is read: when it can only be for one model (the one ``name``
        names, or the only model of ``role``) and that model's queue is full, the counted 429 now,
        so that a refused request costs neither its upload nor its decoding. Returns that model,
        or None while the body may still choose another."""
        candidates = [m for m in self.models.values() if m.role == role and (not name or m.name == name)]
        if len(candidates) != 1:
            return None
        model = candidates[0]
        gate = self._gates[model.name]
        if gate.full:
            raise self.fail(gate.refusal(model.name))
        return model

    def admit(self, ticket: Ticket) -> None:
        """Takes a slot or a queue place for ``ticket`` now: 503 while draining, 429 when full."""
        if self.draining:
            raise self.fail(ApiError(503, "draining", "the server is shutting down; retry on another instance",
                                     {"Retry-After": "5"}))
        gate = self._gates[ticket.model.name]
        try:
            granted = gate.admit(ticket)
        except ApiError as e:
            raise self.fail(e)
        ticket.state = "running" if granted else "queued"
        ticket.admitted_at = time.monotonic()
        self._active.add(ticket)
        self._idle.clear()
        self._update_gauges(ticket.model.name)

    def position(self, ticket: Ticket) -> Optional[int]:
        """0-based place in its model's queue, or None when not queued."""
        return self._gates[ticket.model.name].position(ticket) if ticket.state == "queued" else None

    def timeout_for(self, requested: Optional[float]) -> Optional[float]:
        """The deadline in seconds: the server's --timeout, or less when the request asks."""
        limits = [t for t in (self.config.timeout, requested) if t is not None and t > 0]
        return min(limits) if limits else None

    async def run(self, op: str, model: LoadedModel, image: np.ndarray, options: Dict[str, Any], *,
                  timeout: Optional[float] = None, progress: Optional[Callable[[int, int], Any]] = None,
                  is_disconnected: Optional[Callable[[], Any]] = None, ticket: Optional[Ticket] = None) -> Any:
        """Runs ``op`` on ``image`` with ``model``: admission, the deadline, cancellation, metrics.

        Returns an ndarray (image) or a list of limn.Face. ``ticket``: one already admitted (jobs
        admit at submission to answer 429 at once), else one is made and admitted here."""
        try:
            call = self.plan(op, model, options)
        except ApiError:
            if ticket is not None:
                self._abandon(ticket)
            raise
        ticket = ticket or Ticket(model, op)
        if ticket.state == "new":
            self.admit(ticket)
        limit = self.timeout_for(timeout)
        deadline = ticket.admitted_at + limit if limit else None
        labels = (model.name, op)
        try:
            await self._wait_turn(ticket, deadline, is_disconnected)
            ticket.queue_seconds = time.monotonic() - ticket.admitted_at
            self.metrics.queue_seconds.labels(*labels).observe(ticket.queue_seconds)
            result = await self._compute(ticket, call, image, deadline, progress, is_disconnected)
        except ApiError as e:
            raise self.fail(e)
        except asyncio.CancelledError:
            ticket.request_cancel("cancelled")
            self.metrics.fail("cancelled")
            raise
        finally:
            if not ticket.started:  # never reached the library: done here
                self._finish(ticket, held=ticket.state == "running")
        self.metrics.compute_seconds.labels(*labels).observe(ticket.compute_seconds)
        self.metrics.request_seconds.labels(*labels).observe(time.monotonic() - ticket.admitted_at)
        self.metrics.images.labels(*labels).inc()
        self.metrics.megapixels.labels(*labels).inc(image.shape[0] * image.shape[1] / 1e6)
        return result

    def plan(self, op: str, model: LoadedModel, options: Dict[str, Any]) -> Callable[..., Any]:
        """The library call of ``op`` with ``options`` and the helper models it needs; ApiError
        (counted) when the options or the loaded models do not allow it."""
        try:
            return self._plan(op, model, options)
        except ApiError as e:
            raise self.fail(e)

    def _abandon(self, ticket: Ticket) -> None:
        """Gives up an admitted ticket that will not run."""
        if ticket.state == "queued":
            self._gates[ticket.model.name].withdraw(ticket)
            self._finish(ticket, held=False)
        elif ticket.state == "running" and not ticket.started:
            self._finish(ticket, held=True)

    def _plan(self, op: str, model: LoadedModel, options: Dict[str, Any]) -> Callable[..., Any]:
        if op not in OPERATIONS:
            raise ApiError(422, "invalid_field", f"op: unknown operation '{op}' (expected one of "
                                                 f"{', '.join(OPERATIONS)})")
        role, allowed = OPERATIONS[op]
        if model.role != role:
            raise ApiError(404, "model_not_found", f"model '{model.name}' is a {model.role} model; {op} needs "
                                                   f"a {role} model")
        unknown = sorted(set(options) - set(allowed))
        if unknown:
            raise ApiError(422, "invalid_field", f"{unknown[0]}: not an option of {op} "
                                                 f"(options: {', '.join(allowed)})")
        kwargs = {k: v for k, v in options.items() if v is not None}
        if op == "cartoonize":
            head = kwargs.pop("head", None)
            has_head = any(m.role == "head" for m in self.models.values())
            if head and not has_head:
                raise ApiError(422, "invalid_field", "head: no head model is loaded (start the server with --head)")
            if head or (head is None and has_head):
                kwargs["head_model"] = self.find(None, "head").model
                kwargs["detector"] = self.find(None, "detect").model
            return functools.partial(model.model.cartoonize, **kwargs)
        if op == "restore_faces":
            kwargs["detector"] = self.find(None, "detect").model
            return functools.partial(model.model.restore_faces, **kwargs)
        return functools.partial(model.model.detect_faces, **kwargs)

    async def _wait_turn(self, ticket: Ticket, deadline: Optional[float],
                         is_disconnected: Optional[Callable[[], Any]]) -> None:
        """Waits in the queue until a slot is ticket's; gives up on cancel, client gone or deadline."""
        if ticket.state != "queued":
            return
        gate = self._gates[ticket.model.name]
        assert ticket.turn is not None
        try:
            while not ticket.turn.done():
                await asyncio.wait({ticket.turn}, timeout=_POLL)
                if ticket.turn.done():
                    break
                await _watch(ticket, deadline, is_disconnected)
                if ticket.cancel.is_set():
                    gate.withdraw(ticket)
                    ticket.state = "finished"
                    raise _cancel_error(ticket, queued=True)
        except asyncio.CancelledError:
            gate.withdraw(ticket)
            ticket.state = "finished"
            raise
        ticket.state = "running"
        self._update_gauges(ticket.model.name)

    async def _compute(self, ticket: Ticket, call: Callable[..., Any], image: np.ndarray,
                       deadline: Optional[float], progress: Optional[Callable[[int, int], Any]],
                       is_disconnected: Optional[Callable[[], Any]]) -> Any:
        """Runs ``call`` in a worker thread; the slot is freed when the thread returns, however
        this coroutine ends."""
        if ticket.cancel.is_set():  # cancelled in the moment its slot came: the library never sees it
            raise _cancel_error(ticket, queued=True)
        kwargs: Dict[str, Any] = {}
        if ticket.op != "detect_faces":
            def on_progress(done: int, total: int) -> bool:
                ticket.progress = (int(done), int(total))
                if progress is not None and progress(done, total) is False:
                    ticket.request_cancel("cancelled")
                if deadline is not None and time.monotonic() >= deadline:
                    ticket.request_cancel("deadline")
                return not ticket.cancel.is_set()

            kwargs["progress"] = on_progress
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    ticket.request_cancel("deadline")
                    raise _cancel_error(ticket, queued=True)
                kwargs["timeout"] = left

        def work() -> Any:
            t0 = time.monotonic()
            try:
                return call(image, **kwargs)
            finally:
                ticket.compute_seconds = time.monotonic() - t0

        def done(f: "asyncio.Future[Any]") -> None:
            if not f.cancelled():
                f.exception()  # retrieved here when nobody waits for it any more
            self._finish(ticket, held=True)

        loop = asyncio.get_running_loop()
        fut = loop.run_in_executor(self._executor, work)
        ticket.started = True
        fut.add_done_callback(done)
        try:
            while not fut.done():
                await asyncio.wait({fut}, timeout=_POLL)
                if fut.done():
                    break
                await _watch(ticket, deadline, is_disconnected)
                if ticket.cancel_reason in ("deadline", "drain"):
                    # Answer now; the library stops at its next step and the slot is freed then.
                    raise _cancel_error(ticket, queued=False)
        except asyncio.CancelledError:
            ticket.request_cancel("cancelled")
            raise
        try:
            return fut.result()
        except limn.CancelledError:
            raise _cancel_error(ticket, queued=False) from None
        except limn.Error as e:
            mapped = _library_error(e, ticket)
            if mapped is None:
                raise
            raise mapped from None

    def _finish(self, ticket: Ticket, held: bool) -> None:
        """Ticket's work is over; ``held``: it holds a running slot, which passes on."""
        if ticket not in self._active:
            return
        self._active.discard(ticket)
        gate = self._gates[ticket.model.name]
        if held:
            gate.mean_seconds = 0.8 * gate.mean_seconds + 0.2 * ticket.compute_seconds
            gate.release()
        ticket.state = "finished"
        self._update_gauges(ticket.model.name)
        if not self._active:
            self._idle.set()

    def _update_gauges(self, name: str) -> None:
        gate = self._gates[name]
        self.metrics.pending.labels(name).set(len(gate.waiting))
        self.metrics.inflight.labels(name).set(gate.running)

    # ---- Shutdown -------------------------------------------------------------------------------

    @property
    def busy(self) -> int:
        """Tickets queued or running."""
        return len(self._active)

    @property
    def in_library(self) -> int:
        """Calls handed to the library that have not returned (a cancelled one stops at its next step)."""
        return sum(1 for t in self._active if t.started)

    def begin_drain(self) -> None:
        """New work gets 503 and /readyz turns false; admitted work goes on."""
        self.draining = True

    def cancel_all(self, reason: str) -> None:
        """Cancels every queued and running ticket (through the library's progress callback)."""
        for ticket in list(self._active):
            ticket.request_cancel(reason)

    async def drain(self, deadline: float, cancel_wait: float = 5.0) -> bool:
        """Waits until admitted work is done, at most until ``deadline`` (time.monotonic()); then
        cancels the rest (503) and waits up to ``cancel_wait`` s for it to stop. True: all finished."""
        self.begin_drain()
        while self._active and time.monotonic() < deadline:
            await asyncio.sleep(_POLL)
        if not self._active:
            return True
        log.warning("grace period over: cancelling %d queued or running requests", len(self._active))
        self.cancel_all("drain")
        end = time.monotonic() + cancel_wait
        while self._active and time.monotonic() < end:
            await asyncio.sleep(_POLL)
        return False


async def _watch(ticket: Ticket, deadline: Optional[float], is_disconnected: Optional[Callable[[], Any]]) -> None:
    """Sets ticket's cancel flag when its deadline has passed or its client is gone."""
    if ticket.cancel.is_set():
        return
    if deadline is not None and time.monotonic() >= deadline:
        ticket.request_cancel("deadline")
    elif is_disconnected is not None and await _truthy(is_disconnected):
        ticket.request_cancel("client")


async def _truthy(check: Callable[[], Any]) -> bool:
    value = check()
    if inspect.isawaitable(value):
        value = await value
    return bool(value)


def _cancel_error(ticket: Ticket, queued: bool) -> ApiError:
    """What a cancelled ticket answers, by why it was cancelled."""
    where = "in the queue" if queued else "while running"
    reason = ticket.cancel_reason
    if reason == "deadline":
        e = ApiError(504, "timeout", f"the deadline passed {where}; the work was cancelled")
    elif reason == "drain":
        e = ApiError(503, "draining", f"the server shut down before the work was done; it was cancelled {where}",
                     {"Retry-After": "5"})
    elif reason == "client":
        e = ApiError(499, "cancelled", f"the client went away; the work was cancelled {where}")
    else:
        e = ApiError(499, "cancelled", f"cancelled {where}")
    e.reason = "timeout" if reason == "deadline" else "cancelled"
    return e


def _library_error(e: limn.Error, ticket: Ticket) -> Optional[ApiError]:
    """The status of a library failure caused by the input or the load; None: a bug (500)."""
    if isinstance(e, limn.DeadlineExceededError):
        return ApiError(504, "timeout", f"the deadline passed while running; the work was cancelled ({e})")
    if isinstance(e, limn.ImageTooLargeError):
        return ApiError(413, "image_too_large", str(e))
    if isinstance(e, limn.InvalidImageError):
        return ApiError(400, "invalid_image", str(e))
    if isinstance(e, (limn.InvalidArgumentError, limn.SizeRuleError)):
        return ApiError(422, "invalid_argument", str(e))
    if isinstance(e, limn.OutOfMemoryError):
        return ApiError(503, "out_of_memory", f"out of memory; retry later ({e})", {"Retry-After": "5"})
    return None


_NOT_FAILURES = ("unauthorized", "not_found", "method_not_allowed", "not_done", "job_not_found")


def _reason(e: ApiError) -> Optional[str]:
    """The limn_failures_total reason of an ApiError; None: not a failure of the work (a wrong
    route, a job polled early, a missing API key)."""
    if e.reason:
        return e.reason
    if e.code in _NOT_FAILURES or e.code.startswith("job_"):
        return None
    if e.status == 504:
        return "timeout"
    if e.status in (429, 503):
        return "rejected"
    if 400 <= e.status < 500:
        return "bad_input"
    return "internal"


_SIGNATURES = (b"\x89PNG", b"\xff\xd8\xff", b"GIF8", b"BM", b"II*\x00", b"MM\x00*")


def _looks_like_image(data: bytes) -> bool:
    """True when ``data`` starts like an image file (so a decode failure means corrupt, not alien)."""
    head = bytes(data[:16])
    return head.startswith(_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
