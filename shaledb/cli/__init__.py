"""The ``shaledb`` command: shell, server, client and operations."""
