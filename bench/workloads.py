"""The data set, the key choosers and the timed phases, shared by every store.

Everything random is drawn from one seeded generator before any store runs, so every
store sees the same keys, values and operation sequences. A phase's rate is its
operation count divided by the wall time (``time.perf_counter``) of the whole phase,
including the end-of-phase ``commit()`` of stores that buffer writes.

Per store, the phases run in three groups, each on a fresh directory:

1. sequential put (keys in sorted order);
2. random put (keys in random order), then ``settle()``; random get of present keys;
   get of absent keys; full ordered scan; short range scans; then full compaction and
   the disk size; then per-op latency samples (put, get); the YCSB-style mixes A, B,
   C and E; random delete;
3. batched put (batches of ``BATCH`` pairs through the store's write batch).
"""

from __future__ import annotations

import bisect
import itertools
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bench.engines import Store

KEY_BYTES = 16
VALUE_BYTES = 100
BATCH = 1000
SCAN_LENGTH = 10
#: YCSB's default zipfian constant.
ZIPF_THETA = 0.99

#: (phase id, label in the report, what one operation is).
PHASES: list[tuple[str, str, str]] = [
    ("seq_put", "sequential put", "put"),
    ("random_put", "random put", "put"),
    ("batch_put", f"batched put ({BATCH}/batch)", "pair"),
    ("get", "random get (present)", "get"),
    ("get_absent", "get (absent)", "get"),
    ("scan_all", "full scan", "pair"),
    ("scan_range", f"range scan ({SCAN_LENGTH} keys)", "scan"),
    ("ycsb_a", "YCSB A (50/50 read/update)", "op"),
    ("ycsb_b", "YCSB B (95/5 read/update)", "op"),
    ("ycsb_c", "YCSB C (read only)", "op"),
    ("ycsb_e", "YCSB E (95/5 scan/insert)", "op"),
    ("delete", "random delete", "delete"),
]
PHASE_LABELS = {pid: label for pid, label, _ in PHASES}


class Zipfian:
    """Item numbers ``0 .. n-1``, item i drawn with probability proportional to
    ``1 / (i + 1) ** theta`` (the generator of the YCSB paper, "Quickly generating
    billion-record synthetic databases", inverted in O(1) per draw after an O(n) setup).
    """

    def __init__(self, n: int, rng: random.Random, theta: float = ZIPF_THETA) -> None:
        if n < 2:
            raise ValueError("a zipfian needs at least two items")
        self.n = n
        self.theta = theta
        self.rng = rng
        self.zetan = sum(1.0 / (i**theta) for i in range(1, n + 1))
        zeta2 = 1.0 + 0.5**theta
        self.alpha = 1.0 / (1.0 - theta)
        self.eta = (1.0 - (2.0 / n) ** (1.0 - theta)) / (1.0 - zeta2 / self.zetan)
        self._half_pow = 0.5**theta

    def next(self) -> int:
        u = self.rng.random()
        uz = u * self.zetan
        if uz < 1.0:
            return 0
        if uz < 1.0 + self._half_pow:
            return 1
        i = int(self.n * (self.eta * u - self.eta + 1.0) ** self.alpha)
        return min(i, self.n - 1)


@dataclass
class Config:
    """Sizes of one run; derived from the key count unless told."""

    keys: int
    seed: int = 20240601
    read_ops: int = 0
    scan_ops: int = 0
    ycsb_ops: int = 0
    delete_ops: int = 0
    latency_ops: int = 0

    def __post_init__(self) -> None:
        n = self.keys
        self.read_ops = self.read_ops or min(n, 200_000)
        self.scan_ops = self.scan_ops or max(100, min(n // 10, 20_000))
        self.ycsb_ops = self.ycsb_ops or min(n, 100_000)
        self.delete_ops = self.delete_ops or min(n, 100_000)
        self.latency_ops = self.latency_ops or min(n, 50_000)


@dataclass
class Dataset:
    """Keys, values and pre-drawn operation sequences (no randomness while timing)."""

    config: Config
    keys: list[bytes]  # distinct, in random (insertion) order
    values: list[bytes]
    sorted_pairs: list[tuple[bytes, bytes]]
    absent: list[bytes]
    gets: list[bytes]
    scan_starts: list[bytes]
    deletes: list[bytes]
    latency_puts: list[tuple[bytes, bytes]]
    latency_gets: list[bytes]
    ycsb: dict[str, list[tuple[int, bytes, Any]]] = field(default_factory=dict)

    @property
    def raw_bytes(self) -> int:
        return len(self.keys) * (KEY_BYTES + VALUE_BYTES)


READ, UPDATE, SCAN, INSERT = 0, 1, 2, 3


def make_dataset(config: Config) -> Dataset:
    rng = random.Random(config.seed)
    n = config.keys
    seen: set[bytes] = set()
    keys: list[bytes] = []
    while len(keys) < n:
        k = rng.randbytes(KEY_BYTES)
        if k not in seen:
            seen.add(k)
            keys.append(k)
    values = [rng.randbytes(VALUE_BYTES) for _ in range(n)]
    absent: list[bytes] = []
    extra: list[bytes] = []
    for out, count in ((absent, config.read_ops), (extra, config.ycsb_ops)):
        while len(out) < count:
            k = rng.randbytes(KEY_BYTES)
            if k not in seen:
                seen.add(k)
                out.append(k)
    pick = rng.randrange
    data = Dataset(
        config=config,
        keys=keys,
        values=values,
        sorted_pairs=sorted(zip(keys, values, strict=True)),
        absent=absent,
        gets=[keys[pick(n)] for _ in range(config.read_ops)],
        scan_starts=[keys[pick(n)] for _ in range(config.scan_ops)],
        deletes=rng.sample(keys, min(n, config.delete_ops)),
        latency_puts=[(keys[pick(n)], values[pick(n)]) for _ in range(config.latency_ops)],
        latency_gets=[keys[pick(n)] for _ in range(config.latency_ops)],
    )
    zipf = Zipfian(n, rng)
    inserts = iter(extra)

    def mix(main: int, main_share: float, other: int) -> list[tuple[int, bytes, Any]]:
        """``main`` ops on zipfian keys with probability ``main_share``, else ``other``."""
        ops: list[tuple[int, bytes, Any]] = []
        for _ in range(config.ycsb_ops):
            key = keys[zipf.next()]
            kind = main if rng.random() < main_share else other
            if kind == READ:
                ops.append((READ, key, None))
            elif kind == UPDATE:
                ops.append((UPDATE, key, values[pick(n)]))
            elif kind == SCAN:
                ops.append((SCAN, key, 1 + pick(SCAN_LENGTH)))
            else:
                ops.append((INSERT, next(inserts), values[pick(n)]))
        return ops

    data.ycsb["ycsb_a"] = mix(READ, 0.5, UPDATE)
    data.ycsb["ycsb_b"] = mix(READ, 0.95, UPDATE)
    data.ycsb["ycsb_c"] = mix(READ, 1.0, UPDATE)
    # E: scans of 1..10 keys from a zipfian start, and inserts of keys not loaded before.
    data.ycsb["ycsb_e"] = mix(SCAN, 0.95, INSERT)
    return data


# -- timing -----------------------------------------------------------------------------


def percentiles(samples_ns: list[int]) -> dict[str, float]:
    """p50, p99 and p99.9 of latencies in nanoseconds, returned in microseconds."""
    s = sorted(samples_ns)
    if not s:
        return {}

    def at(q: float) -> float:
        return s[min(len(s) - 1, int(q * len(s)))] / 1000.0

    return {"p50": at(0.50), "p99": at(0.99), "p99.9": at(0.999), "samples": len(s)}


#: Operations between two looks at the clock in a time-limited phase.
CHUNK = 1000


class StoreRun:
    """Runs every phase on one store and collects rates, latencies, sizes and errors.

    Read, scan, YCSB and delete phases stop early once they have run ``phase_limit``
    seconds (checked every ``CHUNK`` operations), so one pathological store cannot stall
    the whole run; such a phase is reported as partial, its rate over the operations it
    did. Load phases always run to the end: the later phases need all the keys.
    """

    def __init__(
        self,
        store: Store,
        data: Dataset,
        workdir: str,
        log: Callable[[str], None],
        phase_limit: float = float("inf"),
    ) -> None:
        self.store = store
        self.data = data
        self.workdir = workdir
        self.log = log
        self.phase_limit = phase_limit
        self.phases: dict[str, dict[str, Any]] = {}
        self.latency: dict[str, dict[str, float]] = {}
        self.errors: list[str] = []
        self.disk_bytes: int | None = None
        self.stats: dict[str, Any] | None = None

    def result(self) -> dict[str, Any]:
        return {
            "name": self.store.name,
            "phases": self.phases,
            "latency": self.latency,
            "errors": self.errors,
            "disk_bytes": self.disk_bytes,
            "raw_bytes": self.data.raw_bytes,
            "stats": self.stats,
        }

    def _record(self, phase: str, ops: int, seconds: float, planned: int | None = None) -> None:
        rate = ops / seconds if seconds > 0 else float("inf")
        partial = planned is not None and ops < planned
        self.phases[phase] = {
            "ops": ops,
            "seconds": seconds,
            "ops_per_s": rate,
            "partial": partial,
            "planned": planned or ops,
        }
        note = f"  PARTIAL: stopped at the {self.phase_limit:.0f} s limit" if partial else ""
        self.log(
            f"  {self.store.name:<13} {PHASE_LABELS[phase]:<30} {rate:>14,.0f} ops/s"
            f"  ({ops:,} in {seconds:.2f} s){note}"
        )

    def _limited(self, phase: str, items: list[Any], body: Callable[[list[Any]], int]) -> int:
        """Time ``body`` over ``items`` chunk by chunk, within the phase limit.

        Returns the sum of what ``body`` returned (a count of surprises: misses, hits).
        """
        chunks = [items[i : i + CHUNK] for i in range(0, len(items), CHUNK)]
        clock, limit, commit = time.perf_counter, self.phase_limit, self.store.commit
        ops = surprises = 0
        t0 = clock()
        for chunk in chunks:
            surprises += body(chunk)
            ops += len(chunk)
            if clock() - t0 > limit:
                break
        commit()
        self._record(phase, ops, clock() - t0, planned=len(items))
        return surprises

    def _check(self, ok: bool, message: str) -> None:
        if not ok:
            text = f"{self.store.name}: {message}"
            self.errors.append(text)
            self.log(f"  !! CHECK FAILED: {text}")

    def _fresh(self, group: str) -> str:
        path = os.path.join(self.workdir, f"{self.store.name}-{group}")
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    def run(self) -> dict[str, Any]:
        for group in (self._sequential, self._main, self._batched):
            path = self._fresh(group.__name__.strip("_"))
            try:
                self.store.open(path)
                try:
                    group(path)
                finally:
                    self.store.close()
            except Exception as exc:  # noqa: BLE001 - one store's failure must not end the run
                self._check(
                    False,
                    f"{group.__name__.strip('_')} phases stopped: {type(exc).__name__}: {exc}",
                )
            finally:
                shutil.rmtree(path, ignore_errors=True)
        return self.result()

    # -- groups ----------------------------------------------------------------------

    def _sequential(self, path: str) -> None:
        pairs = self.data.sorted_pairs
        put, store = self.store.put, self.store
        t0 = time.perf_counter()
        for k, v in pairs:
            put(k, v)
        store.commit()
        self._record("seq_put", len(pairs), time.perf_counter() - t0)

    def _batched(self, path: str) -> None:
        data = self.data
        pairs = list(zip(data.keys, data.values, strict=True))
        batches = [pairs[i : i + BATCH] for i in range(0, len(pairs), BATCH)]
        write_batch, store = self.store.write_batch, self.store
        t0 = time.perf_counter()
        for batch in batches:
            write_batch(batch)
        store.commit()
        self._record("batch_put", len(pairs), time.perf_counter() - t0)
        for k, v in pairs[:: max(1, len(pairs) // 500)]:
            self._check(store.get(k) == v, f"batched put: wrong value for key {k.hex()}")

    def _main(self, path: str) -> None:
        data, store = self.data, self.store
        self._random_put()
        store.settle()
        self._gets()
        self._scans()
        store.compact()
        self.disk_bytes = store.disk_bytes(path)
        self.stats = store.stats()
        self._latencies()
        for phase in ("ycsb_a", "ycsb_b", "ycsb_c", "ycsb_e"):
            self._ycsb(phase, data.ycsb[phase])
        self._deletes()

    # -- phases ----------------------------------------------------------------------

    def _random_put(self) -> None:
        data, store = self.data, self.store
        put = store.put
        t0 = time.perf_counter()
        for k, v in zip(data.keys, data.values, strict=True):
            put(k, v)
        store.commit()
        self._record("random_put", len(data.keys), time.perf_counter() - t0)

    def _gets(self) -> None:
        data, store = self.data, self.store
        get = store.get

        def present(keys: list[bytes]) -> int:
            misses = 0
            for k in keys:
                if get(k) is None:
                    misses += 1
            return misses

        def absent(keys: list[bytes]) -> int:
            hits = 0
            for k in keys:
                if get(k) is not None:
                    hits += 1
            return hits

        misses = self._limited("get", data.gets, present)
        self._check(misses == 0, f"random get: {misses} present keys not found")
        expected = dict(zip(data.keys[:1000], data.values[:1000], strict=True))
        wrong = sum(1 for k, v in expected.items() if get(k) != v)
        self._check(wrong == 0, f"random get: {wrong} of {len(expected)} values wrong")
        hits = self._limited("get_absent", data.absent, absent)
        self._check(hits == 0, f"absent get: {hits} absent keys found")

    def _scans(self) -> None:
        data, store = self.data, self.store
        n = len(data.keys)
        count = 0
        clock, limit = time.perf_counter, self.phase_limit
        t0 = clock()
        pairs = store.scan_all()
        while True:
            got = sum(1 for _ in itertools.islice(pairs, CHUNK))
            count += got
            if got < CHUNK or clock() - t0 > limit:
                break
        self._record("scan_all", count, clock() - t0, planned=n)
        if not self.phases["scan_all"]["partial"]:
            self._check(count == n, f"full scan: {count} pairs, expected {n}")
        head = list(itertools.islice(store.scan_all(), 1000))
        self._check(head == data.sorted_pairs[:1000], "full scan: first pairs not in key order")

        if not store.RANGE_SCANS:
            return
        scan_range = store.scan_range

        def scans(starts: list[bytes]) -> int:
            for start in starts:
                scan_range(start, SCAN_LENGTH)
            return 0

        self._limited("scan_range", data.scan_starts, scans)
        sorted_keys = [k for k, _ in data.sorted_pairs]
        for start in data.scan_starts[:200]:
            i = bisect.bisect_left(sorted_keys, start)
            want = data.sorted_pairs[i : i + SCAN_LENGTH]
            got = [tuple(p) for p in scan_range(start, SCAN_LENGTH)]
            if got != want:
                self._check(False, f"range scan from {start.hex()}: wrong pairs")
                break

    def _latencies(self) -> None:
        data, store = self.data, self.store
        ns = time.perf_counter_ns
        put, get = store.put, store.get
        samples = []
        for k, v in data.latency_puts:
            t0 = ns()
            put(k, v)
            samples.append(ns() - t0)
        store.commit()
        self.latency["put"] = percentiles(samples)
        samples = []
        for k in data.latency_gets:
            t0 = ns()
            get(k)
            samples.append(ns() - t0)
        self.latency["get"] = percentiles(samples)

    def _ycsb(self, phase: str, ops: list[tuple[int, bytes, Any]]) -> None:
        store = self.store
        if phase == "ycsb_e" and not store.RANGE_SCANS:
            return
        get, put, scan_range = store.get, store.put, store.scan_range

        def mix(chunk: list[tuple[int, bytes, Any]]) -> int:
            for kind, key, arg in chunk:
                if kind == READ:
                    get(key)
                elif kind == SCAN:
                    scan_range(key, arg)
                else:
                    put(key, arg)
            return 0

        self._limited(phase, ops, mix)

    def _deletes(self) -> None:
        data, store = self.data, self.store
        delete = store.delete

        def deletes(keys: list[bytes]) -> int:
            for k in keys:
                delete(k)
            return 0

        self._limited("delete", data.deletes, deletes)
        done = data.deletes[: min(1000, self.phases["delete"]["ops"])]
        found = sum(1 for k in done if store.get(k) is not None)
        self._check(found == 0, f"delete: {found} deleted keys still found")
