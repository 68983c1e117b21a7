"""Read the constants of a TensorFlow frozen ``GraphDef`` (``.pb``) without TensorFlow.

A frozen graph (``tf.graph_util.convert_variables_to_constants``) stores every
trained variable as a ``Const`` node whose ``value`` attr holds a
``TensorProto``.  This module decodes just enough of the protobuf wire format
to get those tensors out, with no dependency on TensorFlow or on the
``protobuf`` package::

    graph = read_graph_def("cartoon_h.pb")
    consts = graph.constants()        # {"generator/Conv/weights": ndarray, ...}
    graph.node_list()                 # [("generator/Conv/weights", "Const", []), ...]

Messages and field numbers used (``syntax = "proto3"``, package ``tensorflow``;
checked against ``tensorflow/core/framework/{graph,node_def,attr_value,tensor,
tensor_shape,types}.proto`` and the descriptors of the TF 2.21 wheel)::

    GraphDef          node = 1 (repeated NodeDef)        [library=2, version=3,
                                                          versions=4, debug_info=5]
    NodeDef           name = 1, op = 2, input = 3 (repeated string), device = 4,
                      attr = 5 (map<string, AttrValue>: entries {key = 1, value = 2})
    AttrValue         oneof: list = 1, s = 2, i = 3, f = 4, b = 5, type = 6,
                      shape = 7, tensor = 8, placeholder = 9, func = 10
    TensorProto       dtype = 1, tensor_shape = 2, version_number = 3,
                      tensor_content = 4 (raw little-endian bytes), float_val = 5,
                      double_val = 6, int_val = 7, string_val = 8, scomplex_val = 9,
                      int64_val = 10, bool_val = 11, dcomplex_val = 12, half_val = 13,
                      uint32_val = 16, uint64_val = 17   (numeric ones [packed = true])
    TensorShapeProto  dim = 2 (repeated Dim {size = 1 (int64), name = 2}),
                      unknown_rank = 3
    DataType          DT_FLOAT = 1, DT_DOUBLE = 2, DT_INT32 = 3, DT_UINT8 = 4,
                      DT_INT16 = 5, DT_INT8 = 6, DT_STRING = 7, DT_COMPLEX64 = 8,
                      DT_INT64 = 9, DT_BOOL = 10, DT_QINT8 = 11, DT_QUINT8 = 12,
                      DT_QINT32 = 13, DT_BFLOAT16 = 14, DT_QINT16 = 15,
                      DT_QUINT16 = 16, DT_UINT16 = 17, DT_COMPLEX128 = 18,
                      DT_HALF = 19, DT_UINT32 = 22, DT_UINT64 = 23

Value semantics follow TensorFlow's ``Tensor::FromProto``: ``tensor_content``
(when non-empty) must hold exactly ``numel * itemsize`` bytes; otherwise the
typed ``*_val`` field is used, an empty field means all zeros and a field with
fewer values than elements is padded with its *last* value (so a single
``float_val`` fills the whole shape).  More values than elements is reported as
an error.  Repeated numeric fields are accepted packed and unpacked, as any
protobuf parser must.

Every decoding problem (truncated or corrupt data, a field of the wrong wire
type, an impossible shape) raises ``GraphDefError``, a ``ValueError`` whose
message says where in the file it happened.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional, Tuple, Union

import numpy as np

__all__ = [
    "GraphDefError",
    "DT_FLOAT",
    "DT_INT32",
    "DTYPE_NAMES",
    "TensorValue",
    "AttrValue",
    "NodeDef",
    "TFGraph",
    "parse_graph_def",
    "read_graph_def",
    "read_constants",
    "read_nodes",
]

# --------------------------------------------------------------------------- wire format

_VARINT = 0
_FIXED64 = 1
_LEN = 2
_START_GROUP = 3
_END_GROUP = 4
_FIXED32 = 5
_WIRE_NAMES = {0: "varint", 1: "fixed64", 2: "length-delimited", 3: "start-group",
               4: "end-group", 5: "fixed32"}


class GraphDefError(ValueError):
    """The bytes are not a (supported) serialized TensorFlow GraphDef."""


def _read_varint(buf: memoryview, pos: int, end: int, what: str) -> Tuple[int, int]:
    """Decodes a base-128 varint at ``pos``; returns (unsigned value, new pos)."""
    result = 0
    shift = 0
    start = pos
    while True:
        if pos >= end:
            raise GraphDefError(f"truncated varint ({what}) at byte offset {start}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise GraphDefError(f"varint longer than 10 bytes ({what}) at byte offset {start}")
    if result >= 1 << 64:
        raise GraphDefError(f"varint overflows 64 bits ({what}) at byte offset {start}")
    return result, pos


def _signed64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _fields(buf: memoryview, pos: int, end: int, msg: str) -> Iterator[Tuple[int, int, object, int]]:
    """Yields ``(field number, wire type, value, offset)`` for each field of one message.

    ``value`` is an ``int`` for varints, a ``(start, end)`` byte range for
    length-delimited and fixed32/fixed64 fields (offsets into ``buf``).
    """
    while pos < end:
        at = pos
        key, pos = _read_varint(buf, pos, end, msg + " field key")
        number = key >> 3
        wire = key & 7
        if number == 0 or number > 0x1FFFFFFF:
            raise GraphDefError(f"invalid field number {number} in {msg} at byte offset {at}")
        if wire == _VARINT:
            value, pos = _read_varint(buf, pos, end, f"{msg} field {number}")
            yield number, wire, value, at
        elif wire == _LEN:
            length, pos = _read_varint(buf, pos, end, f"{msg} field {number} length")
            if length > end - pos:
                raise GraphDefError(
                    f"truncated data: field {number} of {msg} at byte offset {at} claims "
                    f"{length} bytes but only {end - pos} remain")
            yield number, wire, (pos, pos + length), at
            pos += length
        elif wire == _FIXED32 or wire == _FIXED64:
            size = 4 if wire == _FIXED32 else 8
            if size > end - pos:
                raise GraphDefError(
                    f"truncated data: {size}-byte field {number} of {msg} at byte offset {at}")
            yield number, wire, (pos, pos + size), at
            pos += size
        else:
            raise GraphDefError(
                f"unsupported or invalid wire type {wire} ({_WIRE_NAMES.get(wire, 'unknown')}) "
                f"for field {number} of {msg} at byte offset {at}")
    if pos != end:  # pragma: no cover - _read_varint/_LEN checks keep pos <= end
        raise GraphDefError(f"{msg} overruns its enclosing field")


def _expect(wire: int, expected: int, number: int, msg: str, at: int) -> None:
    if wire != expected:
        raise GraphDefError(
            f"field {number} of {msg} at byte offset {at} has wire type {_WIRE_NAMES.get(wire, wire)}, "
            f"expected {_WIRE_NAMES[expected]} (corrupt data, or not a TensorFlow GraphDef?)")


def _string(buf: memoryview, rng: Tuple[int, int], what: str, at: int) -> str:
    try:
        return bytes(buf[rng[0]:rng[1]]).decode("utf-8")
    except UnicodeDecodeError:
        raise GraphDefError(f"{what} at byte offset {at} is not valid UTF-8") from None


# --------------------------------------------------------------------------- data types

DT_FLOAT = 1
DT_DOUBLE = 2
DT_INT32 = 3
DT_UINT8 = 4
DT_INT16 = 5
DT_INT8 = 6
DT_STRING = 7
DT_COMPLEX64 = 8
DT_INT64 = 9
DT_BOOL = 10
DT_QINT8 = 11
DT_QUINT8 = 12
DT_QINT32 = 13
DT_BFLOAT16 = 14
DT_QINT16 = 15
DT_QUINT16 = 16
DT_UINT16 = 17
DT_COMPLEX128 = 18
DT_HALF = 19
DT_RESOURCE = 20
DT_VARIANT = 21
DT_UINT32 = 22
DT_UINT64 = 23

DTYPE_NAMES: Dict[int, str] = {
    0: "DT_INVALID", 1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8",
    5: "DT_INT16", 6: "DT_INT8", 7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64",
    10: "DT_BOOL", 11: "DT_QINT8", 12: "DT_QUINT8", 13: "DT_QINT32", 14: "DT_BFLOAT16",
    15: "DT_QINT16", 16: "DT_QUINT16", 17: "DT_UINT16", 18: "DT_COMPLEX128", 19: "DT_HALF",
    20: "DT_RESOURCE", 21: "DT_VARIANT", 22: "DT_UINT32", 23: "DT_UINT64",
}

# dtype -> (numpy dtype of tensor_content, TensorProto field with the typed values,
#           how that field is encoded: "f32", "f64", "varint", "bool", "bytes")
# bfloat16 has no numpy type: it is widened to float32 (exactly).
_TYPED: Dict[int, Tuple[str, int, str]] = {
    DT_FLOAT: ("<f4", 5, "f32"),
    DT_DOUBLE: ("<f8", 6, "f64"),
    DT_INT32: ("<i4", 7, "varint"),
    DT_UINT8: ("u1", 7, "varint"),
    DT_INT16: ("<i2", 7, "varint"),
    DT_INT8: ("i1", 7, "varint"),
    DT_QINT8: ("i1", 7, "varint"),
    DT_QUINT8: ("u1", 7, "varint"),
    DT_QINT16: ("<i2", 7, "varint"),
    DT_QUINT16: ("<u2", 7, "varint"),
    DT_QINT32: ("<i4", 7, "varint"),
    DT_UINT16: ("<u2", 7, "varint"),
    DT_INT64: ("<i8", 10, "varint"),
    DT_BOOL: ("?", 11, "bool"),
    DT_HALF: ("<f2", 13, "varint"),
    DT_BFLOAT16: ("<u2", 13, "varint"),  # bit patterns, widened below
    DT_COMPLEX64: ("<c8", 9, "f32"),
    DT_COMPLEX128: ("<c16", 12, "f64"),
    DT_UINT32: ("<u4", 16, "varint"),
    DT_UINT64: ("<u8", 17, "varint"),
}


#: Refuse to materialise more elements than this from one TensorProto (a corrupt shape with a
#: broadcast value could otherwise ask for terabytes); protobuf messages are < 2 GiB anyway.
_MAX_ELEMENTS = 1 << 31


def _dtype_name(dtype: int) -> str:
    return DTYPE_NAMES.get(dtype, f"DataType {dtype}")


# --------------------------------------------------------------------------- messages


@dataclass
class TensorValue:
    """A decoded ``TensorProto``: the raw pieces; ``to_numpy()`` builds the array."""

    dtype: int = 0
    shape: Optional[List[int]] = None  # None: unknown rank
    content: Optional[Tuple[int, int]] = None  # byte range of tensor_content
    values: Dict[int, List[Tuple[int, int, object, int]]] = field(default_factory=dict)
    offset: int = 0

    def to_numpy(self, buf: memoryview, what: str = "tensor") -> np.ndarray:
        where = f"{what} (TensorProto at byte offset {self.offset})"
        if self.shape is None:
            raise GraphDefError(f"{where}: unknown rank")
        for d in self.shape:
            if d < 0:
                raise GraphDefError(f"{where}: unknown dimension in shape {self.shape}")
        numel = 1
        for d in self.shape:
            numel *= d
        shape = tuple(self.shape)
        if numel > _MAX_ELEMENTS:
            raise GraphDefError(f"{where}: implausible shape {list(shape)} ({numel} elements)")
        if self.dtype == DT_STRING:
            if self.content is not None and self.content[1] > self.content[0]:
                raise GraphDefError(f"{where}: DT_STRING tensor_content is not supported")
            items = []
            for _n, wire, rng, at in self.values.get(8, []):
                _expect(wire, _LEN, 8, "TensorProto", at)
                items.append(bytes(buf[rng[0]:rng[1]]))  # type: ignore[index]
            return _fill(np.array(items, dtype=object), numel, shape, where)
        if self.dtype not in _TYPED:
            raise GraphDefError(f"{where}: unsupported dtype {_dtype_name(self.dtype)}")
        np_dtype, number, encoding = _TYPED[self.dtype]
        if self.content is not None and self.content[1] > self.content[0]:
            a, b = self.content
            itemsize = np.dtype(np_dtype).itemsize
            if b - a != numel * itemsize:
                raise GraphDefError(
                    f"{where}: tensor_content has {b - a} bytes, shape {list(shape)} of "
                    f"{_dtype_name(self.dtype)} needs {numel * itemsize}")
            arr = np.frombuffer(buf[a:b], dtype=np_dtype).reshape(shape).copy()
        else:
            arr = _fill(_decode_values(buf, self.values.get(number, []), encoding, np_dtype, where,
                                       number), numel, shape, where)
        if self.dtype == DT_BFLOAT16:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr


def _decode_values(buf: memoryview, entries: List[Tuple[int, int, object, int]], encoding: str,
                   np_dtype: str, where: str, number: int) -> np.ndarray:
    """Decodes one repeated numeric field given as any mix of packed and unpacked entries."""
    chunks: List[np.ndarray] = []
    if encoding in ("f32", "f64"):
        wire_single = _FIXED32 if encoding == "f32" else _FIXED64
        raw_dtype = "<f4" if encoding == "f32" else "<f8"
        size = 4 if encoding == "f32" else 8
        for _n, wire, rng, at in entries:
            if wire != _LEN and wire != wire_single:
                _expect(wire, wire_single, number, "TensorProto", at)
            a, b = rng  # type: ignore[misc]
            if wire == _LEN and (b - a) % size:
                raise GraphDefError(
                    f"{where}: packed field {number} at byte offset {at} has {b - a} bytes, "
                    f"not a multiple of {size}")
            chunks.append(np.frombuffer(buf[a:b], dtype=raw_dtype))
        flat = np.concatenate(chunks) if chunks else np.zeros(0, raw_dtype)
        if np_dtype in ("<c8", "<c16"):
            if flat.size % 2:
                raise GraphDefError(f"{where}: complex values need an even number of floats")
            return flat.view(np_dtype)
        return flat.astype(np_dtype)
    ints: List[int] = []
    for _n, wire, value, at in entries:
        if wire == _VARINT:
            ints.append(int(value))  # type: ignore[arg-type]
        elif wire == _LEN:
            a, b = value  # type: ignore[misc]
            pos = a
            while pos < b:
                v, pos = _read_varint(buf, pos, b, f"packed field {number}")
                ints.append(v)
        else:
            _expect(wire, _VARINT, number, "TensorProto", at)
    if encoding == "bool":
        return np.array([v != 0 for v in ints], dtype=np.bool_)
    if np_dtype == "<f2":  # half_val carries the 16-bit pattern in an int32
        return np.array([v & 0xFFFF for v in ints], dtype="<u2").view("<f2")
    if np_dtype == "<u2" and number == 13:  # bfloat16 bit patterns
        return np.array([v & 0xFFFF for v in ints], dtype="<u2")
    # int32/int64 varints of negative numbers are sign-extended to 64 bits; TF keeps
    # int8/int16/uint8/uint16 in int_val and narrows them with a C++ cast: mirror both.
    bits = np.dtype(np_dtype).itemsize * 8
    signed = np.dtype(np_dtype).kind == "i"
    mask = (1 << bits) - 1
    out = []
    for v in ints:
        u = v & mask
        if signed and u >= 1 << (bits - 1):
            u -= 1 << bits
        out.append(u)
    return np.array(out, dtype=np_dtype)


def _fill(flat: np.ndarray, numel: int, shape: Tuple[int, ...], where: str) -> np.ndarray:
    """TF's FromProtoField: no values -> zeros, fewer values -> repeat the last one."""
    n = flat.shape[0]
    if n > numel:
        raise GraphDefError(f"{where}: {n} values for shape {list(shape)} ({numel} elements)")
    if n == numel:
        return flat.reshape(shape)
    if n == 0:
        if flat.dtype == object:
            out = np.empty(numel, dtype=object)
            out[:] = b""
            return out.reshape(shape)
        return np.zeros(shape, dtype=flat.dtype)
    out = np.empty(numel, dtype=flat.dtype)
    out[:n] = flat
    out[n:] = flat[n - 1]
    return out.reshape(shape)


def _parse_shape(buf: memoryview, rng: Tuple[int, int], at: int) -> Optional[List[int]]:
    dims: List[int] = []
    unknown_rank = False
    for number, wire, value, fat in _fields(buf, rng[0], rng[1], "TensorShapeProto"):
        if number == 2:
            _expect(wire, _LEN, number, "TensorShapeProto", fat)
            size = 0
            a, b = value  # type: ignore[misc]
            for dn, dw, dv, dat in _fields(buf, a, b, "TensorShapeProto.Dim"):
                if dn == 1:
                    _expect(dw, _VARINT, dn, "TensorShapeProto.Dim", dat)
                    size = _signed64(int(dv))  # type: ignore[arg-type]
            dims.append(size)
        elif number == 3:
            _expect(wire, _VARINT, number, "TensorShapeProto", fat)
            unknown_rank = value != 0
    return None if unknown_rank else dims


def _parse_tensor(buf: memoryview, rng: Tuple[int, int], at: int) -> TensorValue:
    t = TensorValue(shape=[], offset=at)
    for number, wire, value, fat in _fields(buf, rng[0], rng[1], "TensorProto"):
        if number == 1:
            _expect(wire, _VARINT, number, "TensorProto", fat)
            t.dtype = int(value)  # type: ignore[arg-type]
        elif number == 2:
            _expect(wire, _LEN, number, "TensorProto", fat)
            t.shape = _parse_shape(buf, value, fat)  # type: ignore[arg-type]
        elif number == 4:
            _expect(wire, _LEN, number, "TensorProto", fat)
            t.content = value  # type: ignore[assignment]
        elif number in (5, 6, 7, 8, 9, 10, 11, 12, 13, 16, 17):
            t.values.setdefault(number, []).append((number, wire, value, fat))
        # version_number (3), resource/variant/float8 values: not needed
    return t


@dataclass
class AttrValue:
    """The parts of an ``AttrValue`` this reader understands (others are skipped)."""

    type: Optional[int] = None
    tensor: Optional[TensorValue] = None
    s: Optional[bytes] = None
    i: Optional[int] = None
    f: Optional[float] = None
    b: Optional[bool] = None


def _parse_attr_value(buf: memoryview, rng: Tuple[int, int], at: int) -> AttrValue:
    v = AttrValue()
    for number, wire, value, fat in _fields(buf, rng[0], rng[1], "AttrValue"):
        if number == 6:
            _expect(wire, _VARINT, number, "AttrValue", fat)
            v.type = int(value)  # type: ignore[arg-type]
        elif number == 8:
            _expect(wire, _LEN, number, "AttrValue", fat)
            v.tensor = _parse_tensor(buf, value, fat)  # type: ignore[arg-type]
        elif number == 2:
            _expect(wire, _LEN, number, "AttrValue", fat)
            a, b = value  # type: ignore[misc]
            v.s = bytes(buf[a:b])
        elif number == 3:
            _expect(wire, _VARINT, number, "AttrValue", fat)
            v.i = _signed64(int(value))  # type: ignore[arg-type]
        elif number == 4:
            _expect(wire, _FIXED32, number, "AttrValue", fat)
            a, b = value  # type: ignore[misc]
            v.f = struct.unpack("<f", buf[a:b])[0]
        elif number == 5:
            _expect(wire, _VARINT, number, "AttrValue", fat)
            v.b = value != 0
        # list (1), shape (7), placeholder (9), func (10): not needed
    return v


@dataclass
class NodeDef:
    name: str = ""
    op: str = ""
    inputs: List[str] = field(default_factory=list)
    device: str = ""
    attr: Dict[str, AttrValue] = field(default_factory=dict)
    offset: int = 0


def _parse_node(buf: memoryview, rng: Tuple[int, int], at: int) -> NodeDef:
    node = NodeDef(offset=at)
    for number, wire, value, fat in _fields(buf, rng[0], rng[1], "NodeDef"):
        if number in (1, 2, 3, 4):
            _expect(wire, _LEN, number, "NodeDef", fat)
            text = _string(buf, value, f"NodeDef field {number}", fat)  # type: ignore[arg-type]
            if number == 1:
                node.name = text
            elif number == 2:
                node.op = text
            elif number == 3:
                node.inputs.append(text)
            else:
                node.device = text
        elif number == 5:
            _expect(wire, _LEN, number, "NodeDef", fat)
            key = ""
            attr = AttrValue()
            a, b = value  # type: ignore[misc]
            for en, ew, ev, eat in _fields(buf, a, b, "NodeDef.attr entry"):
                if en == 1:
                    _expect(ew, _LEN, en, "NodeDef.attr entry", eat)
                    key = _string(buf, ev, "attr name", eat)  # type: ignore[arg-type]
                elif en == 2:
                    _expect(ew, _LEN, en, "NodeDef.attr entry", eat)
                    attr = _parse_attr_value(buf, ev, eat)  # type: ignore[arg-type]
            node.attr[key] = attr
    return node


# --------------------------------------------------------------------------- graph


class TFGraph:
    """The decoded nodes of a GraphDef plus the buffer their tensors point into."""

    def __init__(self, data: Union[bytes, bytearray, memoryview], nodes: List[NodeDef]) -> None:
        self._buf = memoryview(data)
        self.nodes = nodes

    def node_list(self) -> List[Tuple[str, str, List[str]]]:
        """``(name, op, inputs)`` of every node, in file order."""
        return [(n.name, n.op, list(n.inputs)) for n in self.nodes]

    def node(self, name: str) -> NodeDef:
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def constant(self, node: NodeDef) -> np.ndarray:
        """The value of one ``Const`` node as a numpy array."""
        what = f"Const node '{node.name}'"
        value = node.attr.get("value")
        if value is None or value.tensor is None:
            raise GraphDefError(f"{what} has no 'value' tensor attr")
        dtype_attr = node.attr.get("dtype")
        if dtype_attr is not None and dtype_attr.type is not None and value.tensor.dtype != dtype_attr.type:
            raise GraphDefError(
                f"{what}: dtype attr {_dtype_name(dtype_attr.type)} does not match its tensor's "
                f"{_dtype_name(value.tensor.dtype)}")
        return value.tensor.to_numpy(self._buf, what)

    def constants(self, strict: bool = True) -> Dict[str, np.ndarray]:
        """``name -> ndarray`` for every ``Const`` node.

        With ``strict=False`` constants of a dtype this reader cannot decode
        (resource, variant, ...) are left out instead of raising.
        """
        out: Dict[str, np.ndarray] = {}
        for n in self.nodes:
            if n.op != "Const":
                continue
            if n.name in out:
                raise GraphDefError(f"duplicate node name '{n.name}'")
            try:
                out[n.name] = self.constant(n)
            except GraphDefError:
                if strict:
                    raise
                tensor = n.attr.get("value")
                if tensor is not None and tensor.tensor is not None and tensor.tensor.dtype in _TYPED:
                    raise  # decodable type but corrupt data: always an error
        return out


def parse_graph_def(data: Union[bytes, bytearray, memoryview]) -> TFGraph:
    """Decodes a serialized ``GraphDef``; raises ``GraphDefError`` on malformed input."""
    buf = memoryview(data)
    if buf.ndim != 1 or buf.itemsize != 1:
        buf = buf.cast("B")
    nodes: List[NodeDef] = []
    for number, wire, value, at in _fields(buf, 0, len(buf), "GraphDef"):
        if number == 1:
            _expect(wire, _LEN, number, "GraphDef", at)
            nodes.append(_parse_node(buf, value, at))  # type: ignore[arg-type]
        # library (2), version (3), versions (4), debug_info (5): skipped
    return TFGraph(buf, nodes)


def read_graph_def(path: Union[str, "os.PathLike[str]"]) -> TFGraph:
    """Reads and decodes a ``.pb`` file (``OSError`` if it cannot be read)."""
    with open(path, "rb") as f:
        data = f.read()
    try:
        return parse_graph_def(data)
    except GraphDefError as e:
        raise GraphDefError(f"{os.fspath(path)}: {e}") from None


def read_constants(path: Union[str, "os.PathLike[str]"]) -> Dict[str, np.ndarray]:
    """``name -> ndarray`` of every ``Const`` node of a frozen graph file."""
    graph = read_graph_def(path)
    try:
        return graph.constants()
    except GraphDefError as e:
        raise GraphDefError(f"{os.fspath(path)}: {e}") from None


def read_nodes(path: Union[str, "os.PathLike[str]"]) -> List[Tuple[str, str, List[str]]]:
    """``(name, op, inputs)`` of every node of a graph file, in file order."""
    return read_graph_def(path).node_list()
