"""limn: portrait image models on CPU and CUDA, from Python.

Cartoonize whole photos, detect faces and restore them with models converted to limn files
(TorchScript with metadata). Images are numpy ``uint8`` arrays of shape ``(height, width, 3)`` (RGB)
or ``(height, width, 4)`` (RGBA); results are new arrays. The work runs in the C++ library with the
GIL released, so Python threads can run models in parallel (one model may serve many threads).

    import limn
    with limn.Model("classical-cartoon.pt", device="auto") as model:
        photo = limn.load_image("portrait.jpg")
        limn.save_image("cartoon.png", model.cartoonize(photo))

Failures raise :class:`limn.Error` subclasses (one per library status) carrying the library's
message; each also derives from the matching built-in exception (``ValueError``, ``OSError``,
``MemoryError``, ...).
"""
from __future__ import annotations

import atexit
import builtins
import concurrent.futures
import math
import os
import threading
import warnings
import typing
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np

# Large CPU tensors on transparent huge pages (as liblimn.so asks when it is loaded; see
# limn.h): LibTorch reads this at its first allocation, so it only takes effect when limn is
# imported before torch. LIMN_CPU_HUGE_PAGES=0 leaves it alone.
if os.environ.get("LIMN_CPU_HUGE_PAGES") != "0":
    os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")

# LibTorch (and the CUDA runtime of the torch wheel) must be loaded before liblimn.so, which links
# against them; importing torch first finds them wherever pip put the torch wheel.
import torch  # noqa: F401  (imported for its shared libraries)

from . import _limn

__all__ = [
    "__version__", "build_info", "cuda_available", "devices", "resolve_device",
    "set_memory_limit", "release_cached_memory", "reset_peak_memory", "memory_stats",
    "load_image", "save_image", "encode_image", "write_file", "read_icc_profile", "model_path",
    "jobs_start", "jobs_shutdown",
    "Model", "ModelInfo", "Face", "PipelineStats", "DeviceInfo", "MemoryStats",
    "Error", "InvalidArgumentError", "FileError", "InvalidModelError", "WrongModelKindError",
    "DeviceUnavailableError", "UnsupportedError", "OutOfMemoryError", "ImageTooLargeError",
    "SizeRuleError", "NonFiniteError", "CancelledError", "DeadlineExceededError", "InternalError",
    "InvalidImageError",
]

__version__: str = _limn.version()

ImageArray = np.ndarray
PathLike = Union[str, "os.PathLike[str]"]
Progress = Callable[[int, int], Optional[bool]]

# ---- Errors --------------------------------------------------------------------------------

# The library's name tables (limn_name, limn.h): statuses, precisions, kinds, file and pixel formats.
_NAMES: Dict[str, Dict[str, int]] = _limn.names()
_STATUS = _NAMES["status"]


class Error(Exception):
    """A failure reported by the limn library; ``str(e)`` is the library's message."""

    status: int = _STATUS["internal"]
    """The ``limn_status`` value (see ``limn.h``)."""


class InvalidArgumentError(Error, ValueError):
    """A bad argument: option value, image description, closed model (``LIMN_ERR_INVALID_ARGUMENT``)."""
    status = _STATUS["invalid_argument"]


class FileError(Error, OSError):
    """A file could not be opened, read or written (``LIMN_ERR_IO``)."""
    status = _STATUS["io"]


class InvalidModelError(Error, ValueError):
    """Not a limn model file, corrupt, truncated, or failing its self-test (``LIMN_ERR_INVALID_MODEL``)."""
    status = _STATUS["invalid_model"]


class WrongModelKindError(Error, ValueError):
    """A valid model of another kind than the call needs (``LIMN_ERR_WRONG_MODEL_KIND``)."""
    status = _STATUS["wrong_model_kind"]


class DeviceUnavailableError(Error, RuntimeError):
    """The device does not exist or cannot be used (``LIMN_ERR_DEVICE_UNAVAILABLE``)."""
    status = _STATUS["device_unavailable"]


class UnsupportedError(Error, RuntimeError):
    """Something the device or model cannot do, e.g. a precision (``LIMN_ERR_UNSUPPORTED``)."""
    status = _STATUS["unsupported"]


class OutOfMemoryError(Error, MemoryError):
    """Device or host memory exhausted; the model stays usable (``LIMN_ERR_OUT_OF_MEMORY``)."""
    status = _STATUS["out_of_memory"]


class ImageTooLargeError(Error, ValueError):
    """More pixels than the model's ``max_pixels`` (``LIMN_ERR_IMAGE_TOO_LARGE``)."""
    status = _STATUS["image_too_large"]


class SizeRuleError(Error, ValueError):
    """The image size does not fit the model's size rule, for raw runs (``LIMN_ERR_SIZE_RULE``)."""
    status = _STATUS["size_rule"]


class NonFiniteError(Error, ArithmeticError):
    """The network produced NaN or Inf (``LIMN_ERR_NON_FINITE``)."""
    status = _STATUS["non_finite"]


class CancelledError(Error):
    """A progress callback returned False, or a job was cancelled (``LIMN_ERR_CANCELLED``)."""
    status = _STATUS["cancelled"]


class DeadlineExceededError(Error, builtins.TimeoutError):
    """The call's ``timeout`` expired (``LIMN_ERR_TIMEOUT``)."""
    status = _STATUS["timeout"]


class InternalError(Error, RuntimeError):
    """Anything else; the message says what (``LIMN_ERR_INTERNAL``)."""
    status = _STATUS["internal"]


class InvalidImageError(Error, ValueError):
    """An image file that is corrupt, truncated or of no known format (``LIMN_ERR_INVALID_IMAGE``)."""
    status = _STATUS["invalid_image"]


_ERROR_CLASSES = {c.status: c for c in (InvalidArgumentError, FileError, InvalidModelError, WrongModelKindError,
                                         DeviceUnavailableError, UnsupportedError, OutOfMemoryError,
                                         ImageTooLargeError, SizeRuleError, NonFiniteError, CancelledError,
                                         DeadlineExceededError, InternalError, InvalidImageError)}
# One class per status value (the library's order); a status without its own class is an Error.
_limn._set_error_classes([_ERROR_CLASSES.get(v, Error) for v in sorted(_STATUS.values())])

# ---- Names of the C enums ----------------------------------------------------------------------

# The library's defaults and enum names (its *_options_init and name tables): never retyped here.
# C floats are shown as the decimals they were written as (0.1, not 0.10000000149011612).
def _decimal(value: Any) -> Any:
    return float(f"{value:.6g}") if isinstance(value, float) else value


def _fields(options: Any, **renamed: str) -> Dict[str, Any]:
    """The fields of a C options object with the library's defaults, some under the keyword name
    the package gives them."""
    return {renamed.get(k, k): _decimal(getattr(options, k)) for k in options._fields}


_D = {k: _decimal(v) for k, v in _limn.defaults().items()}
_D.update(_fields(_limn.RestoreFacesOptions(), strength="restore_strength", feather="restore_feather",
                  timeout_ms="restore_timeout_ms"))
_D.update(_fields(_limn.DetectFacesOptions(), max_side="detect_max_side"))
_D.update(_fields(_limn.CartoonizeOptions(), tile_size="tile"))
_PRECISIONS = dict(_NAMES["precision"])
_KINDS = {name: value for name, value in _NAMES["model_kind"].items() if name != "any"}
_FILE_FORMATS = {name: value for name, value in _NAMES["file_format"].items() if name != "auto"}
_LOAD_MODES = {"auto": 0, "rgb": _NAMES["pixel_format"]["rgb8"], "rgba": _NAMES["pixel_format"]["rgba8"]}


def _options(options: Any, **values: Any) -> Any:
    """A C options object (made with the library's defaults) with `values` set, by field name."""
    for name, value in values.items():
        setattr(options, name, value)
    return options


def _detect_options(score_threshold: float, nms_iou: float, max_faces: int, max_side: int, side_name: str) -> Any:
    return _options(_limn.DetectFacesOptions(), score_threshold=float(score_threshold), nms_iou=float(nms_iou),
                    max_faces=_c_int(max_faces, "max_faces", "int32"), max_side=_c_int(max_side, side_name, "int32"))


def _choice(value: str, table: Dict[str, int], what: str) -> int:
    if not isinstance(value, str) or value.lower() not in table:
        raise ValueError(f"invalid {what} {value!r}: expected one of {', '.join(sorted(table))}")
    return table[value.lower()]


def _name_of(value: int, table: Dict[str, int]) -> str:
    return next(k for k, v in table.items() if v == value)


def _tristate(value: Optional[bool]) -> int:
    return -1 if value is None else int(bool(value))


# The values each C integer type of the bindings' arguments (module.cpp) can hold.
_C_INT_RANGES = {"int32": (-2**31, 2**31 - 1), "uint64": (0, 2**64 - 1)}


def _c_int(value: Any, name: str, c_type: str) -> int:
    """``value`` as int() makes it (True is 1; None stays a TypeError) for an argument of C type
    ``c_type``; one the type cannot hold is refused here, by name, as pybind11 would only say
    'incompatible function arguments' and print the whole call. Values in range but invalid are
    the library's to refuse, in its words."""
    low, high = _C_INT_RANGES[c_type]
    try:
        number = int(value)
    except OverflowError:  # float("inf")
        number = None
    if number is None or not low <= number <= high:
        raise InvalidArgumentError(f"{name}={value!r} is out of range: {low}..{high} ({c_type})")
    return number


def _timeout_ms(timeout: Optional[float]) -> int:
    if timeout is None:
        return 0
    # An int is checked as an int: one past any float (10**400) waits as long as the C type allows.
    if not (timeout > 0 and (isinstance(timeout, int) or math.isfinite(timeout))):
        raise ValueError(f"invalid timeout {timeout!r}: expected seconds > 0, or None")
    return max(1, min(2**32 - 1, math.ceil(timeout * 1000)))


# ---- Library, devices and memory ---------------------------------------------------------------


@dataclass(frozen=True)
class DeviceInfo:
    """A device the library can run on (see ``limn_device_info``)."""
    type: str              #: "cpu" or "cuda"
    index: int             #: CUDA ordinal; 0 for the CPU
    id: str                #: canonical device string: "cpu", "cuda:0", ...
    name: str              #: GPU or CPU model
    total_memory: int      #: bytes (device memory, or RAM for the CPU)
    free_memory: int       #: bytes free now
    compute_capability: int  #: major * 10 + minor for CUDA; 0 for the CPU
    multiprocessors: int   #: CUDA SMs; logical cores for the CPU
    native_precisions: str = "fp32"  #: computed in hardware, e.g. "fp32 bf16" (AVX512-BF16 or AMX-BF16)
    auto_precision: str = "fp32"     #: what precision "auto" picks here before a model's own check


@dataclass(frozen=True)
class MemoryStats:
    """Memory of a device as the library sees it (see ``limn_memory_stats``)."""
    allocated: int     #: bytes in live tensors (on the CPU: those of limn's calls)
    reserved: int      #: held by the CUDA caching allocator; the process's resident set on the CPU
    peak_allocated: int
    peak_reserved: int
    limit: int         #: cap set by :func:`set_memory_limit`; 0 = none
    device_total: int
    device_free: int
    cached: int = 0    #: held unused for reuse (CUDA's cached blocks; the CPU arenas)
    allocations: int = 0  #: blocks of tensor memory limn's calls took from the system since start


def build_info() -> str:
    """How the library was built: version, LibTorch and CUDA versions, compiler."""
    return _limn.build_info()


def cuda_available() -> bool:
    """True if at least one CUDA device can be used now."""
    return bool(_limn.cuda_available())


def devices() -> List[DeviceInfo]:
    """The CPU followed by each usable CUDA device."""
    return [DeviceInfo(**d) for d in _limn.devices()]


def resolve_device(device: str = "auto") -> str:
    """The canonical id ("cpu", "cuda:0", ...) a device string ("auto", "cuda", ...) stands for."""
    return _limn.resolve_device(device)


def set_memory_limit(device: str, bytes: int) -> None:
    """Caps the memory limn may use on ``device`` (0 removes the cap). On CUDA, allocations beyond
    the cap fail with :class:`OutOfMemoryError`; on the CPU it is a budget for tile sizes."""
    if not isinstance(bytes, int) or isinstance(bytes, bool) or bytes < 0:
        raise ValueError(f"set_memory_limit: bytes must be an integer >= 0 (0 removes the cap), not {bytes!r}")
    _limn.set_memory_limit(device, _c_int(bytes, "bytes", "uint64"))


def release_cached_memory(device: str) -> None:
    """Returns cached, unused blocks: CUDA's to the driver, the CPU arenas' (each model keeps the
    memory of its runs between runs) to the system."""
    _limn.release_cached_memory(device)


def reset_peak_memory(device: str) -> None:
    """Resets the peak counters of ``device`` to the current values."""
    _limn.reset_peak_memory(device)


def memory_stats(device: str) -> MemoryStats:
    """Allocated, reserved and peak bytes, cap and device memory of ``device``."""
    return MemoryStats(**_limn.memory_stats(device))


# ---- Image files ---------------------------------------------------------------------------------


def load_image(source: Union[PathLike, bytes, bytearray, memoryview, "typing.BinaryIO"], mode: str = "auto", *,
               apply_orientation: bool = True, max_pixels: int = _D["max_pixels"]) -> ImageArray:
    """Decodes an image file (a path, or the encoded bytes) to a new ``uint8`` array.

    ``mode``: "auto" (RGBA if the file has alpha, else RGB), "rgb" or "rgba". JPEG pixels are
    turned upright per their EXIF orientation unless ``apply_orientation`` is False. Files larger
    than ``max_pixels`` (0: no limit) are refused before decoding. Raises :class:`FileError` for
    a missing file and :class:`InvalidImageError` for undecodable bytes. ``bytes`` naming an
    existing file are a path, as with :func:`open`; a file object (``open(..., "rb")``,
    ``io.BytesIO``) is read to its end.
    """
    return _limn.load_image(_image_source(source, "load_image"), _choice(mode, _LOAD_MODES, "mode"),
                            bool(apply_orientation), _c_int(max_pixels, "max_pixels", "uint64"))


def _image_source(source: object, what: str) -> Union[str, bytes, bytearray, memoryview]:
    """A path (str) or encoded bytes for the library: a binary file object is read to its end,
    bytes naming an existing file are that path (as with :func:`open`), os.PathLike becomes str."""
    if hasattr(source, "read"):
        source = source.read()
        if not isinstance(source, (bytes, bytearray, memoryview)):
            raise TypeError(f"{what} needs a binary file object (open(path, 'rb'), io.BytesIO), not a text one")
    if isinstance(source, bytes) and len(source) < 4096 and b"\0" not in source and os.path.isfile(source):
        source = os.fsdecode(source)
    if _is_pil(source):
        raise TypeError(f"{what} reads a path, encoded bytes or a binary file object, not a PIL image; "
                        "pass the PIL image itself to the model's methods or save_image, or use np.asarray(image)")
    if not isinstance(source, (bytes, bytearray, memoryview)):
        source = os.fspath(source)
    return source


def _file_format(format: Optional[str]) -> int:
    return 0 if format is None else _choice(format, _FILE_FORMATS, "format")


def save_image(path: Union[PathLike, "typing.BinaryIO"], image: ImageArray, *, quality: int = _D["quality"],
               format: Optional[str] = None, icc_profile: Optional[bytes] = None) -> None:
    """Writes ``image`` to ``path`` (format from the extension unless ``format`` is "png", "jpeg",
    "bmp", "tga" or "webp"), through a temporary file renamed into place: never a half-written file. A
    binary file object (``io.BytesIO``, ``open(..., "wb")``) receives the encoded bytes; its format
    is ``format``, else its name's extension. ``icc_profile`` (e.g. from :func:`read_icc_profile`)
    is embedded in PNG, JPEG and WebP files; BMP and TGA cannot hold one. Bytes without an ICC
    profile's header raise :class:`InvalidArgumentError`."""
    if hasattr(path, "write"):
        if format is None:
            ext = os.path.splitext(str(getattr(path, "name", "")))[1].lower().lstrip(".")
            if ext not in _FILE_FORMATS:
                raise ValueError("save_image to a file object needs format= ('png', 'jpeg', 'bmp', 'tga' or 'webp')")
            format = ext
        path.write(encode_image(image, format, quality=quality, icc_profile=icc_profile))
        return
    _limn.save_image(os.fspath(path), image, _file_format(format), _c_int(quality, "quality", "int32"),
                     _icc(icc_profile))


def encode_image(image: ImageArray, format: str = "png", *, quality: int = _D["quality"],
                 icc_profile: Optional[bytes] = None) -> bytes:
    """Encodes ``image`` in memory as "png", "jpeg", "bmp", "tga" or "webp" (quality 100: lossless
    WebP), with ``icc_profile`` embedded where the format can hold it."""
    return _limn.encode_image(image, _choice(format, _FILE_FORMATS, "format"),
                              _c_int(quality, "quality", "int32"), _icc(icc_profile))


def write_file(path: PathLike, data: Union[bytes, bytearray, memoryview]) -> None:
    """Writes ``data`` (e.g. from :func:`encode_image`) to ``path`` as :func:`save_image` writes its
    files: through a short-named temporary file in the same folder, renamed into place, so readers
    see the old file or the new one and a failure leaves nothing; a symbolic link is written
    through (the link stays). Raises :class:`FileError` naming the path and the reason."""
    _limn.write_file(os.fspath(path), bytes(data))


def _icc(profile: Optional[bytes]) -> Optional[bytes]:
    """The profile to embed (None for none); the library refuses bytes that are not a profile."""
    if isinstance(profile, (bytearray, memoryview)):
        profile = bytes(profile)
    if profile is not None and not isinstance(profile, bytes):
        raise TypeError(f"icc_profile must be bytes or None, not {type(profile).__name__}")
    return profile or None


def read_icc_profile(source: Union[PathLike, bytes, bytearray, memoryview, "typing.BinaryIO"]) -> Optional[bytes]:
    """The ICC colour profile embedded in an image file (JPEG, PNG or WebP; a path, the encoded
    bytes or a binary file object), or None. Pass it to :func:`save_image` to keep a photo's
    colours; PIL images carry theirs in ``image.info["icc_profile"]``, which limn keeps."""
    return _limn.read_icc_profile(_image_source(source, "read_icc_profile"))


# ---- Models ------------------------------------------------------------------------------------


def _is_pil(image: object) -> bool:
    return hasattr(image, "mode") and hasattr(image, "convert") and hasattr(image, "getbands")


def _image_result(result: Tuple[ImageArray, Dict[str, Any]], image: object, return_stats: bool) -> Any:
    """A pipeline's (image, stats) as its method returns it."""
    out = _like(result[0], image)
    return (out, PipelineStats(**result[1])) if return_stats else out


# ---- Asynchronous jobs -----------------------------------------------------------------------

def jobs_start(workers: int = 0) -> None:
    """Starts the library's worker pool, which runs :meth:`Model.submit` jobs, with ``workers``
    threads (0: the default, 2). Optional: the first submit starts the default pool. Raises
    :class:`InvalidArgumentError` if it runs already with another size (:func:`jobs_shutdown` first)."""
    _limn.jobs_start(_c_int(workers, "workers", "int32"))


def jobs_shutdown() -> None:
    """Cancels every job not yet ended, waits until each has ended (its future done) and stops the
    pool's workers; the next submit starts it again. Called at exit."""
    _limn.jobs_shutdown()


atexit.register(_limn.jobs_shutdown)  # no job outlives the interpreter it reports to

# The future a Model method returns instead of calling the library, while Model.submit calls it.
_SUBMITTING = threading.local()


class _JobFuture(concurrent.futures.Future):  # type: ignore[type-arg]
    """A job of the library's worker pool. cancel() reaches the library: a job not yet started never
    runs, and a running pipeline stops at its next tile or face (a raw run or a detection that has
    started finishes, and its result is dropped). A cancelled future counts as done for
    concurrent.futures.wait() and as_completed() once its job has ended; running() stays False."""

    def __init__(self) -> None:
        super().__init__()
        self._job: Any = None

    def _start(self, submit: Callable[..., Any], args: Tuple[Any, ...], finish: Callable[[Any], Any]) -> None:
        def done(result: Any, error: Optional[BaseException]) -> None:  # on a pool worker, once
            if error is None:
                try:
                    result = finish(result)
                except BaseException as e:  # noqa: BLE001 (it belongs to the future)
                    error = e
            try:
                if isinstance(error, CancelledError):  # by cancel(), a closed model or pool, or progress
                    concurrent.futures.Future.cancel(self)
                elif error is not None:
                    self.set_exception(error)
                else:
                    self.set_result(result)
            except concurrent.futures.InvalidStateError:
                pass  # cancelled meanwhile: the result is dropped
            if self.cancelled():  # now the job has ended: wait() and as_completed() count it
                self.set_running_or_notify_cancel()

        self._job = submit(*args, done)

    def cancel(self) -> bool:
        if self.done():
            return False
        job = self._job
        if job is not None:
            job.cancel()
        return super().cancel()


def _like(result: ImageArray, image: object) -> object:
    """A PIL image in gives a PIL image out, in the input's mode family (grayscale stays grayscale,
    CMYK stays CMYK, palette becomes RGB or RGBA) with its ICC profile; arrays stay arrays."""
    if not _is_pil(image):
        return result
    from PIL import Image

    out = Image.fromarray(result, "RGBA" if result.shape[2] == 4 else "RGB")
    mode = image.mode
    if mode in ("L", "1", "CMYK", "YCbCr", "HSV", "LAB"):
        out = out.convert(mode)
    elif mode in ("LA", "La"):
        out = out.convert("LA")
    if image.info.get("icc_profile"):  # the colour space is the input's, so is its profile
        out.info["icc_profile"] = image.info["icc_profile"]
    return out


def model_path(source: PathLike) -> str:
    """The file a model argument stands for: itself when it is a file (or not a model name); for a
    name fetched by ``limn models fetch``, its file in the model cache ($LIMN_HOME, else
    $XDG_CACHE_HOME/limn, else ~/.cache/limn). A name not fetched is a FileError saying how to
    fetch it. ``Model(name)`` resolves names the same way (preferring the CPU package)."""
    return _limn.model_path(os.fspath(source))


@dataclass(frozen=True, eq=False)
class ModelInfo:
    """What a loaded model is and where it runs."""
    kind: str                 #: "cartoon", "face_restore" or "face_detect"
    name: str
    device: str               #: canonical id it runs on, e.g. "cuda:0"
    precision: str            #: "fp32" (IEEE, on CUDA too), "fp16", "bf16" or "tf32"
    format_version: int       #: of the limn metadata inside the file
    size_multiple: int        #: width and height of raw runs must be multiples of this
    fixed_size: Optional[Tuple[int, int]]  #: (width, height) the model takes, or None for any
    tile_margin: int
    face_template: Optional[np.ndarray]    #: (5, 2) template points at model size (face_restore)
    source: str
    license: str
    file_format: str = "torchscript"  #: "torchscript" or "pt2" (a compiled package)
    #: "" or why ``precision`` is not what "auto" gives on this device (fp16 failed the self-test)
    precision_note: str = ""
    #: "" or "head": a cartoon network for aligned face crops of ``crop_size`` pixels, the face on
    #: ``face_template`` (DCT-Net's head network)
    role: str = ""
    crop_size: int = 0


@dataclass(frozen=True, eq=False)
class Face:
    """A face in a photo: box (x0, y0, x1, y1), detector score, and 5 landmarks (x, y) — left eye,
    right eye, nose tip, left and right mouth corner, "left" as seen in the picture. Pixel centres
    are at integer coordinates."""
    box: Tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray  #: float32 (5, 2)

    @staticmethod
    def from_landmarks(landmarks: "np.typing.ArrayLike", score: float = 1.0) -> "Face":
        """A face known only by its 5 landmarks; the box is their bounding box."""
        pts = np.asarray(landmarks, dtype=np.float32).reshape(5, 2)
        lo, hi = pts.min(axis=0), pts.max(axis=0)
        return Face((float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])), float(score), pts)


@dataclass(frozen=True)
class PipelineStats:
    """What a cartoonize or restore-faces call did."""
    tile_size: int      #: side of the tiles the network ran on
    tiles: int          #: network runs
    oom_retries: int    #: restarts with smaller tiles after running out of memory
    width: int          #: size the network worked at
    height: int
    faces: int          #: faces restored
    faces_found: int    #: faces given or detected
    faces_skipped: int  #: faces under min_face_size or outside the photo
    seconds: float      #: wall time of the call


def _faces_from_rows(rows: np.ndarray) -> List[Face]:
    return [Face(tuple(float(v) for v in r[:4]), float(r[4]), r[5:].reshape(5, 2).copy()) for r in rows]


def _faces_to_rows(faces: object) -> np.ndarray:
    """Faces, or landmarks shaped (5, 2), (F, 5, 2) or (F, 10), as float32 rows (F, 15)."""
    if isinstance(faces, Face):
        faces = [faces]
    if isinstance(faces, (list, tuple)) and faces and all(isinstance(f, Face) for f in faces):
        return np.array([[*f.box, f.score, *np.asarray(f.landmarks, np.float32).reshape(10)] for f in faces],
                        dtype=np.float32)
    pts = np.asarray(faces, dtype=np.float32)
    if pts.size == 0:
        return np.zeros((0, 15), np.float32)
    if pts.shape == (5, 2):
        pts = pts[None]
    if pts.ndim == 2 and pts.shape[1] == 10:
        pts = pts.reshape(-1, 5, 2)
    if pts.ndim != 3 or pts.shape[1:] != (5, 2):
        raise ValueError(f"landmarks have shape {pts.shape}; expected (5, 2) for one face, (faces, 5, 2) "
                         "or (faces, 10), or a list of limn.Face")
    lo, hi = pts.min(axis=1), pts.max(axis=1)
    return np.concatenate([lo, hi, np.ones((len(pts), 1), np.float32), pts.reshape(-1, 10)],
                          axis=1).astype(np.float32)


class Model:
    """A limn model loaded on a device and precision.

    ``source`` is a model file path or the file's bytes. ``device``: "auto" (first usable CUDA
    device, else the CPU), "cpu", "cuda" or "cuda:N"; asking for CUDA where there is none raises
    :class:`DeviceUnavailableError`. ``precision``: "auto" (fp16 on capable GPUs; bf16 on a CPU
    with AMX-BF16 or AVX512-BF16, for image models within 45 dB of fp32; else fp32; fp32 where the
    reduced precision fails the self-test, said in ``info.precision_note``), "fp32" (IEEE, on CUDA
    too), "fp16", "bf16" (on a CPU that emulates them: a :class:`RuntimeWarning`, many times
    slower) or "tf32" (CUDA convolutions in TF32, compute capability 8.0+). ``kind`` ("cartoon", "face_restore", "face_detect") refuses other
    kinds with :class:`WrongModelKindError`. Loading checks the model with its embedded self-test.

    ``source`` may also be the name of a model in limn's registry (``"dctnet-anime"``,
    ``"gpen-bfr-512"``, ``"retinaface"``; ``limn models list``) once fetched with
    ``limn models fetch NAME``; a name not fetched yet raises :class:`FileError` saying so. On the
    CPU in precision "auto" a name runs the package fetch compiled for this CPU (the fastest format
    and precision here), else its TorchScript file.

    Files are TorchScript archives (``.pt``, any device and precision) or compiled packages
    (``.pt2``, native code built for one device kind and precision, which "auto" then takes).
    Load only packages you trust; ``expected_sha256`` (64 hex digits) refuses any other bytes with
    :class:`InvalidModelError` before anything in them is read.

    One model may be used from several threads at once. :meth:`close` (or leaving a ``with``
    block) frees the model and its device memory at once, or as soon as calls still running in
    other threads return; later calls raise :class:`InvalidArgumentError`.
    """

    def __init__(self, source: Union[PathLike, bytes, bytearray, memoryview], device: str = "auto",
                 precision: str = "auto", *, kind: Optional[str] = None,
                 fp32_fallback: Optional[bool] = None, warmup: bool = True,
                 channels_last: Optional[bool] = None, cudnn_benchmark: Optional[bool] = None,
                 max_pixels: int = _D["model_max_pixels"], name: Optional[str] = None,
                 expected_sha256: Optional[str] = None) -> None:
        if not isinstance(device, str):
            raise TypeError(f"device must be a string such as 'auto', 'cpu' or 'cuda:0', not {type(device).__name__}")
        # A file, or a model name: the library resolves names (limn_model_path), trying the
        # package `limn models fetch` compiled for this CPU before the TorchScript file.
        if not isinstance(source, (bytes, bytearray, memoryview)):
            source = os.fspath(source)
        self._model = _limn.Model(
            source, device, _choice(precision, _PRECISIONS, "precision"),
            0 if kind is None else _choice(kind, _KINDS, "kind"), _tristate(fp32_fallback), bool(warmup),
            _tristate(channels_last), _tristate(cudnn_benchmark), _c_int(max_pixels, "max_pixels", "uint64"),
            name or "", expected_sha256 or "")
        raw = self._model.info()
        fixed = (raw["fixed_width"], raw["fixed_height"]) if raw["fixed_width"] > 0 else None
        template = np.asarray(raw["face_template"], np.float32).reshape(5, 2) if raw["face_template"] else None
        self._info = ModelInfo(
            kind=_name_of(raw["kind"], _KINDS), name=raw["name"], device=raw["device"],
            precision=_name_of(raw["precision"], _PRECISIONS), format_version=raw["format_version"],
            size_multiple=raw["size_multiple"], fixed_size=fixed, tile_margin=raw["tile_margin"],
            face_template=template, source=raw["source"], license=raw["license"],
            file_format=raw["file_format"], precision_note=raw["precision_note"], role=raw["role"],
            crop_size=raw["crop_size"])
        if precision != "auto" and raw["precision_note"]:
            warnings.warn(f"limn: {raw['precision_note']}", RuntimeWarning, stacklevel=2)

    @property
    def info(self) -> ModelInfo:
        """What the model is (kind, name, sizes) and where it runs."""
        return self._info

    @property
    def closed(self) -> bool:
        """True after :meth:`close`."""
        return self._model.closed

    def close(self) -> None:
        """Frees the model and its device memory (once calls running in other threads return)."""
        self._model.close()

    def __enter__(self) -> "Model":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else f"{self._info.device}, {self._info.precision}"
        return f"<limn.Model {self._info.kind} {self._info.name!r} ({state})>"

    def submit(self, call: str, image: ImageArray, **options: Any) -> "concurrent.futures.Future[Any]":
        """Runs ``call`` ("cartoonize", "restore_faces", "detect_faces" or "run") of ``image`` with
        that method's keywords as a job on the library's worker pool, and returns at once a
        :class:`concurrent.futures.Future` of what the method returns. The arguments are checked
        now (a bad one raises here); the work runs without the GIL. ``progress`` and the future's
        callbacks run on a pool worker.

        ``future.cancel()`` reaches the library: a job not yet started never runs, a running
        pipeline stops at its next tile or face. Closing this model (or a head model or detector
        the job uses) or :func:`jobs_shutdown` cancels its pending jobs the same way.
        """
        methods: Dict[str, Callable[..., Any]] = {"cartoonize": self.cartoonize, "restore_faces": self.restore_faces,
                                                  "detect_faces": self.detect_faces, "run": self.run}
        if call not in methods:
            raise ValueError(f"invalid call {call!r}: expected one of {', '.join(methods)}")
        future = _JobFuture()
        _SUBMITTING.future = future
        try:
            returned = methods[call](image, **options)
        finally:
            _SUBMITTING.future = None
        assert returned is future, "every Model call goes through Model._call"
        return future

    def _call(self, method: str, args: Tuple[Any, ...], finish: Callable[[Any], Any]) -> Any:
        """The extension's ``method`` on ``args``, then ``finish`` of its result; inside
        :meth:`submit`, the same call submitted as a job, whose future is returned."""
        future = getattr(_SUBMITTING, "future", None)
        if future is None:
            return finish(getattr(self._model, method)(*args))
        _SUBMITTING.future = None
        future._start(getattr(self._model, method + "_submit"), args, finish)
        return future

    def run(self, image: ImageArray) -> ImageArray:
        """One network run on ``image``, whose size must fit the model's size rule (see
        :attr:`ModelInfo.size_multiple`, :attr:`ModelInfo.fixed_size`); for whole photos use
        :meth:`cartoonize` or :meth:`restore_faces`."""
        return self._call("run", (image,), lambda out: _like(out, image))

    def run_batch(self, images: Union[Sequence[ImageArray], ImageArray]) -> Union[List[ImageArray], ImageArray]:
        """One network run on several images of one size and channel count: a sequence (of arrays
        or PIL images; the result is a list of the same kind) or one (N, H, W, C) array (the result
        is one array)."""
        if isinstance(images, np.ndarray) and images.ndim == 4:
            return np.stack(self._model.run_batch(list(images)))
        images = list(images)
        return [_like(out, img) for out, img in zip(self._model.run_batch(list(images)), images)]

    def cartoonize(self, image: ImageArray, *, strength: float = _D["strength"], max_side: int = _D["max_side"],
                   tile: int = _D["tile"], memory_budget: int = _D["memory_budget"], timeout: Optional[float] = None,
                   progress: Optional[Progress] = None, return_stats: bool = False,
                   head_model: Optional["Model"] = None, faces: object = None,
                   detector: Optional["Model"] = None, working_size: int = _D["working_size"],
                   feather: float = _D["feather"], score_threshold: float = _D["score_threshold"],
                   nms_iou: float = _D["nms_iou"], max_faces: int = _D["max_faces"],
                   detect_max_side: int = _D["detect_max_side"]
                   ) -> Union[ImageArray, Tuple[ImageArray, PipelineStats]]:
        """Cartoonizes a whole photo of any size with a cartoon model.

        ``strength`` (0..1) blends the cartoon over the photo; ``max_side`` > 0 works on a copy
        downscaled to that longer side; ``tile`` > 0 forces tiles of that side (0: tiles only when
        ``memory_budget`` bytes, the device's limit or its free memory require). ``timeout`` in
        seconds raises :class:`DeadlineExceededError`. ``progress(done, total)`` is called after
        each tile from the calling thread; returning False raises :class:`CancelledError`, and an
        exception it raises is re-raised here. With ``return_stats`` the result is
        ``(image, PipelineStats)``.

        DCT-Net's compound stylization: with ``head_model`` (a cartoon model of role "head", e.g.
        converted from ``cartoon_h.pb``), this model runs on the whole photo, worked on with its
        shorter side at most ``working_size`` (0: full size), and each face is aligned to the head
        model's template, stylized by it and blended back (``feather``: the mask's soft edge, a
        fraction of the crop). The faces are ``faces`` (as in :meth:`restore_faces`) or found by
        ``detector`` with ``score_threshold``, ``nms_iou``, ``max_faces`` and ``detect_max_side``
        (its ``max_side``). Progress counts the tiles, then the faces.
        """
        for what, m in (("head_model", head_model), ("detector", detector)):
            if m is not None and not isinstance(m, Model):
                raise TypeError(f"{what} must be a limn.Model, not {type(m).__name__}")
        rows = None if faces is None else _faces_to_rows(faces)
        options = _options(
            _limn.CartoonizeOptions(), strength=float(strength), max_side=_c_int(max_side, "max_side", "int32"),
            tile_size=_c_int(tile, "tile", "int32"), memory_budget=_c_int(memory_budget, "memory_budget", "uint64"),
            timeout_ms=_timeout_ms(timeout), working_size=_c_int(working_size, "working_size", "int32"),
            feather=float(feather))
        return self._call("cartoonize", (
            image, options, progress, head_model._model if head_model is not None else None, rows,
            detector._model if detector is not None else None,
            _detect_options(score_threshold, nms_iou, max_faces, detect_max_side, "detect_max_side")),
            lambda result: _image_result(result, image, return_stats))

    def detect_faces(self, image: ImageArray, *, score_threshold: float = _D["score_threshold"],
                     nms_iou: float = _D["nms_iou"], max_faces: int = _D["max_faces"],
                     max_side: int = _D["detect_max_side"]) -> List[Face]:
        """Faces found by a face_detect model, best score first, in the image's coordinates.

        ``max_side`` > 0 detects on a copy downscaled to that longer side (0: full size);
        ``max_faces`` > 0 keeps only the best ones; ``nms_iou`` is the box overlap above which the
        weaker of two faces is dropped.
        """
        return self._call("detect_faces",
                          (image, _detect_options(score_threshold, nms_iou, max_faces, max_side, "max_side")),
                          _faces_from_rows)

    def restore_faces(self, image: ImageArray, landmarks: object = None, *, detector: Optional["Model"] = None,
                      strength: float = _D["restore_strength"], min_face_size: float = _D["min_face_size"],
                      feather: float = _D["restore_feather"], score_threshold: float = _D["score_threshold"],
                      nms_iou: float = _D["nms_iou"], max_faces: int = _D["max_faces"],
                      max_side: int = _D["detect_max_side"], timeout: Optional[float] = None,
                      progress: Optional[Progress] = None, return_stats: bool = False
                      ) -> Union[ImageArray, Tuple[ImageArray, PipelineStats]]:
        """Restores the faces of a photo with a face_restore model.

        ``landmarks``: a list of :class:`Face` (e.g. from :meth:`detect_faces`), or the 5 landmarks
        of each face as an array of shape (5, 2), (faces, 5, 2) or (faces, 10). Without landmarks,
        ``detector`` (a face_detect model) finds the faces, with ``score_threshold``, ``nms_iou``,
        ``max_faces`` and ``max_side`` as in :meth:`detect_faces`. Faces smaller than
        ``min_face_size`` pixels across are left alone (counted in ``PipelineStats.faces_skipped``).
        ``strength``, ``timeout``, ``progress`` (one step per face) and ``return_stats`` as in
        :meth:`cartoonize`; ``feather`` is the soft edge of the paste-back mask (fraction of the face).
        """
        if detector is not None and not isinstance(detector, Model):
            raise TypeError(f"detector must be a limn.Model, not {type(detector).__name__}")
        if landmarks is None and detector is None:
            raise ValueError("restore_faces needs the faces: give landmarks (e.g. from detect_faces) or a "
                             "detector (a face_detect limn.Model) that finds them")
        rows = None if landmarks is None else _faces_to_rows(landmarks)
        options = _options(_limn.RestoreFacesOptions(), strength=float(strength),
                           min_face_size=float(min_face_size), feather=float(feather), timeout_ms=_timeout_ms(timeout))
        return self._call("restore_faces", (
            image, rows, detector._model if detector is not None else None,
            _detect_options(score_threshold, nms_iou, max_faces, max_side, "max_side"), options, progress),
            lambda result: _image_result(result, image, return_stats))
