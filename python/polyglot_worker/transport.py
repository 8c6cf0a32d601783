"""Byte streams under the protocol: the writer thread, the reader thread, and the stdio and
socket transports (docs/protocol.md, section 1).

Reading and writing run on two threads of their own, so that any file descriptor works
(pipe, socket, file, terminal), a host that is slow to read never stalls the event loop,
and many messages finished together leave in one write.
"""

from __future__ import annotations

import asyncio
import os
import queue
import signal
import socket
import sys
import threading
from typing import Any, BinaryIO, Callable, List, Optional, Tuple

READ_CHUNK = 64 * 1024
"""Bytes asked for per read: a Linux pipe's default capacity, so a burst is one syscall."""

JOIN_LIMIT = 1024 * 1024
"""Queued frames are joined into one write up to this many bytes; larger batches are
written frame by frame rather than copied into one buffer."""

Reader = Callable[[int], bytes]
Writer = Callable[[bytes], None]

_STOP = object()


def log_stderr(message: str) -> None:
    """Writes one line to stderr (which the host forwards to its log), never failing."""
    try:
        sys.stderr.write(f"polyglot worker: {message}\n")
        sys.stderr.flush()
    except Exception:  # stderr closed: nowhere left to report
        pass


class Output:
    """Writes frames on a thread of its own, in the order `send` was called.

    `send` may be called from any thread and never blocks. The writer takes everything
    queued since its last write and writes it at once: one write per burst, and a frame is
    never held back while the writer is idle.
    """

    def __init__(self, write: Writer, on_broken: Optional[Callable[[BaseException], None]] = None):
        self._write = write
        self._on_broken = on_broken
        self._queue: "queue.SimpleQueue[Any]" = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name="polyglot-writer", daemon=True)
        self._closed = False
        self._broken = False

    def start(self) -> None:
        self._thread.start()

    def send(self, frame: bytes) -> None:
        """Queues one whole frame. Dropped once the output is closed or broken."""
        if not self._closed:
            self._queue.put(frame)

    def close(self, timeout: float) -> bool:
        """Writes what is queued, then stops. Returns whether it all went out within
        `timeout` seconds."""
        if not self._closed:
            self._closed = True
            self._queue.put(_STOP)
        if self._thread.is_alive():
            self._thread.join(timeout)
        return not self._thread.is_alive() and not self._broken

    def _run(self) -> None:
        while True:
            batch: List[bytes] = []
            item = self._queue.get()
            stop = item is _STOP
            if not stop:
                batch.append(item)
            while not stop:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    stop = True
                else:
                    batch.append(item)
            if batch and not self._broken:
                try:
                    self._write_batch(batch)
                except (OSError, ValueError) as exc:  # EPIPE, closed file: the host is gone
                    self._broken = True
                    if self._on_broken is not None:
                        self._on_broken(exc)
            if stop:
                return

    def _write_batch(self, batch: List[bytes]) -> None:
        pending: List[bytes] = []
        size = 0
        for frame in batch:
            if size + len(frame) > JOIN_LIMIT and pending:
                self._write(b"".join(pending))
                pending, size = [], 0
            pending.append(frame)
            size += len(frame)
        if pending:
            self._write(pending[0] if len(pending) == 1 else b"".join(pending))


def start_reader(
    read: Reader,
    loop: asyncio.AbstractEventLoop,
    on_data: Callable[[bytes], None],
    on_eof: Callable[[], None],
) -> threading.Thread:
    """Reads on a daemon thread, handing each chunk to `on_data` on the event loop, then
    calls `on_eof` there when the input ends (or fails)."""

    def run() -> None:
        try:
            while True:
                data = read(READ_CHUNK)
                if not data:
                    break
                loop.call_soon_threadsafe(on_data, data)
        except (OSError, ValueError) as exc:
            log_stderr(f"reading the input failed: {exc}")
        except RuntimeError:  # the event loop is closed: nobody is listening any more
            return
        try:
            loop.call_soon_threadsafe(on_eof)
        except RuntimeError:
            pass

    thread = threading.Thread(target=run, name="polyglot-reader", daemon=True)
    thread.start()
    return thread


# ---------------------------------------------------------------- concrete streams
def fd_writer(fd: int) -> Writer:
    """Writes all of each buffer to a file descriptor (handling partial writes)."""

    def write(data: bytes) -> None:
        view = memoryview(data)
        while view:
            n = os.write(fd, view)
            view = view[n:]

    return write


def fd_reader(fd: int) -> Reader:
    return lambda n: os.read(fd, n)


def file_streams(inp: BinaryIO, out: BinaryIO) -> Tuple[Reader, Writer]:
    """Reader and writer over binary file objects (tests, in-process runs)."""
    read = getattr(inp, "read1", None) or inp.read

    def write(data: bytes) -> None:
        out.write(data)
        out.flush()

    return read, write


def take_stdio() -> Tuple[int, int]:
    """Takes stdin and stdout for the protocol; returns their new private descriptors.

    Stdout is moved to a private descriptor and descriptor 1 is pointed at stderr (and
    `sys.stdout` at `sys.stderr`), so a stray `print`, or a C library's `printf`, lands in
    the log instead of corrupting the protocol. Stdin is moved the same way and descriptor
    0 reads `/dev/null`, so a child process a method starts cannot swallow requests. The
    private descriptors are not inherited by child processes.
    """
    try:
        sys.stdout.flush()  # text printed before serving goes out before the handshake
    except Exception:
        pass
    proto_out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    proto_in = os.dup(0)
    devnull = os.open(os.devnull, os.O_RDONLY)
    try:
        os.dup2(devnull, 0)
    finally:
        os.close(devnull)
    return proto_in, proto_out


def connect_socket(path: str) -> socket.socket:
    """Connects to the host's Unix domain socket at `path`."""
    if not hasattr(socket, "AF_UNIX"):
        raise OSError("the socket transport needs Unix domain sockets, not available here")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError:
        sock.close()
        raise
    return sock


PR_SET_PDEATHSIG = 1
"""`prctl` option from <linux/prctl.h>: the signal this process gets when its parent dies."""


def die_with_parent() -> None:
    """Asks Linux to send SIGTERM when the parent (the host) dies, so a worker never
    outlives a host that was killed outright. Best effort: ignored elsewhere or on failure.
    (The signal fires when the host *thread* that started the worker ends.)"""
    if not sys.platform.startswith("linux"):
        return
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGTERM), 0, 0, 0)
    except Exception:
        pass
