"""A close racing a manual compaction in another thread, for both engines' tests."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from shaledb.errors import ClosedError


def check_close_waits_for_compact(
    engine: Any, monkeypatch: pytest.MonkeyPatch, owner: object, name: str
) -> None:
    """Hold ``engine.compact()`` (run in another thread) inside ``owner.name`` and close
    the engine meanwhile: the close must wait for the compaction, which must succeed,
    and a compaction asked for after the close must raise ClosedError."""
    started, release = threading.Event(), threading.Event()
    real = getattr(owner, name)

    def held(*args: Any, **kwargs: Any) -> Any:
        started.set()
        assert release.wait(10)
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, held)
    outcome: list[BaseException | None] = []

    def compact() -> None:
        try:
            engine.compact()
            outcome.append(None)
        except BaseException as exc:  # pragma: no cover - reported below
            outcome.append(exc)

    compacting = threading.Thread(target=compact)
    compacting.start()
    assert started.wait(10)
    closing = threading.Thread(target=engine.close)
    closing.start()
    closing.join(0.3)
    assert closing.is_alive()  # still waiting for the compaction
    release.set()
    compacting.join(10)
    closing.join(10)
    assert outcome == [None] and not closing.is_alive()
    with pytest.raises(ClosedError):
        engine.compact()
