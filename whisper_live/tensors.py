"""Read files written by ``torch.save`` without torch and without running their pickles.

A ``.pt`` file is a pickle, and unpickling runs whatever callables the pickle names: a
tensor upload or a weights file must never be able to do that. This reader unpickles with
an allow-list: only torch's tensor-rebuild functions, its storage type names (which just
say the dtype) and ``collections.OrderedDict`` resolve; every other global is refused
before anything is called. Tensors come back as numpy arrays, built from the storage bytes
the file holds, with their shape, strides and offset checked against the storage size.

Both of torch's layouts are read: the zip archive of torch >= 1.6 (``<name>/data.pkl``
plus ``<name>/data/<key>``) and the older "legacy" stream (pickles for magic number,
protocol and system info, the data pickle, the list of storage keys, then each storage as
an int64 element count followed by its bytes), which e.g. resemblyzer's weights still use.
"""

from __future__ import annotations

import io
import os
import pickle
import struct
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, BinaryIO

import numpy as np

from .errors import InvalidAudio

# torch's magic number and protocol version for the legacy (pre-zip) format.
_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch storage class names -> numpy dtypes. bfloat16 has no numpy dtype: it is read as
# the upper half of a float32.
_STORAGE_DTYPES = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "BFloat16Storage": np.dtype("<u2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


class TensorFileError(InvalidAudio):
    """Bytes that are not a readable ``torch.save`` file."""

    code = "invalid_tensor"


class UnsafeTensorFile(TensorFileError):
    """A pickle that names something other than tensors and plain containers."""

    code = "unsafe_pickle"


@dataclass(frozen=True)
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return _STORAGE_DTYPES[self.name]


@dataclass(frozen=True)
class _StorageRef:
    """A storage the pickle points at; its bytes are found after unpickling."""

    key: str
    dtype: np.dtype
    numel: int
    bfloat16: bool


@dataclass(frozen=True)
class _TensorRef:
    storage: _StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor(storage, storage_offset, size, stride, *_ignored) -> _TensorRef:
    """Stands in for ``torch._utils._rebuild_tensor_v2``: records, checks nothing yet."""
    if not isinstance(storage, _StorageRef):
        raise TensorFileError("a tensor in the file does not point at a storage")
    try:
        shape = tuple(int(n) for n in size)
        strides = tuple(int(n) for n in stride)
        offset = int(storage_offset)
    except (TypeError, ValueError) as exc:
        raise TensorFileError(f"malformed tensor header: {exc}") from exc
    return _TensorRef(storage, offset, shape, strides)


def _rebuild_parameter(data, *_ignored):
    """``torch._utils._rebuild_parameter``: an ``nn.Parameter`` is just its tensor here."""
    return data


_ALLOWED_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): OrderedDict,
}


class _SafeUnpickler(pickle.Unpickler):
    """An unpickler that can only build tensors, storages and plain containers."""

    def __init__(self, file: BinaryIO):
        super().__init__(file)
        self.storages: dict[str, _StorageRef] = {}

    def find_class(self, module: str, name: str):
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name)
        allowed = _ALLOWED_GLOBALS.get((module, name))
        if allowed is None:
            raise UnsafeTensorFile(
                f"refusing to load {module}.{name}: a tensor file may only contain tensors"
            )
        return allowed

    def persistent_load(self, pid):
        # ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TensorFileError("unknown persistent reference in the tensor file")
        storage_type, key, _location, numel = pid[1:5]
        if len(pid) > 5 and pid[5] is not None:
            raise TensorFileError("storage views (torch < 0.4 files) are not supported")
        if not isinstance(storage_type, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise TensorFileError("malformed storage reference in the tensor file")
        ref = _StorageRef(str(key), storage_type.dtype, numel, storage_type.name == "BFloat16Storage")
        self.storages.setdefault(ref.key, ref)
        return ref


def _unpickle(data: bytes | BinaryIO) -> tuple[Any, dict[str, _StorageRef]]:
    stream = io.BytesIO(data) if isinstance(data, bytes) else data
    unpickler = _SafeUnpickler(stream)
    try:
        obj = unpickler.load()
    except TensorFileError:
        raise
    except Exception as exc:  # truncated or corrupt pickles raise many kinds of error
        raise TensorFileError(f"cannot read the tensor file: {exc}") from exc
    return obj, unpickler.storages


def _materialize(obj: Any, buffers: dict[str, np.ndarray]) -> Any:
    """Replace tensor records by numpy arrays, containers by plain dicts/lists/tuples."""
    if isinstance(obj, _TensorRef):
        return _array(obj, buffers[obj.storage.key])
    if isinstance(obj, dict):
        return {k: _materialize(v, buffers) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_materialize(v, buffers) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_materialize(v, buffers) for v in obj)
    if isinstance(obj, (_StorageRef, _StorageType)):
        raise TensorFileError("bare storages are not supported")
    return obj


def _array(ref: _TensorRef, storage: np.ndarray) -> np.ndarray:
    if len(ref.shape) != len(ref.stride) or any(n < 0 for n in ref.shape) or any(s < 0 for s in ref.stride):
        raise TensorFileError("malformed tensor shape or stride")
    if 0 in ref.shape:
        return np.zeros(ref.shape, storage.dtype)
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.stride, strict=True))
    if ref.offset < 0 or last >= len(storage):
        raise TensorFileError("a tensor reaches past the end of its storage")
    item = storage.itemsize
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset :], shape=ref.shape, strides=[s * item for s in ref.stride], writeable=False
    )
    array = np.array(view)  # own, contiguous copy
    if ref.storage.bfloat16:
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array


def _storage_array(raw: bytes, ref: _StorageRef, big_endian: bool) -> np.ndarray:
    dtype = ref.dtype.newbyteorder(">") if big_endian and ref.dtype.itemsize > 1 else ref.dtype
    if len(raw) < ref.numel * dtype.itemsize:
        raise TensorFileError(f"storage {ref.key!r} is shorter than its tensor says")
    return np.frombuffer(raw, dtype, count=ref.numel).astype(ref.dtype.newbyteorder("="))


def _load_zip(archive: zipfile.ZipFile, max_bytes: int) -> Any:
    names = archive.namelist()
    pickles = [n for n in names if n.endswith("data.pkl") and n.count("/") == 1]
    if len(pickles) != 1:
        raise TensorFileError("not a torch.save archive (no single <name>/data.pkl)")
    root = pickles[0][: -len("data.pkl")]
    obj, refs = _unpickle(_read_member(archive, pickles[0], max_bytes))
    big_endian = False
    if root + "byteorder" in names:
        big_endian = _read_member(archive, root + "byteorder", 16).strip() == b"big"
    buffers = {}
    for key, ref in refs.items():
        member = f"{root}data/{key}"
        if member not in names:
            raise TensorFileError(f"storage {key!r} is missing from the archive")
        buffers[key] = _storage_array(_read_member(archive, member, max_bytes), ref, big_endian)
    return _materialize(obj, buffers)


def _read_member(archive: zipfile.ZipFile, name: str, max_bytes: int) -> bytes:
    info = archive.getinfo(name)
    if info.file_size > max_bytes:
        raise TensorFileError(f"{name} is larger than {max_bytes} bytes")
    return archive.read(info)  # zipfile stops at the declared size


def _load_legacy(stream: BinaryIO, max_bytes: int) -> Any:
    header = []
    for _ in range(3):
        value, refs = _unpickle(stream)
        if refs:
            raise TensorFileError("unexpected storage in the file header")
        header.append(value)
    magic, protocol, sys_info = header
    if magic != _LEGACY_MAGIC or protocol != _LEGACY_PROTOCOL:
        raise TensorFileError("not a torch.save file")
    big_endian = isinstance(sys_info, dict) and sys_info.get("little_endian") is False
    obj, refs = _unpickle(stream)
    keys, extra = _unpickle(stream)
    if extra or not isinstance(keys, list):
        raise TensorFileError("malformed storage list")
    buffers = {}
    for key in keys:
        ref = refs.get(str(key))
        if ref is None:
            raise TensorFileError(f"storage {key!r} is not used by any tensor")
        (count,) = struct.unpack("<q", _read_exactly(stream, 8))
        if count != ref.numel:
            raise TensorFileError(f"storage {key!r} holds {count} elements, its tensor says {ref.numel}")
        size = count * ref.dtype.itemsize
        if size > max_bytes:
            raise TensorFileError(f"storage {key!r} is larger than {max_bytes} bytes")
        buffers[ref.key] = _storage_array(_read_exactly(stream, size), ref, big_endian)
    missing = set(refs) - set(buffers)
    if missing:
        raise TensorFileError(f"storages missing from the file: {sorted(missing)}")
    return _materialize(obj, buffers)


def _read_exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise TensorFileError("the tensor file is truncated")
    return data


def load(source: bytes | str | os.PathLike, max_bytes: int = 1 << 31) -> Any:
    """Read a ``torch.save`` file: tensors become numpy arrays, containers plain ones.

    ``source`` is the file's bytes or its path. Raises ``UnsafeTensorFile`` (before calling
    anything) if the pickle names anything but tensors and containers, and
    ``TensorFileError`` for anything else it cannot read. ``max_bytes`` bounds each storage.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream: BinaryIO = io.BytesIO(bytes(source))
    else:
        stream = open(source, "rb")  # noqa: SIM115 -- closed below
    try:
        if zipfile.is_zipfile(stream):
            stream.seek(0)
            try:
                archive = zipfile.ZipFile(stream)
            except zipfile.BadZipFile as exc:
                raise TensorFileError(f"corrupt torch.save archive: {exc}") from exc
            with archive:
                return _load_zip(archive, max_bytes)
        stream.seek(0)
        return _load_legacy(stream, max_bytes)
    finally:
        stream.close()


def load_tensor(source: bytes | str | os.PathLike, max_bytes: int = 1 << 31) -> np.ndarray:
    """Read a ``torch.save`` file that holds exactly one tensor (e.g. an audio upload)."""
    value = load(source, max_bytes)
    if not isinstance(value, np.ndarray):
        raise TensorFileError(f"the file holds a {type(value).__name__}, not a single tensor")
    return value
