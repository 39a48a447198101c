"""The tiny, busy LSM tree the tests use: one definition (the ``small_lsm`` fixture of
conftest.py hands it out; modules and child processes import it from here)."""

from __future__ import annotations

from typing import Any

#: LSM settings that make every code path run on a few dozen keys.
SMALL_LSM = {
    "memtable_size": 8,
    "block_size": 256,
    "target_file_bytes": 2048,
    "l0_compaction_trigger": 2,
    "max_bytes_for_level_base": 4096,
    "level_size_ratio": 4,
}


def small_lsm_options(**overrides: Any) -> dict[str, Any]:
    """Keyword arguments of ``shaledb.open`` for a tiny, busy LSM tree, with overrides.

    The one definition of the tiny tree every test uses (module-level users import it;
    others take the ``small_lsm`` fixture). ``memtable_entries`` in ``overrides``
    replaces ``memtable_size`` (the same setting under the Options name).
    """
    options = dict(SMALL_LSM)
    if "memtable_entries" in overrides:
        options.pop("memtable_size")
    options.update(overrides)
    return options
