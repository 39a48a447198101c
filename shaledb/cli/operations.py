"""Operations on a data directory: ``check``, ``repair``, ``backup``, ``dump`` and ``load``.

Dump format (JSON lines), one object per key::

    {"namespace": "iti", "table": "t", "key": "k", "value": "v"}

with ``"key_encoding": "base64"`` / ``"encoding": "base64"`` when the key / value is
bytes (its base64 then stands in the string), and ``"ttl": seconds`` when it expires.
"""

from __future__ import annotations

import base64
import binascii
import json
import sys
import time
from collections.abc import Iterator
from typing import Any, BinaryIO, TextIO

import click

import shaledb
from shaledb.arguments import key_bytes, ttl_seconds, value_bytes
from shaledb.cli.engine_option import engine_option
from shaledb.cli.exit_codes import EXIT_FAILED, exit_code_for
from shaledb.cli.info import DirectorySummary, HashLogSummary, summarize
from shaledb.cli.progress import Progress, Ticker, directory_bytes, show_bytes, show_entries
from shaledb.engine.backup import backup_directory
from shaledb.engine.check import check_directory
from shaledb.engine.repair import repair_directory
from shaledb.errors import ShaleDBError

_LOAD_BATCH = 1000

#: ``--quiet``, for the commands that draw a progress bar.
QUIET = click.option(
    "--quiet", "-q", is_flag=True, help="No progress bar (the closing summary still prints)."
)


def _fail(message: str, code: int = EXIT_FAILED) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _fail_with(exc: ShaleDBError, hint: str = "") -> None:
    """Exit for ``exc``: 2 for a directory locked by another process, else 1."""
    code = exit_code_for(exc)
    _fail(f"{exc}{hint}" if code != EXIT_FAILED else str(exc), code)


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
def check(directory: str) -> None:
    """Verify every checksum in DIRECTORY. Exit 0 healthy, 1 damaged or unreadable, 2 locked."""
    try:
        report = check_directory(directory)
    except ShaleDBError as exc:
        _fail_with(exc, "; stop it (or check a 'shaledb backup' copy)")
    for note in report.notes:
        click.echo(f"note: {note}")
    for damage in report.damage:
        click.echo(f"DAMAGED: {damage}")
    summary = report.summary
    if report.healthy:
        click.echo(f"OK: {directory} is healthy ({summary})")
    else:
        click.echo(
            f"{len(report.damage)} damaged places in {directory} ({summary}); "
            f"'shaledb repair {directory}' salvages the rest"
        )
        sys.exit(EXIT_FAILED)


def _summary(directory: str) -> DirectorySummary | HashLogSummary | None:
    """What ``directory`` holds, for a summary line; None when it cannot be read, which
    must not turn a repair or backup that succeeded into a failure."""
    try:
        return summarize(directory)
    except ShaleDBError:
        return None


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@QUIET
def repair(directory: str, quiet: bool) -> None:
    """Rebuild DIRECTORY from everything readable, dropping damaged records and blocks."""
    started, since = time.monotonic(), time.time_ns()
    try:
        with Ticker(
            f"repairing {directory}", lambda: directory_bytes(directory, since), quiet=quiet
        ):
            report = repair_directory(directory)
    except ShaleDBError as exc:
        _fail_with(exc)
    for dropped in report.dropped:
        click.echo(f"dropped: {dropped}")
    click.echo(f"repaired {directory}: {report.summary} in {time.monotonic() - started:.2f} s")


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.argument("dest", type=click.Path(file_okay=False))
@QUIET
def backup(directory: str, dest: str, quiet: bool) -> None:
    """Copy the database in DIRECTORY to DEST consistently, even while it is in use."""
    started = time.monotonic()
    try:
        with Ticker(f"backing up {directory}", lambda: directory_bytes(dest), quiet=quiet):
            copied = backup_directory(directory, dest)
    except ShaleDBError as exc:
        _fail_with(exc)
    copy = _summary(dest)
    if isinstance(copy, HashLogSummary):
        held = f"{copy.segments} data segments ({show_bytes(copy.data_bytes)}); "
        held += f"{show_bytes(copied)} copied"
    else:
        entries = copy.sst_entries + copy.wal_entries if copy else 0
        size = copy.sst_bytes + copy.wal_bytes if copy else 0
        held = f"{show_entries(entries)} ({show_bytes(size)} of data; "
        held += f"{show_bytes(copied)} copied, the rest linked)"
    click.echo(f"backed up {directory} to {dest}: {held} in {time.monotonic() - started:.2f} s")


def _encode(data: str | bytes, field: str, encoding_field: str, out: dict[str, Any]) -> None:
    if isinstance(data, str):
        out[field] = data
    else:
        out[field] = base64.b64encode(data).decode("ascii")
        out[encoding_field] = "base64"


def dump_lines(db: shaledb.DB) -> Iterator[str]:
    """One JSON line per live key of every table."""
    for ns_name in db.list_namespaces():
        ns = db.namespace(ns_name)
        for table_name in ns.list_tables():
            table = ns.table(table_name)
            for key, value in table.scan():
                line: dict[str, Any] = {"namespace": ns_name, "table": table_name}
                _encode(key, "key", "key_encoding", line)
                _encode(value, "value", "encoding", line)
                try:
                    ttl = table.ttl(key)
                except shaledb.NotFoundError:
                    continue  # expired since the scan began
                if ttl is not None:
                    # Never 0: load refuses a TTL that is not positive.
                    line["ttl"] = max(round(ttl, 3), 0.001)
                yield json.dumps(line, ensure_ascii=False)


@click.command()
@click.argument("directory", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--output",
    "-o",
    type=click.File("w", encoding="utf-8"),
    default="-",
    help="File to write (default: standard output).",
)
@QUIET
def dump(directory: str, output: TextIO, quiet: bool) -> None:
    """Export every table of DIRECTORY as JSON lines."""
    progress = Progress("dumping", quiet=quiet)
    try:
        with shaledb.open(directory) as db:
            for line in dump_lines(db):
                text = line + "\n"
                output.write(text)
                progress.advance(1, len(text.encode("utf-8", "surrogatepass")))
    except ShaleDBError as exc:
        _fail_with(exc)
    output.flush()
    progress.finish("dumped", f"from {directory}")


def _decode(line: dict[str, Any], field: str, encoding_field: str, where: str) -> str | bytes:
    data = line.get(field)
    if not isinstance(data, str):
        raise ValueError(f"{where}: '{field}' must be a string")
    encoding = line.get(encoding_field)
    if encoding is None:
        return data
    if encoding != "base64":
        raise ValueError(f"{where}: '{encoding_field}' must be \"base64\" when present")
    try:
        return base64.b64decode(data, validate=True)
    except binascii.Error:
        raise ValueError(f"{where}: '{field}' is not valid base64") from None


def parse_line(text: str, number: int) -> tuple[str, str, str | bytes, str | bytes, float | None]:
    """``(namespace, table, key, value, ttl)`` from one dump line; ValueError naming the line."""
    where = f"line {number}"
    try:
        line = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"{where}: not JSON ({exc.msg})") from None
    except RecursionError:
        raise ValueError(f"{where}: not a dump line (JSON nested too deeply)") from None
    if not isinstance(line, dict):
        raise ValueError(f"{where}: must be a JSON object")
    namespace = line.get("namespace", "default")
    table = line.get("table", "default")
    if not isinstance(namespace, str) or not isinstance(table, str):
        raise ValueError(f"{where}: 'namespace' and 'table' must be strings")
    ttl = line.get("ttl")
    if ttl is not None:
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)):
            raise ValueError(f"{where}: 'ttl' must be a positive number of seconds")
        try:
            ttl_seconds(ttl)  # positive, finite, in range: what the write would check
        except ShaleDBError as exc:
            raise ValueError(f"{where}: {exc}") from None
    key = _decode(line, "key", "key_encoding", where)
    value = _decode(line, "value", "encoding", where)
    try:
        key_bytes(key)  # empty, oversized or not encodable: found before anything is written
        value_bytes(value)
    except ShaleDBError as exc:
        raise ValueError(f"{where}: {exc}") from None
    return namespace, table, key, value, ttl


def _utf8_line(raw: bytes, number: int) -> str:
    """Line ``number`` of a dump as text; ValueError naming the line if not UTF-8."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(
            f"line {number}: not UTF-8 (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
        ) from None


@click.command()
@click.argument("directory", type=click.Path(file_okay=False))
@click.option(
    "--input",
    "-i",
    "input_",
    type=click.File("rb"),
    default="-",
    help="File to read (default: standard input).",
)
@engine_option
@QUIET
def load(directory: str, input_: BinaryIO, engine: str | None, quiet: bool) -> None:
    """Import JSON lines (as written by dump) into DIRECTORY.

    The whole input is checked first; a bad line stops the load before anything is written.
    """
    try:
        rows = [
            (parse_line(text, n), len(raw))
            for n, raw in enumerate(input_, 1)
            if (text := _utf8_line(raw, n)).strip()
        ]
    except ValueError as exc:
        _fail(f"{exc}; nothing was loaded")
    progress = Progress("loading", len(rows), quiet=quiet)
    try:
        with shaledb.open(directory, engine=engine) as db:
            tables: dict[tuple[str, str], shaledb.Table] = {}
            batch = db.write_batch()
            for (namespace, table_name, key, value, ttl), nbytes in rows:
                table = tables.get((namespace, table_name))
                if table is None:
                    ns = db.create_namespace(namespace, exist_ok=True)
                    table = tables[(namespace, table_name)] = ns.create_table(
                        table_name, exist_ok=True
                    )
                batch.put(key, value, ttl=ttl, table=table)
                progress.advance(1, nbytes)
                if len(batch) >= _LOAD_BATCH:
                    db.write(batch)
                    batch = db.write_batch()
            db.write(batch)
    except ShaleDBError as exc:
        _fail_with(exc)
    progress.finish("loaded", f"into {directory}")
