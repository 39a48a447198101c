"""``shaledb``: the command-line entry point. Each subcommand lives in its own module."""

from __future__ import annotations

import click

from shaledb import __version__

#: What ``shaledb version`` and ``shaledb --version`` both print.
VERSION_LINE = "%(prog)s %(version)s"


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="shaledb", message=VERSION_LINE)
def main() -> None:
    """ShaleDB: a persistent key-value database (embedded, shell, network server)."""


@main.command()
def version() -> None:
    """Print the ShaleDB version."""
    click.echo(VERSION_LINE % {"prog": "shaledb", "version": __version__})


def _register() -> None:
    # Subcommands are defined next to what they run and imported here by name. An import
    # that fails is a broken installation: it raises, never drops the subcommand quietly.
    import importlib

    for module, name in (
        ("shaledb.cli.shell", "shell"),
        ("shaledb.cli.serve", "serve"),
        ("shaledb.cli.client", "client"),
        ("shaledb.cli.operations", "check"),
        ("shaledb.cli.operations", "repair"),
        ("shaledb.cli.operations", "backup"),
        ("shaledb.cli.operations", "dump"),
        ("shaledb.cli.operations", "load"),
        ("shaledb.cli.info", "info"),
    ):
        main.add_command(getattr(importlib.import_module(module), name), name)


_register()

if __name__ == "__main__":
    main()
