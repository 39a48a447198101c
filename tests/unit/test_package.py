"""The package's shape: what ``import`` loads, what the root exports, the CLI's subcommands."""

from __future__ import annotations

import subprocess
import sys

import pytest

import shaledb

_ENV: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _child_env(subprocess_env: dict[str, str]) -> None:
    _ENV.clear()
    _ENV.update(subprocess_env)


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    """Run ``code`` in a fresh interpreter that imports this checkout's shaledb."""
    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=_ENV
    )


LOADED = (
    "import sys; print(' '.join(sorted(m for m in sys.modules"
    " if m.split('.')[:2] in (['shaledb', 'server'], ['shaledb', 'db'], ['shaledb', 'engine']))))"
)


def test_the_client_loads_no_server_db_or_engine_module() -> None:
    proc = run_python("import shaledb.client\n" + LOADED)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [], "import shaledb.client loaded " + proc.stdout


def test_the_package_root_loads_the_engine_only_when_asked() -> None:
    proc = run_python(
        "import shaledb\n"
        "import sys\n"
        "assert not any(m.startswith('shaledb.engine') for m in sys.modules), 'eager'\n"
        "from shaledb import DB, open\n"
        "assert DB is shaledb.DB and open is shaledb.open\n"
        "assert 'shaledb.engine.lsm' not in sys.modules  # loaded by DB(), not by import\n"
        "print(DB.__module__, open.__module__)"
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["shaledb.db", "shaledb.db"]


def test_every_exported_name_resolves() -> None:
    for name in shaledb.__all__:
        assert getattr(shaledb, name) is not None, name
    assert set(shaledb.__all__) <= set(dir(shaledb))
    assert shaledb.StorageEngine is shaledb.DB and issubclass(shaledb.KeyValueStore, shaledb.DB)
    assert shaledb.KeyValueStore.__module__ == "shaledb.key_value_store"
    assert shaledb.Table.__module__ == "shaledb.table"
    assert shaledb.WriteBatch.__module__ == "shaledb.write_batch"


def test_an_unknown_attribute_is_an_attribute_error() -> None:
    proc = run_python(
        "import shaledb\ntry:\n    shaledb.nope\nexcept AttributeError as e:\n    print(e)"
    )
    assert "has no attribute 'nope'" in proc.stdout, proc.stderr


def test_a_subcommand_that_fails_to_import_is_loud() -> None:
    # sys.modules[name] = None makes `import name` raise ImportError.
    code = "import sys\nsys.modules['shaledb.cli.serve'] = None\nimport shaledb.cli.main\n"
    proc = run_python(code + "print('quiet')")
    assert proc.returncode != 0 and "quiet" not in proc.stdout
    assert "ModuleNotFoundError" in proc.stderr and "shaledb.cli.serve" in proc.stderr


def test_every_subcommand_is_registered() -> None:
    from shaledb.cli.main import main

    assert set(main.commands) >= {
        "shell",
        "serve",
        "client",
        "check",
        "repair",
        "backup",
        "dump",
        "load",
        "version",
    }
