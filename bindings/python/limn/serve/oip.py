"""The Open Inference Protocol (KServe v2, what Triton's clients speak) over the loaded models.

Routes (each also under ``/v2/models/{name}/versions/1/...``; every model has the one version "1"):

    GET  /v2                          server metadata (name "limn", version, extensions)
    GET  /v2/health/live              200 while the process serves
    GET  /v2/health/ready             200 once every model passed its self-test; 503 while draining
    GET  /v2/models/{name}            model metadata: inputs and outputs, -1 for variable sizes
    GET  /v2/models/{name}/ready      200 when the model can take requests
    GET  /v2/models/{name}/config     Triton's model configuration (tritonclient.get_model_config)
    POST /v2/models/{name}/infer      inference
    POST /v2/repository/index         the loaded models, all READY

Models are addressed by their loaded name. What ``infer`` does depends on the model's role:

| role    | input ``image``                                  | output                   | library call   |
| ------- | ------------------------------------------------ | ------------------------ | -------------- |
| cartoon | UINT8 [H,W,C] or [N,H,W,C] (C 3 or 4), or BYTES | UINT8 ``image``          | cartoonize     |
| restore | the same                                         | UINT8 ``image``          | restore_faces  |
| detect  | the same                                         | FP32 ``faces`` [F,15]    | detect_faces   |

A BYTES input holds encoded image files (PNG, JPEG, WebP, ...), one per element (binary, or in
JSON as base64 strings with the input parameter ``"content_type": "base64"``); the output has the
input's shape followed by [H,W,C]. A batch [N,H,W,C] runs image by image and answers
[N,H,W,C]; the detector then answers [N,F,15], the rows beyond an image's own faces zero (score 0).
Face rows are (x0, y0, x1, y1, score, then the 5 landmarks as x, y pairs). Head models (role
"head") run only inside a cartoon model's compound stylization and cannot be called here.

Parameters, in the request's ``parameters`` or the ``image`` input's (the input's win), those of
the library call: cartoon models take ``strength`` (0..1), ``max_side`` (0 = the original size,
or 256..4096) and ``head`` (bool: compound stylization with the loaded head model; by default on
when one is loaded); restorers take ``strength``; detectors ``max_side`` (0..4096). Triton's
``timeout`` (microseconds) shortens the server's ``--timeout``, one deadline for the whole request.

Tensors travel as JSON (``data`` flattened in row-major order, or nested) or through Triton's
binary tensor extension: the request's ``Inference-Header-Content-Length`` header gives the JSON
header's length, and each binary input's bytes follow it in order, ``binary_data_size`` in the
input's parameters. Outputs are binary when the request's ``binary_data_output`` parameter or the
output's ``binary_data`` parameter says so; the response then carries the same header and
``Content-Type: application/octet-stream``. Clients such as tritonclient send no Content-Type, so
the body is always read raw; ``Content-Encoding: gzip`` or ``deflate`` bodies are inflated.

Errors are a non-200 status with ``{"error": "message"}``: 400 for a bad request (tensors,
parameters, JSON, header length; an image that cannot be decoded), 404 for an unknown model or
version, 413 for an image over ``--max-pixels``, 429/503/504 from admission (with Retry-After).
"""
from __future__ import annotations

import base64
import binascii
import json
import math
import re
import struct
import time
import zlib
from dataclasses import dataclass
from typing import Any, Awaitable, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, TypeVar

import numpy as np
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

import limn

from .service import OPERATIONS, ApiError, LoadedModel, Service

VERSION = "1"
EXTENSIONS = ["binary_tensor_data", "parameters", "model_configuration"]

# Triton datatype -> little-endian numpy dtype; BF16 has no numpy dtype, only its size.
_DTYPES = {"BOOL": "|b1", "UINT8": "|u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8",
           "INT8": "|i1", "INT16": "<i2", "INT32": "<i4", "INT64": "<i8",
           "FP16": "<f2", "FP32": "<f4", "FP64": "<f8"}
_SIZES = {**{k: np.dtype(v).itemsize for k, v in _DTYPES.items()}, "BF16": 2}

# What each role's infer takes and gives: (library operation, output name, datatype, shape).
_ROLES = {
    "cartoon": ("cartoonize", "image", "UINT8", [-1, -1, -1]),
    "restore": ("restore_faces", "image", "UINT8", [-1, -1, -1]),
    "detect": ("detect_faces", "faces", "FP32", [-1, 15]),
}
_IMAGE_INPUT = {"name": "image", "datatype": "UINT8", "shape": [-1, -1, -1]}
_IMAGE_FORMS = "UINT8 [H,W,C] or [N,H,W,C] with C 3 or 4, or BYTES holding encoded image files"
_MAX_SIDE = (256, 4096)
_DIGITS = re.compile(r"[0-9]{1,15}\Z")
_INLINE_BYTES = 1 << 18  # larger bodies are read, and larger results encoded, in a worker thread
_BAD_STATUSES = (415, 422)  # the app API's "not an image" and "bad field": a bad request here

JsonDict = Dict[str, Any]
Handler = Callable[[Request], Awaitable[Response]]
T = TypeVar("T")


def _bad(message: str) -> ApiError:
    return ApiError(400, "invalid_tensor", message)


# ---- The request codec ---------------------------------------------------------------------------


@dataclass
class Tensor:
    """One input tensor: its description, and its data as JSON values or as raw bytes."""
    name: str
    datatype: str
    shape: Tuple[int, ...]
    parameters: JsonDict
    data: Any = None                    #: the JSON "data" (None when binary)
    raw: Optional[memoryview] = None    #: the binary bytes (None when JSON)

    @property
    def count(self) -> int:
        return math.prod(self.shape)


@dataclass
class InferRequest:
    id: Optional[str]
    parameters: JsonDict
    inputs: List[Tensor]
    outputs: Optional[List[Tuple[str, JsonDict]]]  #: requested (name, parameters); None: all


def inflate(body: bytes, encoding: Optional[str], limit: int) -> bytes:
    """The body with its Content-Encoding (gzip or deflate) undone; 413 past ``limit`` bytes."""
    enc = (encoding or "identity").strip().lower()
    if enc in ("", "identity"):
        return body
    if enc not in ("gzip", "x-gzip", "deflate"):
        raise _bad(f"Content-Encoding {encoding!r} is not supported: send gzip, deflate or identity")
    inflater = zlib.decompressobj(47)  # zlib or gzip header, detected
    try:
        out = inflater.decompress(body, limit + 1 if limit > 0 else 0)
    except zlib.error as e:
        raise _bad(f"the {enc} body cannot be inflated: {e}") from None
    if limit > 0 and len(out) > limit:
        raise ApiError(413, "payload_too_large", f"the inflated body is over the upload limit of {limit} bytes")
    if not inflater.eof:
        raise _bad(f"the {enc} body is truncated")
    return out


def parse_request(body: bytes, header_length: Optional[str]) -> InferRequest:
    """Parses an inference request: JSON, or a JSON header followed by binary tensors."""
    size = _header_size(header_length, len(body))
    hint = "" if header_length is not None else " (binary tensors need the Inference-Header-Content-Length header)"
    header = _json_header(body if size == len(body) else body[:size], hint)
    inputs = header.get("inputs")
    if not isinstance(inputs, list) or not inputs:
        raise _bad("the request has no \"inputs\": expected a list of input tensors")
    tensors = [_tensor(item, i) for i, item in enumerate(inputs)]
    _attach_binary(tensors, memoryview(body)[size:], header_length is not None)
    return InferRequest(id=_request_id(header.get("id")), parameters=_parameters(header, "the request"),
                        inputs=tensors, outputs=_requested_outputs(header.get("outputs")))


def _header_size(value: Optional[str], body_size: int) -> int:
    if value is None:
        return body_size
    text = value.strip()
    if not _DIGITS.match(text) or not 0 < int(text) <= body_size:
        raise _bad(f"Inference-Header-Content-Length is {value!r}: expected the JSON header's length in "
                   f"bytes, 1 to the body's {body_size}")
    return int(text)


def _json_header(data: bytes, hint: str) -> JsonDict:
    try:
        header = json.loads(data)
    except (ValueError, RecursionError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise _bad(f"the inference request is not valid JSON: {e}{hint}") from None
    if not isinstance(header, dict):
        raise _bad("the inference request must be a JSON object")
    return header


def _request_id(value: Any) -> Optional[str]:
    if value is None or isinstance(value, str):
        return value
    raise _bad("the request's \"id\" must be a string")


def _parameters(obj: JsonDict, what: str) -> JsonDict:
    params = obj.get("parameters", {})
    if params is None:
        return {}
    if not isinstance(params, dict):
        raise _bad(f"the \"parameters\" of {what} must be a JSON object")
    return params


def _tensor(item: Any, index: int) -> Tensor:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise _bad(f"input {index} must be an object with a \"name\", \"datatype\", \"shape\" and data")
    name = item["name"]
    datatype, shape = item.get("datatype"), item.get("shape")
    if datatype not in _SIZES and datatype != "BYTES":
        raise _bad(f"input {name!r} has datatype {datatype!r}: not a datatype of the protocol")
    if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) and d >= 0
                                              for d in shape):
        raise _bad(f"input {name!r} has shape {shape!r}: expected a list of sizes >= 0")
    params = _parameters(item, f"input {name!r}")
    if "shared_memory_region" in params:
        raise _bad(f"input {name!r} asks for shared memory, which this server does not offer")
    if "data" in item and "binary_data_size" in params:
        raise _bad(f"input {name!r} has both JSON \"data\" and a binary_data_size")
    return Tensor(name, datatype, tuple(shape), params, data=item.get("data"))


def _attach_binary(tensors: List[Tensor], rest: memoryview, has_header: bool) -> None:
    """Gives each binary input its slice of the bytes after the header, in order; they must add up."""
    offset = 0
    for t in tensors:
        size = t.parameters.get("binary_data_size")
        if size is None:
            if t.data is None:
                raise _bad(f"input {t.name!r} has no data: give \"data\" or binary data with binary_data_size")
            continue
        if not has_header:
            raise _bad(f"input {t.name!r} has a binary_data_size, but the request has no "
                       "Inference-Header-Content-Length header")
        if not isinstance(size, int) or isinstance(size, bool) or size < 0:
            raise _bad(f"input {t.name!r} has binary_data_size {size!r}: expected a byte count >= 0")
        if offset + size > len(rest):
            raise _bad(f"the body is truncated: input {t.name!r} needs bytes {offset} to {offset + size} "
                       f"after the header, but only {len(rest)} follow it")
        t.raw = rest[offset:offset + size]
        offset += size
    if offset != len(rest):
        raise _bad(f"{len(rest)} bytes follow the JSON header, but the inputs' binary_data_size add up to "
                   f"{offset}")


def _requested_outputs(value: Any) -> Optional[List[Tuple[str, JsonDict]]]:
    if value is None:
        return None
    if not isinstance(value, list):
        raise _bad("the request's \"outputs\" must be a list")
    out = []
    for item in value:
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise _bad("each requested output must be an object with a \"name\"")
        params = _parameters(item, f"output {item['name']!r}")
        for key in ("classification", "shared_memory_region"):
            if key in params:
                raise _bad(f"output {item['name']!r} asks for {key}, which this server does not offer")
        out.append((item["name"], params))
    return out


def numeric_array(t: Tensor) -> np.ndarray:
    """A numeric tensor's values as an array of its shape (read-only when binary)."""
    if t.datatype not in _DTYPES:
        raise _bad(f"input {t.name!r}: datatype {t.datatype} cannot be read here")
    dtype = np.dtype(_DTYPES[t.datatype])
    if t.raw is not None:
        if len(t.raw) != t.count * dtype.itemsize:
            raise _bad(f"input {t.name!r} has {len(t.raw)} bytes of binary data; shape {list(t.shape)} of "
                       f"{t.datatype} needs {t.count * dtype.itemsize}")
        return np.frombuffer(t.raw, dtype).reshape(t.shape)
    return _json_array(t, dtype)


def _json_array(t: Tensor, dtype: np.dtype) -> np.ndarray:
    if not isinstance(t.data, list):
        raise _bad(f"input {t.name!r}: \"data\" must be a list of values")
    try:
        values = np.array(t.data)
    except (ValueError, TypeError, RecursionError, OverflowError) as e:
        raise _bad(f"input {t.name!r}: \"data\" is not a list of numbers: {e}") from None
    if values.size != t.count:
        raise _bad(f"input {t.name!r} has {values.size} values in \"data\"; shape {list(t.shape)} needs {t.count}")
    allowed = {"b": "b", "i": "biu", "u": "biu", "f": "biuf"}[dtype.kind]
    if values.size and values.dtype.kind not in allowed:
        what = {"b": "true or false", "i": "integers", "u": "integers", "f": "numbers"}[dtype.kind]
        raise _bad(f"input {t.name!r}: \"data\" of a {t.datatype} tensor must hold {what}")
    if values.size and dtype.kind in "iu":
        info = np.iinfo(dtype)
        if values.min() < info.min or values.max() > info.max:
            raise _bad(f"input {t.name!r}: \"data\" has values outside {t.datatype}'s {info.min}..{info.max}")
    return values.astype(dtype).reshape(t.shape)


def bytes_elements(t: Tensor) -> List[bytes]:
    """A BYTES tensor's elements: binary ones are each a 4-byte little-endian length and the bytes;
    JSON ones are strings (UTF-8), or base64 with the input parameter content_type "base64"."""
    if t.raw is not None:
        items, pos, raw = [], 0, t.raw
        while pos < len(raw):
            if pos + 4 > len(raw):
                raise _bad(f"input {t.name!r}: BYTES element {len(items)} is cut inside its 4-byte length")
            (n,) = struct.unpack_from("<I", raw, pos)
            if pos + 4 + n > len(raw):
                raise _bad(f"input {t.name!r}: BYTES element {len(items)} says {n} bytes, but only "
                           f"{len(raw) - pos - 4} remain")
            items.append(bytes(raw[pos + 4:pos + 4 + n]))
            pos += 4 + n
    else:
        items = [_json_bytes(t, v) for v in _flatten(t.data, t.name)]
    if len(items) != t.count:
        raise _bad(f"input {t.name!r} has {len(items)} BYTES elements; shape {list(t.shape)} needs {t.count}")
    return items


def _flatten(data: Any, name: str) -> List[Any]:
    if not isinstance(data, list):
        raise _bad(f"input {name!r}: \"data\" must be a list")
    out: List[Any] = []
    stack = [iter(data)]
    while stack:
        for value in stack[-1]:
            if isinstance(value, list):
                stack.append(iter(value))
                break
            out.append(value)
        else:
            stack.pop()
    return out


def _json_bytes(t: Tensor, value: Any) -> bytes:
    if not isinstance(value, str):
        raise _bad(f"input {t.name!r}: JSON BYTES elements must be strings")
    if str(t.parameters.get("content_type", "")).lower() in ("base64", "b64"):
        try:
            return base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError) as e:
            raise _bad(f"input {t.name!r}: an element is not base64: {e}") from None
    return value.encode("utf-8", "surrogatepass")


# ---- The response codec --------------------------------------------------------------------------


@dataclass
class Output:
    name: str
    datatype: str
    array: np.ndarray
    binary: bool


def encode_response(model: str, request_id: Optional[str], outputs: Sequence[Output]) -> Response:
    """The inference response: JSON, or a JSON header followed by the binary outputs."""
    items, blobs = [], []
    for out in outputs:
        item: JsonDict = {"name": out.name, "datatype": out.datatype, "shape": list(out.array.shape)}
        if out.binary:
            blob = np.ascontiguousarray(out.array, np.dtype(_DTYPES[out.datatype])).tobytes()
            item["parameters"] = {"binary_data_size": len(blob)}
            blobs.append(blob)
            items.append(_object(item))
        else:
            items.append(_object(item, ("data", _json_values(out.array))))
    header: JsonDict = {} if request_id is None else {"id": request_id}
    header.update(model_name=model, model_version=VERSION)
    text = _object(header, ("outputs", b"[" + b",".join(items) + b"]"))
    if not blobs:
        return Response(text, media_type="application/json")
    return Response(b"".join([text, *blobs]), media_type="application/octet-stream",
                    headers={"Inference-Header-Content-Length": str(len(text))})


# "0," ... "255," padded with NULs to 4 bytes: a UINT8 tensor's JSON text is a table look-up and one
# pass that drops the NULs (ten times faster than json.dumps of a list of ints).
_UINT8_TEXT = np.array([f"{i},".encode() for i in range(256)], dtype="S4")


def _json_values(array: np.ndarray) -> bytes:
    """A tensor's values as a flat JSON array, in row-major order."""
    flat = array.ravel()
    if flat.dtype == np.uint8:
        return b"[" + _UINT8_TEXT[flat].tobytes().translate(None, b"\0")[:-1] + b"]"
    return json.dumps(flat.tolist(), allow_nan=False).encode()


def _object(fields: JsonDict, *raw: Tuple[str, bytes]) -> bytes:
    """A JSON object of ``fields`` followed by members whose values are JSON text already."""
    text = json.dumps(fields, separators=(",", ":")).encode()
    extra = b"".join(b"," + json.dumps(k).encode() + b":" + v for k, v in raw)
    return text[:-1] + (extra[1:] if text == b"{}" else extra) + b"}"


def error_response(status: int, message: str, headers: Optional[Dict[str, str]] = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


# ---- Models and what infer does with them ------------------------------------------------------


def model_metadata(model: LoadedModel) -> JsonDict:
    role = _ROLES.get(model.role)
    outputs = [] if role is None else [{"name": role[1], "datatype": role[2], "shape": role[3]}]
    return {"name": model.name, "versions": [VERSION], "platform": "limn",
            "inputs": [] if role is None else [dict(_IMAGE_INPUT)], "outputs": outputs}


def model_config(model: LoadedModel) -> JsonDict:
    """Triton's configuration form of the metadata (for get_model_config and model analyzers)."""
    meta = model_metadata(model)

    def tensors(items: List[JsonDict]) -> List[JsonDict]:
        return [{"name": t["name"], "data_type": "TYPE_" + t["datatype"], "dims": t["shape"]} for t in items]

    return {"name": model.name, "platform": "limn", "backend": "limn", "max_batch_size": 0,
            "input": tensors(meta["inputs"]), "output": tensors(meta["outputs"]),
            "parameters": {"role": {"string_value": model.role}}}


def _images(service: Service, t: Tensor) -> Tuple[List[np.ndarray], Tuple[int, ...]]:
    """The images of the ``image`` input and the leading shape of the output (() for one [H,W,C])."""
    if t.datatype == "BYTES":
        if t.count == 0:
            raise _bad(f"input {t.name!r} holds no image")
        return _decode_all(service, t), t.shape
    if t.datatype != "UINT8":
        raise _bad(f"input {t.name!r} has datatype {t.datatype}; expected {_IMAGE_FORMS}")
    if len(t.shape) not in (3, 4) or t.shape[-1] not in (3, 4) or 0 in t.shape:
        raise _bad(f"input {t.name!r} has shape {list(t.shape)}; expected {_IMAGE_FORMS}")
    array = numeric_array(t)
    if array.ndim == 3:
        return [array], ()
    return list(array), t.shape[:1]


def _decode_all(service: Service, t: Tensor) -> List[np.ndarray]:
    """The encoded files of a BYTES input, decoded. Together they may hold as many pixels as the
    largest UINT8 batch a body under --max-upload could (and at least one image of --max-pixels):
    small files of large, flat images must not decode to gigabytes."""
    limit = max(service.config.max_pixels, service.config.max_upload // 3)
    images, total = [], 0
    for item in bytes_elements(t):
        images.append(service.decode(item))
        total += images[-1].shape[0] * images[-1].shape[1]
        if total > limit:
            raise ApiError(413, "image_too_large", f"the images of input {t.name!r} hold more than {limit} "
                                                   "pixels together; send fewer per request")
    return images


def _number(params: JsonDict, key: str) -> Optional[float]:
    """A finite number from a parameter given as a JSON number or a string; None when absent."""
    value = params.get(key)
    if value is None:
        return None
    try:
        number = math.nan if isinstance(value, bool) or not isinstance(value, (int, float, str)) else float(value)
    except (ValueError, OverflowError):
        number = math.nan
    if not math.isfinite(number):
        raise _bad(f"parameter {key!r} is {value!r}: expected a number")
    return number


def _flag(params: JsonDict, key: str) -> Optional[bool]:
    value = params.get(key)
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
        return value.lower() in ("true", "1")
    raise _bad(f"parameter {key!r} is {value!r}: expected true or false")


def _options(op: str, role: str, params: JsonDict) -> JsonDict:
    """The library keyword arguments of ``op`` that the request's parameters ask for."""
    allowed = OPERATIONS[op][1]
    for key in ("strength", "max_side", "head"):
        if key in params and params[key] is not None and key not in allowed:
            raise _bad(f"parameter {key!r} does not apply to {role} models (their parameters: "
                       f"{', '.join(allowed)})")
    options: JsonDict = {}
    strength = _number(params, "strength")
    if strength is not None:
        if not 0.0 <= strength <= 1.0:
            raise _bad(f"parameter 'strength' is {strength:g}: expected 0 to 1")
        options["strength"] = strength
    max_side = _number(params, "max_side")
    if max_side is not None:
        lo, hi = _MAX_SIDE if role == "cartoon" else (0, _MAX_SIDE[1])
        if max_side != int(max_side) or not (max_side == 0 or lo <= max_side <= hi):
            raise _bad(f"parameter 'max_side' is {max_side:g}: expected 0 (the original size) or an integer "
                       f"from {lo} to {hi}")
        options["max_side"] = int(max_side)
    head = _flag(params, "head")
    if head is not None:
        options["head"] = head
    return options


def _deadline(service: Service, params: JsonDict) -> Optional[float]:
    """When the whole request must be done (time.monotonic()): the server's --timeout after now, or
    less when Triton's ``timeout`` parameter (microseconds) asks."""
    micros = _number(params, "timeout")
    if micros is not None and micros <= 0:
        raise _bad(f"parameter 'timeout' is {micros:g}: expected microseconds > 0")
    seconds = service.timeout_for(None if micros is None else micros / 1e6)
    return None if seconds is None else time.monotonic() + seconds


def _face_rows(faces: Sequence[limn.Face]) -> np.ndarray:
    return limn._faces_to_rows(list(faces))  # the library's row layout, written once in the package


def _stack(results: List[np.ndarray], lead: Tuple[int, ...], role: str) -> np.ndarray:
    """The per-image results as one tensor of the leading shape ``lead``."""
    if not lead:
        return results[0]
    if role == "detect":  # pad to the most faces with zero rows (score 0: no face)
        most = max(len(r) for r in results)
        padded = np.zeros((len(results), most, 15), np.float32)
        for i, r in enumerate(results):
            padded[i, :len(r)] = r
        return padded.reshape(*lead, most, 15)
    return np.stack(results).reshape(*lead, *results[0].shape)


def _binary_outputs(request: InferRequest, name: str, model: str) -> List[bool]:
    """Whether each requested output (the one output when none is named) travels as binary data."""
    default = _flag(request.parameters, "binary_data_output") or False
    flags = []
    for out_name, params in request.outputs or [(name, {})]:
        if out_name != name:
            raise _bad(f"model {model!r} has no output {out_name!r}; its output is {name!r}")
        binary = _flag(params, "binary_data")
        flags.append(default if binary is None else binary)
    return flags


def _image_input(request: InferRequest, model: str) -> Tensor:
    names = [t.name for t in request.inputs]
    if names != ["image"]:
        raise _bad(f"model {model!r} takes one input, 'image' ({_IMAGE_FORMS}); the request has {names}")
    return request.inputs[0]


def _time_left(deadline: Optional[float]) -> Optional[float]:
    if deadline is None:
        return None
    left = deadline - time.monotonic()
    if left <= 0:
        raise ApiError(504, "timeout", "the deadline passed before all the request's images were done")
    return left


@dataclass
class Plan:
    """An inference request read and checked, ready to run image by image."""
    request: InferRequest
    images: List[np.ndarray]
    lead: Tuple[int, ...]      #: leading shape of the output: () for one [H,W,C] image
    options: JsonDict          #: keyword arguments of the library call
    binary: List[bool]         #: per requested output: binary data, else JSON
    deadline: Optional[float]  #: time.monotonic() by which all images must be done


def plan(service: Service, model: LoadedModel, body: bytes, headers: Mapping[str, str]) -> Plan:
    """Reads an inference request for ``model``: everything is checked before any image runs."""
    body = inflate(body, headers.get("content-encoding"), service.config.max_upload)
    request = parse_request(body, headers.get("inference-header-content-length"))
    op, out_name = _ROLES[model.role][:2]
    tensor = _image_input(request, model.name)
    params = {**request.parameters, **tensor.parameters}
    options = _options(op, model.role, params)
    binary = _binary_outputs(request, out_name, model.name)
    deadline = _deadline(service, params)
    images, lead = _images(service, tensor)
    for image in images:
        service.check_array(image)
    if model.role != "detect" and len({image.shape for image in images}) > 1:
        raise _bad(f"the images of input {tensor.name!r} differ in size, so their results cannot form one "
                   "output tensor: send them in separate requests")
    return Plan(request, images, lead, options, binary, deadline)


async def _inline_or_thread(heavy: bool, fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)``, in a worker thread when ``heavy`` (large bodies: JSON, decoding), so the event
    loop keeps serving the other connections meanwhile."""
    return await run_in_threadpool(fn, *args) if heavy else fn(*args)


async def infer(service: Service, model: LoadedModel, body: bytes, headers: Mapping[str, str],
                is_disconnected: Optional[Callable[[], Awaitable[bool]]] = None) -> Response:
    """Runs an inference request on ``model``, image by image through the service's admission,
    all under one deadline."""
    p = await _inline_or_thread(len(body) > _INLINE_BYTES, plan, service, model, body, headers)
    op, out_name, datatype, _ = _ROLES[model.role]
    results = []
    for image in p.images:
        result = await service.run(op, model, image, dict(p.options), timeout=_time_left(p.deadline),
                                   is_disconnected=is_disconnected)
        results.append(_face_rows(result) if model.role == "detect" else result)
    array = _stack(results, p.lead, model.role)
    outputs = [Output(out_name, datatype, array, binary) for binary in p.binary]
    return await _inline_or_thread(array.nbytes > _INLINE_BYTES, encode_response, model.name, p.request.id,
                                   outputs)


# ---- Routes --------------------------------------------------------------------------------------


def _oip_error(e: ApiError) -> JSONResponse:
    return error_response(400 if e.status in _BAD_STATUSES else e.status, e.message, e.headers)


def find(service: Service, request: Request) -> LoadedModel:
    """The model a request's path names (and its version, when the path gives one); 404 otherwise."""
    name, version = request.path_params["name"], request.path_params.get("version", VERSION)
    model = service.models.get(name)
    if model is None:
        known = ", ".join(service.models) or "none"
        raise ApiError(404, "model_not_found", f"unknown model {name!r}; the loaded models are: {known}")
    if version != VERSION:
        raise ApiError(404, "model_not_found",
                       f"model {name!r} has no version {version!r}; its only version is {VERSION}")
    return model


def _endpoint(service: Service, handler: Handler, is_work: bool) -> Handler:
    """``handler`` with an ApiError it raises answered in the protocol's error shape (and, for
    inference, counted in limn_failures_total)."""
    async def endpoint(request: Request) -> Response:
        try:
            return await handler(request)
        except ApiError as e:
            return _oip_error(service.fail(e) if is_work else e)
        except ClientDisconnect:  # gone while sending the body: nobody reads the answer
            gone = ApiError(499, "cancelled", "the client went away before sending the whole request")
            gone.reason = "cancelled"
            return _oip_error(service.fail(gone))
    return endpoint


def router(service: Service) -> APIRouter:
    """The /v2 routes over ``service``; each model route also under /v2/models/{name}/versions/{version}."""
    api = APIRouter()

    def route(path: str, method: str = "GET") -> Callable[[Handler], Handler]:
        def add(handler: Handler) -> Handler:
            endpoint = _endpoint(service, handler, is_work=method == "POST")
            api.add_api_route(path, endpoint, methods=[method], name=f"oip_{handler.__name__}")
            if path.startswith("/v2/models/{name}"):
                versioned = path.replace("{name}", "{name}/versions/{version}", 1)
                api.add_api_route(versioned, endpoint, methods=[method], name=f"oip_{handler.__name__}_version")
            return handler
        return add

    @route("/v2")
    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "limn", "version": limn.__version__, "extensions": EXTENSIONS})

    @route("/v2/health/live")
    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    @route("/v2/health/ready")
    async def ready(request: Request) -> Response:
        if service.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, "error": "the server is not ready"}, status_code=503)

    @route("/v2/repository/index", "POST")
    async def repository_index(request: Request) -> Response:
        state = "READY" if service.ready else "UNAVAILABLE"
        return JSONResponse([{"name": n, "version": VERSION, "state": state} for n in service.models])

    @route("/v2/models/{name}")
    async def metadata(request: Request) -> Response:
        return JSONResponse(model_metadata(find(service, request)))

    @route("/v2/models/{name}/config")
    async def config(request: Request) -> Response:
        return JSONResponse(model_config(find(service, request)))

    @route("/v2/models/{name}/ready")
    async def model_ready(request: Request) -> Response:
        model = find(service, request)
        if not service.ready:
            return JSONResponse({"name": model.name, "ready": False, "error": "the server is not ready"},
                                status_code=503)
        return JSONResponse({"name": model.name, "ready": True})

    @route("/v2/models/{name}/infer", "POST")
    async def inference(request: Request) -> Response:
        service.note_request(request, request.path_params["name"], "infer")
        model = find(service, request)
        if model.role not in _ROLES:
            raise _bad(f"model {model.name!r} is a {model.role} model, which runs only inside a cartoon "
                       "model's compound stylization (parameter head=true); it cannot be called alone")
        return await infer(service, model, await request.body(), request.headers, request.is_disconnected)

    return api
