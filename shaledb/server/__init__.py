"""The network server: one TCP port, JSON lines (docs/protocol.md).

Layers, bottom up:

- :mod:`shaledb.server.commands`: the command layer. It knows the database and the
  commands, not the wire: a command name and its arguments in, a reply (a dict of
  plain values) or a :class:`~shaledb.errors.ShaleDBError` out. Errors are named on
  the wire by the one table in :mod:`shaledb.errors` (``ERROR_CODES``).
- :mod:`shaledb.server.json_protocol`: JSON lines on the server: framing of the
  incoming stream and the answer to each line, over the pure codec
  :mod:`shaledb.json_lines` (which lives outside this package because the client
  library shares it and must not load the server).
- :mod:`shaledb.server.metrics`: request counters and their Prometheus text form.
- :mod:`shaledb.server.server`: the asyncio server (uvloop when importable) that
  moves bytes between sockets and the layers above, running every database call on
  a thread pool so that the event loop never waits on the engine.

This package root imports nothing.
"""
