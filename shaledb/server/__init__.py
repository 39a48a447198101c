"""The network server: one TCP port, JSON lines (docs/protocol.md).

Layers, bottom up:

- :mod:`shaledb.server.commands`: the command layer. It knows the database and the
  commands, not the wire: a command name and its arguments in, a reply (a dict of
  plain values) or a :class:`~shaledb.errors.ShaleDBError` out. It also holds the one
  table that maps errors to wire error codes.
- :mod:`shaledb.server.json_protocol`: framing, parsing and encoding of JSON lines.
  No I/O, so the client library shares it.
- :mod:`shaledb.server.metrics`: request counters and their Prometheus text form.
- :mod:`shaledb.server.server`: the asyncio server (uvloop when importable) that
  moves bytes between sockets and the layers above, running every database call on
  a thread pool so that the event loop never waits on the engine.

This package root imports nothing heavy, so ``import shaledb.server.json_protocol``
(as the client does) does not pull in asyncio.
"""
