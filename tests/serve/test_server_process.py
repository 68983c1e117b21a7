"""`limn serve` as a real process on 127.0.0.1: the command, its routes and statuses over TCP, the
upload limit before the body is read, clients killed mid-upload and mid-download, start-up failures."""

from __future__ import annotations

import json
import socket
import time

import httpx

TIMEOUT = httpx.Timeout(30.0)


def _metric(text: str, prefix: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(prefix))


def _connect(url: str) -> socket.socket:
    host, port = url.split("//")[1].split(":")
    s = socket.create_connection((host, int(port)), timeout=10)
    return s


def _read_response(s: socket.socket, limit: float = 10.0) -> bytes:
    """Reads until the headers and the whole Content-Length body are in, or the peer closes."""
    s.settimeout(limit)
    data = b""
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        data += chunk
        head, sep, body = data.partition(b"\r\n\r\n")
        if sep:
            length = [int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")]
            if length and len(body) >= length[0]:
                break
    return data


def test_default_server_builtin_model_api_key_and_access_log(start_server, direct, photo, png, tmp_path):
    log = tmp_path / "access.jsonl"
    srv = start_server("--access-log", str(log), models=False, env={"LIMN_API_KEY": "k3y"})
    img = photo(120, 90, seed=20)
    auth = {"authorization": "Bearer k3y"}
    with httpx.Client(base_url=srv.url, timeout=TIMEOUT) as c:
        models = c.get("/v1/models", headers=auth).json()
        assert [m["name"] for m in models["models"]] == ["classical-cartoon"]
        assert c.get("/v1/models").status_code == 401
        assert c.get("/healthz").status_code == 200
        r = c.post("/v1/cartoonize", files={"image": ("p.png", png(img), "image/png")}, headers=auth)
        assert r.status_code == 200 and r.content == png(direct["cartoon"].cartoonize(img))
        rid = r.headers["x-request-id"]
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert any(x["request_id"] == rid and x["status"] == 200 and x["path"] == "/v1/cartoonize" for x in lines)
    assert srv.stop() == 0
    assert "loaded cartoon model 'classical-cartoon'" in srv.output()


def test_routes_and_statuses_over_tcp(server, direct, photo, png, encode):
    img = photo(128, 128, seed=21)
    h = {"content-type": "image/png"}
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        assert c.get("/healthz").status_code == 200 and c.get("/readyz").json()["ready"] is True
        assert len(c.get("/v1/models").json()["models"]) == 5
        r = c.post("/v1/cartoonize?head=false&format=webp&quality=90", content=png(img), headers=h)
        assert r.status_code == 200 and r.content == encode(direct["cartoon"].cartoonize(img), "webp", 90)
        r = c.post("/api/v1/cartoonize", files={"image": ("p.png", png(img), "image/png")},
                   data={"style_intensity": "0.5", "output_format": "png", "model": "tiny_unet", "head": "false"})
        assert r.status_code == 200 and r.content == png(direct["unet"].cartoonize(img, strength=0.5))
        r = c.post("/v1/cartoonize", content=png(img), headers=h)  # with the head model, by default
        assert r.content == png(direct["cartoon"].cartoonize(img, head_model=direct["head"], detector=direct["detect"]))
        r = c.post("/v1/restore-faces", content=png(img), headers=h)
        assert r.content == png(direct["restore"].restore_faces(img, detector=direct["detect"]))
        r = c.post("/v1/detect-faces", content=png(img), headers=h)
        assert len(r.json()["faces"]) == len(direct["detect"].detect_faces(img))
        job = c.post("/v1/jobs", files={"image": ("p.png", png(img), "image/png")}, data={"op": "restore-faces"})
        assert job.status_code == 202
        for _ in range(300):
            state = c.get(f"/v1/jobs/{job.json()['id']}").json()
            if state["state"] == "done":
                break
            time.sleep(0.02)
        assert c.get(state["result_url"]).content == png(direct["restore"].restore_faces(img, detector=direct["detect"]))
        statuses = {
            415: c.post("/v1/cartoonize", content=b"plain text", headers={"content-type": "text/plain"}),
            400: c.post("/v1/cartoonize", content=png(img)[:300], headers=h),
            422: c.post("/v1/cartoonize?strength=9", content=png(img), headers=h),
            404: c.post("/v1/cartoonize?model=nope", content=png(img), headers=h),
            413: c.post("/v1/cartoonize", content=b"\0" * (4 * 1024 * 1024 + 1), headers=h),
            504: c.post("/v1/cartoonize?head=false&timeout=0.05", content=png(photo(768, 768, seed=24)), headers=h),
        }
        for code, r in statuses.items():
            assert r.status_code == code and "message" in r.json()["error"], (code, r.text)
        text = c.get("/metrics").text
        assert _metric(text, 'limn_requests_total{model="classical-cartoon",operation="cartoonize",status="200"}') >= 2
        assert _metric(text, 'limn_failures_total{reason="bad_input"}') >= 4


def test_upload_limit_before_the_body_is_read(server):
    # A Content-Length over the limit: 413 at once, the body never sent.
    s = _connect(server.url)
    s.sendall(b"POST /v1/cartoonize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
              b"Content-Length: 104857600\r\n\r\n")
    r = _read_response(s)
    s.close()
    assert r.startswith(b"HTTP/1.1 413") and b"payload_too_large" in r
    # A chunked body (no length): 413 once 4 MiB have arrived, before the body ends.
    s = _connect(server.url)
    s.sendall(b"POST /v1/cartoonize HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"\x89PNG" + b"\0" * 65532
    sent = 0
    try:
        for _ in range(80):  # at most 5 MiB; never the terminating chunk
            s.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        pass
    r = _read_response(s)
    s.close()
    assert r.startswith(b"HTTP/1.1 413"), r[:200]
    assert httpx.get(server.url + "/healthz").status_code == 200


def test_clients_killed_mid_upload_mid_run_and_mid_download(server, direct, photo, png):
    big = png(photo(1024, 1024, seed=22))
    request = (b"POST /v1/cartoonize?head=false HTTP/1.1\r\nHost: x\r\nContent-Type: image/png\r\n"
               b"Content-Length: %d\r\n\r\n" % len(big))
    before = httpx.get(server.url + "/metrics").text
    # Mid-upload: half the body, then a reset; as a raw body and as a multipart form.
    boundary = b"limn-test-boundary"
    form = (b"--" + boundary + b'\r\nContent-Disposition: form-data; name="image"; filename="a.png"\r\n'
            b"Content-Type: image/png\r\n\r\n" + big + b"\r\n--" + boundary + b"--\r\n")
    multipart = (b"POST /v1/cartoonize HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=" +
                 boundary + b"\r\nContent-Length: %d\r\n\r\n" % len(form))
    for head, body in [(request, big)] * 3 + [(multipart, form)] * 2:
        s = _connect(server.url)
        s.sendall(head + body[: len(body) // 2])
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    # Mid-run: the whole request, then gone while the library works (cancelled through it).
    for _ in range(2):
        s = _connect(server.url)
        s.sendall(request + big)
        time.sleep(0.3)
        s.close()
    # Mid-download: read a little of the answer, then a reset.
    for _ in range(3):
        s = _connect(server.url)
        s.sendall(request + big)
        s.settimeout(30)
        assert s.recv(1024).startswith(b"HTTP/1.1 200")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
    # The server keeps serving, right answers, nothing left queued or running.
    img = photo(96, 96, seed=23)
    with httpx.Client(base_url=server.url, timeout=TIMEOUT) as c:
        for _ in range(3):
            r = c.post("/v1/cartoonize?head=false", content=png(img), headers={"content-type": "image/png"})
            assert r.status_code == 200 and r.content == png(direct["cartoon"].cartoonize(img))
        text = ""
        for _ in range(100):
            text = c.get("/metrics").text
            if _metric(text, "limn_inflight_requests") == 0 and _metric(text, "limn_pending_requests") == 0:
                break
            time.sleep(0.05)
    assert _metric(text, "limn_inflight_requests") == 0 and _metric(text, "limn_pending_requests") == 0
    cancelled = _metric(text, 'limn_failures_total{reason="cancelled"}') - \
        _metric(before, 'limn_failures_total{reason="cancelled"}')
    assert cancelled >= 1
    # A client that leaves is never the server's failure: no 500, nothing counted as internal.
    internal = _metric(text, 'limn_failures_total{reason="internal"}') - \
        _metric(before, 'limn_failures_total{reason="internal"}')
    assert internal == 0
    assert 'status="500"' not in text
    assert server.proc.poll() is None


def test_startup_failures(start_server, tmp_path, capsys):
    bad = tmp_path / "broken.pt"
    bad.write_bytes(b"not a model at all")
    proc = start_server.process("--model", str(bad), models_too=False)
    assert proc.proc.wait(60) == 1
    assert "cannot load the models" in proc.output() and "broken" in proc.output()
    from limn.serve import cli

    assert cli.main(["--queue", "-2"]) == 2
    assert "--queue must be >= 0" in capsys.readouterr().err
    assert cli.main(["--head", "x.pt"]) == 2
    assert "--head needs --detector" in capsys.readouterr().err
    help_text = cli.build_parser().format_help()
    assert all(opt in help_text for opt in ("--max-upload", "--grace", "--api-key", "--cors-origin", "--access-log"))
