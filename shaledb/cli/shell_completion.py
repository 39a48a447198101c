"""Tab completion for the terminal shell: command names, namespaces and tables.

Names are fetched from the database on each Tab press (never while typing), so a
remote shell costs one round trip per Tab and always sees current names.
"""

from __future__ import annotations

from collections.abc import Iterator

from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document

from shaledb.cli.shell_commands import COMMANDS, Shell
from shaledb.cli.terminal import matching as _matching
from shaledb.errors import ShaleDBError


class ShellCompleter(Completer):
    """Completes the first word as a command, the second as what that command takes.

    What a command's argument names comes from its ``completes`` field; a ``"table:"``
    argument completes to ``<table>:`` so that the key can follow at once. Keys are
    not completed: that would mean scanning a table on a key press.
    """

    def __init__(self, shell: Shell) -> None:
        self._shell = shell

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor.lstrip()
        name, space, arg = text.partition(" ")
        if not space:
            yield from _matching(name, COMMANDS)
            return
        arg = arg.lstrip()
        command = COMMANDS.get(name)
        if command is None or any(c.isspace() or c == ":" for c in arg):
            return
        if command.completes == "command":
            yield from _matching(arg, COMMANDS)
        elif command.completes == "namespace":
            yield from _matching(arg, self._names(namespaces=True))
        elif command.completes in ("table", "table:"):
            suffix = ":" if command.completes == "table:" else ""
            yield from _matching(arg, self._names(namespaces=False), suffix)

    def _names(self, namespaces: bool) -> list[str]:
        db = self._shell.db
        try:
            if namespaces:
                return db.list_namespaces()
            return db.namespace(self._shell.namespace).list_tables()
        except ShaleDBError:
            return []  # a dropped namespace or a lost server: nothing to offer
