"""Where a hash-log store keeps its files, in either form, and its small files: the
``HASHLOG`` identity file and the catalog (docs/format.md, "Hash-log engine").

The directory form names its segments ``NNNNNN.hld`` with index files ``NNNNNN.hli``;
the two-file form has one segment, the data file, whose index file is the second file.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

from shaledb.engine import filenames
from shaledb.engine.checksum import CRC, crc32c
from shaledb.engine.fs import FileSystem
from shaledb.engine.hashlog.records import FORMAT_VERSION
from shaledb.errors import CorruptionError

IDENTITY_MAGIC = b"SHLGHASH"
#: ``magic | format_version u32 | crc32c u32`` (the CRC over the first 12 bytes).
IDENTITY = struct.Struct("<8sII")
CATALOG_MAGIC = b"SHLGCTLG"


class Layout:
    """The paths of one store. ``pair`` is ``(data_path, index_path)`` in the two-file form."""

    def __init__(self, directory: str, pair: tuple[str, str] | None = None) -> None:
        self.directory = directory
        self.pair = pair
        if pair is None:
            self.lock_path = filenames.path(directory, filenames.LOCK)
            self.catalog_name = filenames.HASHLOG_CATALOG
        else:
            self.lock_path = pair[0] + filenames.LOCK_SUFFIX
            self.catalog_name = os.path.basename(pair[0]) + filenames.CATALOG_SUFFIX
        self.lost_dir = filenames.path(directory, filenames.LOST_DIR)

    @classmethod
    def of_two_files(cls, data_path: str, index_path: str) -> Layout:
        return cls(os.path.dirname(os.path.abspath(data_path)), (data_path, index_path))

    def segment_path(self, number: int) -> str:
        if self.pair is not None:
            return self.pair[0]
        return filenames.path(self.directory, filenames.segment_name(number))

    def index_path(self, number: int) -> str:
        if self.pair is not None:
            return self.pair[1]
        return filenames.path(self.directory, filenames.segment_index_name(number))

    def segment_numbers(self, fs: FileSystem) -> list[int]:
        """The numbers of the segments on disk, ascending."""
        if self.pair is not None:
            return [1] if fs.exists(self.pair[0]) else []
        names = fs.list_dir(self.directory)
        return sorted(n for n in map(filenames.parse_segment, names) if n is not None)

    def orphan_index_names(self, fs: FileSystem) -> list[str]:
        """The directory form's index files whose segment is missing (none in the
        two-file form). A merge removes a segment's index file before the segment, so
        such a file means the segment, and its records, were lost."""
        if self.pair is not None:
            return []
        names = fs.list_dir(self.directory)
        present = {n for n in map(filenames.parse_segment, names) if n is not None}
        return [
            n
            for n in names
            if n.endswith(".hli") and n[:-4].isdigit() and int(n[:-4]) not in present
        ]

    def temp_files(self, fs: FileSystem) -> list[str]:
        """Files left half-written by a crash (removed on open)."""
        if self.pair is not None:
            return [filenames.temp_name(p) for p in self.pair if fs.exists(filenames.temp_name(p))]
        return [
            filenames.path(self.directory, n)
            for n in fs.list_dir(self.directory)
            if n.endswith(filenames.TEMP_SUFFIX)
        ]


def encode_identity() -> bytes:
    head = IDENTITY.pack(IDENTITY_MAGIC, FORMAT_VERSION, 0)[:-4]
    return head + CRC.pack(crc32c(head))


def check_identity(data: bytes, path: str) -> None:
    """Raises CorruptionError unless ``data`` is a ``HASHLOG`` file this version reads."""
    if len(data) != IDENTITY.size or data[:8] != IDENTITY_MAGIC:
        raise CorruptionError(f"{path}: not a hash-log identity file", path, 0)
    _, version, crc = IDENTITY.unpack(data)
    if crc32c(data[:-4]) != crc:
        raise CorruptionError(f"{path}: identity file checksum mismatch", path, 0)
    if version != FORMAT_VERSION:
        raise CorruptionError(
            f"{path}: hash-log format version {version}; this version reads {FORMAT_VERSION}",
            path,
            8,
        )


def encode_catalog(catalog: dict[str, Any]) -> bytes:
    payload = json.dumps(catalog, sort_keys=True).encode()
    return CATALOG_MAGIC + CRC.pack(crc32c(payload)) + payload


def decode_catalog(data: bytes, path: str) -> dict[str, Any]:
    """The catalog a catalog file holds.

    Raises:
        CorruptionError: wrong magic, a bad CRC, or not a JSON object.
    """
    head = len(CATALOG_MAGIC) + CRC.size
    if data[: len(CATALOG_MAGIC)] != CATALOG_MAGIC or len(data) < head:
        raise CorruptionError(f"{path}: not a hash-log catalog file", path, 0)
    (crc,) = CRC.unpack_from(data, len(CATALOG_MAGIC))
    if crc32c(data[head:]) != crc:
        raise CorruptionError(f"{path}: catalog checksum mismatch", path, head)
    try:
        catalog = json.loads(data[head:])
    except ValueError as exc:
        raise CorruptionError(f"{path}: catalog is not JSON: {exc}", path, head) from None
    if not isinstance(catalog, dict):
        raise CorruptionError(f"{path}: catalog is not a JSON object", path, head)
    return catalog


def read_catalog(fs: FileSystem, layout: Layout) -> dict[str, Any] | None:
    path = filenames.path(layout.directory, layout.catalog_name)
    if not fs.exists(path):
        return None
    return decode_catalog(fs.read_all(path), path)


def write_catalog(fs: FileSystem, layout: Layout, catalog: dict[str, Any]) -> None:
    fs.write_atomic(layout.directory, layout.catalog_name, encode_catalog(catalog))
