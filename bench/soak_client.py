"""The clients of bench/soak.py: each one a KVClient, its own keys and its own model.

A client runs a mixed workload until the deadline and checks every reply against its
``KeyModel`` (bench/soak_model.py). When a request gets no reply it waits, through
``Generations``, until the server that may hold the request is dead, so that the
request cannot be applied later on top of newer writes; then it pings until a server
answers and goes on.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import shaledb
from bench.soak_model import DEFAULT_SLACK, KeyModel, Outcome
from shaledb import ConnectionFailedError, ShaleDBError

#: Operation kinds and their weights in the mix.
MIX = {"put": 28, "put_ttl": 10, "get": 25, "delete": 10, "batch_put": 10, "get_range": 17}
#: Seconds a server gets to start listening or to stop.
START_TIMEOUT = 60.0
#: Most mismatches kept with their details.
SAMPLES = 20


@dataclass
class Config:
    duration: float = 60.0
    clients: int = 16
    processes: int = 0
    keys: int = 64
    value_size: int = 100
    kill_min: float = 5.0
    kill_max: float = 20.0
    memtable_size: int = 256
    ttl_min: float = 0.5
    ttl_max: float = 4.0
    slack: float = DEFAULT_SLACK
    timeout: float = 30.0
    seed: int = 0
    early_kills: float = 0.0
    server_args: tuple[str, ...] = ()


# -- shared state between the controller and the clients ---------------------------------


class Generations:
    """Which server processes may still hold a request (shared across processes).

    ``started`` is the number of the newest server process, counted from 1 and raised
    before it is spawned; ``dead`` the newest one known dead. A request that got no
    reply was read by a server numbered at most ``started`` at the moment it failed,
    so once ``dead`` reaches that number it can no longer be applied.
    """

    def __init__(self, ctx: Any) -> None:
        self.started = ctx.Value("q", 0)
        self.dead = ctx.Value("q", 0)
        self.parked = ctx.Value("q", 0)
        self.final = ctx.Event()

    def wait_dead(self, generation: int, limit: float) -> bool:
        while self.dead.value < generation:
            if time.time() > limit:
                return False
            time.sleep(0.01)
        return True


@dataclass
class ClientStats:
    acked: Counter[str] = field(default_factory=Counter)
    no_reply: Counter[str] = field(default_factory=Counter)
    error_replies: int = 0
    error_samples: list[str] = field(default_factory=list)
    mismatches: int = 0
    mismatch_samples: list[str] = field(default_factory=list)
    reconnects: int = 0
    long_waits: int = 0
    in_flight_applied: int = 0
    in_flight_not_applied: int = 0
    batch_checks: int = 0
    final_keys: int = 0
    final_mismatches: int = 0

    def merge(self, other: ClientStats) -> None:
        for name, value in vars(other).items():
            mine = getattr(self, name)
            if isinstance(mine, list):
                mine.extend(value[: max(0, SAMPLES - len(mine))])
            elif isinstance(mine, Counter):
                mine.update(value)
            else:
                setattr(self, name, mine + value)


class Lost(Exception):
    """The request got no reply; the client must resume before going on."""


# -- one client ----------------------------------------------------------------------------


class SoakClient:
    """One client: its keys, its model, its connection; run() until the deadline."""

    def __init__(self, cid: int, cfg: Config, port: int, gens: Generations, end: float) -> None:
        self.cid = cid
        self.cfg = cfg
        self.port = port
        self.gens = gens
        self.end = end
        self.rng = random.Random(cfg.seed * 100_003 + cid)
        self.model = KeyModel(slack=cfg.slack)
        self.keys = [f"soak:{cid:03d}:{n:05d}" for n in range(cfg.keys)]
        self.key_set = set(self.keys)
        self.stats = ClientStats()
        self.seq = 0
        self.client: Any = None  # a shaledb.KVClient once connected
        self.check_batch: list[tuple[str, str]] | None = None

    # connection

    def resume(self) -> None:
        """Until the server answers a ping (a new one after a kill)."""
        while time.time() < self.end + START_TIMEOUT:
            try:
                if self.client is None:
                    self.client = shaledb.KVClient("127.0.0.1", self.port, timeout=self.cfg.timeout)
                if self.client.ping():
                    return
            except ShaleDBError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"client {self.cid}: the server did not come back")

    def lost(self, kind: str, exc: Exception) -> float:
        """A request got no reply: wait until every server that may hold it is dead."""
        self.stats.no_reply[kind] += 1
        generation = self.gens.started.value
        began = time.time()
        self.gens.wait_dead(generation, self.end + START_TIMEOUT)
        if time.time() - began > 2.0:
            self.stats.long_waits += 1
        return time.time()

    def refused(self, kind: str, exc: ShaleDBError) -> None:
        self.stats.error_replies += 1
        if len(self.stats.error_samples) < SAMPLES:
            self.stats.error_samples.append(f"{kind}: {type(exc).__name__}: {exc}")

    def mismatch(self, text: str | None, final: bool = False) -> None:
        if text is None:
            return
        self.stats.mismatches += 1
        self.stats.final_mismatches += final
        if len(self.stats.mismatch_samples) < SAMPLES:
            self.stats.mismatch_samples.append(f"client {self.cid}: {text}")

    # the workload

    def value(self) -> str:
        self.seq += 1
        size = self.rng.randint(0, self.cfg.value_size)
        if self.rng.random() < 0.01:
            size = self.rng.randint(8_000, 40_000)  # now and then a value over many blocks
        return f"{self.cid}.{self.seq}." + "v" * size

    def ttl(self) -> float:
        return round(self.rng.uniform(self.cfg.ttl_min, self.cfg.ttl_max), 3)

    @staticmethod
    def outcome(value: str | None, ttl: float | None, sent: float, resolved: float) -> Outcome:
        if value is None or ttl is None:
            return Outcome(value)
        return Outcome(value, sent + ttl, resolved + ttl)

    def write(self, kind: str, pairs: list[tuple[str, str | None]], ttl: float | None) -> Any:
        """Run one write of ``pairs`` (value None: delete) and update the model."""
        assert self.client is not None
        sent = time.time()
        try:
            if kind == "delete":
                result = self.client.delete(pairs[0][0])
            elif kind == "batch_put":
                result = self.client.batch_put(
                    [k for k, _ in pairs], [v for _, v in pairs], ttl=ttl
                )
            else:
                result = self.client.put(pairs[0][0], pairs[0][1], ttl=ttl)
        except ConnectionFailedError as exc:
            resolved = self.lost(kind, exc)
            for key, value in pairs:
                self.model.in_flight(key, self.outcome(value, ttl, sent, resolved))
            if kind == "batch_put" and ttl is None:
                self.check_batch = [(k, v) for k, v in pairs if v is not None]
            raise Lost from exc
        except ShaleDBError as exc:
            # A refused write must not have happened; the model still allows both so
            # that one refusal is reported as an error reply, not as a mismatch.
            self.refused(kind, exc)
            for key, value in pairs:
                self.model.in_flight(key, self.outcome(value, ttl, sent, time.time()))
            return None
        if kind == "delete" and result and not self.model.may_exist(pairs[0][0], sent):
            self.mismatch(f"{pairs[0][0]}: delete reported an existing key; model: absent")
        resolved = time.time()
        for key, value in pairs:
            self.model.acknowledged(key, self.outcome(value, ttl, sent, resolved))
        self.stats.acked[kind] += 1
        return result

    def get(self) -> None:
        assert self.client is not None
        key = self.rng.choice(self.keys)
        t0 = time.time()
        try:
            observed = self.client.get(key)
        except ConnectionFailedError as exc:
            self.stats.no_reply["get"] += 1
            raise Lost from exc
        except ShaleDBError as exc:
            self.refused("get", exc)
            return
        self.mismatch(self.model.observe(key, observed, t0, time.time()))
        self.stats.acked["get"] += 1

    def get_range(self, lo: int, hi: int, kind: str = "get_range", final: bool = False) -> None:
        assert self.client is not None
        start, end = self.keys[lo], self.keys[hi]
        t0 = time.time()
        try:
            data = self.client.get_range(start, end)
        except ConnectionFailedError as exc:
            self.stats.no_reply[kind] += 1
            raise Lost from exc
        except ShaleDBError as exc:
            self.refused(kind, exc)
            return
        t1 = time.time()
        seen = {}
        previous = None
        for key, value in data:
            if not start <= key <= end or key not in self.key_set or key in seen:
                self.mismatch(f"get_range({start}, {end}) returned {key!r}", final)
            if previous is not None and key <= previous:
                self.mismatch(f"get_range({start}, {end}) not sorted at {key!r}", final)
            previous = key
            seen[key] = value
        for key in self.keys[lo : hi + 1]:
            self.mismatch(self.model.observe(key, seen.get(key), t0, t1), final)
        if final:
            self.stats.final_keys += hi - lo + 1
        self.stats.acked[kind] += 1
        if self.check_batch is not None and kind == "batch_check":
            applied = [seen.get(k) == v for k, v in self.check_batch]
            if any(applied) and not all(applied):
                self.mismatch(
                    "batch_put in flight at a kill was applied in part: "
                    + ", ".join(
                        f"{k}={'yes' if a else 'no'}"
                        for (k, _), a in zip(self.check_batch, applied)
                    )
                )
            self.check_batch = None
            self.stats.batch_checks += 1

    def step(self) -> None:
        if self.check_batch is not None:
            # Right after a batch with no reply: a read of all its keys, before any other
            # write to them, shows it applied whole or not at all.
            idx = sorted(self.keys.index(k) for k, _ in self.check_batch)
            self.get_range(idx[0], idx[-1], kind="batch_check")
            return
        kind = self.rng.choices(list(MIX), weights=list(MIX.values()))[0]
        if kind == "get":
            self.get()
        elif kind == "get_range":
            lo = self.rng.randrange(len(self.keys))
            hi = min(len(self.keys) - 1, lo + self.rng.randint(0, 20))
            self.get_range(lo, hi)
        elif kind == "delete":
            self.write("delete", [(self.rng.choice(self.keys), None)], None)
        elif kind == "batch_put":
            keys = self.rng.sample(self.keys, self.rng.randint(2, 8))
            ttl = self.ttl() if self.rng.random() < 0.2 else None
            self.write("batch_put", [(k, self.value()) for k in keys], ttl)
        else:
            ttl = self.ttl() if kind == "put_ttl" else None
            self.write(kind, [(self.rng.choice(self.keys), self.value())], ttl)

    def run(self) -> ClientStats:
        self.resume()
        while time.time() < self.end:
            try:
                self.step()
            except Lost:
                self.resume()
                self.stats.reconnects += 1
        with self.gens.parked.get_lock():
            self.gens.parked.value += 1
        # The controller kills and restarts the server once more; then read back all.
        self.gens.final.wait(self.end + 4 * START_TIMEOUT - time.time())
        for _ in range(5):
            try:
                self.resume()
                self.get_range(0, len(self.keys) - 1, kind="final_read", final=True)
                break
            except Lost:
                continue
        self.stats.in_flight_applied = self.model.resolution.applied
        self.stats.in_flight_not_applied = self.model.resolution.not_applied
        if self.client is not None:
            self.client.close()
        return self.stats


def run_clients(
    cids: list[int], cfg: Config, port: int, gens: Generations, end: float
) -> ClientStats:
    """Run clients ``cids`` as threads; their merged stats."""
    results: list[ClientStats] = []
    errors: list[BaseException] = []

    def one(cid: int) -> None:
        try:
            results.append(SoakClient(cid, cfg, port, gens, end).run())
        except BaseException as exc:  # reported by the controller
            errors.append(exc)

    threads = [threading.Thread(target=one, args=(c,), daemon=True) for c in cids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    total = ClientStats()
    for r in results:
        total.merge(r)
    return total


def run_process(
    cids: list[int], cfg: Config, port: int, gens: Generations, end: float, queue: Any
) -> None:
    try:
        queue.put(("ok", run_clients(cids, cfg, port, gens, end)))
    except BaseException as exc:
        queue.put(("error", f"{type(exc).__name__}: {exc}"))
