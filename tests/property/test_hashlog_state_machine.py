"""The state machine of test_state_machine.py over the hash-log engine, against a dict.

The same rules (puts, deletes, batches, reads, scans, flush, compact, reopen, expiry)
with tiny segments, so seals and merges run within a few steps.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings
from test_state_machine import ShaleDBMachine

import shaledb
from shaledb.engine.hashlog import HashLogEngine
from shaledb.options import Options


class HashLogMachine(ShaleDBMachine):
    def _open(self) -> shaledb.DB:
        options = Options(
            fsync="never",
            clock=self.clock,
            hashlog_segment_bytes=1024,
            hashlog_merge_ratio=0.3,
        )
        return shaledb.DB.over(HashLogEngine(self.dir, options))


HashLogMachine.TestCase.settings = settings(
    max_examples=100,
    stateful_step_count=50,
    deadline=None,
    derandomize=bool(os.environ.get("CI")),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestHashLogAgainstADict = HashLogMachine.TestCase
