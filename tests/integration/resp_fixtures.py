"""Helpers for the RESP tests: finding the Redis programs, and a raw RESP connection."""

from __future__ import annotations

import os
import shutil
import socket
from typing import Any

import pytest

from shaledb.server.resp_protocol import encode_command
from shaledb.server.resp_reply_parser import ReplyParser


def program(name: str) -> str:
    """The path of a Debian-packaged program, or a loud skip when it cannot be had.

    ``make test`` installs redis-tools, redis-server and nutcracker when missing; a
    skip here means that install failed (no apt, no network), and says so.
    """
    path = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin:/sbin")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{name} is not installed; `make test` should have installed it")
        pytest.skip(
            f"SKIPPED LOUDLY: {name} is not installed and could not be installed "
            "(apt-get install redis-tools redis-server nutcracker)"
        )
    return path


class RespLink:
    """A raw RESP connection: send commands or bytes, read parsed replies."""

    def __init__(self, port: int, timeout: float = 10.0) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.parser = ReplyParser()
        self.replies: list[Any] = []

    def send(self, *words: bytes | str | int) -> None:
        self.sock.sendall(encode_command(*words))

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> Any:
        while not self.replies:
            data = self.sock.recv(1 << 16)
            assert data, "the server closed the connection"
            self.replies += self.parser.feed(data)
        return self.replies.pop(0)

    def call(self, *words: bytes | str | int) -> Any:
        self.send(*words)
        return self.recv()

    def read_all(self) -> bytes:
        """Everything until the server closes the connection."""
        data = b""
        try:
            while chunk := self.sock.recv(1 << 16):
                data += chunk
        except ConnectionResetError:
            pass
        return data

    def close(self) -> None:
        self.sock.close()
