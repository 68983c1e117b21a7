"""The Open Inference Protocol of `limn serve` (issue 21, section 3).

Against conftest's real `limn serve` subprocess on 127.0.0.1 (tiny models: the built-in
classical-cartoon, a second cartoon network, a head network, a face restorer and a detector), with
the unmodified `tritonclient[http]` from PyPI: health, metadata, readiness and inference with
binary and with JSON tensors, batches, encoded files (BYTES), parameters, the detector's faces,
errors. Every result must equal the library's direct call bit for bit. Raw httpx posts check the
tensor codec itself: malformed binary headers and truncated bodies answer 400, never 500. A second
server checks the API key, the upload limit and --max-pixels on /v2. Admission errors (429, 503,
504 with Retry-After) are checked in-process against a stand-in service.

    python3 -m pytest tests/serve/test_oip.py -q
"""
from __future__ import annotations

import base64
import gzip
import json
import socket
from typing import Any, Dict, Iterator, List, Optional

import numpy as np
import pytest

limn = pytest.importorskip("limn")
pytest.importorskip("fastapi", reason="limn serve needs FastAPI: pip install 'limn[serve]'")
httpx = pytest.importorskip("httpx", reason="the server tests need httpx (./test.sh installs it)")
httpclient = pytest.importorskip("tritonclient.http",
                                 reason="the OIP tests need tritonclient[http] (./test.sh installs it)")
from tritonclient.utils import InferenceServerException  # noqa: E402

NAMES = {"cartoon": "classical-cartoon", "unet": "tiny_unet", "head": "tiny_head", "restore": "tiny_face",
         "detect": "tiny_detect"}  # conftest's model keys -> loaded names


# ---- fixtures (the shared ones are in conftest.py: server, start_server, direct, photo) -------------


def _check_log(proc: Any) -> None:
    text = proc.output()
    assert "Traceback" not in text and "internal error" not in text, f"the server logged an error:\n{text}"


@pytest.fixture(scope="module")
def oip_server(server: Any) -> Iterator[Any]:
    """conftest's `limn serve` subprocess (every tiny model); a traceback or an internal error in
    its log fails the module."""
    yield server
    _check_log(server)


@pytest.fixture(scope="module")
def triton(oip_server: Any) -> Iterator[Any]:
    """tritonclient's HTTP client, unmodified from PyPI, on the server."""
    with httpclient.InferenceServerClient(oip_server.url.split("://", 1)[1], network_timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def raw(oip_server: Any) -> Iterator[Any]:
    with httpx.Client(base_url=oip_server.url, timeout=60) as c:
        yield c


@pytest.fixture(scope="module")
def lib(direct: Dict[str, Any]) -> Dict[str, Any]:
    """conftest's directly loaded models by loaded name."""
    return {NAMES[key]: model for key, model in direct.items()}


def _image(h: int, w: int, c: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth photo-like test image (gradients and a disc, RGB or RGBA) with a little noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float32)
    disc = ((x - w * 0.4) ** 2 + (y - h * 0.45) ** 2 < (min(h, w) * 0.3) ** 2) * 90.0
    planes = [x / w * 200 + disc, y / h * 180 + 30, (x + y) / (h + w) * 150 + disc * 0.5, 255 - x / w * 100]
    img = np.stack(planes[:c], axis=-1) + rng.normal(0, 6, (h, w, c))
    return np.clip(img, 0, 255).astype(np.uint8)


def _input(array: np.ndarray, binary: bool = True, datatype: str = "UINT8") -> Any:
    t = httpclient.InferInput("image", list(array.shape), datatype)
    t.set_data_from_numpy(array, binary_data=binary)
    return t


def _face_rows(faces: List[Any]) -> np.ndarray:
    return np.array([[*f.box, f.score, *f.landmarks.reshape(10)] for f in faces], np.float32).reshape(-1, 15)


def _status(excinfo: pytest.ExceptionInfo) -> int:
    return int(excinfo.value.status())


# ---- health, metadata, readiness ---------------------------------------------------------------


def test_server_live_ready_and_metadata(triton: Any) -> None:
    assert triton.is_server_live()
    assert triton.is_server_ready()
    meta = triton.get_server_metadata()
    assert meta["name"] == "limn"
    assert meta["version"] == limn.__version__
    assert "binary_tensor_data" in meta["extensions"]


def test_model_ready(triton: Any) -> None:
    for name in ("tiny_unet", "classical-cartoon", "tiny_face", "tiny_detect"):
        assert triton.is_model_ready(name), name
        assert triton.is_model_ready(name, model_version="1"), name
    assert not triton.is_model_ready("no-such-model")
    assert not triton.is_model_ready("tiny_unet", model_version="2")


def test_model_metadata(triton: Any) -> None:
    meta = triton.get_model_metadata("tiny_unet")
    assert meta["name"] == "tiny_unet"
    assert meta["platform"] == "limn"
    assert meta["versions"] == ["1"]
    assert meta["inputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, -1, -1]}]
    assert meta["outputs"] == [{"name": "image", "datatype": "UINT8", "shape": [-1, -1, -1]}]
    detect = triton.get_model_metadata("tiny_detect", model_version="1")
    assert detect["outputs"] == [{"name": "faces", "datatype": "FP32", "shape": [-1, 15]}]
    assert triton.get_model_metadata("classical-cartoon")["name"] == "classical-cartoon"
    config = triton.get_model_config("tiny_face")
    assert config["output"] == [{"name": "image", "data_type": "TYPE_UINT8", "dims": [-1, -1, -1]}]
    with pytest.raises(InferenceServerException) as e:
        triton.get_model_metadata("no-such-model")
    assert _status(e) == 404 and "no-such-model" in e.value.message()


# ---- inference: results equal to the direct call -------------------------------------------------


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_cartoon(triton: Any, lib: Dict[str, Any], photo: Any, binary: bool) -> None:
    img = photo(220, 300)
    out = httpclient.InferRequestedOutput("image", binary_data=binary)
    result = triton.infer("tiny_unet", [_input(img, binary)], outputs=[out], request_id="r-1",
                          parameters={"strength": 0.6, "max_side": 256, "head": False})
    got = result.as_numpy("image")
    want = lib["tiny_unet"].cartoonize(img, strength=0.6, max_side=256)
    assert got.dtype == np.uint8 and got.shape == want.shape
    assert np.array_equal(got, want)
    response = result.get_response()
    assert response["id"] == "r-1" and response["model_name"] == "tiny_unet"
    assert ("binary_data_size" in response["outputs"][0].get("parameters", {})) == binary


def test_infer_builtin_rgba_default_outputs(triton: Any, lib: Dict[str, Any]) -> None:
    """No outputs named: tritonclient asks for binary_data_output; RGBA stays RGBA."""
    img = _image(120, 160, 4, seed=3)
    result = triton.infer("classical-cartoon", [_input(img)], parameters={"head": False, "strength": 0.8})
    assert "binary_data_size" in result.get_output("image")["parameters"]
    assert np.array_equal(result.as_numpy("image"), lib["classical-cartoon"].cartoonize(img, strength=0.8))


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_batch(triton: Any, lib: Dict[str, Any], binary: bool) -> None:
    batch = np.stack([_image(64, 96, seed=s) for s in range(3)])
    result = triton.infer("tiny_unet", [_input(batch, binary)], parameters={"head": False, "strength": 0.5},
                          outputs=[httpclient.InferRequestedOutput("image", binary_data=binary)])
    got = result.as_numpy("image")
    assert got.shape == batch.shape
    for k in range(len(batch)):
        assert np.array_equal(got[k], lib["tiny_unet"].cartoonize(batch[k], strength=0.5)), k


def test_infer_encoded_files(triton: Any, lib: Dict[str, Any], photo: Any) -> None:
    """BYTES elements holding a PNG and a JPEG; the output is [2, H, W, C]."""
    img = photo(150, 200, seed=5)
    files = [limn.encode_image(img, "png"), limn.encode_image(img, "jpeg", quality=90)]
    t = httpclient.InferInput("image", [2], "BYTES")
    t.set_data_from_numpy(np.array(files, dtype=object))
    result = triton.infer("tiny_unet", [t], parameters={"head": False, "max_side": 256, "strength": 0.9})
    got = result.as_numpy("image")
    assert got.shape == (2, 200, 150, 3)
    for k, data in enumerate(files):
        want = lib["tiny_unet"].cartoonize(limn.load_image(data), max_side=256, strength=0.9)
        assert np.array_equal(got[k], want), k


def test_infer_compound_head_by_default(triton: Any, lib: Dict[str, Any]) -> None:
    """With a head model loaded, cartoon models stylize faces with it unless head=false."""
    img = _image(256, 320, seed=7)
    got = triton.infer("tiny_unet", [_input(img)]).as_numpy("image")
    want = lib["tiny_unet"].cartoonize(img, head_model=lib["tiny_head"], detector=lib["tiny_detect"])
    assert np.array_equal(got, want)
    plain = triton.infer("tiny_unet", [_input(img)], parameters={"head": False}).as_numpy("image")
    assert np.array_equal(plain, lib["tiny_unet"].cartoonize(img))
    assert not np.array_equal(got, plain)  # the faces were stylized by the head model


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_infer_detector(triton: Any, lib: Dict[str, Any], binary: bool) -> None:
    img = _image(256, 320, seed=2)
    result = triton.infer("tiny_detect", [_input(img, binary)],
                          outputs=[httpclient.InferRequestedOutput("faces", binary_data=binary)])
    faces = result.as_numpy("faces")
    want = _face_rows(lib["tiny_detect"].detect_faces(img))
    assert faces.dtype == np.float32 and faces.shape == (len(want), 15) and len(want) >= 1
    assert np.array_equal(faces, want)


def test_infer_detector_batch_pads_with_zero_rows(triton: Any, lib: Dict[str, Any]) -> None:
    batch = np.stack([_image(128, 128, seed=1), _image(128, 128, seed=2)])
    faces = triton.infer("tiny_detect", [_input(batch)], parameters={"max_side": 0}).as_numpy("faces")
    rows = [_face_rows(lib["tiny_detect"].detect_faces(b, max_side=0)) for b in batch]
    most = max(len(r) for r in rows)
    assert faces.shape == (2, most, 15)
    for k, r in enumerate(rows):
        assert np.array_equal(faces[k, :len(r)], r)
        assert not faces[k, len(r):].any()


def test_infer_restore(triton: Any, lib: Dict[str, Any], photo: Any) -> None:
    img = photo(320, 256, seed=4)
    got = triton.infer("tiny_face", [_input(img)], parameters={"strength": 0.7}).as_numpy("image")
    want = lib["tiny_face"].restore_faces(img, detector=lib["tiny_detect"], strength=0.7)
    assert np.array_equal(got, want)


def test_input_parameters_override_request_parameters(raw: Any, lib: Dict[str, Any]) -> None:
    img = _image(40, 60, seed=9)
    body = {"parameters": {"strength": 0.2, "head": False},
            "inputs": [{"name": "image", "datatype": "UINT8", "shape": list(img.shape),
                        "parameters": {"strength": 0.9}, "data": img.tolist()}]}  # nested data
    r = raw.post("/v2/models/tiny_unet/infer", content=json.dumps(body))
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    got = np.array(out["data"], np.uint8).reshape(out["shape"])
    assert np.array_equal(got, lib["tiny_unet"].cartoonize(img, strength=0.9))


def test_binary_response_framing(raw: Any, lib: Dict[str, Any]) -> None:
    """A raw binary request; the response's JSON header length and binary_data_size frame the pixels."""
    img = _image(30, 50, seed=11)
    header = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": list(img.shape),
                                     "parameters": {"binary_data_size": img.nbytes}}],
                         "outputs": [{"name": "image", "parameters": {"binary_data": True}}],
                         "parameters": {"head": False}}).encode()
    r = raw.post("/v2/models/tiny_unet/versions/1/infer", content=header + img.tobytes(),
                 headers={"Inference-Header-Content-Length": str(len(header))})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    n = int(r.headers["inference-header-content-length"])
    meta = json.loads(r.content[:n])
    out = meta["outputs"][0]
    assert out["parameters"]["binary_data_size"] == len(r.content) - n == img.nbytes
    got = np.frombuffer(r.content[n:], np.uint8).reshape(out["shape"])
    assert np.array_equal(got, lib["tiny_unet"].cartoonize(img))


def test_gzip_request_body(raw: Any, lib: Dict[str, Any]) -> None:
    img = _image(30, 50, seed=12)
    header = json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": list(img.shape),
                                     "parameters": {"binary_data_size": img.nbytes}}],
                         "parameters": {"head": False}}).encode()
    r = raw.post("/v2/models/tiny_unet/infer", content=gzip.compress(header + img.tobytes()),
                 headers={"Inference-Header-Content-Length": str(len(header)), "Content-Encoding": "gzip"})
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert np.array_equal(np.array(out["data"], np.uint8).reshape(out["shape"]), lib["tiny_unet"].cartoonize(img))


# ---- errors through tritonclient ---------------------------------------------------------------


def _infer_error(triton: Any, model: str, inputs: List[Any], **kw: Any) -> InferenceServerException:
    with pytest.raises(InferenceServerException) as e:
        triton.infer(model, inputs, **kw)
    return e.value


def test_unknown_model_404(triton: Any) -> None:
    e = _infer_error(triton, "no-such-model", [_input(_image(8, 8))])
    assert e.status() == "404" and "no-such-model" in e.message()
    e = _infer_error(triton, "tiny_unet", [_input(_image(8, 8))], model_version="7")
    assert e.status() == "404" and "version" in e.message()


@pytest.mark.parametrize("binary", [True, False], ids=["binary", "json"])
def test_wrong_datatype_400(triton: Any, binary: bool) -> None:
    e = _infer_error(triton, "tiny_unet", [_input(_image(8, 8).astype(np.float32), binary, "FP32")])
    assert e.status() == "400" and "FP32" in e.message() and "UINT8" in e.message()


@pytest.mark.parametrize("shape", [[8, 8], [8, 8, 2], [1, 1, 8, 8, 3], [0, 8, 3]])
def test_wrong_shape_400(triton: Any, shape: List[int]) -> None:
    e = _infer_error(triton, "tiny_unet", [_input(np.zeros(shape, np.uint8))])
    assert e.status() == "400" and "shape" in e.message()


def test_bad_requests_400(triton: Any) -> None:
    img = _image(16, 16)
    cases = [
        ({"parameters": {"strength": 1.5}}, "strength"),
        ({"parameters": {"max_side": 100}}, "max_side"),
        ({"parameters": {"strength": "strong"}}, "strength"),
        ({"outputs": [httpclient.InferRequestedOutput("faces")]}, "faces"),
    ]
    for kw, word in cases:
        e = _infer_error(triton, "tiny_unet", [_input(img)], **kw)
        assert e.status() == "400" and word in e.message(), (kw, e.message())
    e = _infer_error(triton, "tiny_face", [_input(img)], parameters={"max_side": 512})
    assert e.status() == "400" and "max_side" in e.message()
    e = _infer_error(triton, "tiny_head", [_input(img)])
    assert e.status() == "400" and "head" in e.message()
    other = httpclient.InferInput("photo", [16, 16, 3], "UINT8")
    other.set_data_from_numpy(img)
    e = _infer_error(triton, "tiny_unet", [other])
    assert e.status() == "400" and "'image'" in e.message()


def test_deadline_504(triton: Any) -> None:
    """Triton's timeout (microseconds) shortens the server's --timeout: 1 us passes before the run."""
    e = _infer_error(triton, "tiny_unet", [_input(_image(64, 64))], timeout=1)
    assert e.status() == "504" and "deadline" in e.message()


def test_not_an_image_400_and_too_large_413(triton: Any) -> None:
    t = httpclient.InferInput("image", [1], "BYTES")
    t.set_data_from_numpy(np.array([b"this is not an image"], dtype=object))
    e = _infer_error(triton, "tiny_unet", [t])
    assert e.status() == "400"
    big = limn.encode_image(np.zeros((3001, 3000, 3), np.uint8), "png")  # over the default --max-pixels
    t = httpclient.InferInput("image", [1], "BYTES")
    t.set_data_from_numpy(np.array([big], dtype=object))
    e = _infer_error(triton, "tiny_unet", [t])
    assert e.status() == "413" and "3001" in e.message()


# ---- the codec with raw posts: never a 500 -------------------------------------------------------


def _binary_request(img: np.ndarray) -> bytes:
    return json.dumps({"inputs": [{"name": "image", "datatype": "UINT8", "shape": list(img.shape),
                                   "parameters": {"binary_data_size": img.nbytes}}]}).encode()


def _json_request(tensor: Optional[Dict[str, Any]] = None, **request: Any) -> bytes:
    """A JSON inference request: one UINT8 [1,1,3] input named image with ``tensor``'s changes
    (a None value drops the key), and ``request``'s top-level members."""
    t = {"name": "image", "datatype": "UINT8", "shape": [1, 1, 3], "data": [1, 2, 3], **(tensor or {})}
    return json.dumps({**request, "inputs": [{k: v for k, v in t.items() if v is not None}]}).encode()


def _framed(header: bytes, rest: bytes = b"") -> Any:
    return header + rest, {"Inference-Header-Content-Length": str(len(header))}


def _codec_cases() -> Dict[str, Any]:
    img = _image(6, 4)
    h, pixels = _binary_request(img), img.tobytes()
    n = str(len(h))
    binary = {"data": None, "parameters": {"binary_data_size": 3}}
    png = {"datatype": "BYTES", "shape": [1], "parameters": {"content_type": "base64"}}
    encoded = {"datatype": "BYTES", "shape": [1], "data": None}
    return {
        "header length not a number": (h + pixels, {"Inference-Header-Content-Length": "abc"}),
        "header length negative": (h + pixels, {"Inference-Header-Content-Length": "-4"}),
        "header length zero": (h + pixels, {"Inference-Header-Content-Length": "0"}),
        "header length superscript two": (h + pixels, {"Inference-Header-Content-Length": b"\xb2"}),
        "header length of 5000 digits": (h + pixels, {"Inference-Header-Content-Length": "9" * 5000}),
        "header length past the body": (h + pixels, {"Inference-Header-Content-Length": "999999"}),
        "header length too short": (h + pixels, {"Inference-Header-Content-Length": str(len(h) - 2)}),
        "header length too long": (h + pixels, {"Inference-Header-Content-Length": str(len(h) + 2)}),
        "truncated body": (h + pixels[:-5], {"Inference-Header-Content-Length": n}),
        "bytes after the tensors": (h + pixels + b"??", {"Inference-Header-Content-Length": n}),
        "binary without header length": (h + pixels, {}),
        "empty body": (b"", {}),
        "not JSON": (b"{inputs: nope", {}),
        "not UTF-8": (b'{"inputs": "\xff\xfe"}', {}),
        "JSON not an object": (b"[1, 2, 3]", {}),
        "nested too deep": (b"[" * 200_000, {}),
        "no inputs": (b'{"inputs": []}', {}),
        "input without name": (_json_request({"name": None}), {}),
        "unknown datatype": (_json_request({"datatype": "RGB"}), {}),
        "shape not a list": (_json_request({"shape": 3}), {}),
        "negative dimension": (_json_request({"shape": [-1, 1, 3]}), {}),
        "huge dimension": (_json_request({"shape": [99999999999, 99999999, 3]}), {}),
        "data count mismatch": (_json_request({"shape": [1, 2, 3]}), {}),
        "data out of range": (_json_request({"data": [1, 2, 256]}), {}),
        "data not integers": (_json_request({"data": [1, 2, 2.5]}), {}),
        "data strings": (_json_request({"data": ["a", "b", "c"]}), {}),
        "data ragged": (_json_request({"data": [[1, 2], [3]]}), {}),
        "data missing": (_json_request({"data": None}), {}),
        "data and binary both": _framed(_json_request({"parameters": {"binary_data_size": 3}}), b"abc"),
        "binary_data_size negative": _framed(_json_request({**binary, "parameters": {"binary_data_size": -1}})),
        "binary_data_size not a number": _framed(_json_request({**binary, "parameters": {"binary_data_size": "3"}}),
                                                 b"abc"),
        "BYTES element length past the end": _framed(
            _json_request({**encoded, "parameters": {"binary_data_size": 6}}), b"\x10\x00\x00\x00ab"),
        "BYTES element cut in its length": _framed(
            _json_request({**encoded, "parameters": {"binary_data_size": 3}}), b"\x10\x00\x00"),
        "BYTES count mismatch": _framed(
            _json_request({**encoded, "shape": [2], "parameters": {"binary_data_size": 6}}), b"\x02\x00\x00\x00ab"),
        "BYTES empty element": (_json_request({**png, "data": [""]}), {}),
        "BYTES not base64": (_json_request({**png, "data": ["@@"]}), {}),
        "BYTES not an image": (_json_request({**png, "data": [base64.b64encode(b"hello").decode()]}), {}),
        "BYTES corrupt PNG": (_json_request({**png, "data": ["iVBORw0KGgoAAAANSUhEUgAA"]}), {}),
        "BYTES not strings": (_json_request({**png, "data": [5]}), {}),
        "parameters not an object": (_json_request(parameters=5), {}),
        "binary_data_output not a flag": (_json_request(parameters={"binary_data_output": "maybe"}), {}),
        "timeout zero": (_json_request(parameters={"timeout": 0}), {}),
        "max_side too large for a float": (_json_request(parameters={"max_side": 10 ** 400}), {}),
        "strength a list": (_json_request(parameters={"strength": [0.5]}), {}),
        "strength not finite": (b'{"parameters": {"strength": NaN}, "inputs": []}'.replace(
            b"[]", b'[{"name": "image", "datatype": "UINT8", "shape": [1, 1, 3], "data": [1, 2, 3]}]'), {}),
        "outputs not a list": (_json_request(outputs=1), {}),
        "classification output": (_json_request(outputs=[{"name": "image", "parameters": {"classification": 3}}]),
                                  {}),
        "shared memory": (_json_request({"data": None, "parameters": {"shared_memory_region": "r"}}), {}),
        "two inputs": (json.dumps({"inputs": [json.loads(_json_request())["inputs"][0]] * 2}).encode(), {}),
        "id not a string": (_json_request(id=5), {}),
        "gzip body corrupt": (b"\x1f\x8b\x08\x00garbage", {"Content-Encoding": "gzip"}),
        "gzip body truncated": (gzip.compress(h + pixels)[:-12],
                                {"Content-Encoding": "gzip", "Inference-Header-Content-Length": n}),
        "unknown Content-Encoding": (h + pixels, {"Content-Encoding": "br", "Inference-Header-Content-Length": n}),
    }


@pytest.mark.parametrize("case", list(_codec_cases()))
def test_malformed_requests_400(raw: Any, case: str) -> None:
    body, headers = _codec_cases()[case]
    r = raw.post("/v2/models/tiny_unet/infer", content=body, headers=headers)
    assert r.status_code == 400, (r.status_code, r.text)
    error = r.json()["error"]
    assert isinstance(error, str) and error


def test_disconnect_mid_upload_keeps_serving(oip_server: Any, triton: Any) -> None:
    """A client that announces a body and leaves halfway: the server answers the next one."""
    img = _image(64, 64)
    h = _binary_request(img)
    with socket.create_connection(("127.0.0.1", oip_server.port)) as s:
        head = f"Content-Length: {len(h) + img.nbytes}\r\nInference-Header-Content-Length: {len(h)}\r\n\r\n"
        s.sendall(b"POST /v2/models/tiny_unet/infer HTTP/1.1\r\nHost: x\r\n" + head.encode() + h + img.tobytes()[:100])
    assert triton.is_server_live()
    assert triton.infer("tiny_unet", [_input(img)], parameters={"head": False}).as_numpy("image").shape == img.shape


def _sample(metrics: str, name: str, **labels: str) -> float:
    """The value of one Prometheus sample (0 when absent)."""
    for line in metrics.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_requests_and_failures_are_counted(raw: Any, triton: Any) -> None:
    before = raw.get("/metrics").text
    triton.infer("tiny_detect", [_input(_image(64, 64))])
    _infer_error(triton, "tiny_unet", [_input(np.zeros((4, 4), np.uint8))])
    after = raw.get("/metrics").text
    ok = dict(model="tiny_detect", operation="infer", status="200")
    bad = dict(model="tiny_unet", operation="infer", status="400")
    assert _sample(after, "limn_requests_total", **ok) == _sample(before, "limn_requests_total", **ok) + 1
    assert _sample(after, "limn_requests_total", **bad) == _sample(before, "limn_requests_total", **bad) + 1
    assert _sample(after, "limn_failures_total", reason="bad_input") == \
        _sample(before, "limn_failures_total", reason="bad_input") + 1


def test_limits_and_api_key_speak_the_protocol(start_server: Any) -> None:
    """On /v2, the API key (401), the upload limit (413, before the body is read) and --max-pixels
    (413) answer in the protocol's error shape, {"error": "message"}; tritonclient sends the key as
    a header."""
    proc = start_server("--api-key", "sekret", "--max-upload", "20000", "--max-pixels", "1000")
    key = {"Authorization": "Bearer sekret"}
    with httpclient.InferenceServerClient(proc.url.split("://", 1)[1]) as c:
        assert c.is_server_live()  # health stays open
        assert c.get_model_metadata("classical-cartoon", headers=key)["name"] == "classical-cartoon"
        img = _image(20, 30)
        assert c.infer("classical-cartoon", [_input(img)], headers=key).as_numpy("image").shape == img.shape
        for call, status, words in [
            (lambda: c.get_model_metadata("classical-cartoon"), 401, "API key"),
            (lambda: c.infer("classical-cartoon", [_input(_image(40, 40))], headers=key), 413, "1000"),
            (lambda: c.infer("classical-cartoon", [_input(_image(100, 100))], headers=key), 413, "20000"),
        ]:
            with pytest.raises(InferenceServerException) as e:
                call()
            assert _status(e) == status and isinstance(e.value.message(), str), e.value.message()
            assert words in e.value.message()
    _check_log(proc)


# ---- admission errors, in-process against a stand-in service --------------------------------------


class _StandIn:
    """What oip.router needs of a Service; run() raises the error it is given."""

    def __init__(self, error: Optional[Exception]) -> None:
        from limn.serve.config import ServeConfig
        from limn.serve.service import LoadedModel

        self.config = ServeConfig()
        self.models = {"toon": LoadedModel("toon", "cartoon", None, "toon.pt")}
        self.ready = True
        self.error = error
        self.calls: List[Any] = []

    def note_request(self, request: Any, model: str, operation: str) -> None:
        self.calls.append(("note", model, operation))

    def fail(self, error: Any) -> Any:
        self.calls.append(("fail", error.status))
        return error

    def timeout_for(self, requested: Optional[float]) -> Optional[float]:
        return requested or 60.0

    def check_array(self, image: np.ndarray) -> None:
        pass

    def decode(self, data: bytes) -> np.ndarray:
        return limn.load_image(data)

    async def run(self, op: str, model: Any, image: np.ndarray, options: Dict[str, Any], **kw: Any) -> Any:
        self.calls.append((op, model.name, image.shape, options, kw.get("timeout")))
        if self.error is not None:
            raise self.error
        return 255 - image


def _post_in_process(stand_in: _StandIn, body: bytes, headers: Optional[Dict[str, str]] = None) -> Any:
    """POSTs to /v2/models/toon/infer of an app holding only oip.router(stand_in), in this process."""
    import asyncio

    from fastapi import FastAPI
    from limn.serve import oip

    app = FastAPI()
    app.include_router(oip.router(stand_in))

    async def post() -> Any:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://oip") as c:
            return await c.post("/v2/models/toon/infer", content=body, headers=headers or {})

    return asyncio.run(post())


@pytest.mark.parametrize("status,code,headers", [
    (429, "queue_full", {"Retry-After": "3"}),
    (503, "draining", {"Retry-After": "5"}),
    (504, "timeout", {}),
])
def test_admission_errors_keep_status_and_retry_after(status: int, code: str, headers: Dict[str, str]) -> None:
    from limn.serve.service import ApiError

    stand_in = _StandIn(ApiError(status, code, f"refused: {code}", headers))
    img = _image(8, 8)
    h = _binary_request(img)
    r = _post_in_process(stand_in, h + img.tobytes(), {"Inference-Header-Content-Length": str(len(h))})
    assert r.status_code == status
    assert r.json() == {"error": f"refused: {code}"}
    for k, v in headers.items():
        assert r.headers[k] == v
    assert ("note", "toon", "infer") in stand_in.calls and ("fail", status) in stand_in.calls


def test_timeout_parameter_is_microseconds() -> None:
    stand_in = _StandIn(None)
    body = {"parameters": {"timeout": 2_500_000, "strength": 0.25},
            "inputs": [{"name": "image", "datatype": "UINT8", "shape": [2, 1, 1, 3], "data": [1, 2, 3, 4, 5, 6]}]}
    r = _post_in_process(stand_in, json.dumps(body).encode())
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0] == {"name": "image", "datatype": "UINT8", "shape": [2, 1, 1, 3],
                                      "data": [254, 253, 252, 251, 250, 249]}
    runs = [c for c in stand_in.calls if c[0] == "cartoonize"]
    assert len(runs) == 2 and runs[0][3] == {"strength": 0.25}
    assert all(0 < c[4] <= 2.5 for c in runs)  # one deadline for the whole batch


def test_encoded_files_are_bounded_in_total() -> None:
    """BYTES files decode to at most max(--max-pixels, --max-upload / 3) pixels per request: 413 past it."""
    stand_in = _StandIn(None)
    stand_in.config.max_pixels, stand_in.config.max_upload = 500, 3000  # 1000 pixels per request
    png = base64.b64encode(limn.encode_image(_image(20, 20), "png")).decode()

    def post(count: int) -> Any:
        body = {"inputs": [{"name": "image", "datatype": "BYTES", "shape": [count], "data": [png] * count,
                            "parameters": {"content_type": "base64"}}]}
        return _post_in_process(stand_in, json.dumps(body).encode())

    r = post(2)
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["shape"] == [2, 20, 20, 3]
    r = post(3)
    assert r.status_code == 413 and "1000 pixels" in r.json()["error"]
