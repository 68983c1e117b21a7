"""The /v1 API, jobs, health, metrics, auth and CORS against the ASGI app in process (httpx):
every route, every status of issue 21 section 4, results equal to the library's direct calls."""

from __future__ import annotations

import asyncio
import json
import logging
import os

import numpy as np
import pytest

import limn


def _err(r) -> dict:
    assert r.headers["content-type"].startswith("application/json"), r.text
    return r.json()["error"]


def _file(data: bytes, name: str = "photo.png", ctype: str = "image/png") -> dict:
    return {"image": (name, data, ctype)}


# ---- Health, models, page ----------------------------------------------------------------------


def test_health_ready_and_models(client, models):
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200 and r.json()["ready"] is True
    body = client.get("/v1/models").json()
    names = [m["name"] for m in body["models"]]
    assert names == ["classical-cartoon", "tiny_unet", "tiny_head", "tiny_face", "tiny_detect"]
    assert body["default"] == {"cartoon": "classical-cartoon", "head": "tiny_head", "restore": "tiny_face",
                               "detect": "tiny_detect"}
    first = body["models"][0]
    assert set(first) == {"name", "kind", "role", "device", "precision", "format", "size_rule", "license", "source"}
    assert first["kind"] == "cartoon" and first["device"] == "cpu"
    # The server loads in precision "auto": what the library takes for that file on this CPU.
    with limn.Model(models["cartoon"], device="cpu") as same:
        assert first["precision"] == same.info.precision
    assert first["license"].startswith("Apache-2.0") and first["size_rule"] == "any"
    by_name = {m["name"]: m for m in body["models"]}
    assert by_name["tiny_face"]["size_rule"] == "fixed 64x64" and by_name["tiny_face"]["kind"] == "face_restore"
    assert by_name["tiny_unet"]["size_rule"] == "multiple of 2"
    assert by_name["tiny_head"]["role"] == "head"
    assert by_name["tiny_detect"]["precision"] == "fp32"  # auto keeps detectors in fp32 on the CPU


def test_page_and_static_files(client):
    static = os.path.join(os.path.dirname(limn.__file__), "serve", "static")
    if not os.path.isfile(os.path.join(static, "index.html")):
        pytest.skip("the web page is not installed yet")
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert b"<html" in r.content.lower()
    name = next(n for n in sorted(os.listdir(static)) if n != "index.html")
    r = client.get(f"/static/{name}")
    with open(os.path.join(static, name), "rb") as f:
        assert r.status_code == 200 and r.content == f.read()
    assert client.get("/static/../config.py").status_code == 404


# ---- Results equal the library's direct call ---------------------------------------------------


def test_cartoonize_multipart_equals_direct_call(client, direct, photo, png):
    img = photo(96, 80, seed=1)
    r = client.post("/v1/cartoonize", files=_file(png(img)), data={"strength": "0.6", "head": "false"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/png"
    assert r.content == png(direct["cartoon"].cartoonize(img, strength=0.6))
    assert r.headers["x-limn-model"] == "classical-cartoon"
    assert float(r.headers["x-limn-seconds"]) > 0 and r.headers["x-request-id"]


def test_cartoonize_raw_body_and_query_fields(client, direct, photo, png, encode):
    img = photo(300, 200, seed=2)
    r = client.post("/v1/cartoonize?max_side=256&format=jpg&quality=80&head=0", content=png(img),
                    headers={"content-type": "image/png"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/jpeg"
    assert r.content == encode(direct["cartoon"].cartoonize(img, max_side=256), "jpeg", 80)
    r = client.post("/v1/cartoonize?format=webp&quality=100&head=no", content=encode(img, "jpeg", 90),
                    headers={"content-type": "image/jpeg"})
    expected = direct["cartoon"].cartoonize(limn.load_image(encode(img, "jpeg", 90)))
    assert r.status_code == 200 and r.content == encode(expected, "webp", 100)


def test_seeds_alias_route_and_fields(client, direct, photo, png, encode):
    img = photo(320, 300, seed=3)
    r = client.post("/api/v1/cartoonize", files=_file(png(img)),
                    data={"resolution": "256", "style_intensity": "0.3", "output_format": "WEBP", "head": "false"})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "image/webp"
    assert r.content == encode(direct["cartoon"].cartoonize(img, max_side=256, strength=0.3), "webp")


def test_second_model_by_name(client, direct, photo, png):
    img = photo(64, 64, seed=4)
    r = client.post("/v1/cartoonize", files=_file(png(img)), data={"model": "tiny_unet", "head": "false"})
    assert r.status_code == 200, r.text
    assert r.headers["x-limn-model"] == "tiny_unet"
    assert r.content == png(direct["unet"].cartoonize(img))


def test_compound_head_stylization(client, direct, photo, png):
    img = photo(160, 128, seed=5)
    with_head = client.post("/v1/cartoonize", files=_file(png(img)))  # a head model loaded: used by default
    assert with_head.status_code == 200, with_head.text
    assert with_head.content == png(direct["cartoon"].cartoonize(img, head_model=direct["head"],
                                                                 detector=direct["detect"]))
    plain = client.post("/v1/cartoonize", files=_file(png(img)), data={"head": "false"})
    assert plain.content == png(direct["cartoon"].cartoonize(img)) != with_head.content


def test_restore_and_detect_faces(client, direct, photo, png):
    img = photo(128, 96, seed=6)
    r = client.post("/v1/restore-faces", files=_file(png(img)), data={"strength": "0.8"})
    assert r.status_code == 200, r.text
    assert r.headers["x-limn-model"] == "tiny_face"
    assert r.content == png(direct["restore"].restore_faces(img, detector=direct["detect"], strength=0.8))
    r = client.post("/v1/detect-faces", content=png(img), headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    body = r.json()
    faces = direct["detect"].detect_faces(img)
    assert body["width"] == 128 and body["height"] == 96 and len(body["faces"]) == len(faces) > 0
    for got, want in zip(body["faces"], faces):
        assert got["box"] == pytest.approx(list(want.box), abs=1e-4)
        assert got["score"] == pytest.approx(want.score, abs=1e-6)
        assert np.allclose(np.array(got["landmarks"]), want.landmarks, atol=1e-4)


def test_rgba_input(client, direct, photo, png):
    img = photo(64, 48, seed=7)
    rgba = np.dstack([img, np.full(img.shape[:2], 200, np.uint8)])
    r = client.post("/v1/cartoonize?head=false", content=png(rgba), headers={"content-type": "image/png"})
    assert r.status_code == 200 and r.content == png(direct["cartoon"].cartoonize(rgba))


# ---- Bad input: 4xx naming what was wrong, never a 5xx ------------------------------------------


@pytest.mark.parametrize("fields, name", [
    ({"strength": "1.5"}, "strength"), ({"strength": "strong"}, "strength"), ({"max_side": "100"}, "max_side"),
    ({"max_side": "5000"}, "max_side"), ({"resolution": "64"}, "resolution"), ({"format": "gif"}, "format"),
    ({"quality": "0"}, "quality"), ({"timeout": "-1"}, "timeout"), ({"head": "perhaps"}, "head"),
    ({"style_intensity": "-0.1"}, "style_intensity"),
])
def test_bad_field_is_422_naming_it(client, photo, png, fields, name):
    r = client.post("/v1/cartoonize", files=_file(png(photo(32, 32))), data=fields)
    assert r.status_code == 422
    err = _err(r)
    assert err["code"] == "invalid_field" and err["message"].startswith(name + ":"), err


def test_missing_image_is_422(client):
    r = client.post("/v1/cartoonize", data={"strength": "0.5"}, files={"other": ("x.txt", b"hi", "text/plain")})
    assert r.status_code == 422 and _err(r)["message"].startswith("image:")


def test_not_an_image(client):
    r = client.post("/v1/cartoonize", files=_file(b"GIF? no, a text file\n" * 10, "notes.txt", "text/plain"))
    assert r.status_code == 415 and "not an image" in _err(r)["message"]
    r = client.post("/v1/cartoonize", content=b'{"image": "x"}', headers={"content-type": "application/json"})
    assert r.status_code == 415 and "application/json" in _err(r)["message"]
    r = client.post("/v1/cartoonize", content=b"", headers={"content-type": "image/png"})
    assert r.status_code == 400 and "empty" in _err(r)["message"]


def test_corrupt_image_is_400(client, photo, png):
    data = png(photo(64, 64))
    r = client.post("/v1/cartoonize", content=data[: len(data) // 3], headers={"content-type": "image/png"})
    assert r.status_code == 400
    assert _err(r)["code"] == "invalid_image" and "corrupt" in _err(r)["message"]


def test_image_over_max_pixels_is_413_naming_the_size(make_app, run, asgi_client, photo, png):
    app = make_app(max_pixels=200 * 200)

    async def go():
        async with asgi_client(app) as c:
            big = await c.post("/v1/cartoonize", content=png(photo(300, 201)), headers={"content-type": "image/png"})
            ok = await c.post("/v1/cartoonize", content=png(photo(200, 200)), headers={"content-type": "image/png"})
            return big, ok
    big, ok = run(go())
    assert big.status_code == 413 and _err(big)["code"] == "image_too_large"
    assert "300x201" in _err(big)["message"] and "40000" in _err(big)["message"]
    assert ok.status_code == 200


def test_body_over_max_upload_is_413(make_app, run, asgi_client, photo, png):
    app = make_app(max_upload=10_000)
    data = png(photo(200, 200))
    assert len(data) > 10_000
    read = []

    async def chunks():
        for i in range(0, len(data), 1000):
            read.append(i)
            yield data[i:i + 1000]

    async def go():
        async with asgi_client(app) as c:
            by_length = await c.post("/v1/cartoonize", content=data, headers={"content-type": "image/png"})
            streamed = await c.post("/v1/cartoonize", content=chunks(), headers={"content-type": "image/png"})
            small = await c.post("/v1/cartoonize", content=png(photo(24, 24)), headers={"content-type": "image/png"})
            return by_length, streamed, small
    by_length, streamed, small = run(go())
    assert by_length.status_code == 413 and "10000 bytes" in _err(by_length)["message"]
    assert streamed.status_code == 413 and _err(streamed)["code"] == "payload_too_large"
    assert len(read) < len(data) // 1000  # refused before the whole body was read
    assert small.status_code == 200


def test_unknown_model_is_404(client, photo, png):
    r = client.post("/v1/cartoonize", files=_file(png(photo(32, 32))), data={"model": "../../etc/passwd"})
    assert r.status_code == 404 and _err(r)["code"] == "model_not_found"
    assert "classical-cartoon" in _err(r)["message"]
    r = client.post("/v1/cartoonize", files=_file(png(photo(32, 32))), data={"model": "tiny_face"})
    assert r.status_code == 404 and "restore model" in _err(r)["message"]
    assert client.get("/v1/nothing").status_code == 404


def test_missing_roles(make_app, run, asgi_client, photo, png):
    app = make_app()

    async def go():
        async with asgi_client(app) as c:
            h = {"content-type": "image/png"}
            data = png(photo(32, 32))
            restore = await c.post("/v1/restore-faces", content=data, headers=h)
            detect = await c.post("/v1/detect-faces", content=data, headers=h)
            head = await c.post("/v1/cartoonize?head=true", content=data, headers=h)
            job = await c.post("/v1/jobs", files=_file(data), data={"op": "cartoonize", "head": "true"})
            return restore, detect, head, job
    restore, detect, head, job = run(go())
    assert restore.status_code == 404 and "no restore model" in _err(restore)["message"]
    assert detect.status_code == 404
    assert head.status_code == 422 and _err(head)["message"].startswith("head:")
    assert job.status_code == 422 and _err(job)["message"].startswith("head:")
    assert app.state.service.busy == 0 and len(app.state.jobs) == 0


def test_file_path_as_body_is_not_read(client, tmp_path):
    path = tmp_path / "secret.png"
    path.write_bytes(limn.encode_image(np.zeros((8, 8, 3), np.uint8), "png"))
    r = client.post("/v1/cartoonize", content=str(path).encode(), headers={"content-type": "image/png"})
    assert r.status_code == 415  # the bytes are the image, never a path


# ---- Admission: 429, 504, cancel ------------------------------------------------------------------


def test_queue_full_is_429_with_retry_after(make_app, run, asgi_client, photo, png):
    app = make_app(queue=1, concurrency=1)
    data = png(photo(512, 512, seed=8))

    async def go():
        async with asgi_client(app) as c:
            tasks = [c.post("/v1/cartoonize", content=data, headers={"content-type": "image/png"}) for _ in range(5)]
            return await asyncio.gather(*tasks)
    answers = run(go())
    codes = sorted(r.status_code for r in answers)
    assert codes == [200, 200, 429, 429, 429], codes
    for r in answers:
        if r.status_code == 429:
            assert int(r.headers["retry-after"]) >= 1 and _err(r)["code"] == "queue_full"
    metrics = app.state.service.metrics.render().decode()
    assert 'limn_failures_total{reason="rejected"} 3.0' in metrics

    # While the queue is full, a request is refused before its body is read: bytes that are no
    # image get the 429 too (read, they would get a 415), as a raw body and as a form.
    async def early():
        async with asgi_client(app) as c:
            h = {"content-type": "image/png"}
            busy = [asyncio.ensure_future(c.post("/v1/cartoonize", content=data, headers=h)) for _ in range(2)]
            while not app.state.service.busy >= 2:
                await asyncio.sleep(0.01)
            raw = await c.post("/v1/cartoonize", content=b"not an image", headers=h)
            form = await c.post("/v1/cartoonize", files=_file(b"not an image"))
            await asyncio.gather(*busy)
            later = await c.post("/v1/cartoonize", content=b"not an image", headers=h)
            return raw, form, later
    raw, form, later = run(early())
    assert raw.status_code == 429 and form.status_code == 429 and _err(raw)["code"] == "queue_full"
    assert later.status_code == 415


def test_deadline_is_504_and_cancels(make_app, run, asgi_client, photo, png):
    app = make_app(concurrency=1, timeout=30)
    slow = png(photo(1024, 1024, seed=9))
    quick = png(photo(64, 64, seed=9))

    async def go():
        async with asgi_client(app) as c:
            h = {"content-type": "image/png"}
            running = asyncio.ensure_future(c.post("/v1/cartoonize?timeout=0.2", content=slow, headers=h))
            for _ in range(200):
                if app.state.service.busy:
                    break
                await asyncio.sleep(0.01)
            queued = await c.post("/v1/cartoonize?timeout=0.1", content=quick, headers=h)  # deadline in the queue
            running = await running
            # The 504 comes at the deadline; the library stops at its next step and frees the slot.
            for _ in range(500):
                if not app.state.service.busy:
                    break
                await asyncio.sleep(0.02)
            return running, queued
    running, queued = run(go())
    assert running.status_code == 504 and _err(running)["code"] == "timeout"
    assert queued.status_code == 504 and "in the queue" in _err(queued)["message"]
    metrics = app.state.service.metrics.render().decode()
    assert 'limn_failures_total{reason="timeout"} 2.0' in metrics
    assert app.state.service.busy == 0
    assert 'limn_inflight_requests{model="classical-cartoon"} 0.0' in metrics


def test_client_gone_cancels_queued_and_running_work(make_app, photo):
    """A request whose client disconnects: cancelled in the queue and while running."""
    app = make_app(concurrency=1)
    service = app.state.service
    img = photo(1024, 1024, seed=10)
    model = service.find(None, "cartoon")

    async def go():
        gone = {"a": False, "b": False}
        a = asyncio.ensure_future(service.run("cartoonize", model, img, {}, is_disconnected=lambda: gone["a"]))
        await asyncio.sleep(0.05)
        b = asyncio.ensure_future(service.run("cartoonize", model, img, {}, is_disconnected=lambda: gone["b"]))
        await asyncio.sleep(0.05)
        gone["b"] = True
        gone["a"] = True
        return await asyncio.gather(a, b, return_exceptions=True)

    a, b = asyncio.run(asyncio.wait_for(go(), 30))
    from limn.serve import ApiError

    assert isinstance(b, ApiError) and b.code == "cancelled" and "in the queue" in b.message
    assert isinstance(a, ApiError) and b.code == "cancelled", a
    assert service.busy == 0
    assert 'limn_failures_total{reason="cancelled"} 2.0' in service.metrics.render().decode()


# ---- Jobs --------------------------------------------------------------------------------------


async def _wait_job(c, job_id, states=("done", "failed", "cancelled", "timed_out"), limit=30.0):
    end = asyncio.get_running_loop().time() + limit
    while asyncio.get_running_loop().time() < end:
        job = (await c.get(f"/v1/jobs/{job_id}")).json()
        if job["state"] in states:
            return job
        await asyncio.sleep(0.02)
    raise AssertionError(f"job {job_id} still {job['state']}")


def test_job_lifecycle_and_result(full_app, run, asgi_client, direct, photo, png, encode):
    img = photo(200, 160, seed=11)

    async def go():
        async with asgi_client(full_app) as c:
            r = await c.post("/v1/jobs", files=_file(png(img)),
                             data={"op": "cartoonize", "strength": "0.5", "format": "jpg", "quality": "70",
                                   "head": "false"})
            assert r.status_code == 202, r.text
            job = r.json()
            assert r.headers["location"] == f"/v1/jobs/{job['id']}"
            assert set(job) == {"id", "op", "model", "state", "queue_position", "progress", "error", "result_url",
                                "content_type", "created", "seconds"}
            done = await _wait_job(c, job["id"])
            result = await c.get(done["result_url"])
            faces = await c.post("/v1/jobs", files=_file(png(img)), data={"op": "detect-faces"})
            fdone = await _wait_job(c, faces.json()["id"])
            fresult = await c.get(fdone["result_url"])
            restore = await c.post("/v1/jobs", files=_file(png(img)), data={"op": "restore-faces"})
            rdone = await _wait_job(c, restore.json()["id"])
            rresult = await c.get(rdone["result_url"])
            return job, done, result, fdone, fresult, rresult
    job, done, result, fdone, fresult, rresult = run(go())
    assert job["op"] == "cartoonize" and job["model"] == "classical-cartoon" and job["state"] in ("queued", "running")
    assert done["state"] == "done" and done["error"] is None and done["content_type"] == "image/jpeg"
    assert done["progress"]["done"] == done["progress"]["total"] >= 1 and done["seconds"] > 0
    assert result.status_code == 200 and result.headers["content-type"] == "image/jpeg"
    assert result.content == encode(direct["cartoon"].cartoonize(img, strength=0.5), "jpeg", 70)
    assert fdone["op"] == "detect-faces" and fresult.headers["content-type"] == "application/json"
    assert len(fresult.json()["faces"]) == len(direct["detect"].detect_faces(img))
    assert rresult.content == png(direct["restore"].restore_faces(img, detector=direct["detect"]))


def test_job_queue_position_progress_and_cancel(make_app, run, asgi_client, photo, png):
    app = make_app(concurrency=1, queue=4)
    slow = png(photo(1024, 1024, seed=12))

    async def go():
        async with asgi_client(app) as c:
            ids = []
            for _ in range(3):
                r = await c.post("/v1/jobs", files=_file(slow), data={"op": "cartoonize"})
                assert r.status_code == 202, r.text
                ids.append(r.json()["id"])
            first, second, third = [(await c.get(f"/v1/jobs/{i}")).json() for i in ids]
            early = await c.get(f"/v1/jobs/{ids[2]}/result")
            deleted_queued = (await c.delete(f"/v1/jobs/{ids[2]}")).json()
            deleted_running = (await c.delete(f"/v1/jobs/{ids[0]}")).json()
            second_done = await _wait_job(c, ids[1])
            gone = await c.get(f"/v1/jobs/{ids[1]}/result")
            removed = await c.delete(f"/v1/jobs/{ids[1]}")
            after = await c.get(f"/v1/jobs/{ids[1]}")
            return first, second, third, early, deleted_queued, deleted_running, second_done, gone, removed, after
    first, second, third, early, dq, dr, second_done, result, removed, after = run(go())
    assert first["state"] == "running" and first["queue_position"] is None
    assert second["state"] == "queued" and second["queue_position"] == 0
    assert third["state"] == "queued" and third["queue_position"] == 1
    assert early.status_code == 409 and _err(early)["code"] == "not_done"
    assert dq["state"] == "cancelled" and dq["error"]["code"] == "cancelled"
    assert dr["state"] == "cancelled", dr  # cancelled through the library's progress callback
    assert second_done["state"] == "done" and result.status_code == 200
    assert removed.status_code == 200 and after.status_code == 404


def test_job_timeout_and_bad_input(make_app, run, asgi_client, photo, png):
    app = make_app(concurrency=1)

    async def go():
        async with asgi_client(app) as c:
            slow = await c.post("/v1/jobs", files=_file(png(photo(1024, 1024, seed=13))),
                                data={"op": "cartoonize", "timeout": "0.1"})
            timed = await _wait_job(c, slow.json()["id"])
            result = await c.get(f"/v1/jobs/{timed['id']}/result")
            bad_op = await c.post("/v1/jobs", files=_file(png(photo(32, 32))), data={"op": "paint"})
            bad_img = await c.post("/v1/jobs", files=_file(b"not an image"), data={"op": "cartoonize"})
            unknown = await c.get("/v1/jobs/nope")
            return timed, result, bad_op, bad_img, unknown
    timed, result, bad_op, bad_img, unknown = run(go())
    assert timed["state"] == "timed_out" and timed["error"]["code"] == "timeout"
    assert result.status_code == 409 and _err(result)["code"] == "job_timed_out"
    assert bad_op.status_code == 422 and _err(bad_op)["message"].startswith("op:")
    assert bad_img.status_code == 415
    assert unknown.status_code == 404 and _err(unknown)["code"] == "job_not_found"


def test_job_store_is_bounded(make_app, run, asgi_client, direct, photo, png):
    app = make_app(job_max=2, job_ttl=0.5)

    async def go():
        async with asgi_client(app) as c:
            ids = []
            for seed in range(3):
                r = await c.post("/v1/jobs", files=_file(png(photo(48, 48, seed=seed))), data={"op": "cartoonize"})
                ids.append(r.json()["id"])
                await _wait_job(c, ids[-1])
            evicted = await c.get(f"/v1/jobs/{ids[0]}")
            kept = await c.get(f"/v1/jobs/{ids[2]}")
            await asyncio.sleep(0.6)
            expired = await c.get(f"/v1/jobs/{ids[2]}")
            return evicted, kept, expired
    evicted, kept, expired = run(go())
    assert evicted.status_code == 404 and kept.status_code == 200 and expired.status_code == 404
    assert len(app.state.jobs) == 0

    img = photo(64, 64, seed=5)
    size = len(png(direct["cartoon"].cartoonize(img)))
    app = make_app(job_max_bytes=int(2.5 * size))
    data = [png(img)] * 4

    async def fill():
        async with asgi_client(app) as c:
            ids = []
            for d in data:
                r = await c.post("/v1/jobs", files=_file(d), data={"op": "cartoonize"})
                ids.append(r.json()["id"])
                await _wait_job(c, ids[-1])
            return [(await c.get(f"/v1/jobs/{i}")).status_code for i in ids]
    codes = run(fill())
    assert codes == [404, 404, 200, 200]
    assert app.state.jobs.bytes == 2 * size

    # A result larger than the whole store is refused without evicting the results already kept.
    app = make_app(job_max_bytes=int(1.5 * size))

    async def too_big():
        async with asgi_client(app) as c:
            small = (await c.post("/v1/jobs", files=_file(png(img)), data={"op": "cartoonize"})).json()["id"]
            await _wait_job(c, small)
            big = (await c.post("/v1/jobs", files=_file(png(photo(256, 256, seed=6))),
                                data={"op": "cartoonize"})).json()["id"]
            await _wait_job(c, big)
            return (await c.get(f"/v1/jobs/{big}")).json(), (await c.get(f"/v1/jobs/{small}/result")).status_code
    big_job, small_result = run(too_big())
    assert big_job["state"] == "failed" and big_job["error"]["code"] == "result_too_large"
    assert small_result == 200


# ---- Auth, CORS, request ids, logs, metrics ---------------------------------------------------------


def test_api_key(make_app, run, asgi_client, photo, png):
    app = make_app(api_key="s3cret")
    data = png(photo(32, 32))

    async def go():
        async with asgi_client(app) as c:
            h = {"content-type": "image/png"}
            return {
                "none": await c.post("/v1/cartoonize", content=data, headers=h),
                "wrong": await c.post("/v1/cartoonize", content=data, headers={**h, "authorization": "Bearer nope"}),
                "basic": await c.get("/v1/models", headers={"authorization": "Basic s3cret"}),
                "right": await c.post("/v1/cartoonize", content=data, headers={**h, "authorization": "Bearer s3cret"}),
                "alias": await c.post("/api/v1/cartoonize", content=data, headers=h),
                "models": await c.get("/v1/models"),
                "health": await c.get("/healthz"),
                "ready": await c.get("/readyz"),
                "metrics": await c.get("/metrics"),
                "openapi": await c.get("/openapi.json"),
            }
    r = run(go())
    for key in ("none", "wrong", "basic", "alias", "models", "openapi"):
        assert r[key].status_code == 401, key
        assert _err(r[key])["code"] == "unauthorized" and r[key].headers["www-authenticate"] == "Bearer"
    assert r["right"].status_code == 200
    assert all(r[k].status_code == 200 for k in ("health", "ready", "metrics"))

    locked = make_app(api_key="s3cret", auth_health=True)

    async def health():
        async with asgi_client(locked) as c:
            return [(await c.get(p)).status_code for p in ("/healthz", "/readyz", "/metrics")] + \
                   [(await c.get("/healthz", headers={"authorization": "Bearer s3cret"})).status_code]
    assert run(health()) == [401, 401, 401, 200]


def test_cors_only_with_origins(make_app, run, asgi_client):
    plain = make_app()
    cors = make_app(cors_origins=["https://photos.example"])

    async def go(app):
        async with asgi_client(app) as c:
            simple = await c.get("/v1/models", headers={"origin": "https://photos.example"})
            pre = await c.options("/v1/cartoonize", headers={"origin": "https://photos.example",
                                                              "access-control-request-method": "POST",
                                                              "access-control-request-headers": "authorization"})
            other = await c.get("/v1/models", headers={"origin": "https://evil.example"})
            return simple, pre, other
    simple, pre, other = run(go(plain))
    assert "access-control-allow-origin" not in simple.headers and "access-control-allow-origin" not in pre.headers
    simple, pre, other = run(go(cors))
    assert simple.headers["access-control-allow-origin"] == "https://photos.example"
    assert pre.status_code == 200 and "POST" in pre.headers["access-control-allow-methods"]
    assert "access-control-allow-origin" not in other.headers


def test_request_id_access_log_and_500_with_the_id(make_app, run, asgi_client, tmp_path, caplog):
    log_path = tmp_path / "access.jsonl"
    app = make_app(access_log=str(log_path))
    service = app.state.service

    def broken(model):  # a bug in the service
        raise RuntimeError("describe is broken")

    async def go():
        async with asgi_client(app) as c:
            given = await c.get("/healthz", headers={"x-request-id": "abc-123"})
            bad_id = await c.get("/healthz", headers={"x-request-id": "no spaces\nplease"})
            service.describe = broken
            boom = await c.get("/v1/models")
            return given, bad_id, boom
    with caplog.at_level(logging.ERROR, logger="limn.serve"):
        given, bad_id, boom = run(go())
    assert given.headers["x-request-id"] == "abc-123"
    assert bad_id.headers["x-request-id"] != "no spaces\nplease" and len(bad_id.headers["x-request-id"]) == 16
    rid = boom.headers["x-request-id"]
    assert boom.status_code == 500 and _err(boom)["code"] == "internal" and rid in _err(boom)["message"]
    assert any(rid in rec.getMessage() and rec.exc_info for rec in caplog.records)
    lines = [json.loads(line) for line in log_path.read_text().splitlines()]
    assert [line["request_id"] for line in lines] == ["abc-123", bad_id.headers["x-request-id"], rid]
    assert lines[2]["status"] == 500 and lines[2]["path"] == "/v1/models" and lines[0]["method"] == "GET"
    assert 'limn_failures_total{reason="internal"} 1.0' in service.metrics.render().decode()


def test_metrics(client, photo, png):
    data = png(photo(100, 100, seed=14))
    assert client.post("/v1/cartoonize", content=data, headers={"content-type": "image/png"}).status_code == 200
    client.post("/v1/cartoonize", content=b"junk", headers={"content-type": "image/png"})
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    text = r.text
    for needle in [
        'limn_requests_total{model="classical-cartoon",operation="cartoonize",status="200"}',
        'limn_requests_total{model="",operation="cartoonize",status="415"}',
        'limn_failures_total{reason="bad_input"}',
        'limn_queue_wait_seconds_bucket{le="0.005",model="classical-cartoon",operation="cartoonize"}',
        'limn_compute_seconds_count{model="classical-cartoon",operation="cartoonize"}',
        'limn_request_duration_seconds_sum{model="classical-cartoon",operation="cartoonize"}',
        'limn_pending_requests{model="classical-cartoon"} 0.0',
        'limn_inflight_requests{model="classical-cartoon"} 0.0',
        'limn_images_total{model="classical-cartoon",operation="cartoonize"}',
        'limn_megapixels_total{model="classical-cartoon",operation="cartoonize"}',
        'limn_memory_allocated_bytes{device="cpu"}', 'limn_memory_reserved_bytes{device="cpu"}',
        'limn_memory_device_total_bytes{device="cpu"}',
    ]:
        assert needle in text, needle
    mp = [line for line in text.splitlines() if line.startswith('limn_megapixels_total{model="classical-cartoon"')]
    assert float(mp[0].split()[-1]) >= 0.01


def test_config_errors(models):
    from limn.serve import ServeConfig, Service

    for bad, word in [(dict(concurrency=0), "concurrency"), (dict(queue=-1), "queue"),
                      (dict(heads=[models["head"]]), "--detector"), (dict(api_key=" "), "api-key")]:
        with pytest.raises(ValueError, match=word):
            Service(ServeConfig(device="cpu", **bad))
    with pytest.raises(ValueError, match="head model"):
        Service(ServeConfig(models=[models["head"]], device="cpu"))
    with pytest.raises(limn.Error):
        Service(ServeConfig(models=[models["restore"]], device="cpu"))
    with pytest.raises(ValueError, match="two models"):
        Service(ServeConfig(models=[models["cartoon"], models["cartoon"]], device="cpu"))

