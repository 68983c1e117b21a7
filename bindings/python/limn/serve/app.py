"""The FastAPI app of `limn serve`: the /v1 API (and the seeds' /api/v1 alias), async jobs, health,
metrics, the Open Inference Protocol routes of oip.py, and the web page.

The routes only translate: fields in (typed, validated: 422 names the field), the service's
result or ApiError out. One ASGI middleware gives every request its id, checks the API key,
refuses new work while draining, bounds the body (413 before it is all read), counts requests
and writes the access log; a bug answers 500 with the request id, which the log line carries.
"""

from __future__ import annotations

import contextvars
import hmac
import json
import logging
import os
import re
import sys
import time
import uuid
from typing import Any, Dict, List, Literal, Optional, Tuple, Type, TypeVar

import numpy as np
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, field_validator
from starlette.requests import ClientDisconnect
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.middleware.cors import CORSMiddleware
from starlette.staticfiles import StaticFiles

import limn

from .config import ServeConfig
from .jobs import Job, JobStore
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .service import ApiError, LoadedModel, Service, Ticket

__all__ = ["create_app", "request_id", "RequestIdFilter"]

log = logging.getLogger("limn.serve")
STATIC_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")

#: the id of the request being handled ("-" outside requests); every log line carries it
request_id: contextvars.ContextVar[str] = contextvars.ContextVar("limn_request_id", default="-")


class RequestIdFilter(logging.Filter):
    """Adds ``record.request_id`` (the current request's id, or "-") to every log record."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, "request_id"):
            record.request_id = request_id.get()
        return True


# ---- Fields ------------------------------------------------------------------------------------

_MIME = {"png": "image/png", "jpeg": "image/jpeg", "webp": "image/webp"}


def _max_side_ok(v: Optional[int]) -> Optional[int]:
    if v is not None and v != 0 and not 256 <= v <= 4096:
        raise ValueError("must be 0 (the original size) or 256..4096")
    return v


class _Fields(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    model: Optional[str] = Field(None, max_length=128, description="a loaded model name")
    timeout: Optional[float] = Field(None, gt=0, le=86400, description="seconds; less than the server's --timeout")


class ImageOutFields(_Fields):
    format: Literal["png", "jpeg", "webp"] = Field("png", validation_alias=AliasChoices("format", "output_format"))
    quality: Optional[int] = Field(None, ge=1, le=100)

    @field_validator("format", mode="before")
    @classmethod
    def _format(cls, v: Any) -> Any:
        v = v.strip().lower() if isinstance(v, str) else v
        return "jpeg" if v == "jpg" else v


class CartoonizeFields(ImageOutFields):
    strength: Optional[float] = Field(None, ge=0, le=1, validation_alias=AliasChoices("strength", "style_intensity"))
    max_side: Optional[int] = Field(None, validation_alias=AliasChoices("max_side", "resolution"))
    head: Optional[bool] = None

    @field_validator("max_side")
    @classmethod
    def _side(cls, v: Optional[int]) -> Optional[int]:
        return _max_side_ok(v)


class RestoreFields(ImageOutFields):
    strength: Optional[float] = Field(None, ge=0, le=1)


class DetectFields(_Fields):
    max_side: Optional[int] = None

    @field_validator("max_side")
    @classmethod
    def _side(cls, v: Optional[int]) -> Optional[int]:
        return _max_side_ok(v)


class JobOp(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)
    op: Literal["cartoonize", "restore-faces", "detect-faces"]


F = TypeVar("F", bound=BaseModel)


def parse_fields(cls: Type[F], values: Dict[str, Any]) -> F:
    """``values`` as ``cls``; ApiError 422 naming the first bad field."""
    try:
        return cls.model_validate(values)
    except ValidationError as e:
        err = e.errors()[0]
        field = ".".join(str(p) for p in err["loc"]) or "body"
        got = err.get("input")
        shown = f" (got {got!r})" if isinstance(got, (str, int, float, bool)) else ""
        raise ApiError(422, "invalid_field", f"{field}: {err['msg']}{shown}") from None


async def read_input(request: Request) -> Tuple[bytes, Dict[str, Any]]:
    """The image bytes and the other fields: a multipart form with the file field ``image``, or
    the raw body (Content-Type image/*) with the fields in the query string. A client that goes
    away before the whole body has arrived is a cancel (499), not a failure of the server."""
    try:
        return await _read_input(request)
    except ClientDisconnect:
        gone = ApiError(499, "cancelled", "the client went away before sending the whole request")
        gone.reason = "cancelled"
        raise gone from None


async def _read_input(request: Request) -> Tuple[bytes, Dict[str, Any]]:
    mime = request.headers.get("content-type", "").split(";")[0].strip().lower()
    values: Dict[str, Any] = dict(request.query_params)
    if mime in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.form(max_files=1, max_fields=64)
        try:
            for key, value in form.multi_items():
                if key != "image" and isinstance(value, str):
                    values[key] = value
            image = form.get("image")
            if image is None:
                raise ApiError(422, "invalid_field", "image: missing; send the photo as the multipart file "
                                                     "field 'image', or as the body with Content-Type image/*")
            if isinstance(image, str):
                raise ApiError(422, "invalid_field", "image: must be a file upload, not a text field")
            data = await image.read()
        finally:
            await form.close()
        return data, values
    if mime.startswith("image/") or mime == "application/octet-stream":
        return await request.body(), values
    raise ApiError(415, "unsupported_media_type",
                   f"Content-Type {mime or '(none)'!s}: send multipart/form-data with the file field 'image', "
                   "or the image itself with Content-Type image/*")


# ---- The middleware ------------------------------------------------------------------------------

_ID = re.compile(r"^[A-Za-z0-9._:-]{1,64}$")
_HEALTH = ("/healthz", "/readyz", "/metrics", "/v2/health/live", "/v2/health/ready")
#: operation of the work routes, for requests rejected before their handler named it
_OPERATION = {"/v1/cartoonize": "cartoonize", "/api/v1/cartoonize": "cartoonize",
              "/v1/restore-faces": "restore_faces", "/v1/detect-faces": "detect_faces", "/v1/jobs": "job"}


class LimnMiddleware:
    """Request id, API key, draining, body limit, request counts, access log, 500 with the id."""

    def __init__(self, app: Any, service: Service, access_log: Any = None) -> None:
        self.app = app
        self.service = service
        self.config: ServeConfig = service.config
        self.access_log = access_log
        self.key = self.config.api_key.encode() if self.config.api_key else None

    def _protected(self, path: str) -> bool:
        if self.key is None:
            return False
        if path in _HEALTH:
            return self.config.auth_health
        return path.startswith(("/v1/", "/v2", "/api/")) or path == "/openapi.json"  # it lists the routes

    def _authorized(self, headers: Dict[str, str]) -> bool:
        scheme, _, token = headers.get("authorization", "").partition(" ")
        given = token.strip().encode() if scheme.lower() == "bearer" else b""
        return hmac.compare_digest(given, self.key or b"")

    async def __call__(self, scope: Dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        given = headers.get("x-request-id", "")
        rid = given if _ID.match(given) else uuid.uuid4().hex[:16]
        token = request_id.set(rid)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        start = time.monotonic()
        info = {"status": 0, "bytes_in": 0, "bytes_out": 0, "started": False}

        async def send_wrapper(message: Dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                info["status"] = message["status"]
                info["started"] = True
                message.setdefault("headers", [])
                message["headers"] = list(message["headers"]) + [(b"x-request-id", rid.encode())]
            elif message["type"] == "http.response.body":
                info["bytes_out"] += len(message.get("body", b""))
            await send(message)

        limit = self.config.max_upload

        async def receive_wrapper() -> Dict[str, Any]:
            message = await receive()
            if message["type"] == "http.request":
                info["bytes_in"] += len(message.get("body", b""))
                if info["bytes_in"] > limit:
                    raise self.service.fail(ApiError(413, "payload_too_large",
                                                     f"the request body is over the upload limit of {limit} bytes",
                                                     {"Connection": "close"}))
            return message

        try:
            error = self._refusal(scope, headers)
            if error is not None:
                await _send_error(send_wrapper, error, scope.get("path", ""))
            else:
                await self.app(scope, receive_wrapper, send_wrapper)
        except Exception:
            log.exception("internal error in %s %s (request id %s)", scope.get("method"), scope.get("path"), rid)
            self.service.metrics.fail("internal")
            if info["started"]:
                raise
            await _send_error(send_wrapper, ApiError(500, "internal", f"internal error; request id {rid}"),
                              scope.get("path", ""))
        finally:
            self._account(scope, state, info, time.monotonic() - start, rid)
            request_id.reset(token)

    def _refusal(self, scope: Dict[str, Any], headers: Dict[str, str]) -> Optional[ApiError]:
        """The error answering this request before the app sees it, if any."""
        path = scope.get("path", "")
        if self._protected(path) and scope.get("method") != "OPTIONS" and not self._authorized(headers):
            return ApiError(401, "unauthorized", "missing or wrong API key: send 'Authorization: Bearer KEY'",
                            {"WWW-Authenticate": "Bearer"})
        if self.service.draining and scope.get("method") == "POST":
            return self.service.fail(ApiError(503, "draining", "the server is shutting down; retry on another "
                                                               "instance", {"Retry-After": "5", "Connection": "close"}))
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.config.max_upload:
            return self.service.fail(ApiError(413, "payload_too_large",
                                              f"the request body ({length} bytes) is over the upload limit of "
                                              f"{self.config.max_upload} bytes", {"Connection": "close"}))
        return None

    def _account(self, scope: Dict[str, Any], state: Dict[str, Any], info: Dict[str, Any], seconds: float,
                 rid: str) -> None:
        path = scope.get("path", "")
        operation = state.get("limn_operation") or _OPERATION.get(path)
        model = state.get("limn_model", "")
        if operation:
            self.service.metrics.requests.labels(model, operation, str(info["status"])).inc()
        if self.access_log is not None:
            client = scope.get("client") or ("", 0)
            line = {"time": round(time.time(), 3), "request_id": rid, "client": client[0],
                    "method": scope.get("method"), "path": path, "status": info["status"],
                    "seconds": round(seconds, 6), "bytes_in": info["bytes_in"], "bytes_out": info["bytes_out"],
                    "model": model or None, "operation": operation}
            try:
                self.access_log.write(json.dumps(line) + "\n")
                self.access_log.flush()
            except (OSError, ValueError) as e:
                log.error("cannot write the access log: %s", e)


def _error_body(error: ApiError, path: str) -> Dict[str, Any]:
    """The error JSON: the Open Inference Protocol's {"error": "message"} on /v2, else
    {"error": {"code", "message"}}."""
    return {"error": error.message} if path.startswith("/v2") else error.body()


async def _send_error(send: Any, error: ApiError, path: str) -> None:
    body = json.dumps(_error_body(error, path)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in error.headers.items()]
    await send({"type": "http.response.start", "status": error.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def error_response(error: ApiError, path: str = "") -> JSONResponse:
    return JSONResponse(_error_body(error, path), status_code=error.status, headers=error.headers)


# ---- Results -------------------------------------------------------------------------------------


def faces_json(faces: List[limn.Face], image: np.ndarray, model: str) -> Dict[str, Any]:
    return {"model": model, "width": int(image.shape[1]), "height": int(image.shape[0]),
            "faces": [{"box": [float(v) for v in f.box], "score": float(f.score),
                       "landmarks": np.asarray(f.landmarks, np.float32).astype(float).tolist()} for f in faces]}


def encode(image: np.ndarray, fields: ImageOutFields) -> bytes:
    kwargs = {} if fields.quality is None else {"quality": fields.quality}
    return limn.encode_image(image, fields.format, **kwargs)


class _Work:
    """One parsed request: operation, model, decoded image, options and output fields."""

    def __init__(self, op: str, model: LoadedModel, image: np.ndarray, options: Dict[str, Any],
                 fields: _Fields) -> None:
        self.op, self.model, self.image, self.options, self.fields = op, model, image, options, fields

    async def finish(self, result: Any) -> Tuple[bytes, str]:
        """The response body and its content type."""
        if self.op == "detect_faces":
            return json.dumps(faces_json(result, self.image, self.model.name)).encode(), "application/json"
        assert isinstance(self.fields, ImageOutFields)
        data = await run_in_threadpool(encode, result, self.fields)
        return data, _MIME[self.fields.format]


_ROUTE_OPS = {"cartoonize": ("cartoon", CartoonizeFields, ("strength", "max_side", "head")),
              "restore_faces": ("restore", RestoreFields, ("strength",)),
              "detect_faces": ("detect", DetectFields, ("max_side",))}


async def prepare(service: Service, request: Request, op: str, data: bytes, values: Dict[str, Any]) -> _Work:
    role, cls, names = _ROUTE_OPS[op]
    service.note_request(request, str(values.get("model") or ""), op)
    fields = parse_fields(cls, values)
    model = service.find(fields.model, role)
    service.note_request(request, model.name, op)
    image = await run_in_threadpool(service.decode, data) if len(data) > (1 << 18) else service.decode(data)
    options = {k: getattr(fields, k) for k in names if getattr(fields, k) is not None}
    return _Work(op, model, image, options, fields)


# ---- The app ---------------------------------------------------------------------------------------


def create_app(config: ServeConfig, service: Optional[Service] = None) -> FastAPI:
    """The app serving ``config``'s models (loaded and self-tested here unless ``service`` is given)."""
    service = service or Service(config)
    jobs = JobStore(service, config.job_ttl, config.job_max, config.job_max_bytes)
    app = FastAPI(title="limn serve", version=limn.__version__, docs_url=None, redoc_url=None)
    app.state.service = service
    app.state.jobs = jobs
    app.state.access_log = _open_access_log(config.access_log)
    _add_error_handlers(app, service)
    _add_work_routes(app, service)
    if config.jobs:
        _add_job_routes(app, service, jobs)
    else:
        _refuse_job_routes(app)
    _add_health_routes(app, service)
    _mount_oip(app, service)
    _mount_page(app)
    app.add_middleware(LimnMiddleware, service=service, access_log=app.state.access_log)
    if config.cors_origins:  # outermost: preflight requests are answered before the API key check
        app.add_middleware(CORSMiddleware, allow_origins=list(config.cors_origins),
                           allow_methods=["GET", "POST", "DELETE", "OPTIONS"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-Id",
                                          "Inference-Header-Content-Length"],
                           expose_headers=["X-Request-Id", "X-Limn-Model", "X-Limn-Seconds", "Retry-After",
                                           "Location", "Inference-Header-Content-Length"],
                           max_age=600)
    return app


def _add_error_handlers(app: FastAPI, service: Service) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(request: Request, e: ApiError) -> JSONResponse:
        return error_response(service.fail(e), request.url.path)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, e: RequestValidationError) -> JSONResponse:
        err = e.errors()[0] if e.errors() else {"loc": ("body",), "msg": "invalid"}
        field = ".".join(str(p) for p in err["loc"] if p not in ("body", "query", "path"))
        return error_response(service.fail(ApiError(422, "invalid_field", f"{field or 'request'}: {err['msg']}")),
                              request.url.path)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, e: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(e.status_code, f"http_{e.status_code}")
        message = e.detail if e.status_code not in (404, 405) else f"{e.detail}: {request.method} {request.url.path}"
        return error_response(ApiError(e.status_code, code, str(message), dict(e.headers or {})), request.url.path)


def _add_work_routes(app: FastAPI, service: Service) -> None:
    async def run_sync(request: Request, op: str) -> Response:
        # A full queue answers before the upload is read. Only a raw body takes its fields (the
        # model's name) from the query string alone; a form may still name another model.
        raw = not request.headers.get("content-type", "").lower().startswith(("multipart/", "application/x-www"))
        named = request.query_params.get("model") if raw else None
        try:
            service.refuse_early(_ROUTE_OPS[op][0], named)
        except ApiError:
            service.note_request(request, named or "", op)
            raise
        data, values = await read_input(request)
        work = await prepare(service, request, op, data, values)
        ticket = Ticket(work.model, op)
        result = await service.run(op, work.model, work.image, work.options, timeout=work.fields.timeout,
                                   is_disconnected=request.is_disconnected, ticket=ticket)
        body, content_type = await work.finish(result)
        seconds = ticket.queue_seconds + ticket.compute_seconds
        headers = {"X-Limn-Model": work.model.name, "X-Limn-Seconds": f"{seconds:.6f}",
                   "X-Limn-Queue-Seconds": f"{ticket.queue_seconds:.6f}",
                   "X-Limn-Compute-Seconds": f"{ticket.compute_seconds:.6f}"}
        return Response(body, media_type=content_type, headers=headers)

    @app.post("/v1/cartoonize", summary="Cartoonize a photo", tags=["v1"])
    @app.post("/api/v1/cartoonize", summary="The seeds' route (resolution, style_intensity, output_format)",
              tags=["v1"])
    async def cartoonize(request: Request) -> Response:
        return await run_sync(request, "cartoonize")

    @app.post("/v1/restore-faces", summary="Restore the faces of a photo", tags=["v1"])
    async def restore_faces(request: Request) -> Response:
        return await run_sync(request, "restore_faces")

    @app.post("/v1/detect-faces", summary="Find faces: box, 5 landmarks, score", tags=["v1"])
    async def detect_faces(request: Request) -> Response:
        return await run_sync(request, "detect_faces")

    @app.get("/v1/models", tags=["v1"])
    async def models() -> Dict[str, Any]:
        return {"models": [service.describe(m) for m in service.models.values()], "default": service.defaults(),
                "jobs": service.config.jobs}


def _add_job_routes(app: FastAPI, service: Service, jobs: JobStore) -> None:
    @app.post("/v1/jobs", status_code=202, tags=["jobs"])
    async def submit_job(request: Request) -> JSONResponse:
        data, values = await read_input(request)
        service.note_request(request, str(values.get("model") or ""), "job")
        op = parse_fields(JobOp, values).op.replace("-", "_")
        work = await prepare(service, request, op, data, values)
        service.plan(op, work.model, work.options)  # a field the loaded models cannot serve: 4xx now
        ticket = Ticket(work.model, op)

        async def run(job: Job) -> Tuple[bytes, str]:
            result = await service.run(op, work.model, work.image, work.options, timeout=work.fields.timeout,
                                       ticket=ticket)
            return await work.finish(result)

        job = jobs.submit(op.replace("_", "-"), ticket, run)
        return JSONResponse(job.to_json(service), status_code=202, headers={"Location": f"/v1/jobs/{job.id}"})

    @app.get("/v1/jobs/{job_id}", tags=["jobs"])
    async def get_job(job_id: str) -> Dict[str, Any]:
        return jobs.get(job_id).to_json(service)

    @app.get("/v1/jobs/{job_id}/result", tags=["jobs"])
    async def get_result(job_id: str) -> Response:
        job = jobs.get(job_id)
        if job.state != "done" or job.result is None:
            state = job.to_json(service)["state"]
            if job.final:
                err = job.error or {"code": "failed", "message": "no result"}
                raise ApiError(409, "job_" + state, f"job {job_id} is {state}, without a result: {err['message']}")
            raise ApiError(409, "not_done", f"job {job_id} is {state}; its result is not ready yet")
        job.fetched = True
        return Response(job.result, media_type=job.content_type,
                        headers={"X-Limn-Model": job.ticket.model.name, "X-Limn-Seconds": f"{job.seconds or 0:.6f}"})

    @app.delete("/v1/jobs/{job_id}", tags=["jobs"])
    async def delete_job(job_id: str) -> Dict[str, Any]:
        job = jobs.get(job_id)
        await jobs.cancel(job)
        return job.to_json(service)


def _refuse_job_routes(app: FastAPI) -> None:
    """Jobs off (--no-jobs, or behind Ray Serve): every /v1/jobs route answers 501 and says what to
    use instead."""
    async def refuse(request: Request) -> JSONResponse:
        raise ApiError(501, "jobs_unavailable",
                       "asynchronous jobs are off on this server (--no-jobs, or behind Ray Serve): a job lives in "
                       "one process's memory and its later requests may reach another; use the synchronous "
                       "routes (POST /v1/cartoonize, /v1/restore-faces, /v1/detect-faces)")

    for path in ("/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result"):
        app.add_api_route(path, refuse, methods=["GET", "POST", "DELETE"], include_in_schema=False)


def _add_health_routes(app: FastAPI, service: Service) -> None:
    @app.get("/healthz", tags=["health"])
    async def healthz() -> Dict[str, Any]:
        return {"status": "ok"}

    @app.get("/readyz", tags=["health"])
    async def readyz() -> JSONResponse:
        ready = service.ready
        body = {"ready": ready, "draining": service.draining, "models": list(service.models)}
        return JSONResponse(body, status_code=200 if ready else 503)

    @app.get("/metrics", tags=["health"])
    async def metrics() -> Response:
        return Response(service.metrics.render(), media_type=METRICS_CONTENT_TYPE)


def _open_access_log(target: Optional[str]) -> Any:
    if not target:
        return None
    if target == "-":
        return sys.stdout
    return open(target, "a", buffering=1, encoding="utf-8")


def _mount_oip(app: FastAPI, service: Service) -> None:
    try:
        from . import oip
    except ModuleNotFoundError as e:
        if e.name != f"{__package__}.oip":
            raise
        log.warning("limn.serve.oip is missing: no /v2 routes")
        return
    app.include_router(oip.router(service))


def _mount_page(app: FastAPI) -> None:
    index = os.path.join(STATIC_DIR, "index.html")

    @app.get("/", include_in_schema=False)
    async def page() -> Response:
        if not os.path.isfile(index):
            raise ApiError(404, "not_found", "this installation has no web page (limn/serve/static/index.html)")
        return FileResponse(index, media_type="text/html; charset=utf-8")

    if os.path.isdir(STATIC_DIR):
        app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
