"""A file system that records every operation and can replay them as a power cut would.

:class:`FaultFS` is a :class:`shaledb.engine.fs.FileSystem` (the engine's one file-I/O
layer) that does the real I/O and, under one lock, records each mutation as an
:class:`IOStep`: a file created, truncated, written (with its bytes), fsynced, renamed,
linked, removed, a directory fsynced. From that record it can

(a) build the disk image a power cut at any step ``k`` would leave, under strict POSIX
    rules (:meth:`FaultFS.image`; the rules are in docs/reliability.md, "Power-cut
    model"): a file keeps only the bytes an fsync covered (optionally a prefix of the
    rest: a torn write); a new name, a rename or a removal counts only once the
    directory holding it was fsynced afterwards;
(b) fail chosen operations (:class:`Fault`): the Nth write, fsync, directory fsync,
    rename, remove or open of a file kind (WAL, table, manifest, CURRENT, temp) with
    EIO, or with ENOSPC after writing part of the bytes.

Files are tracked as inodes, so a file renamed or unlinked while open keeps its
content; a name that existed when the FaultFS was made counts as durable. Since the
record, not the disk, decides what a power cut keeps, fsyncs are recorded but not
passed to the disk unless ``real_sync=True`` (they would only make the tests slow).
"""

from __future__ import annotations

import errno
import os
import random
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from shaledb.engine import filenames
from shaledb.engine.fs import AppendFile, FileSystem, RandomAccessFile, storage_error

#: File kinds a fault can target (``"any"`` matches every file).
KINDS = ("wal", "table", "manifest", "current", "temp", "lock", "other")
#: Operations a fault can target.
FAULT_OPS = ("open", "write", "sync", "sync_dir", "rename", "remove")


def kind_of(path: str) -> str:
    """The kind of file ``path`` names: one of :data:`KINDS`."""
    name = os.path.basename(path)
    if name.endswith(filenames.TEMP_SUFFIX):
        return "temp"
    if name == filenames.CURRENT:
        return "current"
    if name == filenames.LOCK:
        return "lock"
    parsed = filenames.parse(name)
    if parsed is None:
        return "other"
    return {"wal": "wal", "sst": "table", "manifest": "manifest"}[parsed[0].value]


@dataclass(frozen=True)
class IOStep:
    """One recorded mutation.

    ``op`` is one of ``create``, ``truncate``, ``write``, ``sync``, ``rename``, ``link``,
    ``remove``, ``sync_dir``. ``path`` is the file (or directory, for ``sync_dir``) as
    named when the step ran; ``dest`` the new name of a rename or link.
    """

    index: int
    op: str
    path: str
    inode: int = -1
    data: bytes = b""
    size: int = 0
    dest: str = ""
    thread: str = ""

    @property
    def kind(self) -> str:
        return kind_of(self.dest or self.path)

    def __repr__(self) -> str:
        what = f"{self.op} {os.path.basename(self.path)}"
        if self.dest:
            what += f" -> {os.path.basename(self.dest)}"
        if self.op == "write":
            what += f" ({len(self.data)} bytes)"
        return f"<step {self.index}: {what}>"


@dataclass
class Fault:
    """Fail the ``nth`` (1-based) matching operation, and the ``times - 1`` after it
    (``times=None``: every one from the ``nth`` on, as a full disk stays full).

    ``error`` is ``"EIO"`` or ``"ENOSPC"``; an ENOSPC write first writes ``short`` of
    the bytes (a fraction; the kernel's short write before the device filled up).
    """

    op: str
    kind: str = "any"
    nth: int = 1
    error: str = "EIO"
    times: int | None = 1
    short: float = 0.5
    seen: int = 0
    fired: int = 0
    #: The steps (record indices) at which the fault fired.
    fired_at: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        assert self.op in FAULT_OPS, self.op
        assert self.kind == "any" or self.kind in KINDS, self.kind
        assert self.error in ("EIO", "ENOSPC"), self.error

    def matches(self, op: str, kinds: Iterable[str]) -> bool:
        return op == self.op and (self.kind == "any" or self.kind in kinds)

    def fires(self) -> bool:
        self.seen += 1
        if self.seen < self.nth:
            return False
        if self.times is not None and self.fired >= self.times:
            return False
        self.fired += 1
        return True

    def os_error(self) -> OSError:
        code = errno.EIO if self.error == "EIO" else errno.ENOSPC
        return OSError(code, os.strerror(code))


class _Inode:
    __slots__ = ("durable", "volatile")

    def __init__(self, content: bytes = b"", durable: bool = False) -> None:
        self.volatile = bytearray(content)
        self.durable = bytes(content) if durable else b""


class FaultFile(AppendFile):
    """An :class:`AppendFile` whose writes and fsyncs are recorded and may fail."""

    def __init__(self, path: str, fd: int, size: int, fs: FaultFS) -> None:
        super().__init__(path, fd, size)
        self.fs = fs
        self.inode = -1

    def write(self, data: bytes) -> None:
        fs = self.fs
        with fs.lock_:
            fault = fs._fault("write", self.path)
            if fault is not None:
                if fault.error == "ENOSPC" and len(data) > 1:
                    part = bytes(data[: max(1, int(len(data) * fault.short))])
                    super().write(part)
                    self.size -= len(part)  # as the real layer: size counts whole writes
                    fs._record("write", self.path, self.inode, data=part)
                raise storage_error("write", self.path, fault.os_error())
            super().write(data)
            fs._record("write", self.path, self.inode, data=bytes(data))

    def sync(self) -> None:
        fs = self.fs
        with fs.lock_:
            fault = fs._fault("sync", self.path)
            if fault is not None:
                raise storage_error("fsync", self.path, fault.os_error())
            if fs.real_sync:
                super().sync()
            fs._record("sync", self.path, self.inode)


class FaultFS(FileSystem):
    """The real file system, recorded, with faults (module docstring).

    ``root``: the database directory; the files in it now are the durable starting
    state of every image. Thread-safe: one lock orders every recorded step.
    """

    def __init__(self, root: str, faults: Iterable[Fault] = (), real_sync: bool = False) -> None:
        self.root = os.path.abspath(root)
        self.real_sync = real_sync
        self.faults: list[Fault] = list(faults)
        self.steps: list[IOStep] = []
        #: Steps recorded so far by ``(op, kind)``, e.g. ``("remove", "wal")``.
        self.counts: Counter[tuple[str, str]] = Counter()
        self.lock_ = threading.RLock()
        self._inodes: list[_Inode] = []
        self._initial: dict[str, int] = {}  # durable names at the start
        self._names: dict[str, int] = {}  # path -> inode, as the running process sees it
        if os.path.isdir(self.root):
            for name in sorted(os.listdir(self.root)):
                path = os.path.join(self.root, name)
                if os.path.isfile(path) and name != filenames.LOCK:
                    with open(path, "rb") as f:
                        inode = self._new_inode(f.read(), durable=True)
                    self._initial[path] = inode
                    self._names[path] = inode

    # -- recording -----------------------------------------------------------------------

    def mark(self) -> int:
        """The number of steps recorded so far (a crash "at" this step loses nothing
        that was done before it)."""
        with self.lock_:
            return len(self.steps)

    def _new_inode(self, content: bytes = b"", durable: bool = False) -> int:
        self._inodes.append(_Inode(content, durable))
        return len(self._inodes) - 1

    def _record(self, op: str, path: str, inode: int = -1, **fields: object) -> None:
        step = IOStep(
            len(self.steps), op, path, inode, thread=threading.current_thread().name, **fields
        )
        self.steps.append(step)
        self.counts[(op, step.kind)] += 1

    def _fault(self, op: str, *paths: str) -> Fault | None:
        kinds = [kind_of(p) for p in paths]
        for fault in self.faults:
            if fault.matches(op, kinds) and fault.fires():
                fault.fired_at.append(len(self.steps))
                return fault
        return None

    def _inode_of(self, path: str) -> int:
        """The inode of an existing ``path`` (adopting a file made outside the FaultFS)."""
        inode = self._names.get(path)
        if inode is None:
            with open(path, "rb") as f:
                inode = self._new_inode(f.read(), durable=True)
            self._names[path] = inode
        return inode

    # -- the FileSystem operations -------------------------------------------------------

    def append_file(self, path: str, fd: int, size: int) -> AppendFile:
        return FaultFile(path, fd, size, self)

    def open_append(self, path: str, truncate_to: int | None = None) -> AppendFile:
        path = os.path.abspath(path)
        with self.lock_:
            fault = self._fault("open", path)
            if fault is not None:
                raise storage_error("open", path, fault.os_error())
            existed = os.path.exists(path)
            file = super().open_append(path, truncate_to)
            assert isinstance(file, FaultFile)
            if existed:
                file.inode = self._inode_of(path)
                if truncate_to is not None:
                    self._record("truncate", path, file.inode, size=truncate_to)
            else:
                file.inode = self._names[path] = self._new_inode()
                self._record("create", path, file.inode)
            return file

    def open_read(self, path: str) -> RandomAccessFile:
        with self.lock_:
            fault = self._fault("open", path)
        if fault is not None:
            raise storage_error("open", path, fault.os_error())
        return super().open_read(path)

    def read_all(self, path: str) -> bytes:
        with self.lock_:
            fault = self._fault("open", path)
        if fault is not None:
            raise storage_error("open", path, fault.os_error())
        return super().read_all(path)

    def rename(self, src: str, dst: str) -> None:
        src, dst = os.path.abspath(src), os.path.abspath(dst)
        with self.lock_:
            fault = self._fault("rename", src, dst)
            if fault is not None:
                raise storage_error("rename", src, fault.os_error())
            inode = self._inode_of(src) if os.path.exists(src) else -1
            super().rename(src, dst)
            self._names.pop(src, None)
            self._names[dst] = inode
            self._record("rename", src, inode, dest=dst)

    def link(self, src: str, dst: str) -> bool:
        src, dst = os.path.abspath(src), os.path.abspath(dst)
        with self.lock_:
            linked = super().link(src, dst)
            if linked:
                inode = self._names[dst] = self._inode_of(src)
                self._record("link", src, inode, dest=dst)
            return linked

    def remove(self, path: str) -> None:
        path = os.path.abspath(path)
        with self.lock_:
            fault = self._fault("remove", path)
            if fault is not None:
                raise storage_error("remove", path, fault.os_error())
            existed = os.path.exists(path)
            super().remove(path)
            if existed:
                inode = self._names.pop(path, -1)
                self._record("remove", path, inode)

    def remove_tree(self, directory: str) -> None:
        directory = os.path.abspath(directory)
        with self.lock_:
            if os.path.isdir(directory):
                for name in sorted(os.listdir(directory)):
                    path = os.path.join(directory, name)
                    self._record("remove", path, self._names.pop(path, -1))
            super().remove_tree(directory)

    def sync_dir(self, directory: str) -> None:
        directory = os.path.abspath(directory)
        with self.lock_:
            fault = self._fault("sync_dir", directory)
            if fault is not None:
                raise storage_error("fsync directory", directory, fault.os_error())
            if self.real_sync:
                super().sync_dir(directory)
            self._record("sync_dir", directory)

    # -- power-cut images ----------------------------------------------------------------

    def image(
        self,
        k: int,
        directory: str | None = None,
        torn: random.Random | None = None,
        early_names: bool = False,
        holes: random.Random | None = None,
    ) -> dict[str, bytes]:
        """The files of ``directory`` (default: the root) after a power cut just before
        step ``k`` (steps ``0 .. k-1`` happened), by name.

        Strict rules (docs/reliability.md): a name is there only as of the last fsync
        of its directory; its content is what the last fsync of the file covered. With
        ``torn``, each file also keeps a random prefix (possibly empty or whole) of the
        bytes appended after its last fsync. With ``early_names`` every create, rename
        and remove done before ``k`` has reached the disk, fsynced or not (a file system
        that commits metadata ahead of data), while contents still follow the rules.
        With ``holes``, the pages (4 KiB of the file, aligned) written after the last
        fsync each reach the disk or not, in any order: the file then reads zeros where a
        page did not, up to the end of the last page that did (the OS writes dirty pages
        back in no particular order).
        """
        directory = os.path.abspath(directory or self.root)
        with self.lock_:
            inodes, durable, current = self._replay(k)
        names = durable.get(directory, {})
        if early_names:
            names = {p: i for p, i in current.items() if os.path.dirname(p) == directory}
        files: dict[str, bytes] = {}
        for path, inode_number in sorted(names.items()):
            if inode_number < 0:
                continue
            inode = inodes[inode_number]
            content = inode.durable
            extra = bytes(inode.volatile[len(content) :])
            if torn is not None and extra and inode.volatile.startswith(content):
                content += extra[: torn.randint(0, len(extra))]
            elif holes is not None and extra and inode.volatile.startswith(content):
                content = _with_holes(content, bytes(inode.volatile), holes)
            files[os.path.basename(path)] = content
        return files

    def process_crash_image(self, k: int, directory: str | None = None) -> dict[str, bytes]:
        """The files of ``directory`` had only the process died before step ``k``: every
        completed operation counts, synced or not (``kill -9``)."""
        directory = os.path.abspath(directory or self.root)
        with self.lock_:
            inodes, _, names = self._replay(k)
        return {
            os.path.basename(p): bytes(inodes[i].volatile)
            for p, i in sorted(names.items())
            if os.path.dirname(p) == directory and i >= 0
        }

    def _replay(self, k: int) -> tuple[list[_Inode], dict[str, dict[str, int]], dict[str, int]]:
        """Replay steps ``0 .. k-1``: inodes, durable names by directory, current names."""
        # Recording never changes self._inodes: each holds its content at the start
        # (empty for a file created since), durable.
        inodes = [_Inode(i.durable, durable=True) for i in self._inodes]
        names: dict[str, int] = dict(self._initial)
        durable: dict[str, dict[str, int]] = {}
        for path, i in self._initial.items():
            durable.setdefault(os.path.dirname(path), {})[path] = i
        for step in self.steps[:k]:
            op = step.op
            if op == "create":
                names[step.path] = step.inode
            elif op == "truncate":
                del inodes[step.inode].volatile[step.size :]
            elif op == "write":
                inodes[step.inode].volatile += step.data
            elif op == "sync":
                inodes[step.inode].durable = bytes(inodes[step.inode].volatile)
            elif op == "rename":
                names.pop(step.path, None)
                names[step.dest] = step.inode
            elif op == "link":
                names[step.dest] = step.inode
            elif op == "remove":
                names.pop(step.path, None)
            elif op == "sync_dir":
                durable[step.path] = {
                    p: i for p, i in names.items() if os.path.dirname(p) == step.path
                }
        return inodes, durable, names


def write_image(files: dict[str, bytes], directory: str) -> None:
    """Create ``directory`` holding exactly ``files``."""
    os.makedirs(directory)
    for name, content in files.items():
        with open(os.path.join(directory, name), "wb") as f:
            f.write(content)


#: The unit in which the OS writes a file's dirty data back.
PAGE = 4096


def _with_holes(durable: bytes, volatile: bytes, rng: random.Random) -> bytes:
    """``volatile`` as a power cut may leave it when only ``durable`` (a prefix) was
    fsynced: each later page kept or lost at random, lost ones reading as zeros, the
    file ending with the last page kept."""
    out = bytearray(durable)
    start = len(durable)
    for page in range(start - start % PAGE, len(volatile), PAGE):
        lo, hi = max(page, start), min(page + PAGE, len(volatile))
        if rng.random() < 0.5:
            out += bytes(lo - len(out))  # the pages lost before this one: zeros
            out += volatile[lo:hi]
    return bytes(out)


def images_with_holes(fs: FaultFS, scratch: str, seeds: int) -> list[str]:
    """Directories holding the images of a power cut now, one per seed, each losing
    pages of the unsynced tails at random (:meth:`FaultFS.image` with ``holes``)."""
    end = len(fs.steps)
    made = []
    for seed in range(seeds):
        image = os.path.join(scratch, f"holes-{seed}")
        write_image(fs.image(end, holes=random.Random(seed)), image)
        made.append(image)
    return made
