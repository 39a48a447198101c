"""Server commands: COMMAND, CONFIG, SAVE/BGSAVE/LASTSAVE, TIME, WAIT and INFO.

The connection commands are in :mod:`shaledb.server.resp_connection_commands`.
"""

from __future__ import annotations

import os
import platform
import sys
import threading
import time
from typing import TYPE_CHECKING, Any

import shaledb
from shaledb import NotFoundError
from shaledb.keyspace import DEFAULT_NAMESPACE
from shaledb.server.glob_pattern import compile_glob
from shaledb.server.resp_commands import (
    REGISTRY,
    RespError,
    Spec,
    command,
    text,
    to_int,
    upper,
)
from shaledb.server.resp_protocol import OK, Push, SimpleString

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespSession

#: The Redis version ShaleDB answers as (clients pick features by it).
from shaledb.server.resp_connection_commands import REDIS_VERSION

# -- COMMAND -------------------------------------------------------------------------


def _info_of(spec: Spec) -> list[Any]:
    return [
        spec.name.encode(),
        spec.arity,
        {SimpleString(f) for f in sorted(spec.flags) if f != "nomulti"},
        spec.first,
        spec.last,
        spec.step,
        {SimpleString("@" + spec.group)},
        [],
        [],
        [],
    ]


def _docs_of(spec: Spec) -> dict[bytes, Any]:
    return {
        b"summary": spec.summary.encode(),
        b"since": spec.since.encode(),
        b"group": spec.group.encode(),
    }


@command("command", -1, "", group="server", summary="Command descriptions", since="2.8.13")
def _command(s: RespSession, args: list[bytes]) -> Any:
    if not args:
        return [_info_of(spec) for spec in REGISTRY.values()]
    sub = upper(args[0])
    names = [a.lower().decode("utf-8", "replace") for a in args[1:]]
    if sub == b"COUNT" and not names:
        return len(REGISTRY)
    if sub == b"INFO":
        chosen = names or list(REGISTRY)
        return [_info_of(REGISTRY[n]) if n in REGISTRY else None for n in chosen]
    if sub == b"DOCS":
        chosen = [n for n in (names or list(REGISTRY)) if n in REGISTRY]
        return {n.encode(): _docs_of(REGISTRY[n]) for n in chosen}
    if sub == b"LIST":
        return [n.encode() for n in REGISTRY]
    if sub == b"GETKEYS" and names:
        spec = REGISTRY.get(names[0])
        if spec is None or not spec.arity_ok(len(args) - 1):
            raise RespError("ERR Invalid command specified")
        return spec.keys_of(args[2:])
    raise RespError(
        f"ERR unknown subcommand or wrong number of arguments for '{text(args[0])}'. "
        "Try COMMAND HELP."
    )


# -- CONFIG --------------------------------------------------------------------------


@command("config", -2, "admin", group="server", summary="GET | SET | RESETSTAT", since="2.0.0")
def _config(s: RespSession, args: list[bytes]) -> Any:
    sub = upper(args[0])
    settings = s.state.settings
    if sub == b"GET" and len(args) >= 2:
        found: dict[bytes, bytes] = {}
        for pattern in args[1:]:
            match = compile_glob(pattern.lower())
            for key, value in settings.items():
                if match(key.encode()):
                    found[key.encode()] = value.encode()
        return found
    if sub == b"SET" and len(args) >= 3 and len(args) % 2 == 1:
        for raw_key in args[1::2]:
            if raw_key.lower().decode("utf-8", "replace") not in settings:
                raise RespError(
                    f"ERR Unknown option or number of arguments for CONFIG SET - '{text(raw_key)}'"
                )
        for raw_key, raw_value in zip(args[1::2], args[2::2]):
            settings[raw_key.lower().decode()] = raw_value.decode("utf-8", "replace")
        return OK
    if sub == b"RESETSTAT" and len(args) == 1:
        s.state.commands_processed = s.state.keyspace_hits = s.state.keyspace_misses = 0
        return OK
    if sub == b"REWRITE":
        raise RespError("ERR The server is running without a config file")
    raise RespError(
        f"ERR unknown subcommand or wrong number of arguments for '{text(args[0])}'. "
        "Try CONFIG HELP."
    )


# -- persistence and time ------------------------------------------------------------


@command("save", 1, "admin", group="server", summary="Flush the memtable to disk")
def _save(s: RespSession, args: list[bytes]) -> Any:
    s.state.db.flush()
    s.state.last_save = int(time.time())
    s.state.dirty = 0
    return OK


@command("bgsave", -1, "admin", group="server", summary="Flush the memtable in the background")
def _bgsave(s: RespSession, args: list[bytes]) -> Any:
    state = s.state

    def flush() -> None:
        state.db.flush()
        state.last_save = int(time.time())
        state.dirty = 0

    threading.Thread(target=flush, name="shaledb-bgsave", daemon=True).start()
    return SimpleString("Background saving started")


@command("lastsave", 1, "fast", group="server", summary="Unix time of the last SAVE")
def _lastsave(s: RespSession, args: list[bytes]) -> Any:
    return s.state.last_save


@command("time", 1, "fast", group="server", summary="The server's time")
def _time(s: RespSession, args: list[bytes]) -> Any:
    now = time.time_ns() // 1000
    return [b"%d" % (now // 1_000_000), b"%d" % (now % 1_000_000)]


@command("wait", 3, "", group="generic", summary="Wait for replicas (there are none)")
def _wait(s: RespSession, args: list[bytes]) -> Any:
    to_int(args[0])
    to_int(args[1])
    return 0


# -- INFO ----------------------------------------------------------------------------


def _rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        import resource

        return int(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss) * 1024


def _human(n: float) -> str:
    for unit in ("B", "K", "M", "G"):
        if n < 1024:
            return f"{n:.2f}{unit}"
        n /= 1024
    return f"{n:.2f}T"


def info_sections(s: RespSession) -> dict[str, list[tuple[str, Any]]]:
    """INFO's sections, each a list of (field, value)."""
    state = s.state
    uptime = int(time.time() - state.started)
    sessions = state.sessions()
    engine = state.db.stats()
    server = state.server_stats()
    rss = _rss_bytes()
    keyspace: list[tuple[str, Any]] = []
    expires = state.expiry.pending()
    for index in range(16):
        name = "default" if index == 0 else f"db{index}"
        try:
            table = state.table(DEFAULT_NAMESPACE, name)
        except NotFoundError:
            continue
        keys = table.count()
        if keys:
            keyspace.append(
                (
                    f"db{index}",
                    f"keys={keys},expires={expires[(DEFAULT_NAMESPACE, name)]},avg_ttl=0",
                )
            )
    return {
        "Server": [
            ("redis_version", REDIS_VERSION),
            ("redis_mode", "standalone"),
            ("shaledb_version", shaledb.__version__),
            ("os", f"{platform.system()} {platform.release()} {platform.machine()}"),
            ("arch_bits", 64 if sys.maxsize > 2**32 else 32),
            ("python_version", platform.python_version()),
            ("process_id", os.getpid()),
            ("tcp_port", state.config.port),
            ("uptime_in_seconds", uptime),
            ("uptime_in_days", uptime // 86400),
            ("hz", 10),
        ],
        "Clients": [
            ("connected_clients", server.get("connections_current", len(sessions))),
            ("resp_clients", len(sessions)),
            ("maxclients", state.config.max_clients),
            ("blocked_clients", 0),
            ("pubsub_clients", sum(1 for c in sessions if c.subscribed)),
        ],
        "Memory": [
            ("used_memory", rss),
            ("used_memory_human", _human(rss)),
            ("used_memory_rss", rss),
            ("used_memory_rss_human", _human(rss)),
            ("maxmemory", 0),
            ("maxmemory_policy", "noeviction"),
            *(
                (f"shaledb_{k}", v)
                for k, v in sorted(engine.items())
                if isinstance(v, (int, float)) and ("bytes" in k or "memtable" in k)
            ),
        ],
        "Persistence": [
            ("loading", 0),
            ("rdb_changes_since_last_save", state.dirty),
            ("rdb_bgsave_in_progress", 0),
            ("rdb_last_save_time", state.last_save),
            ("rdb_last_bgsave_status", "ok"),
            ("aof_enabled", 1),
            ("aof_rewrite_in_progress", 0),
            ("aof_last_write_status", "ok"),
            ("shaledb_fsync", state.settings.get("appendfsync", "everysec")),
        ],
        "Stats": [
            ("total_connections_received", server.get("connections_total", 0)),
            ("total_commands_processed", state.commands_processed),
            ("rejected_connections", server.get("connections_rejected", 0)),
            ("expired_keys", state.expiry.expired_keys),
            ("evicted_keys", 0),
            ("keyspace_hits", state.keyspace_hits),
            ("keyspace_misses", state.keyspace_misses),
            ("pubsub_channels", len(state.broker.channel_names(None))),
            ("pubsub_patterns", state.broker.pattern_count()),
            ("total_error_replies", server.get("errors_total", 0)),
        ],
        "Replication": [
            ("role", "master"),
            ("connected_slaves", 0),
            ("master_failover_state", "no-failover"),
            ("master_replid", "0" * 40),
            ("master_repl_offset", 0),
        ],
        "Keyspace": keyspace,
    }


@command("info", -1, "", group="server", summary="Server information and statistics")
def _info(s: RespSession, args: list[bytes]) -> Any:
    sections = info_sections(s)
    wanted = {a.lower().decode("utf-8", "replace") for a in args}
    if not wanted or wanted & {"all", "everything", "default"}:
        chosen = list(sections)
    else:
        chosen = [name for name in sections if name.lower() in wanted]
    parts = []
    for name in chosen:
        lines = [f"# {name}"] + [f"{k}:{v}" for k, v in sections[name]]
        parts.append("\r\n".join(lines) + "\r\n")
    return "\r\n".join(parts).encode()


__all__ = ["Push", "info_sections"]
