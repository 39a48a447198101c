"""The line editor of the interactive commands, ``shaledb shell`` and ``shaledb client``.

One prompt_toolkit session for both: Up and Down walk a history kept in a file across
sessions, Tab completes (never while typing), Ctrl-C drops the line being typed and
Ctrl-D leaves. Used only when standard input and output are both terminals.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

import click
from prompt_toolkit import PromptSession
from prompt_toolkit.completion import CompleteEvent, Completer, Completion
from prompt_toolkit.document import Document
from prompt_toolkit.history import FileHistory, History, InMemoryHistory

#: What a terminal session prints when Ctrl-C stops a running command.
INTERRUPTED_LINE = "[ERROR] interrupted"


def prompt_session(history_file: str, completer: Completer) -> Any:
    """A session with a file history at ``history_file`` ('' for none) and ``completer``."""
    return PromptSession(
        history=_history(history_file),
        completer=completer,
        complete_while_typing=False,
    )


def typed_lines(session: Any, prompt: str) -> Iterator[str]:
    """Each line typed at ``prompt``, until Ctrl-D; Ctrl-C drops the line being typed."""
    while True:
        try:
            yield session.prompt(prompt)
        except KeyboardInterrupt:
            continue
        except EOFError:
            return


def _history(path: str) -> History:
    """A file history at ``path``, or an in-memory one when the file cannot be used."""
    if not path:
        return InMemoryHistory()
    path = os.path.expanduser(path)
    try:
        # FileHistory appends on every line; find out now, not mid-session, if it cannot.
        with open(path, "a", encoding="utf-8"):
            pass
    except OSError as exc:
        click.echo(f"[ERROR] history is not saved: {exc}", err=True)
        return InMemoryHistory()
    return FileHistory(path)


class CommandCompleter(Completer):
    """Completes the first word of a line as one of ``names``; later words not at all."""

    def __init__(self, names: Iterable[str]) -> None:
        self._names = list(names)

    def get_completions(
        self, document: Document, complete_event: CompleteEvent
    ) -> Iterator[Completion]:
        text = document.text_before_cursor.lstrip()
        if " " not in text:
            yield from matching(text, self._names)


def matching(word: str, names: Iterable[str], suffix: str = "") -> Iterator[Completion]:
    """A completion (plus ``suffix``) for each of ``names`` that starts with ``word``."""
    for name in names:
        if name.startswith(word):
            yield Completion(name + suffix, start_position=-len(word), display=name)
