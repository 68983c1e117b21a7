"""RetinaFace MobileNet-0.25 (limn_models.retinaface): the published weights load strictly, the
exported face_detect file equals the eager graph, and the detector finds the faces in
scikit-image's sample photos.

Run: cd /work/main && python3 -m pytest -q tests/python/test_retinaface.py
"""
import json
import os
import subprocess
import sys
from typing import List

import numpy as np
import pytest
import torch

from limn_models import detect_cases, export, retinaface
from limn_models.detect_cases import resize
from limn_models.metadata import LimnModule, Metadata, read_metadata

skimage_data = pytest.importorskip("skimage.data")

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHTS = retinaface.DEFAULT_WEIGHTS

# Faces located by eye on the sample photos (x1, y1, x2, y2), in pixels.
ASTRONAUT_FACE = (179.0, 55.0, 270.0, 178.0)  # hairline to chin, ear to ear
CAMERA_FACE = (194.0, 113.0, 260.0, 200.0)  # the cameraman, three-quarter view


@pytest.fixture(scope="module")
def weights() -> str:
    if not os.path.isfile(WEIGHTS):
        pytest.skip(f"RetinaFace weights not found at {WEIGHTS} (see ../shared/data/README.md)")
    return WEIGHTS


@pytest.fixture(scope="module")
def detector(weights):
    return retinaface.face_detector(weights)


@pytest.fixture(scope="module")
def exported(weights, tmp_path_factory):
    path = str(tmp_path_factory.mktemp("retinaface") / "retinaface.pt")
    assert export.main(["face-detect", "--weights", weights, "-o", path]) == 0
    return path


@pytest.fixture(scope="module")
def astronaut():
    return skimage_data.astronaut()


@pytest.fixture(scope="module")
def astronaut_face(detector, astronaut):
    faces = retinaface.detect(detector, astronaut)
    assert len(faces) == 1
    return faces[0]


def iou(a, b) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def priors_count(h: int, w: int) -> int:
    return sum(-(-h // s) * -(-w // s) * len(m) for s, m in zip(retinaface.STEPS, retinaface.MIN_SIZES))


# --------------------------------------------------------------------------
# Weights and export
# --------------------------------------------------------------------------


def test_published_weights_load_strictly(weights, tmp_path):
    net = retinaface.load_weights(weights)
    assert retinaface.state_numel(net) == retinaface.STATE_NUMEL == 433_343
    assert sum(p.numel() for p in net.parameters()) == retinaface.PARAMETERS
    state = torch.load(weights, map_location="cpu", weights_only=True)
    assert set(state) == set(net.state_dict())
    # the same weights saved from nn.DataParallel carry a "module." prefix
    prefixed = str(tmp_path / "prefixed.pth")
    torch.save({"module." + k: v for k, v in state.items()}, prefixed)
    again = retinaface.load_weights(prefixed)
    for k, v in again.state_dict().items():
        assert torch.equal(v, net.state_dict()[k]), k


def test_folded_batchnorm_matches_the_original_layers(weights, astronaut):
    plain = retinaface.face_detector(weights, fold=False)
    folded = retinaface.face_detector(weights)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    x = torch.from_numpy(astronaut).permute(2, 0, 1)[None].float() / 255.0
    with torch.no_grad():
        a, b = plain(x), folded(x)
    assert (a[..., 4] - b[..., 4]).abs().max().item() <= 1e-5  # scores
    assert (a - b).abs().max().item() <= 1e-2  # pixels


def test_export_equals_eager_and_metadata_round_trips(detector, exported):
    loaded = torch.jit.load(exported)
    for n, h, w in [(1, 301, 257), (2, 37, 45), (1, 1, 1)]:
        x = torch.rand(n, 3, h, w, generator=torch.Generator().manual_seed(h * w))
        with torch.no_grad():
            a, b = loaded(x), detector(x)
        assert a.dtype == torch.float32 and a.shape == (n, priors_count(h, w), 15)
        assert (a - b).abs().max().item() <= 1e-5, (h, w)
        assert ((a[..., 4] >= 0) & (a[..., 4] <= 1)).all()
    meta = read_metadata(exported)
    assert meta == Metadata(
        kind="face_detect", name="retinaface-mobilenet0.25", size_multiple=1,
        source=retinaface.SOURCE, license="MIT",
        prior_min_sizes=[[10, 20], [32, 64], [128, 256]], prior_steps=[8, 16, 32],
        prior_variances=[0.1, 0.2], prior_clip=False, input_mean_bgr=[104.0, 117.0, 123.0])
    assert "Face-Detector-1MB-with-landmark" in meta.source
    assert loaded.limn_selftest_input.shape == (1, 3, 40, 41)
    assert loaded.limn_selftest_output.shape == (1, priors_count(40, 41), 15)


def test_exported_file_runs_in_half_precision(exported):
    """Unfolded, the first BatchNorm's variance (89,549) overflows fp16; folded, the self-test
    pair stays within the library's fp16 tolerance (max 0.25, mean 0.02)."""
    loaded = torch.jit.load(exported)
    x, y = loaded.limn_selftest_input, loaded.limn_selftest_output
    with torch.no_grad():
        z = loaded.to(torch.float16)(x.half())
    assert z.dtype == torch.float32  # decoding in float32 whatever the network's precision
    err = (z - y).abs()
    assert err.max().item() <= 0.25 and err.mean().item() <= 0.02


def test_metadata_detector_fields():
    meta = Metadata(kind="face_detect", name="d", prior_min_sizes=[[8], [16, 32]],
                    prior_steps=[8, 16], prior_variances=[0.1, 0.2], input_mean_bgr=[1, 2, 3])
    meta.validate()
    with pytest.raises(ValueError, match="one entry per level"):
        Metadata(kind="face_detect", name="d", prior_min_sizes=[[8]], prior_steps=[8, 16],
                 prior_variances=[0.1, 0.2]).validate()
    with pytest.raises(ValueError, match="prior_variances"):
        Metadata(kind="face_detect", name="d", prior_min_sizes=[[8]], prior_steps=[8]).validate()
    with pytest.raises(ValueError, match="sizes > 0"):
        Metadata(kind="face_detect", name="d", prior_min_sizes=[[]], prior_steps=[8],
                 prior_variances=[0.1, 0.2]).validate()
    with pytest.raises(ValueError, match="input_mean_bgr"):
        Metadata(kind="face_detect", name="d", input_mean_bgr=[1.0]).validate()
    with pytest.raises(ValueError, match="face_detect models only"):
        Metadata(kind="cartoon", name="c", prior_steps=[8]).validate()
    Metadata(kind="face_detect", name="no-priors").validate()  # the fields are optional


def test_files_without_detector_fields_still_read(tmp_path):
    """A file written before the detector fields existed: read_metadata gives the defaults."""

    class OldModule(torch.nn.Module):
        limn_format_version: int
        limn_kind: str
        limn_name: str
        limn_size_multiple: int
        limn_fixed_height: int
        limn_fixed_width: int
        limn_tile_margin: int
        limn_face_template: List[float]
        limn_source: str
        limn_license: str

        def __init__(self):
            super().__init__()
            self.limn_format_version, self.limn_kind, self.limn_name = 1, "cartoon", "old"
            self.limn_size_multiple, self.limn_fixed_height, self.limn_fixed_width = 1, 0, 0
            self.limn_tile_margin, self.limn_face_template = 0, [0.5]
            self.limn_source, self.limn_license = "s", "l"

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x

    path = str(tmp_path / "old.pt")
    torch.jit.save(torch.jit.script(OldModule()), path)
    meta = read_metadata(path)
    assert meta.name == "old" and meta.prior_min_sizes == [] and meta.prior_steps == []
    assert meta.prior_variances == [] and meta.prior_clip is False and meta.input_mean_bgr == []
    assert not hasattr(torch.jit.load(path), "limn_prior_steps")
    assert "limn_prior_min_sizes" in LimnModule.__annotations__


# --------------------------------------------------------------------------
# Detections on photos
# --------------------------------------------------------------------------


def test_astronaut_has_one_face_with_ordered_landmarks(astronaut_face):
    face = astronaut_face
    print("astronaut:", json.dumps(face))
    x1, y1, x2, y2 = face["box"]
    assert face["score"] >= 0.9
    assert iou(face["box"], ASTRONAUT_FACE) > 0.8
    (lex, ley), (rex, rey), (nx, ny), (lmx, lmy), (rmx, rmy) = face["landmarks"]
    assert lex < nx < rex and lmx < rmx  # image-left eye first (column 5 has the smaller x)
    assert max(ley, rey) < ny < min(lmy, rmy)  # nose below the eyes, above the mouth
    for x, y in face["landmarks"]:
        assert x1 <= x <= x2 and y1 <= y <= y2


def test_mirrored_astronaut_mirrors_the_detection(detector, astronaut, astronaut_face):
    faces = retinaface.detect(detector, astronaut[:, ::-1].copy())
    assert len(faces) == 1
    face = faces[0]
    print("mirrored astronaut:", json.dumps(face))
    w = astronaut.shape[1]
    x1, y1, x2, y2 = face["box"]
    expected_box = np.array(astronaut_face["box"])
    assert np.abs(np.array([w - x2, y1, w - x1, y2]) - expected_box).max() <= 4.0
    pts = np.array(face["landmarks"])
    mirrored = np.stack([w - pts[:, 0], pts[:, 1]], axis=1)[[1, 0, 2, 4, 3]]  # swap left/right
    assert np.abs(mirrored - np.array(astronaut_face["landmarks"])).max() <= 4.0


def test_coffee_has_no_face(detector):
    assert retinaface.detect(detector, skimage_data.coffee()) == []


def test_collage_finds_every_face(detector, astronaut, astronaut_face):
    """2x2 collage: astronaut, its mirror, the cameraman, and the astronaut at half size
    shifted on grey. Four faces, each found once."""
    collage = detect_cases.collage()
    a = ASTRONAUT_FACE
    expected = [
        a,
        (1024 - a[2], a[1], 1024 - a[0], a[3]),
        (CAMERA_FACE[0], CAMERA_FACE[1] + 512, CAMERA_FACE[2], CAMERA_FACE[3] + 512),
        (612 + a[0] / 2, 662 + a[1] / 2, 612 + a[2] / 2, 662 + a[3] / 2),
    ]
    faces = retinaface.detect(detector, collage)
    print("collage:", [(round(f["score"], 4), [round(v, 1) for v in f["box"]]) for f in faces])
    assert len(faces) == len(expected)
    for box in expected:
        matches = [f for f in faces if iou(f["box"], box) > 0.5]
        assert len(matches) == 1, box


@pytest.mark.parametrize("scale", [2, 4])
def test_upscaled_astronaut_finds_the_same_face(detector, astronaut, astronaut_face, scale):
    """Run at full resolution (1024 and 2048 px). At 4x the face (~365 x 490 px) is larger than
    the largest prior (256 px): it is still found, but its box is tighter (brows to chin) and
    other detections >= 0.9 appear (parts of the face, the suit), so only the best is checked,
    with a looser tolerance."""
    big = resize(astronaut, 512 * scale, 512 * scale)
    faces = retinaface.detect(detector, big)
    print(f"{scale}x:", [(round(f["score"], 4), [round(v / scale, 1) for v in f["box"]]) for f in faces])
    best = faces[0]
    assert best["score"] >= 0.99
    box = [v / scale for v in best["box"]]
    ref = astronaut_face["box"]
    width = ref[2] - ref[0]
    err = np.abs(np.array(best["landmarks"]) / scale - np.array(astronaut_face["landmarks"])).max()
    if scale == 2:
        assert len(faces) == 1
        assert iou(box, ref) > 0.85 and err <= 0.1 * width
    else:
        assert iou(box, ref) > 0.6 and err <= 0.15 * width


def test_command_line_prints_json(exported, astronaut, astronaut_face, tmp_path):
    import skimage.io

    image = str(tmp_path / "astronaut.png")
    skimage.io.imsave(image, astronaut)
    env = dict(os.environ, PYTHONPATH=os.path.join(ROOT, "models"))
    out = subprocess.run([sys.executable, "-m", "limn_models.retinaface", image, "--model", exported],
                         capture_output=True, text=True, env=env, cwd=ROOT)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["width"] == 512 and result["height"] == 512 and len(result["faces"]) == 1
    face = result["faces"][0]
    assert np.abs(np.array(face["box"]) - np.array(astronaut_face["box"])).max() <= 1e-3
    assert abs(face["score"] - astronaut_face["score"]) <= 1e-5


def test_nms_keeps_the_best_of_overlapping_boxes():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 10]], np.float32)
    scores = np.array([0.8, 0.95, 0.5, 0.8], np.float32)
    assert retinaface.nms(boxes, scores, 0.4) == [1, 2]
    assert retinaface.nms(boxes, scores, 0.99) == [1, 0, 2]  # identical boxes: IoU 1 > 0.99
    assert retinaface.nms(boxes[:0], scores[:0], 0.4) == []
