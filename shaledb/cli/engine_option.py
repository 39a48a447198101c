"""The ``--engine`` option of ``shaledb shell``, ``serve`` and ``load``: one definition.

Without it a command opens an existing directory with the engine that wrote it and
creates a new one with the LSM engine (:mod:`shaledb.engine.detect`).
"""

from __future__ import annotations

import click

from shaledb.engine.detect import ENGINES

engine_option = click.option(
    "--engine",
    type=click.Choice(ENGINES),
    default=None,
    help="The storage engine: lsm (log-structured merge tree) or hashlog (hash-indexed "
    "log). Default: the engine of an existing directory, lsm for a new one.",
)
