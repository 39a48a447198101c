"""Settings of a database, validated once when it opens."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from shaledb.errors import InvalidArgumentError, InvalidTypeError

#: Block compressions; "lz4" needs the lz4 package (a dependency).
COMPRESSIONS = ("lz4", "none")
#: Durability modes, strongest first. See docs/architecture.md ("Durability").
FSYNC_MODES = ("always", "everysec", "never")

#: Largest key accepted, in bytes (UTF-8 bytes for a str key).
MAX_KEY_BYTES = 64 * 1024
#: Largest value accepted, in bytes.
MAX_VALUE_BYTES = 64 * 1024 * 1024


def wall_clock() -> float:
    """Seconds since the epoch; the default clock for TTLs."""
    return time.time()


@dataclass
class Options:
    """How a database behaves. Every field has a default fit for most users.

    Attributes:
        fsync: ``"always"`` (fsync before every acknowledgement, group commit),
            ``"everysec"`` (the default: fsync once a second) or ``"never"``
            (left to the OS). In every mode a write is in the OS before it returns,
            so ``kill -9`` of the process loses nothing acknowledged.
        memtable_bytes: approximate bytes the memtable may hold before it is flushed.
        memtable_entries: when set, flush after this many entries instead (the
            seed's ``memtable_size``).
        block_size: target size of an SSTable data block, in bytes.
        compression: ``"lz4"`` (the default: a block is stored compressed when that
            saves at least an eighth) or ``"none"``.
        block_cache_bytes: bytes of decoded blocks kept in memory.
        max_open_tables: tables whose index, filter and file stay loaded (LRU); others
            load again when read.
        bloom_bits_per_key: bloom filter size per key; 0 disables filters.
        target_file_bytes: compaction splits its output into files of about this size.
        l0_compaction_trigger: number of level-0 tables that starts a compaction.
        l0_slowdown_trigger: level-0 tables at which each write is delayed 1 ms.
        l0_stop_trigger: level-0 tables at which writes wait for compaction.
        level_size_ratio: each level holds this many times the bytes of the one above.
        max_bytes_for_level_base: bytes level 1 may hold before it is compacted.
        background_compaction: run compactions on a background thread.
        hashlog_segment_bytes: the hash-log engine starts a new data segment past this
            size (at least 1024 bytes).
        hashlog_merge_ratio: the hash-log engine merges in the background once this
            fraction of its data bytes is dead (a number in (0, 1]).
        background_process: build the tables of flushes and compactions in a worker
            process (one per Python process, started on the first job), so that they
            do not compete with the callers for the interpreter; ``False`` builds
            them on the background thread itself.
        clock: returns seconds since the epoch; tests inject their own.
    """

    fsync: str = "everysec"
    memtable_bytes: int = 32 * 1024 * 1024
    memtable_entries: int | None = None
    block_size: int = 4096
    compression: str = "lz4"
    block_cache_bytes: int = 128 * 1024 * 1024
    max_open_tables: int = 500
    bloom_bits_per_key: int = 10
    target_file_bytes: int = 16 * 1024 * 1024
    l0_compaction_trigger: int = 4
    l0_slowdown_trigger: int = 12
    l0_stop_trigger: int = 20
    level_size_ratio: int = 10
    max_bytes_for_level_base: int = 64 * 1024 * 1024
    background_compaction: bool = True
    hashlog_segment_bytes: int = 64 * 1024 * 1024
    hashlog_merge_ratio: float = 0.5
    background_process: bool = True
    clock: Callable[[], float] = field(default=wall_clock)

    def __post_init__(self) -> None:
        _one_of("fsync", self.fsync, FSYNC_MODES)
        _one_of("compression", self.compression, COMPRESSIONS)
        for name in _POSITIVE:
            _integer(name, getattr(self, name), 1)
        if self.memtable_entries is not None:
            _integer("memtable_entries (memtable_size)", self.memtable_entries, 1)
        _integer("block_cache_bytes", self.block_cache_bytes, 0)
        _integer("bloom_bits_per_key", self.bloom_bits_per_key, 0)
        for name in _L0_TRIGGERS:
            _integer(name, getattr(self, name), 1)
        if not (self.l0_compaction_trigger <= self.l0_slowdown_trigger <= self.l0_stop_trigger):
            raise InvalidArgumentError(
                "need 0 < l0_compaction_trigger <= l0_slowdown_trigger <= l0_stop_trigger; got "
                f"{self.l0_compaction_trigger}, {self.l0_slowdown_trigger}, {self.l0_stop_trigger}"
            )
        if not isinstance(self.background_compaction, bool):
            raise InvalidTypeError(
                "option background_compaction must be True or False; got "
                f"{type(self.background_compaction).__name__} {self.background_compaction!r}"
            )
        _integer("hashlog_segment_bytes", self.hashlog_segment_bytes, 1024)
        _fraction("hashlog_merge_ratio", self.hashlog_merge_ratio)
        for name in _BOOLEAN:
            _boolean(name, getattr(self, name))
        if not callable(self.clock):
            raise InvalidTypeError(
                "option clock must be a callable returning seconds since the epoch; got "
                f"{type(self.clock).__name__}"
            )


#: Integer options that must be at least 1.
_POSITIVE = (
    "memtable_bytes",
    "block_size",
    "max_open_tables",
    "target_file_bytes",
    "level_size_ratio",
    "max_bytes_for_level_base",
)
_BOOLEAN = ("background_compaction", "background_process")
_L0_TRIGGERS = ("l0_compaction_trigger", "l0_slowdown_trigger", "l0_stop_trigger")


def _integer(name: str, value: object, least: int) -> None:
    """Raise unless ``value`` is an int (not a bool) of at least ``least``."""
    accepted = "a positive integer" if least == 1 else f"an integer >= {least}"
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidTypeError(
            f"option {name} must be {accepted}; got {type(value).__name__} {value!r}"
        )
    if value < least:
        raise InvalidArgumentError(f"option {name} must be {accepted}; got {value!r}")


def _fraction(name: str, value: object) -> None:
    """Raise unless ``value`` is a number in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidTypeError(
            f"option {name} must be a number in (0, 1]; got {type(value).__name__} {value!r}"
        )
    if not 0 < value <= 1:
        raise InvalidArgumentError(f"option {name} must be a number in (0, 1]; got {value!r}")


def _boolean(name: str, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidTypeError(
            f"option {name} must be True or False; got {type(value).__name__} {value!r}"
        )


def _one_of(name: str, value: object, accepted: tuple[str, ...]) -> None:
    if value not in accepted:
        raise InvalidArgumentError(f"{name} must be one of {', '.join(accepted)}; got {value!r}")
