"""RetinaFace face detector with a MobileNet-0.25 backbone (Deng et al., 2019), as trained in
``biubug6/Face-Detector-1MB-with-landmark`` (``weights/mobilenet0.25_Final.pth``, MIT).

A TorchScript-able re-implementation of that repository's ``models/net.py`` (MobileNetV1 x0.25,
FPN, SSH) and ``models/retinaface.py`` (class, box and landmark heads), with module names that
match the published state dict, so ``load_state_dict(strict=True)`` takes it unchanged.
Everything uses plain ReLU: that repository's ``net.py`` has no leaky slopes (unlike
``biubug6/Pytorch_Retinaface``, whose LeakyReLU(0.1) and anchor sizes do not fit these weights).

:class:`FaceDetector` is the graph a limn ``face_detect`` file holds: RGB ``[0,1]`` in, and with
the priors (``data/config.py``'s ``cfg_mnet``) and the decoding (``utils/box_utils.py``) inside,
ready-to-use detections out -- ``float32[N, P, 15]``, one row per prior::

    x1, y1, x2, y2, score, lex, ley, rex, rey, nx, ny, lmx, lmy, rmx, rmy

in pixels of the input (box corners, then left eye, right eye, nose, left and right mouth
corner, in the image's left/right sense), ``score`` the face probability. Boxes are not clipped
to the image (``clip`` is False in the original configuration). Thresholding and non-maximum
suppression are per-call options and stay outside the graph; :func:`detect` is the reference.
The exported graph has its BatchNorm layers folded into the convolutions, which fp16 needs
(:func:`fold_batchnorm`).

    python -m limn_models.retinaface IMAGE [--model FILE.pt] [--threshold 0.9]

prints the detections on IMAGE as JSON.
"""

import argparse
import copy
import json
import os
import sys
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.jit import Final

__all__ = [
    "MIN_SIZES",
    "STEPS",
    "VARIANCES",
    "CLIP",
    "MEAN_BGR",
    "STATE_NUMEL",
    "PARAMETERS",
    "DEFAULT_WEIGHTS",
    "SOURCE",
    "LICENSE",
    "MobileNetV1",
    "FPN",
    "SSH",
    "Head",
    "RetinaFace",
    "FaceDetector",
    "prior_boxes",
    "decode",
    "state_numel",
    "load_weights",
    "fold_batchnorm",
    "face_detector",
    "detect",
    "nms",
]

# cfg_mnet of biubug6/Face-Detector-1MB-with-landmark (data/config.py).
MIN_SIZES: List[List[int]] = [[10, 20], [32, 64], [128, 256]]
STEPS: List[int] = [8, 16, 32]
VARIANCES: List[float] = [0.1, 0.2]
CLIP = False
# detect.py: the BGR image in 0..255 minus this mean, no division by a standard deviation.
MEAN_BGR: List[float] = [104.0, 117.0, 123.0]

# Every element of the published state dict, BatchNorm running statistics and the 47
# num_batches_tracked counters included; PARAMETERS counts the learned tensors only.
STATE_NUMEL = 433_343
PARAMETERS = 426_608

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
WEIGHTS_FILE = "retinaface-mobilenet0.25.pth"


def _default_weights() -> str:
    """Where the published weights are looked for: $LIMN_RETINAFACE_WEIGHTS, then ../shared/data
    beside the checkout, then .deps/data in it (the copy tests/gpu/prepare_deps.sh makes for
    machines that have no ../shared). The checkout is the one this file is in, and, for a copy of
    limn_models installed elsewhere (the wheel), also the current directory. The first that
    exists, else the first ../shared/data path."""
    env = os.environ.get("LIMN_RETINAFACE_WEIGHTS")
    if env:
        return env
    places = [os.path.join(root, *where, WEIGHTS_FILE)
              for root in dict.fromkeys([ROOT, os.getcwd()])
              for where in (("..", "shared", "data"), (".deps", "data"))]
    return next((p for p in places if os.path.isfile(p)), places[0])


DEFAULT_WEIGHTS = _default_weights()
SOURCE = ("https://github.com/biubug6/Face-Detector-1MB-with-landmark "
          "(weights/mobilenet0.25_Final.pth)")
LICENSE = "MIT"


# --------------------------------------------------------------------------
# Network (module and attribute names follow the published state dict)
# --------------------------------------------------------------------------


def _conv_bn(cin: int, cout: int, stride: int = 1, relu: bool = True, kernel: int = 3) -> nn.Sequential:
    """Conv (no bias) -> BatchNorm [-> ReLU]: keys ``.0.weight`` and ``.1.*``."""
    layers: List[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _conv_dw(cin: int, cout: int, stride: int) -> nn.Sequential:
    """Depthwise 3x3 -> BN -> ReLU -> pointwise 1x1 -> BN -> ReLU (keys 0, 1, 3, 4)."""
    return nn.Sequential(
        nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False),
        nn.BatchNorm2d(cin),
        nn.ReLU(inplace=True),
        nn.Conv2d(cin, cout, 1, 1, 0, bias=False),
        nn.BatchNorm2d(cout),
        nn.ReLU(inplace=True),
    )


class MobileNetV1(nn.Module):
    """MobileNetV1 x0.25 without its classifier: returns the stride 8, 16 and 32 features
    (64, 128 and 256 channels). A stride-2 3x3 convolution with padding 1 maps n to ceil(n/2),
    so the features are ceil(H/s) x ceil(W/s) for any input size."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(
            _conv_bn(3, 8, 2),
            _conv_dw(8, 16, 1),
            _conv_dw(16, 32, 2),
            _conv_dw(32, 32, 1),
            _conv_dw(32, 64, 2),
            _conv_dw(64, 64, 1),
        )
        self.stage2 = nn.Sequential(
            _conv_dw(64, 128, 2),
            *[_conv_dw(128, 128, 1) for _ in range(5)],
        )
        self.stage3 = nn.Sequential(
            _conv_dw(128, 256, 2),
            _conv_dw(256, 256, 1),
        )

    def forward(self, x: Tensor) -> List[Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        c3 = self.stage3(c2)
        return [c1, c2, c3]


class FPN(nn.Module):
    """1x1 laterals to ``out_channels``, top-down nearest upsampling to each lateral's own size
    (so odd feature sizes work), 3x3 merges on the two finer levels."""

    def __init__(self, in_channels: Sequence[int], out_channels: int) -> None:
        super().__init__()
        self.output1 = _conv_bn(in_channels[0], out_channels, kernel=1)
        self.output2 = _conv_bn(in_channels[1], out_channels, kernel=1)
        self.output3 = _conv_bn(in_channels[2], out_channels, kernel=1)
        self.merge1 = _conv_bn(out_channels, out_channels)
        self.merge2 = _conv_bn(out_channels, out_channels)

    def forward(self, feats: List[Tensor]) -> List[Tensor]:
        p1 = self.output1(feats[0])
        p2 = self.output2(feats[1])
        p3 = self.output3(feats[2])
        p2 = self.merge2(p2 + F.interpolate(p3, size=[p2.shape[2], p2.shape[3]], mode="nearest"))
        p1 = self.merge1(p1 + F.interpolate(p2, size=[p1.shape[2], p1.shape[3]], mode="nearest"))
        return [p1, p2, p3]


class SSH(nn.Module):
    """Single-stage context module: 3x3, 5x5 (two 3x3) and 7x7 (three 3x3) branches with
    out/2, out/4 and out/4 channels, concatenated, then ReLU. ``conv7x7_3`` has a lower-case
    x in the published weights."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        if cout % 4 != 0:
            raise ValueError(f"SSH output channels must be a multiple of 4, not {cout}")
        self.conv3X3 = _conv_bn(cin, cout // 2, relu=False)
        self.conv5X5_1 = _conv_bn(cin, cout // 4)
        self.conv5X5_2 = _conv_bn(cout // 4, cout // 4, relu=False)
        self.conv7X7_2 = _conv_bn(cout // 4, cout // 4)
        self.conv7x7_3 = _conv_bn(cout // 4, cout // 4, relu=False)

    def forward(self, x: Tensor) -> Tensor:
        b3 = self.conv3X3(x)
        t = self.conv5X5_1(x)
        b5 = self.conv5X5_2(t)
        b7 = self.conv7x7_3(self.conv7X7_2(t))
        return F.relu(torch.cat([b3, b5, b7], dim=1))


class Head(nn.Module):
    """1x1 convolution predicting ``values`` numbers for each of ``anchors`` priors per pixel;
    returns ``[N, H*W*anchors, values]``, row-major over the map, then per prior."""

    values: Final[int]

    def __init__(self, cin: int, anchors: int, values: int) -> None:
        super().__init__()
        self.values = values
        self.conv1x1 = nn.Conv2d(cin, anchors * values, 1)

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv1x1(x).permute(0, 2, 3, 1)
        return y.reshape(y.shape[0], -1, self.values)


class RetinaFace(nn.Module):
    """The network: normalised BGR ``[N,3,H,W]`` in; raw box offsets ``[N,P,4]``, class logits
    ``[N,P,2]`` (background, face) and landmark offsets ``[N,P,10]`` out, priors ordered by
    level (stride 8, 16, 32), then row-major over the level's map, then by min size."""

    def __init__(self, anchors: int = 2, in_channel: int = 32, out_channel: int = 64) -> None:
        super().__init__()
        self.body = MobileNetV1()
        self.fpn = FPN([in_channel * 2, in_channel * 4, in_channel * 8], out_channel)
        self.ssh1 = SSH(out_channel, out_channel)
        self.ssh2 = SSH(out_channel, out_channel)
        self.ssh3 = SSH(out_channel, out_channel)
        self.ClassHead = nn.ModuleList([Head(out_channel, anchors, 2) for _ in range(3)])
        self.BboxHead = nn.ModuleList([Head(out_channel, anchors, 4) for _ in range(3)])
        self.LandmarkHead = nn.ModuleList([Head(out_channel, anchors, 10) for _ in range(3)])

    def forward(self, x: Tensor) -> List[Tensor]:
        p = self.fpn(self.body(x))
        feats = [self.ssh1(p[0]), self.ssh2(p[1]), self.ssh3(p[2])]
        loc: List[Tensor] = []
        logits: List[Tensor] = []
        landmarks: List[Tensor] = []
        for i, head in enumerate(self.BboxHead):
            loc.append(head(feats[i]))
        for i, head in enumerate(self.ClassHead):
            logits.append(head(feats[i]))
        for i, head in enumerate(self.LandmarkHead):
            landmarks.append(head(feats[i]))
        return [torch.cat(loc, dim=1), torch.cat(logits, dim=1), torch.cat(landmarks, dim=1)]


# --------------------------------------------------------------------------
# Priors and decoding (in float32, whatever the network's precision)
# --------------------------------------------------------------------------


def prior_boxes(height: int, width: int, min_sizes: List[List[int]], steps: List[int],
                device: torch.device) -> Tensor:
    """``float32[P,4]`` priors ``(cx, cy, s/W, s/H)`` normalised to the image, in the heads'
    order: per level, row-major over its ceil(H/step) x ceil(W/step) map, then per min size."""
    levels: List[Tensor] = []
    for k in range(len(steps)):
        step = steps[k]
        fh = (height + step - 1) // step
        fw = (width + step - 1) // step
        # Sizes stay integers (symbolic under torch.export, where float() would fix them).
        cy = (torch.arange(fh, dtype=torch.float32, device=device) + 0.5) * float(step) / height
        cx = (torch.arange(fw, dtype=torch.float32, device=device) + 0.5) * float(step) / width
        cx = cx.view(1, fw).expand(fh, fw)
        cy = cy.view(fh, 1).expand(fh, fw)
        # One [fh, fw, 4] block per min size, interleaved so each cell lists its sizes in order;
        # sizes enter as Python scalars, so no tensor is built from a list on each call.
        per_size = [torch.stack([cx, cy, torch.full_like(cx, float(s)) / width,
                                 torch.full_like(cx, float(s)) / height], dim=2)
                    for s in min_sizes[k]]
        grid = torch.stack(per_size, dim=2)
        levels.append(grid.reshape(-1, 4))
    return torch.cat(levels, dim=0)


def decode(loc: Tensor, logits: Tensor, landmarks: Tensor, priors: Tensor,
           variances: List[float], height: int, width: int) -> Tensor:
    """Head outputs -> ``float32[N,P,15]`` detections in pixels (see the module docstring)."""
    loc = loc.float()
    logits = logits.float()
    landmarks = landmarks.float()
    centre = priors[:, :2]
    size = priors[:, 2:]
    c = centre + loc[:, :, :2] * variances[0] * size
    wh = size * torch.exp(loc[:, :, 2:] * variances[1])
    top_left = c - wh * 0.5
    boxes = _to_pixels(torch.cat([top_left, top_left + wh], dim=2), height, width)
    score = torch.softmax(logits, dim=2)[:, :, 1:2]
    points = centre.repeat(1, 5) + landmarks * variances[0] * size.repeat(1, 5)
    return torch.cat([boxes, score, _to_pixels(points, height, width)], dim=2)


def _to_pixels(xy: Tensor, height: int, width: int) -> Tensor:
    """``[N, P, 2k]`` interleaved (x, y) fractions of the image -> pixels, with the sizes as
    scalars (no tensor built from them on each call)."""
    n = xy.shape[0]
    p = xy.shape[1]
    pairs = xy.reshape(n, p, -1, 2)
    return torch.stack([pairs[:, :, :, 0] * width, pairs[:, :, :, 1] * height],
                       dim=3).reshape(n, p, -1)


class FaceDetector(nn.Module):
    """The limn ``face_detect`` graph: RGB ``float[N,3,H,W]`` in ``[0,1]``, any H, W >= 1, in;
    ``float32[N,P,15]`` detections out (see the module docstring). P depends only on H and W:
    ``sum over levels of ceil(H/step) * ceil(W/step) * len(min_sizes)``."""

    min_sizes: List[List[int]]
    steps: List[int]
    variances: List[float]
    mean_bgr: List[float]

    def __init__(self, net: RetinaFace, min_sizes: Sequence[Sequence[int]] = MIN_SIZES,
                 steps: Sequence[int] = STEPS, variances: Sequence[float] = VARIANCES,
                 mean_bgr: Sequence[float] = MEAN_BGR) -> None:
        super().__init__()
        if len(min_sizes) != len(steps) or len(variances) != 2 or len(mean_bgr) != 3:
            raise ValueError("min_sizes and steps need one entry per level, variances 2, mean 3")
        self.net = net
        self.min_sizes = [[int(s) for s in level] for level in min_sizes]
        self.steps = [int(s) for s in steps]
        self.variances = [float(v) for v in variances]
        self.mean_bgr = [float(v) for v in mean_bgr]
        # the graph subtracts this; a buffer, so no tensor is built from the list on each call
        self.register_buffer("mean", torch.tensor(self.mean_bgr).view(1, 3, 1, 1), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError("FaceDetector expects an (N, 3, H, W) RGB tensor")
        height = x.shape[2]
        width = x.shape[3]
        out = self.net(torch.flip(x, [1]) * 255.0 - self.mean.to(x.dtype))
        priors = prior_boxes(height, width, self.min_sizes, self.steps, x.device)
        return decode(out[0], out[1], out[2], priors, self.variances, height, width)


# --------------------------------------------------------------------------
# Weights
# --------------------------------------------------------------------------


def state_numel(module: nn.Module) -> int:
    """Elements in the state dict (parameters, BatchNorm statistics and counters)."""
    return sum(t.numel() for t in module.state_dict().values())


def load_weights(path: str = DEFAULT_WEIGHTS) -> RetinaFace:
    """The published state dict (``module.`` prefixes stripped, strict) in an eval-mode net."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    state = {(k[len("module."):] if k.startswith("module.") else k): v for k, v in state.items()}
    net = RetinaFace()
    net.load_state_dict(state, strict=True)
    numel = state_numel(net)
    params = sum(p.numel() for p in net.parameters())
    if numel != STATE_NUMEL or params != PARAMETERS:
        raise ValueError(f"{path}: {numel} state elements / {params} parameters, expected "
                         f"{STATE_NUMEL} / {PARAMETERS} (RetinaFace MobileNet-0.25)")
    return net.eval()


def _fold(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    scale = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)
    bias = bn.bias.double() - bn.running_mean.double() * scale
    if conv.bias is not None:
        bias = bias + conv.bias.double() * scale
    out = nn.Conv2d(conv.in_channels, conv.out_channels, conv.kernel_size, conv.stride,
                    conv.padding, conv.dilation, conv.groups, bias=True)
    with torch.no_grad():
        out.weight.copy_((conv.weight.double() * scale.view(-1, 1, 1, 1)).float())
        out.bias.copy_(bias.float())
    return out.to(conv.weight.device)


def fold_batchnorm(net: RetinaFace) -> RetinaFace:
    """A copy of ``net`` in eval mode with every BatchNorm folded (in float64) into the
    convolution before it. Needed for fp16: the first BatchNorm's running variance reaches
    89,549, beyond fp16's 65,504, so unfolded the first layer overflows to inf in half
    precision. In fp32 the folded net differs from the original by about 1e-6 relative."""
    net = copy.deepcopy(net).eval()
    for seq in list(net.modules()):
        if not isinstance(seq, nn.Sequential):
            continue
        for i in range(len(seq) - 1):
            conv, bn = seq[i], seq[i + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(bn, nn.BatchNorm2d):
                seq[i] = _fold(conv, bn)
                seq[i + 1] = nn.Identity()
    return net


def face_detector(path: str = DEFAULT_WEIGHTS, fold: bool = True) -> FaceDetector:
    """The limn graph around the published weights, in eval mode; with ``fold`` (what the
    exporter writes) BatchNorm is folded into the convolutions (see :func:`fold_batchnorm`)."""
    net = load_weights(path)
    return FaceDetector(fold_batchnorm(net) if fold else net).eval()


# --------------------------------------------------------------------------
# Reference post-processing
# --------------------------------------------------------------------------


def _iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one (x1, y1, x2, y2) box with each row of ``boxes`` (continuous areas, no +1)."""
    ix = np.clip(np.minimum(box[2], boxes[:, 2]) - np.maximum(box[0], boxes[:, 0]), 0.0, None)
    iy = np.clip(np.minimum(box[3], boxes[:, 3]) - np.maximum(box[1], boxes[:, 1]), 0.0, None)
    inter = ix * iy
    area = max(box[2] - box[0], 0.0) * max(box[3] - box[1], 0.0)
    areas = np.clip(boxes[:, 2] - boxes[:, 0], 0.0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0.0, None)
    union = area + areas - inter
    return np.where(union > 0.0, inter / np.maximum(union, 1e-12), 0.0)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> List[int]:
    """Greedy non-maximum suppression: indices kept, best score first. A box is dropped when
    its IoU with a kept, higher-scoring box is above ``iou``; equal scores keep input order."""
    order = np.argsort(-scores, kind="stable")
    keep: List[int] = []
    while order.size > 0:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        order = rest[_iou(boxes[i], boxes[rest]) <= iou]
    return keep


def detect(module: nn.Module, image: np.ndarray, score_threshold: float = 0.9,
           nms_iou: float = 0.4, max_faces: int = 0) -> List[Dict[str, object]]:
    """Faces in ``image`` (``uint8`` H x W x 3 RGB): scores >= ``score_threshold``, greedy NMS
    at ``nms_iou``, best first, at most ``max_faces`` (0: all). Each face is a dict with
    ``box`` [x1, y1, x2, y2], ``score`` and ``landmarks`` [[x, y] x 5] (left eye, right eye,
    nose, left and right mouth corner), in pixels. ``module`` is a :class:`FaceDetector` or a
    loaded limn ``face_detect`` file; it runs once, at full resolution, on its own device."""
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected a uint8 H x W x 3 RGB image, not {image.dtype} {image.shape}")
    device = torch.device("cpu")
    for t in module.parameters():
        device = t.device
        break
    x = torch.from_numpy(np.ascontiguousarray(image)).to(device)
    x = x.permute(2, 0, 1).unsqueeze(0).float() / 255.0
    with torch.no_grad():
        out = module(x)[0].float().cpu().numpy()
    out = out[out[:, 4] >= score_threshold]
    keep = nms(out[:, :4], out[:, 4], nms_iou)
    if max_faces > 0:
        keep = keep[:max_faces]
    return [
        {
            "box": [float(v) for v in out[i, :4]],
            "score": float(out[i, 4]),
            "landmarks": [[float(out[i, 5 + 2 * j]), float(out[i, 6 + 2 * j])] for j in range(5)],
        }
        for i in keep
    ]


def _read_rgb(path: str) -> np.ndarray:
    """Any image skimage can read, as uint8 H x W x 3 RGB (grey replicated, alpha dropped)."""
    import skimage.io
    from skimage.util import img_as_ubyte

    image = skimage.io.imread(path)
    if image.ndim == 2:
        image = np.stack([image] * 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"{path}: not an RGB or grey image (shape {image.shape})")
    return np.ascontiguousarray(img_as_ubyte(image[:, :, :3]))


def main(argv: Optional[List[str]] = None) -> int:
    """``python -m limn_models.retinaface IMAGE``: prints the faces found as JSON."""
    parser = argparse.ArgumentParser(
        prog="python -m limn_models.retinaface",
        description="Detect faces with RetinaFace MobileNet-0.25 (the reference for limn's "
                    "face_detect models) and print them as JSON: box [x1, y1, x2, y2], score and "
                    "5 landmarks (left eye, right eye, nose, left and right mouth corner) in "
                    "pixels, best first.")
    parser.add_argument("image", help="image file (RGB, RGBA or grey)")
    parser.add_argument("--model", help="limn face_detect file (.pt); default: build the "
                                        "detector from --weights")
    parser.add_argument("--weights", default=DEFAULT_WEIGHTS,
                        help="published state dict (default ../shared/data/"
                             "retinaface-mobilenet0.25.pth from the repository root)")
    parser.add_argument("--threshold", type=float, default=0.9, help="minimum score (default 0.9)")
    parser.add_argument("--nms-iou", type=float, default=0.4, help="NMS IoU (default 0.4)")
    parser.add_argument("--max-faces", type=int, default=0, help="keep at most this many (0: all)")
    args = parser.parse_args(argv)
    try:
        image = _read_rgb(args.image)
        if args.model:
            module = torch.jit.load(args.model, map_location="cpu").eval()
            kind = getattr(module, "limn_kind", None)
            if kind != "face_detect":
                raise ValueError(f"{args.model}: not a limn face_detect model (kind {kind!r})")
        else:
            module = face_detector(args.weights)
        faces = detect(module, image, args.threshold, args.nms_iou, args.max_faces)
    except (OSError, RuntimeError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    json.dump({"image": args.image, "height": int(image.shape[0]), "width": int(image.shape[1]),
               "threshold": args.threshold, "nms_iou": args.nms_iou, "faces": faces},
              sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
