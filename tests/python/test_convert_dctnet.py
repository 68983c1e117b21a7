"""Tests for limn_models.tf_graph (GraphDef reader) and limn_models.convert_dctnet.

Run: cd /work/main && PYTHONPATH=models python3 -m pytest -q tests/python/test_convert_dctnet.py

The always-run tests write a synthetic frozen GraphDef with a small protobuf encoder defined
here (no TensorFlow, no protobuf package).  The TensorFlow round trip (build the official
topology in tf.compat.v1, freeze it, convert, compare) only runs with LIMN_TF_TESTS=1 and an
installed ``tensorflow`` / ``tensorflow-cpu``.
"""

import os
import struct
import subprocess
import sys
from typing import Dict, List, Sequence, Tuple

import numpy as np
import pytest
import torch

from limn_models import convert_dctnet, dctnet, tf_graph
from limn_models.dctnet import TF_LAYERS, DCTNetRGB, dctnet_random_init
from limn_models.metadata import read_metadata

torch.set_num_threads(1)  # shared 2-core machine: keep the tests light

MODELS_DIR = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "models"))

# --------------------------------------------------------------------------- protobuf encoder


def _varint(n: int) -> bytes:
    n &= (1 << 64) - 1  # negative int32/int64 values are sign-extended to 10 bytes
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _key(number: int, wire: int) -> bytes:
    return _varint(number << 3 | wire)


def f_varint(number: int, value: int) -> bytes:
    return _key(number, 0) + _varint(value)


def f_bytes(number: int, payload: bytes) -> bytes:
    return _key(number, 2) + _varint(len(payload)) + payload


def f_str(number: int, text: str) -> bytes:
    return f_bytes(number, text.encode("utf-8"))


def f_fixed32(number: int, value: float) -> bytes:
    return _key(number, 5) + struct.pack("<f", value)


DT_FLOAT, DT_INT32 = 1, 3


def enc_shape(dims: Sequence[int]) -> bytes:
    return b"".join(f_bytes(2, f_varint(1, d)) for d in dims)  # TensorShapeProto.dim{size}


def enc_tensor(arr: np.ndarray, form: str = "content") -> bytes:
    """TensorProto of ``arr``: form 'content' (tensor_content), 'packed' / 'unpacked' (float_val or
    int_val), 'broadcast' (a single value, TF fills the shape with it), 'empty' (no values: zeros)."""
    dtype = DT_FLOAT if arr.dtype == np.float32 else DT_INT32
    msg = f_varint(1, dtype)
    if arr.ndim:  # proto3: a scalar's empty shape is simply absent
        msg += f_bytes(2, enc_shape(arr.shape))
    flat = arr.reshape(-1)
    if form == "content":
        msg += f_bytes(4, arr.astype("<f4" if dtype == DT_FLOAT else "<i4").tobytes())
    elif form == "broadcast":
        assert np.all(flat == flat[0])
        flat = flat[:1]
        form = "packed"
    elif form == "empty":
        assert not np.any(flat)
        return msg
    if form == "packed":
        if dtype == DT_FLOAT:
            msg += f_bytes(5, flat.astype("<f4").tobytes())
        else:
            msg += f_bytes(7, b"".join(_varint(int(v)) for v in flat))
    elif form == "unpacked":
        if dtype == DT_FLOAT:
            msg += b"".join(f_fixed32(5, float(v)) for v in flat)
        else:
            msg += b"".join(f_varint(7, int(v)) for v in flat)
    return msg


def enc_attr(key: str, value: bytes) -> bytes:
    return f_bytes(5, f_str(1, key) + f_bytes(2, value))  # map entry {key=1, value=2}


def enc_node(name: str, op: str, inputs: Sequence[str] = (), attrs: Sequence[bytes] = (),
             attr_first: bool = False) -> bytes:
    head = f_str(1, name) + f_str(2, op) + b"".join(f_str(3, i) for i in inputs)
    tail = f_str(4, "/device:CPU:0") + b"".join(attrs)
    return tail + head if attr_first else head + tail  # field order must not matter


def const_node(name: str, arr: np.ndarray, form: str = "content") -> bytes:
    dtype = DT_FLOAT if arr.dtype == np.float32 else DT_INT32
    return enc_node(name, "Const", attrs=[enc_attr("dtype", f_varint(6, dtype)),
                                          enc_attr("value", f_bytes(8, enc_tensor(arr, form)))],
                    attr_first=(len(name) % 2 == 0))


def enc_graph(nodes: Sequence[bytes]) -> Tuple[bytes, List[Tuple[int, int]]]:
    """GraphDef bytes and the (start, end) byte range of every node field."""
    out = bytearray()
    spans = []
    for node in nodes:
        start = len(out)
        out += f_bytes(1, node)
        spans.append((start, len(out)))
    out += f_bytes(4, f_varint(1, 27))  # versions {producer: 27}: an unknown field, skipped
    return bytes(out), spans


# --------------------------------------------------------------------------- synthetic graph


def tf_variables(gen: dctnet.DCTNetGenerator, prefix: str = "") -> Dict[str, np.ndarray]:
    """TF-layout (HWIO) numpy arrays of the generator, keyed by frozen-graph Const name."""
    state = gen.state_dict()
    out = {}
    for tf_name, param in dctnet.TF_NAME_TO_PARAM.items():
        value = state[param]
        if tf_name.endswith("/weights"):
            value = value.permute(2, 3, 1, 0)  # OIHW -> HWIO
        out[prefix + tf_name] = value.detach().numpy().astype(np.float32).copy()
    return out


def synthetic_nodes(variables: Dict[str, np.ndarray], prefix: str = "",
                    skip: Sequence[str] = (), as_variable: Sequence[str] = ()) -> List[bytes]:
    """Nodes of a frozen DCT-Net-like graph: each conv as Const -> Identity(read) -> Conv2D and
    Const -> Identity(read) -> BiasAdd, in the several TensorProto encodings, plus extras."""
    nodes = [enc_node(prefix + "input_image", "Placeholder",
                      attrs=[enc_attr("dtype", f_varint(6, DT_FLOAT)),
                             enc_attr("shape", f_bytes(7, enc_shape([-1, -1, 3])))])]
    prev = prefix + "input_image"
    for i, (tf_layer, _path, _cin, _cout, _k, _s) in enumerate(TF_LAYERS):
        scope = prefix + "generator/" + tf_layer
        for kind in ("weights", "biases"):
            name = scope + "/" + kind
            if name in skip:
                continue
            arr = variables[name]
            if name in as_variable:
                nodes.append(enc_node(name, "VariableV2",
                                      attrs=[enc_attr("dtype", f_varint(6, DT_FLOAT))]))
            elif kind == "weights":
                form = {0: "packed", len(TF_LAYERS) - 1: "unpacked"}.get(i, "content")
                nodes.append(const_node(name, arr, form))
            else:
                if np.all(arr == 0):
                    form = "empty"
                elif np.all(arr == arr.reshape(-1)[0]):
                    form = "broadcast"
                else:
                    form = "packed" if i % 2 == 0 else "unpacked"
                nodes.append(const_node(name, arr, form))
            nodes.append(enc_node(name + "/read", "Identity", [name],
                                  attrs=[enc_attr("T", f_varint(6, DT_FLOAT))]))
        nodes.append(enc_node(scope + "/Conv2D", "Conv2D", [prev, scope + "/weights/read"],
                              attrs=[enc_attr("padding", f_bytes(2, b"SAME"))]))
        nodes.append(enc_node(scope + "/BiasAdd", "BiasAdd",
                              [scope + "/Conv2D", scope + "/biases/read", "^" + prev]))
        prev = scope + "/BiasAdd"
    # guided filter box kernels (scalar-broadcast and tensor_content forms), scalars, int32s
    nodes.append(const_node(prefix + "depthwise/filter_in", np.full((3, 3, 1, 1), 1 / 9, np.float32),
                            "broadcast"))
    nodes.append(const_node(prefix + "depthwise_1/filter_in", np.full((3, 3, 3, 1), 1 / 9, np.float32)))
    nodes.append(const_node(prefix + "truediv/y", np.array(127.5, np.float32), "packed"))
    nodes.append(const_node(prefix + "strided_slice/stack", np.array([0, 0, 0], np.int32), "empty"))
    nodes.append(const_node(prefix + "generator/neg", np.array([-1, 2, -2147483648], np.int32),
                            "packed"))
    nodes.append(const_node(prefix + "generator/neg_unpacked", np.array([-7, 7], np.int32), "unpacked"))
    nodes.append(const_node(prefix + "unused_head/weights", np.arange(6, dtype=np.float32).reshape(2, 3)))
    nodes.append(enc_node(prefix + "output_image", "Cast", [prev]))
    return nodes


@pytest.fixture(scope="module")
def gen() -> dctnet.DCTNetGenerator:
    g = dctnet_random_init(7)
    with torch.no_grad():  # exercise the broadcast and the all-zeros value encodings
        g.conv_7.bias.fill_(0.03125)
        g.conv_8.bias.zero_()
    return g


@pytest.fixture(scope="module")
def variables(gen) -> Dict[str, np.ndarray]:
    return tf_variables(gen)


@pytest.fixture(scope="module")
def pb_file(tmp_path_factory, variables) -> Tuple[str, bytes, List[Tuple[int, int]]]:
    data, spans = enc_graph(synthetic_nodes(variables))
    path = str(tmp_path_factory.mktemp("pb") / "cartoon_h.pb")
    with open(path, "wb") as f:
        f.write(data)
    return path, data, spans


# --------------------------------------------------------------------------- tf_graph


def test_decoder_reads_every_constant(pb_file, variables):
    path, _data, _spans = pb_file
    consts = tf_graph.read_constants(path)
    for name, arr in variables.items():
        assert consts[name].dtype == np.float32, name
        assert consts[name].shape == arr.shape, name
        assert np.array_equal(consts[name], arr), name
    box = consts["depthwise/filter_in"]
    assert box.shape == (3, 3, 1, 1) and np.all(box == np.float32(1 / 9))  # scalar broadcast
    assert consts["truediv/y"].shape == () and consts["truediv/y"] == np.float32(127.5)
    assert consts["strided_slice/stack"].dtype == np.int32
    assert consts["strided_slice/stack"].tolist() == [0, 0, 0]
    assert consts["generator/neg"].tolist() == [-1, 2, -2147483648]
    assert consts["generator/neg_unpacked"].tolist() == [-7, 7]
    assert "generator/Conv/weights/read" not in consts  # only Const nodes
    assert len(consts) == 36 + 7


def test_decoder_node_list(pb_file):
    path, _data, _spans = pb_file
    nodes = tf_graph.read_nodes(path)
    by_name = {n: (op, inputs) for n, op, inputs in nodes}
    assert nodes[0] == ("input_image", "Placeholder", [])
    assert by_name["generator/Conv/weights/read"] == ("Identity", ["generator/Conv/weights"])
    assert by_name["generator/Conv_1/Conv2D"] == (
        "Conv2D", ["generator/Conv/BiasAdd", "generator/Conv_1/weights/read"])
    assert by_name["generator/Conv/BiasAdd"][1][-1] == "^input_image"
    graph = tf_graph.read_graph_def(path)
    node = graph.node("generator/Conv/Conv2D")
    assert node.device == "/device:CPU:0" and node.attr["padding"].s == b"SAME"
    assert graph.node("input_image").attr["dtype"].type == tf_graph.DT_FLOAT


def test_decoder_broadcast_and_dtypes():
    # A shorter value list is padded with its last value (TF's FromProtoField); more values
    # than elements, or a tensor_content of the wrong size, is an error.
    t = f_varint(1, DT_FLOAT) + f_bytes(2, enc_shape([2, 3])) + f_bytes(5, np.float32([1, 2]).tobytes())
    node = enc_node("c", "Const", attrs=[enc_attr("value", f_bytes(8, t))])
    graph = tf_graph.parse_graph_def(f_bytes(1, node))
    assert graph.constants()["c"].tolist() == [[1, 2, 2], [2, 2, 2]]
    for bad in (f_bytes(5, np.float32(np.arange(7)).tobytes()),
                f_bytes(4, np.float32(np.arange(5)).tobytes())):
        t = f_varint(1, DT_FLOAT) + f_bytes(2, enc_shape([2, 3])) + bad
        node = enc_node("c", "Const", attrs=[enc_attr("value", f_bytes(8, t))])
        with pytest.raises(ValueError, match="Const node 'c'"):
            tf_graph.parse_graph_def(f_bytes(1, node)).constants()
    # dtype attr and tensor dtype must agree
    t = f_varint(1, DT_INT32) + f_bytes(7, _varint(5))
    node = enc_node("i", "Const", attrs=[enc_attr("dtype", f_varint(6, DT_FLOAT)),
                                         enc_attr("value", f_bytes(8, t))])
    with pytest.raises(ValueError, match="dtype"):
        tf_graph.parse_graph_def(f_bytes(1, node)).constants()


def test_decoder_error_on_truncated_file(pb_file, tmp_path):
    _path, data, spans = pb_file
    biggest = max(spans, key=lambda s: s[1] - s[0])
    cuts = [len(data) - 1 - len(f_bytes(4, f_varint(1, 27))),  # inside the last node
            spans[0][0] + 1,  # inside the first node's length varint
            (biggest[0] + biggest[1]) // 2,  # inside a large tensor_content
            spans[5][0] + 7]
    boundaries = {a for a, _b in spans} | {b for _a, b in spans}
    for cut in cuts:
        assert cut not in boundaries  # a cut between nodes would be a valid, shorter graph
        bad = tmp_path / f"cut{cut}.pb"
        bad.write_bytes(data[:cut])
        with pytest.raises(ValueError, match="truncated") as info:
            tf_graph.read_graph_def(str(bad)).constants()
        assert str(bad) in str(info.value)  # the message names the file


@pytest.mark.parametrize("blob, message", [
    (b"\x0b\x00", "wire type 3"),  # start-group
    (b"\x0f", "wire type 7"),
    (b"\x08\x01", "expected length-delimited"),  # GraphDef.node as a varint: not a GraphDef
    (b"\x0a\x05\x0a\xff\xff\xff\xff", "truncated"),
    (b"\x18" + b"\xff" * 11, "varint longer than 10 bytes"),
    (b"\x00\x01", "invalid field number 0"),
    (f_bytes(1, f_bytes(1, b"\xff\xfe")), "UTF-8"),
])
def test_decoder_error_on_corrupt_data(blob, message):
    with pytest.raises(ValueError, match=message):
        tf_graph.parse_graph_def(blob)


# --------------------------------------------------------------------------- converter


def test_convert_matches_dctnet_rgb(pb_file, gen, tmp_path):
    path, _data, _spans = pb_file
    out = str(tmp_path / "dctnet.pt")
    report = convert_dctnet.convert(path, out)
    assert report.prefix == ""
    assert len(report.used) == 36
    assert sorted(report.box_kernels) == ["depthwise/filter_in", "depthwise_1/filter_in"]
    assert report.unused == [("unused_head/weights", (2, 3))]
    assert len(report.warnings) == 1 and "unused_head/weights" in report.warnings[0]

    meta = read_metadata(out)
    assert meta is not None
    assert meta.kind == "cartoon" and meta.name == "DCT-Net cartoon_h"
    assert meta.size_multiple == dctnet.SIZE_MULTIPLE and meta.tile_margin == dctnet.TILE_MARGIN
    assert meta.source == ("ModelScope damo/cv_unet_person-image-cartoon_compound-models (DCT-Net), "
                           "cartoon_h.pb")
    assert meta.license.startswith("Apache-2.0")
    # Named cartoon_h.pb: DCT-Net's head network, with its crop size and template.
    assert (meta.role, meta.crop_size) == ("head", dctnet.HEAD_CROP_SIZE)
    assert meta.face_template == list(dctnet.HEAD_TEMPLATE)

    loaded = torch.jit.load(out, map_location="cpu")
    reference = DCTNetRGB(gen).eval()
    x = torch.rand(1, 3, 40, 52, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        got = loaded(x)
        want = reference(x)
    assert got.shape == want.shape
    assert (got - want).abs().max().item() <= 1e-5
    assert 0.05 < want.std().item()  # not a saturated / constant output


def test_head_role_from_the_name_or_the_flags(pb_file, tmp_path):
    path, data, _spans = pb_file
    background = tmp_path / "cartoon_bg.pb"
    background.write_bytes(data)
    assert not convert_dctnet.is_head_file(str(background))
    assert convert_dctnet.is_head_file(str(tmp_path / "cartoon_anime_h.pb"))
    out = str(tmp_path / "bg.pt")
    convert_dctnet.convert(str(background), out)
    meta = read_metadata(out)
    assert (meta.role, meta.crop_size, meta.face_template) == ("", 0, [])
    assert convert_dctnet.main([str(background), "-o", out, "--head"]) == 0
    assert read_metadata(out).role == "head"
    assert convert_dctnet.main([path, "-o", out, "--background"]) == 0
    assert read_metadata(out).role == ""


def test_convert_name_option_and_prefix(variables):
    prefixed = {"model_anime_head/" + k: v for k, v in variables.items()}
    data, _ = enc_graph(synthetic_nodes(prefixed, prefix="model_anime_head/"))
    graph = tf_graph.parse_graph_def(data)
    prefix, found = convert_dctnet.extract_generator_variables(graph, graph.constants())
    assert prefix == "model_anime_head/"
    assert sorted(found) == sorted(variables)
    for k, v in variables.items():
        assert np.array_equal(found[k], v)
    assert convert_dctnet._structure_warnings(
        graph, {k: prefix + k for k in found}) == []


def test_convert_error_names_missing_variable(variables, tmp_path):
    data, _ = enc_graph(synthetic_nodes(variables, skip=["generator/Conv_4/biases"]))
    pb = tmp_path / "cartoon_bg.pb"
    pb.write_bytes(data)
    out = tmp_path / "out.pt"
    with pytest.raises(ValueError, match="generator/Conv_4/biases") as info:
        convert_dctnet.convert(str(pb), str(out))
    assert "generator/Conv_4/weights" not in str(info.value)
    assert not out.exists()
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".limn-")]


def test_convert_error_on_unfrozen_graph(variables, tmp_path):
    data, _ = enc_graph(synthetic_nodes(variables, as_variable=["generator/block_1/conv2/weights"]))
    pb = tmp_path / "unfrozen.pb"
    pb.write_bytes(data)
    with pytest.raises(ValueError, match=r"generator/block_1/conv2/weights \(a VariableV2 node"):
        convert_dctnet.convert(str(pb), str(tmp_path / "out.pt"))


def test_convert_error_on_wrong_shape(variables, tmp_path):
    bad = dict(variables)
    bad["generator/Conv_9/weights"] = bad["generator/Conv_9/weights"][:, :, :, :2].copy()
    data, _ = enc_graph(synthetic_nodes(bad))
    pb = tmp_path / "bad.pb"
    pb.write_bytes(data)
    with pytest.raises(ValueError, match=r"generator/Conv_9/weights.*shape \[7, 7, 32, 2\]"):
        convert_dctnet.convert(str(pb), str(tmp_path / "out.pt"))


def test_cli_error_is_one_line(pb_file, tmp_path):
    _path, data, spans = pb_file
    bad = tmp_path / "truncated.pb"
    bad.write_bytes(data[: spans[3][0] + 20])
    out = tmp_path / "out.pt"
    env = dict(os.environ, PYTHONPATH=MODELS_DIR + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run(
        [sys.executable, "-m", "limn_models.convert_dctnet", str(bad), "-o", str(out)],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("convert_dctnet: error:"), proc.stderr
    assert "truncated" in lines[0]
    assert not out.exists()


def test_cli_help(capsys):
    with pytest.raises(SystemExit) as info:
        convert_dctnet.main(["--help"])
    assert info.value.code == 0
    usage = capsys.readouterr().out
    assert "PB_FILE -o OUT.pt|OUT.pt2 [--name NAME]" in usage
    assert "--format" in usage and "--device" in usage and "--precision" in usage
    assert convert_dctnet.main(["/nonexistent/cartoon_h.pb", "-o", "/nonexistent/x.pt"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("convert_dctnet: error:")


# --------------------------------------------------------------------------- TensorFlow round trip

TF_REASON = "TensorFlow round trip is opt-in: set LIMN_TF_TESTS=1 (needs tensorflow / tensorflow-cpu)"


def _tf_or_skip():
    if os.environ.get("LIMN_TF_TESTS") != "1":
        pytest.skip(TF_REASON)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    try:
        import tensorflow as tf  # noqa: F401
    except ImportError as e:
        pytest.skip(f"LIMN_TF_TESTS=1 but tensorflow cannot be imported: {e}")
    return tf


def _official_frozen_graph(tf, weights: Dict[str, np.ndarray]) -> bytes:
    """The ModelScope exporter's graph, TF1 style, with ``weights`` as variable values; frozen.

    Layer structure and names follow modelscope/models/cv/cartoon/network.py (unet_generator,
    resblock with slim.convolution2d: scopes Conv, Conv_1, ..., block_i/conv1|conv2, variables
    weights/biases, SAME padding, leaky_relu(alpha=0.2), legacy resize_bilinear), loss.py
    (guided_filter, tf_box_filter) and exporters/cv/cartoon_translation_exporter.py (input_image
    placeholder, /127.5 - 1, [0], clip +-0.999999, (x + 1) * 127.5, cast uint8 'output_image').
    An extra float 'output_float' (the value before the cast) is frozen too, for comparing.
    """
    v1 = tf.compat.v1

    def conv(x, cout, k, stride=1, scope=None):
        # slim.convolution2d(..., activation_fn=None): conv2d SAME + bias_add, HWIO 'weights'
        with v1.variable_scope(scope):
            full = v1.get_variable_scope().name
            w = v1.get_variable("weights", initializer=weights[full + "/weights"], use_resource=False)
            b = v1.get_variable("biases", initializer=weights[full + "/biases"], use_resource=False)
            assert tuple(w.shape) == (k, k, x.shape[-1], cout)
            y = tf.nn.conv2d(x, w, [1, stride, stride, 1], padding="SAME", name="Conv2D")
            return tf.nn.bias_add(y, b, name="BiasAdd")

    def resblock(inputs, out_channel, name):
        with v1.variable_scope(name):
            x = conv(inputs, out_channel, 3, scope="conv1")
            x = tf.nn.leaky_relu(x)
            x = conv(x, out_channel, 3, scope="conv2")
            return x + inputs

    def unet_generator(inputs, channel=32, num_blocks=4):
        lrelu = tf.nn.leaky_relu
        with v1.variable_scope("generator"):
            x0 = lrelu(conv(inputs, channel, 7, scope="Conv"))
            x1 = lrelu(conv(x0, channel, 3, 2, scope="Conv_1"))
            x1 = lrelu(conv(x1, channel * 2, 3, scope="Conv_2"))
            x2 = lrelu(conv(x1, channel * 2, 3, 2, scope="Conv_3"))
            x2 = lrelu(conv(x2, channel * 4, 3, scope="Conv_4"))
            for idx in range(num_blocks):
                x2 = resblock(x2, channel * 4, "block_{}".format(idx))
            x2 = lrelu(conv(x2, channel * 2, 3, scope="Conv_5"))
            h1, w1 = tf.shape(x2)[1], tf.shape(x2)[2]
            x3 = v1.image.resize_bilinear(x2, (h1 * 2, w1 * 2))
            x3 = lrelu(conv(x3 + x1, channel * 2, 3, scope="Conv_6"))
            x3 = lrelu(conv(x3, channel, 3, scope="Conv_7"))
            h2, w2 = tf.shape(x3)[1], tf.shape(x3)[2]
            x4 = v1.image.resize_bilinear(x3, (h2 * 2, w2 * 2))
            x4 = lrelu(conv(x4 + x0, channel, 3, scope="Conv_8"))
            return conv(x4, 3, 7, scope="Conv_9")

    def tf_box_filter(x, r):
        ch = x.get_shape().as_list()[-1]
        weight = 1 / ((2 * r + 1) ** 2)
        box_kernel = np.array(weight * np.ones((2 * r + 1, 2 * r + 1, ch, 1))).astype(np.float32)
        return tf.nn.depthwise_conv2d(x, box_kernel, [1, 1, 1, 1], "SAME")

    def guided_filter(x, y, r, eps=1e-2):
        x_shape = tf.shape(x)
        n = tf_box_filter(tf.ones((1, x_shape[1], x_shape[2], 1), dtype=x.dtype), r)
        mean_x = tf_box_filter(x, r) / n
        mean_y = tf_box_filter(y, r) / n
        cov_xy = tf_box_filter(x * y, r) / n - mean_x * mean_y
        var_x = tf_box_filter(x * x, r) / n - mean_x * mean_x
        a = cov_xy / (var_x + eps)
        b = mean_y - a * mean_x
        mean_a = tf_box_filter(a, r) / n
        mean_b = tf_box_filter(b, r) / n
        return mean_a * x + mean_b

    graph = tf.Graph()
    with graph.as_default():
        inp = v1.placeholder(tf.float32, [None, None, 3], name="input_image")
        x = inp[:, :, :][tf.newaxis]
        x = x / 127.5 - 1.0
        out = guided_filter(x, unet_generator(x), r=1)
        final = out[0]
        final = tf.clip_by_value(final, -0.999999, 0.999999)
        final = (final + 1.0) * 127.5
        tf.identity(final, name="output_float")
        tf.cast(final, tf.uint8, name="output_image")
        config = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
        with v1.Session(graph=graph, config=config) as sess:
            sess.run(v1.global_variables_initializer())
            frozen = v1.graph_util.convert_variables_to_constants(
                sess, graph.as_graph_def(), ["output_image", "output_float"])
    return frozen.SerializeToString()


def _run_frozen(tf, pb: bytes, bgr255: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    v1 = tf.compat.v1
    graph_def = v1.GraphDef()
    graph_def.ParseFromString(pb)
    graph = tf.Graph()
    with graph.as_default():
        v1.import_graph_def(graph_def, name="model_head")
    config = v1.ConfigProto(intra_op_parallelism_threads=1, inter_op_parallelism_threads=1)
    with v1.Session(graph=graph, config=config) as sess:
        return sess.run(["model_head/output_float:0", "model_head/output_image:0"],
                        feed_dict={"model_head/input_image:0": bgr255})


def test_tensorflow_round_trip(tmp_path):
    tf = _tf_or_skip()
    from skimage import data as skdata
    from skimage.transform import resize

    gen = dctnet_random_init(11)
    pb = _official_frozen_graph(tf, tf_variables(gen))
    pb_path = tmp_path / "cartoon_bg.pb"
    pb_path.write_bytes(pb)

    # the frozen graph's names, as the official exporter writes them
    nodes = {n: (op, inputs) for n, op, inputs in tf_graph.read_nodes(str(pb_path))}
    for tf_name in dctnet.TF_NAME_TO_PARAM:
        assert nodes[tf_name][0] == "Const", tf_name
        assert nodes[tf_name + "/read"] == ("Identity", [tf_name]), tf_name
    assert nodes["input_image"][0] == "Placeholder" and nodes["output_image"][0] == "Cast"

    out = str(tmp_path / "dctnet-bg.pt")
    report = convert_dctnet.convert(str(pb_path), out, name="round trip")
    assert report.warnings == [] and report.unused == []
    assert len(report.box_kernels) == 7  # N, mean_x, mean_y, x*y, x*x, A, b
    loaded = torch.jit.load(out, map_location="cpu")
    assert loaded.limn_name == "round trip"

    rng = np.random.default_rng(0)
    random_rgb = rng.integers(0, 256, size=(60, 84, 3), dtype=np.uint8)
    astro = resize(skdata.astronaut(), (256, 200), anti_aliasing=True, preserve_range=True)
    astro_rgb = np.clip(np.round(astro), 0, 255).astype(np.uint8)
    for rgb in (random_rgb, astro_rgb):
        assert rgb.shape[0] % 4 == 0 and rgb.shape[1] % 4 == 0
        tf_float, tf_u8 = _run_frozen(tf, pb, rgb[:, :, ::-1].astype(np.float32))  # BGR 0..255
        x = torch.from_numpy(rgb.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
        with torch.no_grad():
            y = loaded(x)[0].permute(1, 2, 0).numpy()  # RGB [0, 1]
        want = tf_float[:, :, ::-1] / 255.0
        err = float(np.abs(y - want).max())
        print(f"TF round trip {rgb.shape[:2]}: max abs error {err:.3g} (in [0, 1])")
        assert err <= 1e-4
        assert want.std() > 0.05
        # the exporter's uint8 output truncates: floor(255 * v), off by one only at boundaries
        u8 = np.floor(y * 255.0)[:, :, ::-1]
        diff = np.abs(u8 - tf_u8.astype(np.float64))
        assert diff.max() <= 1 and (diff > 0).mean() < 0.01
