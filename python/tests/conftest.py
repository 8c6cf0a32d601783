"""Shared fixtures: the test vectors, and a real worker process spoken to over its pipes
(or a Unix socket) the way the host does."""

from __future__ import annotations

import json
import os
import queue
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from polyglot_worker.codec import TooLarge, frame_decoder, get_codec
from polyglot_worker.envelope import Handshake, parse_handshake

REPO = Path(__file__).resolve().parents[2]
VECTORS = REPO / "tests" / "vectors"
SDK = REPO / "python"
TEST_WORKER = REPO / "tests" / "workers" / "python_worker.py"
FIXTURE_WORKER = Path(__file__).resolve().parent / "fixture_worker.py"

TIMEOUT = 10.0
"""Seconds any single wait on a worker may take before the test fails (not hangs)."""


def load_vectors(name: str) -> Dict[str, Any]:
    return json.loads((VECTORS / name).read_text(encoding="utf-8"))


def vector_cases(name: str) -> List[Any]:
    """The cases of one vector file as pytest params, named by case name."""
    return [pytest.param(case, id=case["name"]) for case in load_vectors(name)["cases"]]


def same(a: Any, b: Any) -> bool:
    """Equality that also tells 1 from 1.0 from True, and bytes from str."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return type(a) is type(b) and a == b
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    return type(a) is type(b) and a == b


def worker_env(codec: str = "json", module: str = "py-test", **extra: Any) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("POLYGLOT_", "TEST_"))}
    env.update(
        PYTHONPATH=str(SDK),
        PYTHONUNBUFFERED="1",
        POLYGLOT_PROTOCOL="1",
        POLYGLOT_MODULE=module,
        POLYGLOT_VERSION="2.3.4",
        POLYGLOT_CODEC=codec,
        POLYGLOT_TRANSPORT="stdio",
        POLYGLOT_INSTANCE="0",
    )
    env.update({k: str(v) for k, v in extra.items()})
    return env


def _is_handshake(line: bytes) -> bool:
    try:
        obj = json.loads(line)
    except ValueError:
        return False
    return isinstance(obj, dict) and "polyglot" in obj


class Peer:
    """Plays the host on one byte stream: reads the handshake line, then frames of the
    codec on a thread; sends requests; waits for messages with a timeout."""

    def __init__(self, read: Callable[[int], bytes], write: Callable[[bytes], None], codec: str, limit: int = 1 << 30):
        self.codec = get_codec(codec)
        self._write = write
        self.before_handshake: List[bytes] = []
        self.handshake_line: Optional[bytes] = None
        self.messages: "queue.Queue[Any]" = queue.Queue()
        self.errors: List[str] = []
        self.eof = threading.Event()
        self._handshake = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(read, limit), daemon=True)
        self._thread.start()

    def _run(self, read: Callable[[int], bytes], limit: int) -> None:
        buf = b""
        decoder = frame_decoder(self.codec.name, limit)
        try:
            while True:
                data = read(65536)
                if not data:
                    break
                if self.handshake_line is None:
                    buf += data
                    while self.handshake_line is None and b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        if _is_handshake(line):
                            self.handshake_line = line
                            self._handshake.set()
                        else:
                            self.before_handshake.append(line)
                    if self.handshake_line is None:
                        continue
                    data, buf = buf, b""
                for event in decoder.feed(data):
                    if isinstance(event, TooLarge):
                        self.errors.append(f"oversize frame {event.size}")
                        continue
                    try:
                        self.messages.put(self.codec.decode(event.payload))
                    except Exception as exc:
                        self.errors.append(f"{exc}: {event.payload[:100]!r}")
            if decoder.finish() is not None:
                self.errors.append("output ended inside a frame")
        except OSError:
            pass
        finally:
            self.eof.set()
            self._handshake.set()

    def handshake(self, timeout: float = TIMEOUT) -> Handshake:
        assert self._handshake.wait(timeout), "no handshake in time"
        assert self.handshake_line is not None, f"output ended before a handshake: {self.before_handshake}"
        return parse_handshake(self.handshake_line)

    def send(self, message: Any) -> None:
        self._write(self.codec.frame(self.codec.encode(message)))

    def send_raw(self, data: bytes) -> None:
        self._write(data)

    def recv(self, timeout: float = TIMEOUT) -> Any:
        try:
            return self.messages.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no message within {timeout}s") from None

    def response(self, id: Any, timeout: float = TIMEOUT, seen: Optional[List[Any]] = None) -> Dict[str, Any]:
        """The next response for `id`; every message before it goes to `seen`."""
        deadline = time.monotonic() + timeout
        while True:
            msg = self.recv(max(0.01, deadline - time.monotonic()))
            if seen is not None:
                seen.append(msg)
            if msg.get("id") == id and ("result" in msg or "error" in msg):
                return msg

    def call(self, method: str, params: Any = None, id: Any = 1, timeout: float = TIMEOUT) -> Dict[str, Any]:
        msg = {"id": id, "method": method}
        if params is not None:
            msg["params"] = params
        self.send(msg)
        return self.response(id, timeout)


class WorkerProcess(Peer):
    """A worker started as the host starts it: POLYGLOT_* environment, stdio pipes."""

    def __init__(self, script: Path = TEST_WORKER, codec: str = "json", env: Optional[Dict[str, str]] = None, **extra: Any):
        self.proc = subprocess.Popen(
            [sys.executable, str(script)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env if env is not None else worker_env(codec, **extra),
        )
        self.stderr_lines: List[str] = []
        self._stderr_thread = threading.Thread(target=self._read_stderr, daemon=True)
        self._stderr_thread.start()
        assert self.proc.stdin is not None and self.proc.stdout is not None
        stdin, stdout = self.proc.stdin, self.proc.stdout

        def write(data: bytes) -> None:
            stdin.write(data)
            stdin.flush()

        super().__init__(stdout.read1, write, codec)

    def _read_stderr(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.stderr_lines.append(line.decode("utf-8", "replace").rstrip("\n"))

    @property
    def stderr(self) -> str:
        return "\n".join(self.stderr_lines)

    def wait_stderr(self, text: str, timeout: float = TIMEOUT) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.stderr:
            assert time.monotonic() < deadline, f"{text!r} not on stderr: {self.stderr}"
            time.sleep(0.01)

    def close_stdin(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()

    def wait(self, timeout: float = TIMEOUT) -> int:
        code = self.proc.wait(timeout)
        self._stderr_thread.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for stream in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                if stream is not None:
                    stream.close()
            except OSError:
                pass


@pytest.fixture
def spawn() -> Iterator[Callable[..., WorkerProcess]]:
    """Starts worker processes; kills whatever is still running at the end of the test."""
    started: List[WorkerProcess] = []

    def start(*args: Any, **kwargs: Any) -> WorkerProcess:
        w = WorkerProcess(*args, **kwargs)
        started.append(w)
        return w

    yield start
    for w in started:
        w.kill()


def socket_peer(conn: socket.socket, codec: str) -> Peer:
    return Peer(conn.recv, conn.sendall, codec)
