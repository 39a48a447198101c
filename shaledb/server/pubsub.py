"""Publish/subscribe: the broker and the SUBSCRIBE family of commands.

Messages are not stored: PUBLISH hands a frame to every subscriber's connection at
once and returns how many received it. A subscriber's frames queue in its
connection's output buffer; one that lets the buffer pass ``pubsub_buffer_bytes``
is disconnected (Redis's ``client-output-buffer-limit pubsub``), so a slow
subscriber never holds up publishers. In RESP2 a subscribed connection accepts only
the SUBSCRIBE family, PING, QUIT and RESET; in RESP3 messages are push frames and
every command stays available.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from shaledb.server.glob_pattern import compile_glob
from shaledb.server.resp_commands import Replies, RespError, command, text, upper
from shaledb.server.resp_protocol import Push, encode

if TYPE_CHECKING:
    from shaledb.server.resp_session import RespSession


class Broker:
    """Channels and patterns to their subscribers. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.channels: dict[bytes, set[RespSession]] = {}
        self.patterns: dict[bytes, set[RespSession]] = {}

    def add(self, session: RespSession, name: bytes, pattern: bool) -> None:
        table = self.patterns if pattern else self.channels
        with self._lock:
            table.setdefault(name, set()).add(session)
            (session.patterns if pattern else session.channels).add(name)

    def remove(self, session: RespSession, name: bytes, pattern: bool) -> None:
        table = self.patterns if pattern else self.channels
        with self._lock:
            subs = table.get(name)
            if subs is not None:
                subs.discard(session)
                if not subs:
                    del table[name]
            (session.patterns if pattern else session.channels).discard(name)

    def unsubscribe_all(self, session: RespSession) -> None:
        for name in list(session.channels):
            self.remove(session, name, False)
        for name in list(session.patterns):
            self.remove(session, name, True)

    def publish(self, channel: bytes, message: bytes) -> int:
        """Send ``message`` to the subscribers of ``channel``; how many got it."""
        with self._lock:
            direct = list(self.channels.get(channel, ()))
            matched = [
                (pattern, list(subs))
                for pattern, subs in self.patterns.items()
                if compile_glob(pattern)(channel)
            ]
        for session in direct:
            session.push(encode(Push([b"message", channel, message]), session.protocol))
        count = len(direct)
        for pattern, subs in matched:
            for session in subs:
                session.push(
                    encode(Push([b"pmessage", pattern, channel, message]), session.protocol)
                )
            count += len(subs)
        return count

    def channel_names(self, pattern: bytes | None) -> list[bytes]:
        with self._lock:
            names = list(self.channels)
        if pattern is None:
            return names
        match = compile_glob(pattern)
        return [n for n in names if match(n)]

    def pattern_count(self) -> int:
        with self._lock:
            return len(self.patterns)

    def count(self, channel: bytes) -> int:
        with self._lock:
            return len(self.channels.get(channel, ()))


def _count(s: RespSession) -> int:
    return len(s.channels) + len(s.patterns)


def _subscribe(s: RespSession, names: list[bytes], pattern: bool) -> Replies:
    kind = b"psubscribe" if pattern else b"subscribe"
    replies = Replies()
    for name in names:
        s.state.broker.add(s, name, pattern)
        replies.append(Push([kind, name, _count(s)]))
    return replies


def _unsubscribe(s: RespSession, names: list[bytes], pattern: bool) -> Replies:
    kind = b"punsubscribe" if pattern else b"unsubscribe"
    if not names:
        names = sorted(s.patterns if pattern else s.channels)
    replies = Replies()
    for name in names:
        s.state.broker.remove(s, name, pattern)
        replies.append(Push([kind, name, _count(s)]))
    if not replies:
        replies.append(Push([kind, None, _count(s)]))
    return replies


@command(
    "subscribe",
    -2,
    "pubsub noscript",
    group="pubsub",
    summary="Listen for messages published to channels",
    since="2.0.0",
)
def _subscribe_cmd(s: RespSession, args: list[bytes]) -> Any:
    if s.in_multi:
        raise RespError("ERR SUBSCRIBE isn't allowed in a transaction")
    return _subscribe(s, args, False)


@command(
    "psubscribe",
    -2,
    "pubsub noscript",
    group="pubsub",
    summary="Listen for messages published to channels matching patterns",
    since="2.0.0",
)
def _psubscribe_cmd(s: RespSession, args: list[bytes]) -> Any:
    if s.in_multi:
        raise RespError("ERR PSUBSCRIBE isn't allowed in a transaction")
    return _subscribe(s, args, True)


@command(
    "unsubscribe",
    -1,
    "pubsub noscript",
    group="pubsub",
    summary="Stop listening to channels",
    since="2.0.0",
)
def _unsubscribe_cmd(s: RespSession, args: list[bytes]) -> Any:
    return _unsubscribe(s, args, False)


@command(
    "punsubscribe",
    -1,
    "pubsub noscript",
    group="pubsub",
    summary="Stop listening to channel patterns",
    since="2.0.0",
)
def _punsubscribe_cmd(s: RespSession, args: list[bytes]) -> Any:
    return _unsubscribe(s, args, True)


@command(
    "publish",
    3,
    "pubsub fast",
    group="pubsub",
    summary="Post a message to a channel",
    since="2.0.0",
)
def _publish(s: RespSession, args: list[bytes]) -> Any:
    return s.state.broker.publish(args[0], args[1])


@command(
    "pubsub",
    -2,
    "pubsub",
    group="pubsub",
    summary="CHANNELS [pattern] | NUMSUB [channel ...] | NUMPAT",
    since="2.8.0",
)
def _pubsub(s: RespSession, args: list[bytes]) -> Any:
    sub = upper(args[0])
    broker = s.state.broker
    if sub == b"CHANNELS" and len(args) <= 2:
        return broker.channel_names(args[1] if len(args) == 2 else None)
    if sub == b"NUMSUB":
        out: list[Any] = []
        for channel in args[1:]:
            out += [channel, broker.count(channel)]
        return out
    if sub == b"NUMPAT" and len(args) == 1:
        return broker.pattern_count()
    if sub == b"HELP":
        return ["PUBSUB CHANNELS [pattern]", "PUBSUB NUMSUB [channel ...]", "PUBSUB NUMPAT"]
    raise RespError(
        f"ERR unknown subcommand or wrong number of arguments for '{text(args[0])}'. "
        "Try PUBSUB HELP."
    )
