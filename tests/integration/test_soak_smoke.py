"""bench/soak.py, briefly: a real server killed twice under load loses and invents nothing.

The ten-minute runs behind docs/reliability.md use the same script (``make soak``); this
one runs it for ten seconds with one or two kills and the final kill and read-back. The
model it checks against is tested first on its own, and a slow test checks that the
soak does catch loss, against a server that keeps nothing across a restart.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from server_fixtures import ROOT, child_env

if str(ROOT) not in sys.path:  # bench/ is not installed; it is imported from the checkout
    sys.path.insert(0, str(ROOT))
from bench.soak_model import ABSENT, KeyModel, Outcome  # noqa: E402


def soak(tmp_path: Path, *args: str) -> tuple[int, dict[str, Any], str]:
    out = tmp_path / "soak.json"
    env = child_env()
    env["TMPDIR"] = str(tmp_path)  # the server's directory and logs, kept when a run fails
    proc = subprocess.run(
        [sys.executable, "-m", "bench.soak", "--clients", "4", "--json", str(out), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=ROOT,
    )
    assert out.exists(), proc.stdout + proc.stderr
    (result,) = json.loads(out.read_text())
    return proc.returncode, result, proc.stdout + proc.stderr


@pytest.mark.crash
def test_ten_seconds_of_kills_lose_and_invent_nothing(tmp_path: Path) -> None:
    status, result, output = soak(tmp_path, "--duration", "10", "--kill-interval", "3,5")
    stats = result["stats"]
    assert stats["mismatches"] == 0, output
    assert status == 0, output
    assert result["restarts"] >= 2, output  # one or two at random, then the final one
    assert result["operations"] > 1000, output
    assert stats["final_keys"] == 4 * 64, output
    assert stats["error_replies"] == 0, output
    assert result["work"]["flushes"] > 0, output  # the kills land among flushes
    assert result["stop_status"] == 0 and result["check_status"] == 0, output


@pytest.mark.slow
@pytest.mark.crash
def test_the_soak_catches_a_server_that_loses_acknowledged_writes(tmp_path: Path) -> None:
    # --in-memory keeps nothing across a restart: every acknowledged write is lost.
    status, result, output = soak(
        tmp_path, "--duration", "6", "--kill-interval", "2,3", "--server-arg=--in-memory"
    )
    assert status == 1, output
    assert result["stats"]["mismatches"] > 0, output


# -- the model ------------------------------------------------------------------------------


def test_an_acknowledged_write_is_the_only_value_allowed() -> None:
    model = KeyModel()
    model.acknowledged("k", Outcome("a"))
    model.acknowledged("k", Outcome("b"))
    assert model.observe("k", "b", 0, 1) is None
    assert model.observe("k", "a", 1, 2) is not None
    model.acknowledged("k", ABSENT)
    assert model.observe("k", "b", 2, 3) is not None


def test_a_write_in_flight_allows_both_until_a_read_settles_it() -> None:
    for seen, later_bad in (("a", "b"), ("b", "a")):
        model = KeyModel()
        model.acknowledged("k", Outcome("a"))
        model.in_flight("k", Outcome("b"))
        assert model.observe("k", seen, 0, 1) is None
        assert model.observe("k", later_bad, 1, 2) is not None
    model = KeyModel()
    model.in_flight("k", Outcome("b"))
    assert model.observe("k", "c", 0, 1) is not None  # never written: invented


def test_a_ttl_value_expires_after_its_deadline_never_before() -> None:
    slack = 0.25
    model = KeyModel(slack=slack)
    model.acknowledged("k", Outcome("a", expires_lo=10.0, expires_hi=11.0))
    assert model.observe("k", None, 9.0, 9.5) is not None  # gone before its expiry
    model.acknowledged("k", Outcome("a", expires_lo=10.0, expires_hi=11.0))
    assert model.observe("k", "a", 10.5, 10.6) is None  # either is allowed in between
    assert model.observe("k", None, 10.7, 10.8) is None
    model.acknowledged("k", Outcome("a", expires_lo=10.0, expires_hi=11.0))
    assert model.observe("k", "a", 11.0 + slack + 0.1, 12.0) is not None  # seen after it
