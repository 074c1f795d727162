"""Tensors written by ``torch.save``, read without torch and without running the pickle's code.

A ``.pt`` file is a pickle, and unpickling an upload as ``torch.load`` did before
``weights_only`` runs whatever the file asks for (``os.system`` through ``__reduce__`` is
the classic). Here the pickle may name only the few globals ``torch.save`` itself writes for
plain tensors and state dicts; any other global is refused before anything is called. The
storages are raw little-endian bytes beside the pickle and become NumPy arrays.

Both layouts torch writes are read: the zip archive (torch >= 1.6: ``<name>/data.pkl`` plus
``<name>/data/<key>`` per storage) and the legacy stream of pickles followed by the storages
(still found in older checkpoints, e.g. resemblyzer's ``pretrained.pt``).
"""

from __future__ import annotations

import collections
import io
import pickle
import pickletools
import struct
import zipfile
from dataclasses import dataclass
from typing import Any

import numpy as np

# torch's storage classes and the NumPy type of their elements.
STORAGE_DTYPES = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": "<u2",  # widened to float32 below: NumPy has no bfloat16
    "ShortStorage": "<i2",
    "IntStorage": "<i4",
    "LongStorage": "<i8",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}
# The legacy format opens with this number, then its protocol version (torch.serialization).
LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001
LEGACY_PREFIX = b"\x80\x02\x8a\x0a" + LEGACY_MAGIC.to_bytes(10, "little")


class TensorFileError(ValueError):
    """Not a tensor file we can read, or one that asks for code to run."""


@dataclass
class _StorageType:
    name: str

    @property
    def dtype(self) -> np.dtype:
        return np.dtype(STORAGE_DTYPES[self.name])


@dataclass
class _Storage:
    key: str
    kind: _StorageType
    numel: int
    array: np.ndarray | None = None


@dataclass
class _Tensor:
    """A tensor whose storage may not be read yet (legacy files keep storages at the end)."""

    storage: _Storage
    offset: int
    size: tuple
    stride: tuple


def _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad=False, hooks=None, *_):
    if not isinstance(storage, _Storage):
        raise TensorFileError("a tensor's storage is not a storage reference")
    return _Tensor(storage, int(storage_offset), tuple(size), tuple(stride))


def _rebuild_parameter(data, requires_grad=False, hooks=None, *_):
    return data  # an nn.Parameter is its tensor


# (module, name) a plain tensor or state dict may mention, and what each becomes here.
ALLOWED_GLOBALS: dict[tuple[str, str], Any] = {
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    **{("torch", name): _StorageType(name) for name in STORAGE_DTYPES},
}


class _SafeUnpickler(pickle.Unpickler):
    """Resolves only ``ALLOWED_GLOBALS``; storages come back as ``_Storage`` references."""

    def __init__(self, file, storages: dict[str, _Storage]):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module: str, name: str) -> Any:
        try:
            return ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise TensorFileError(
                f"refused: the file asks for {module}.{name}, which a saved tensor never needs"
                " (only plain tensors and dicts of tensors are read, and no code is run)"
            ) from None

    def persistent_load(self, pid) -> _Storage:
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise TensorFileError(f"unknown persistent reference {str(pid)[:60]!r}")
        kind, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(kind, _StorageType) or not isinstance(numel, int) or numel < 0:
            raise TensorFileError("malformed storage reference")
        storage = self.storages.setdefault(key, _Storage(key, kind, numel))
        if storage.kind != kind:
            raise TensorFileError(f"storage {key} is referenced with two element types")
        return storage


def _unpickle(data: bytes, storages: dict[str, _Storage]) -> Any:
    try:
        return _SafeUnpickler(io.BytesIO(data), storages).load()
    except TensorFileError:
        raise
    except Exception as exc:  # truncated or malformed pickle: any of a dozen exception types
        raise TensorFileError(f"not a readable tensor pickle: {exc}") from exc


def _as_array(raw: bytes, storage: _Storage, big_endian: bool = False) -> np.ndarray:
    dtype = storage.kind.dtype.newbyteorder(">") if big_endian else storage.kind.dtype
    if len(raw) < storage.numel * dtype.itemsize:
        raise TensorFileError(f"storage {storage.key} is truncated")
    array = np.frombuffer(raw, dtype=dtype, count=storage.numel)
    if storage.kind.name == "BFloat16Storage":
        array = (array.astype(np.uint32) << 16).view(np.float32)
    return array.astype(array.dtype.newbyteorder("=")) if big_endian else array


def _materialize(value: Any) -> Any:
    """Replace tensor references by arrays, checking every view stays inside its storage."""
    if isinstance(value, _Tensor):
        storage, size, stride = value.storage.array, value.size, value.stride
        if storage is None:
            raise TensorFileError(f"storage {value.storage.key} is missing from the file")
        numbers = (value.offset, *size, *stride)
        if len(size) != len(stride) or any(not isinstance(n, int) or n < 0 for n in numbers):
            raise TensorFileError("a tensor has a malformed shape or stride")
        count = int(np.prod(size)) if size else 1
        last = value.offset + sum((n - 1) * s for n, s in zip(size, stride)) if count else value.offset
        if count and last >= len(storage):
            raise TensorFileError("a tensor reaches past the end of its storage")
        if count == 0:
            return np.zeros(size, storage.dtype)
        item = storage.itemsize
        view = np.lib.stride_tricks.as_strided(
            storage[value.offset :], shape=size, strides=[s * item for s in stride], writeable=False
        )
        return np.array(view)
    if isinstance(value, dict):
        return type(value)((k, _materialize(v)) for k, v in value.items())
    if isinstance(value, list | tuple):
        return type(value)(_materialize(v) for v in value)
    return value


def _load_zip(data: bytes, max_bytes: int) -> Any:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        pickles = [n for n in archive.namelist() if n.endswith("/data.pkl") or n == "data.pkl"]
        if len(pickles) != 1:
            raise TensorFileError("not a torch.save archive (no single data.pkl)")
        root = pickles[0][: -len("data.pkl")]

        def read(name: str) -> bytes:
            try:
                info = archive.getinfo(root + name)
            except KeyError:
                raise TensorFileError(f"the archive has no {root + name}") from None
            if info.file_size > max_bytes:
                raise TensorFileError(f"{root + name} unpacks to more than {max_bytes} bytes")
            return archive.read(info)

        big_endian = root + "byteorder" in archive.namelist() and read("byteorder").strip() == b"big"
        storages: dict[str, _Storage] = {}
        value = _unpickle(read("data.pkl"), storages)
        for storage in storages.values():
            storage.array = _as_array(read(f"data/{storage.key}"), storage, big_endian)
    return value


def _load_legacy(data: bytes) -> Any:
    """Magic, protocol, system info, the object, the storage keys, then each storage's
    element count (int64) and bytes, in the keys' order."""
    stream = io.BytesIO(data)

    def next_pickle() -> bytes:
        start = stream.tell()
        try:
            for opcode, _, position in pickletools.genops(stream):  # parses, runs nothing
                if opcode.name == "STOP":
                    stream.seek(position + 1)
                    return data[start : position + 1]
        except Exception as exc:
            raise TensorFileError(f"not a readable legacy tensor file: {exc}") from exc
        raise TensorFileError("truncated legacy tensor file")

    storages: dict[str, _Storage] = {}
    header = [_unpickle(next_pickle(), storages) for _ in range(3)]
    if header[0] != LEGACY_MAGIC or header[1] != LEGACY_PROTOCOL:
        raise TensorFileError("not a torch.save file (bad magic number or protocol)")
    if not isinstance(header[2], dict) or not header[2].get("little_endian", True):
        raise TensorFileError("big-endian legacy tensor files are not supported")
    value = _unpickle(next_pickle(), storages)
    keys = _unpickle(next_pickle(), storages)
    if not isinstance(keys, list):
        raise TensorFileError("malformed storage key list")
    for key in keys:
        storage = storages.get(str(key))
        if storage is None:
            raise TensorFileError(f"storage {key} is listed but never used")
        (count,) = struct.unpack("<q", stream.read(8).ljust(8, b"\0"))
        if count != storage.numel:
            raise TensorFileError(f"storage {key} holds {count} elements, not {storage.numel}")
        storage.array = _as_array(stream.read(count * storage.kind.dtype.itemsize), storage)
    return value


def is_tensor_file(data: bytes) -> bool:
    """Does this look like ``torch.save`` output (either layout)?"""
    if data.startswith(LEGACY_PREFIX):
        return True
    if not data.startswith(b"PK\x03\x04"):
        return False
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            return any(n.endswith("/data.pkl") or n == "data.pkl" for n in archive.namelist())
    except zipfile.BadZipFile:
        return False


def load(data: bytes, max_bytes: int = 1 << 31) -> Any:
    """What ``torch.save`` wrote, with every tensor as a NumPy array (dicts, lists and
    numbers as they were). Raises ``TensorFileError`` for anything else, and refuses before
    running anything if the pickle names a global outside ``ALLOWED_GLOBALS``."""
    if data.startswith(b"PK\x03\x04"):
        try:
            return _materialize(_load_zip(data, max_bytes))
        except zipfile.BadZipFile as exc:
            raise TensorFileError(f"not a torch.save archive: {exc}") from exc
    if data.startswith(LEGACY_PREFIX):
        return _materialize(_load_legacy(data))
    raise TensorFileError("not a torch.save file (neither a zip archive nor a legacy tensor pickle)")


def load_tensor(data: bytes, max_bytes: int = 1 << 31) -> np.ndarray:
    """A file holding exactly one tensor, as an array."""
    value = load(data, max_bytes)
    if not isinstance(value, np.ndarray):
        raise TensorFileError(f"the file holds a {type(value).__name__}, not a single tensor")
    return value


def load_state_dict(data: bytes, key: str | None = None) -> dict[str, np.ndarray]:
    """Named arrays from a saved ``state_dict`` (or from ``checkpoint[key]`` when the file
    holds a checkpoint dict, e.g. ``key="model_state"``); entries that are not tensors are
    left out."""
    value = load(data)
    if key is not None:
        if not isinstance(value, dict) or key not in value:
            raise TensorFileError(f"the file has no entry {key!r}")
        value = value[key]
    if not isinstance(value, dict):
        raise TensorFileError(f"the file holds a {type(value).__name__}, not a dict of tensors")
    return {str(k): v for k, v in value.items() if isinstance(v, np.ndarray)}
