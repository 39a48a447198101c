"""The one thin layer through which the engine touches files.

Everything the engine does to the file system goes through a :class:`FileSystem`,
so tests can substitute one that injects faults (``tests/faults/fault_fs.py`` records
every operation, builds the disk image a power cut would leave, and fails chosen
operations; docs/reliability.md). ``OSError`` becomes
:class:`~shaledb.errors.StorageError` here, naming the file. A test in
``tests/faults/test_io_layer.py`` checks that no other engine module calls the
operating system's file functions.

Hooks for subclasses: every mutation is one method of :class:`FileSystem`
(``open_append``, ``rename``, ``remove``, ``link``, ``sync_dir``, ``remove_tree``)
or of the :class:`AppendFile` it returns (``write``, ``sync``); composite
operations (``write_synced``, ``write_atomic``, ``copy_file``) are built from those, so a
subclass sees each step.
:meth:`FileSystem.append_file` makes the file objects, so a subclass can return its
own :class:`AppendFile`.
"""

from __future__ import annotations

import errno
import fcntl
import os
import shutil

from shaledb.engine import filenames
from shaledb.errors import LockedError, StorageError


def _fdatasync(fd: int) -> None:
    # fdatasync where the platform has it (Linux), else fsync (which syncs metadata too).
    # Looked up per call, so tests that replace os.fdatasync see every sync.
    getattr(os, "fdatasync", os.fsync)(fd)


def storage_error(action: str, path: str, exc: OSError) -> StorageError:
    """The :class:`StorageError` for ``exc``, raised while doing ``action`` to ``path``."""
    return StorageError(f"cannot {action} {path}: {exc.strerror or exc}")


class AppendFile:
    """A file opened for appending with unbuffered writes.

    ``write`` hands the bytes to the OS before it returns (so they survive the death of
    the process); ``sync`` makes them durable.
    """

    def __init__(self, path: str, fd: int, size: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size

    def write(self, data: bytes) -> None:
        try:
            n = os.write(self.fd, data)
            if n != len(data):  # a short write: rare, finish it piecewise
                view = memoryview(data)[n:]
                while view:
                    view = view[os.write(self.fd, view) :]
        except OSError as exc:
            raise storage_error("write", self.path, exc) from exc
        self.size += len(data)

    def sync(self) -> None:
        try:
            _fdatasync(self.fd)
        except OSError as exc:
            raise storage_error("fsync", self.path, exc) from exc

    def truncate(self, size: int) -> None:
        """Cut the file back to ``size`` bytes (later writes still append at the end)."""
        try:
            os.ftruncate(self.fd, size)
        except OSError as exc:
            raise storage_error("truncate", self.path, exc) from exc
        self.size = min(self.size, size)

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


class RandomAccessFile:
    """A read-only file read at offsets (thread-safe: ``pread`` has no shared position)."""

    def __init__(self, path: str, fd: int, size: int) -> None:
        self.path = path
        self.fd = fd
        self.size = size

    def read(self, offset: int, length: int) -> bytes:
        try:
            return os.pread(self.fd, length, offset)
        except OSError as exc:
            raise storage_error("read", self.path, exc) from exc

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __del__(self) -> None:
        # A table file unlinked by compaction stays readable until its last reader goes.
        self.close()


class DirectoryLock:
    """An exclusive ``flock`` on ``LOCK``; the file records the holder's pid."""

    def __init__(self, path: str, fd: int) -> None:
        self.path = path
        self.fd = fd

    def release(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def still_held(self) -> bool:
        """Whether ``path`` is still the file this lock holds (not deleted or replaced,
        which would let another process lock a new file of the same name)."""
        try:
            held = os.fstat(self.fd)
            named = os.stat(self.path)
        except OSError:
            return False
        return (held.st_dev, held.st_ino) == (named.st_dev, named.st_ino)


class FileSystem:
    """The real file system. Subclass and override to inject faults in tests."""

    def make_dirs(self, directory: str) -> None:
        try:
            os.makedirs(directory, exist_ok=True)
        except OSError as exc:
            raise storage_error("create directory", directory, exc) from exc
        if not os.path.isdir(directory):
            raise StorageError(f"{directory} exists and is not a directory")

    def list_dir(self, directory: str) -> list[str]:
        try:
            return sorted(os.listdir(directory))
        except OSError as exc:
            raise storage_error("list", directory, exc) from exc

    def exists(self, path: str) -> bool:
        return os.path.exists(path)

    def size(self, path: str) -> int:
        try:
            return os.stat(path).st_size
        except OSError as exc:
            raise storage_error("stat", path, exc) from exc

    def open_append(self, path: str, truncate_to: int | None = None) -> AppendFile:
        """Open (creating) ``path`` for appending, first cutting it to ``truncate_to`` bytes."""
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
            if truncate_to is not None:
                os.ftruncate(fd, truncate_to)
            size = os.fstat(fd).st_size
        except OSError as exc:
            raise storage_error("open", path, exc) from exc
        return self.append_file(path, fd, size)

    def append_file(self, path: str, fd: int, size: int) -> AppendFile:
        """The file object for a descriptor :meth:`open_append` opened (a subclass hook)."""
        return AppendFile(path, fd, size)

    def open_read(self, path: str) -> RandomAccessFile:
        try:
            fd = os.open(path, os.O_RDONLY)
            size = os.fstat(fd).st_size
        except OSError as exc:
            raise storage_error("open", path, exc) from exc
        return RandomAccessFile(path, fd, size)

    def read_all(self, path: str) -> bytes:
        try:
            with open(path, "rb") as f:
                return f.read()
        except OSError as exc:
            raise storage_error("read", path, exc) from exc

    def write_atomic(self, directory: str, name: str, data: bytes) -> None:
        """Replace ``directory/name`` with ``data``: write a temp file, fsync, rename, fsync dir.

        After a crash ``name`` holds the old content or the new, never a mix.
        """
        final = os.path.join(directory, name)
        temp = filenames.temp_name(final)
        self.write_synced(temp, data)
        self.rename(temp, final)
        self.sync_dir(directory)

    def write_synced(self, path: str, data: bytes) -> None:
        """Make ``path`` hold exactly ``data``, fsynced (its name is not: the caller
        renames it into place and fsyncs the directory)."""
        file = self.open_append(path, truncate_to=0)
        try:
            file.write(data)
            file.sync()
        finally:
            file.close()

    def copy_file(self, src: str, dst: str) -> int:
        """Copy ``src`` to ``dst`` through a temp file (fsynced, then renamed); returns bytes.

        The caller fsyncs ``dst``'s directory to make the new name durable.
        """
        data = self.read_all(src)
        temp = filenames.temp_name(dst)
        self.write_synced(temp, data)
        self.rename(temp, dst)
        return len(data)

    def link(self, src: str, dst: str) -> bool:
        """Hard-link ``src`` as ``dst``; False when this file system cannot link them
        (another device, no hard links), so the caller copies instead.

        Raises:
            StorageError: ``src`` is missing or the link failed otherwise.
        """
        try:
            os.link(src, dst)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP):
                return False
            raise storage_error("link", src, exc) from exc
        return True

    def rename(self, src: str, dst: str) -> None:
        try:
            os.replace(src, dst)
        except OSError as exc:
            raise storage_error("rename", src, exc) from exc

    def remove(self, path: str) -> None:
        try:
            os.remove(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error("remove", path, exc) from exc

    def remove_tree(self, directory: str) -> None:
        """Remove ``directory`` and everything in it; nothing when it does not exist."""
        try:
            shutil.rmtree(directory)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise storage_error("remove", directory, exc) from exc

    def sync_dir(self, directory: str) -> None:
        try:
            fd = os.open(directory, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        except OSError as exc:
            raise storage_error("fsync directory", directory, exc) from exc

    def lock(self, path: str) -> DirectoryLock:
        """Take the exclusive lock on ``path``; LockedError naming the holder if taken."""
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise storage_error("open", path, exc) from exc
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = os.pread(fd, 200, 0).decode("utf-8", "replace").strip() or "unknown"
            os.close(fd)
            if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise LockedError(
                    f"{os.path.dirname(path) or '.'} is locked by another process or handle "
                    f"({holder}); "
                    "only one process may open a data directory - use the server to share it"
                ) from None
            raise storage_error("lock", path, exc) from exc
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"pid {os.getpid()}\n".encode(), 0)
        return DirectoryLock(path, fd)
