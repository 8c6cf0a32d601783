"""Real worker processes, spoken to over their pipes (or a Unix socket) as the host does."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, List

import pytest

from conftest import FIXTURE_WORKER, TEST_WORKER, TIMEOUT, WorkerProcess, socket_peer, worker_env
from polyglot_worker import parse_message

Spawn = Callable[..., WorkerProcess]

TEST_METHODS = sorted(
    ["echo", "add", "fail", "boom", "sleep", "progress", "crash", "garbage", "unknownId",
     "pid", "env", "version", "big", "stray"]
)


# ---------------------------------------------------------------- handshake and calls
def test_handshake_is_one_json_line_with_every_field(spawn: Spawn) -> None:
    w = spawn(TEST_MAX_CONCURRENCY=5)
    hs = w.handshake()
    assert (hs.polyglot, hs.module, hs.version, hs.language) == (1, "py-test", "2.3.4", "python")
    assert (hs.codec, hs.max_concurrency, hs.pid) == ("json", 5, w.proc.pid)
    assert hs.methods == TEST_METHODS
    assert w.before_handshake == []


def test_test_worker_methods(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    assert w.call("echo", ["x"], 1)["result"] == "x"
    assert w.call("echo", [1, 2], 2)["result"] == [1, 2]
    assert w.call("echo", {"a": 1}, 3)["result"] == {"a": 1}
    assert w.call("add", [2, 40], 4)["result"] == 42
    assert w.call("add", [2, "x"], 5)["error"]["code"] == "INVALID_PARAMS"
    assert w.call("add", [2], 6)["error"]["code"] == "INVALID_PARAMS"
    assert w.call("fail", ["NOT_READY", "model not loaded"], 7)["error"] == {
        "code": "NOT_READY", "message": "model not loaded"}
    boom = w.call("boom", None, 8)["error"]
    assert boom["code"] == "INTERNAL" and "boom" in boom["message"]
    assert w.call("pid", None, 9)["result"] == w.proc.pid
    assert w.call("env", ["POLYGLOT_INSTANCE"], 10)["result"] == "0"
    assert w.call("version", None, 11)["result"] == "2.3.4"
    assert w.call("big", [5], 12)["result"] == "xxxxx"
    assert w.call("nope", None, "s")["error"]["code"] == "METHOD_NOT_FOUND"
    health = w.call("$health", None, 13)["result"]
    assert health == {"status": "ok", "pid": w.proc.pid}
    assert "RuntimeError: boom" in w.stderr  # the traceback went to stderr
    assert w.errors == []


def test_answers_come_in_completion_order(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    w.send({"id": "slow", "method": "sleep", "params": [400]})
    w.send({"id": "fast", "method": "echo", "params": ["quick"]})
    first, second = w.recv(), w.recv()
    assert (first["id"], first["result"]) == ("fast", "quick")
    assert (second["id"], second["result"]) == ("slow", 400)
    assert second["executionTime"] >= 400_000  # microseconds
    assert second["executionTime"] < 5_000_000


def test_many_calls_in_flight_at_once(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    started = time.monotonic()
    for i in range(10):
        w.send({"id": i, "method": "sleep", "params": [300]})
    got = {w.recv()["id"] for _ in range(10)}
    assert got == set(range(10))
    assert time.monotonic() - started < 2.5  # concurrent, not 10 x 300 ms


def test_cancel_answers_a_running_async_call_cancelled(spawn: Spawn, tmp_path: Path) -> None:
    w = spawn()
    w.handshake()
    marker = tmp_path / "cancelled"
    w.send({"id": 1, "method": "sleep", "params": [10_000, str(marker)]})
    time.sleep(0.2)
    started = time.monotonic()
    w.send({"method": "$cancel", "params": {"id": 1}})
    resp = w.response(1)
    assert resp["error"]["code"] == "CANCELLED"
    assert time.monotonic() - started < 2
    deadline = time.monotonic() + TIMEOUT
    while not marker.exists():  # the method itself was interrupted
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert w.call("echo", ["still serving"], 2)["result"] == "still serving"
    w.send({"method": "$cancel", "params": {"id": 1}})  # already answered: ignored
    assert w.call("echo", [3], 3)["result"] == 3
    assert w.messages.empty()


def test_cancel_reaches_a_sync_call_through_its_context(spawn: Spawn) -> None:
    w = spawn(FIXTURE_WORKER)
    w.handshake()
    w.send({"id": 1, "method": "wait_cancel"})
    time.sleep(0.2)
    w.send({"method": "$cancel", "params": {"id": 1}})
    assert w.response(1)["error"]["code"] == "CANCELLED"
    w.wait_stderr("call 1 saw its cancellation")
    assert w.call("block", [0], 2)["result"] == 0
    assert w.messages.empty()  # the sync method's own result was dropped


def test_progress_comes_before_the_result(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    seen: List[Any] = []
    w.send({"id": 5, "method": "progress", "params": [3]})
    resp = w.response(5, seen=seen)
    assert resp["result"] == 3
    assert seen[:-1] == [{"id": 5, "progress": {"step": i}} for i in (1, 2, 3)]


def test_log_messages(spawn: Spawn) -> None:
    w = spawn(FIXTURE_WORKER)
    w.handshake()
    seen: List[Any] = []
    w.send({"id": 1, "method": "log"})
    assert w.response(1, seen=seen)["result"] == "logged"
    logs = [parse_message(m) for m in seen if "log" in m]
    assert [(l.level, l.message, l.fields) for l in logs] == [
        ("warn", "disk almost full", {"free_mb": 12}),
        ("info", "from the worker", None),
    ]


def test_health_reports_unhealthy(spawn: Spawn, tmp_path: Path) -> None:
    w = spawn(TEST_HEALTH="unhealthy")
    w.handshake()
    assert w.call("$health", None, 1)["error"]["code"] == "UNHEALTHY"
    flag = tmp_path / "sick"
    w2 = spawn(TEST_HEALTH_FILE=str(flag))
    w2.handshake()
    assert w2.call("$health", None, 1)["result"]["status"] == "ok"
    flag.write_text("")
    assert w2.call("$health", None, 2)["error"]["code"] == "UNHEALTHY"
    flag.unlink()
    assert w2.call("$health", None, 3)["result"]["status"] == "ok"


# ---------------------------------------------------------------- lifetime
def test_shutdown_finishes_calls_in_flight_then_exits_0(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    w.send({"id": 1, "method": "sleep", "params": [500]})
    time.sleep(0.1)
    w.send({"method": "$shutdown"})
    w.send({"id": 2, "method": "echo", "params": ["late"]})
    w.close_stdin()  # input ending after $shutdown does not cut the drain short
    late = w.response(2)
    assert late["error"]["code"] == "SHUTTING_DOWN"
    assert w.response(1)["result"] == 500
    assert w.wait() == 0
    assert w.eof.wait(TIMEOUT) and w.errors == []


def test_shutdown_with_nothing_in_flight_exits_at_once(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    w.send({"method": "$shutdown"})
    assert w.wait(5) == 0


def test_closing_stdin_exits_promptly_with_calls_running(spawn: Spawn) -> None:
    w = spawn(FIXTURE_WORKER)
    w.handshake()
    w.send({"id": 1, "method": "block", "params": [30]})  # a pool thread, blocked
    w.send({"id": 2, "method": "block", "params": [30]})
    time.sleep(0.2)
    started = time.monotonic()
    w.close_stdin()
    assert w.wait(5) == 0
    assert time.monotonic() - started < 3


def test_closing_stdin_exits_with_an_async_call_running(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    w.send({"id": 1, "method": "sleep", "params": [30_000]})
    time.sleep(0.1)
    started = time.monotonic()
    w.close_stdin()
    assert w.wait(5) == 0
    assert time.monotonic() - started < 3


def test_crash_exits_mid_call_with_its_status(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    w.send({"id": 1, "method": "crash", "params": [7]})
    assert w.wait() == 7


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_worker_dies_with_its_parent(tmp_path: Path) -> None:
    # The worker's stdin stays open (this test holds the pipe), so only the parent-death
    # signal can stop it when its parent is killed.
    pid_file = tmp_path / "pid"
    r, wfd = os.pipe()
    parent_code = (
        "import subprocess, sys, time\n"
        f"p = subprocess.Popen([sys.executable, {str(TEST_WORKER)!r}], stdin={r}, stdout=subprocess.PIPE)\n"
        "p.stdout.readline()\n"  # the handshake: the signal is armed before it is sent
        f"open({str(pid_file)!r}, 'w').write(str(p.pid))\n"
        "time.sleep(60)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", parent_code], env=worker_env(), pass_fds=(r,))
    try:
        deadline = time.monotonic() + TIMEOUT
        while not pid_file.exists() or not pid_file.read_text():
            assert time.monotonic() < deadline
            time.sleep(0.02)
        child = int(pid_file.read_text())
        assert _alive(child)
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 5
        while _alive(child):
            assert time.monotonic() < deadline, "the worker outlived its parent"
            time.sleep(0.02)
    finally:
        parent.kill()
        os.close(r)
        os.close(wfd)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


# ---------------------------------------------------------------- stdout protection
def test_stray_output_goes_to_stderr_and_the_protocol_stays_clean(spawn: Spawn) -> None:
    w = spawn(FIXTURE_WORKER)
    w.handshake()
    assert w.call("stray", None, 1)["result"] == "ok"  # the child did not block on stdin
    assert w.call("block", [0], 2)["result"] == 0
    for text in ("stray print from a method", "stray os.write to fd 1", "child says hi"):
        w.wait_stderr(text)
    w.close_stdin()
    assert w.wait() == 0
    assert w.eof.wait(TIMEOUT)
    assert w.errors == [] and w.messages.empty()


def test_banner_before_the_handshake_is_left_for_the_host_to_skip(spawn: Spawn) -> None:
    w = spawn(TEST_BANNER="Loading model v3 ...")
    w.handshake()
    assert w.before_handshake == [b"Loading model v3 ..."]
    assert w.call("echo", [1], 1)["result"] == 1


# ---------------------------------------------------------------- codecs and frames
def test_msgpack_end_to_end(spawn: Spawn) -> None:
    w = spawn(codec="msgpack")
    hs = w.handshake()  # still a JSON line
    assert hs.codec == "msgpack"
    assert w.call("echo", [b"\x00\x01\xff"], 1)["result"] == b"\x00\x01\xff"
    assert w.call("echo", [{"k": [1, -2, 2**64 - 1, 1.5, None, True]}], "s")["result"] == {
        "k": [1, -2, 2**64 - 1, 1.5, None, True]}
    seen: List[Any] = []
    w.send({"id": 2, "method": "progress", "params": [2]})
    assert w.response(2, seen=seen)["result"] == 2
    assert [m.get("progress") for m in seen[:-1]] == [{"step": 1}, {"step": 2}]
    assert w.call("fail", ["E_X", "x"], 3)["error"]["code"] == "E_X"
    assert w.errors == []


@pytest.mark.parametrize("codec", ["json", "msgpack"])
def test_oversize_frames_both_ways(spawn: Spawn, codec: str) -> None:
    w = spawn(codec=codec, POLYGLOT_MAX_FRAME=1000)
    w.handshake()
    # Incoming: skipped unread, answered by id, and the next request still works.
    w.send({"id": 7, "method": "echo", "params": ["y" * 5000]})
    resp = w.response(7)
    assert resp["error"]["code"] == "FRAME_TOO_LARGE"
    assert w.call("echo", ["fits"], 8)["result"] == "fits"
    # Outgoing: a response over the limit becomes a FRAME_TOO_LARGE error.
    resp = w.call("big", [5000], 9)
    assert resp["error"]["code"] == "FRAME_TOO_LARGE"
    assert w.call("big", [900], 10)["result"] == "x" * 900
    assert w.errors == []


def test_invalid_requests(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    w.send_raw(b'{"id":41,"method":5}\n')
    assert w.response(41)["error"]["code"] == "INVALID_REQUEST"
    w.send_raw(b'{"id":42,"method":"echo","params":[{"$bytes":"!!"}]}\n')
    assert w.response(42)["error"]["code"] == "INVALID_REQUEST"
    w.send_raw(b"not json at all\n\n")
    w.send_raw(b'{"method":"echo","params":[1]}\n')  # a notification: no answer
    assert w.call("echo", ["after"], 43)["result"] == "after"
    assert w.messages.empty()
    w.wait_stderr("does not decode")


def test_protocol_breaking_hooks_of_the_test_worker(spawn: Spawn) -> None:
    w = spawn()
    w.handshake()
    w.send({"id": 1, "method": "unknownId"})
    assert w.recv() == {"id": 987654321987, "result": "nobody asked"}
    assert w.response(1)["result"] == "sent"
    w.send({"id": 2, "method": "garbage"})
    assert w.response(2)["result"] == "sent"
    assert any(b"this is not protocol" in e.encode() for e in w.errors)


# ---------------------------------------------------------------- start-up
def test_run_by_hand_says_what_it_is_and_exits_1() -> None:
    env = {k: v for k, v in worker_env().items() if k != "POLYGLOT_PROTOCOL"}
    proc = subprocess.run([sys.executable, str(TEST_WORKER)], env=env, stdin=subprocess.PIPE,
                          capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 1
    assert proc.stdout == b""
    text = proc.stderr.decode()
    assert "polyglot worker" in text and "py-test" in text and "polyglot-host" in text
    assert "docs/protocol.md" in text


def test_unknown_protocol_version_exits_1() -> None:
    proc = subprocess.run([sys.executable, str(TEST_WORKER)], env=worker_env(POLYGLOT_PROTOCOL="2"),
                          stdin=subprocess.PIPE, capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and proc.stdout == b""
    assert "protocol version '2'" in proc.stderr.decode()


def test_unknown_codec_exits_1() -> None:
    proc = subprocess.run([sys.executable, str(TEST_WORKER)], env=worker_env(codec="xml"),
                          stdin=subprocess.PIPE, capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and proc.stdout == b""
    assert "POLYGLOT_CODEC='xml'" in proc.stderr.decode()


def test_the_grpc_transport_is_refused_with_what_to_use_instead() -> None:
    proc = subprocess.run([sys.executable, str(TEST_WORKER)], env=worker_env(POLYGLOT_TRANSPORT="grpc"),
                          stdin=subprocess.PIPE, capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and proc.stdout == b""
    err = proc.stderr.decode()
    assert "POLYGLOT_TRANSPORT=grpc" in err and '"stdio"' in err, err


def test_an_unknown_transport_is_refused() -> None:
    proc = subprocess.run([sys.executable, str(TEST_WORKER)], env=worker_env(POLYGLOT_TRANSPORT="carrier-pigeon"),
                          stdin=subprocess.PIPE, capture_output=True, timeout=TIMEOUT)
    assert proc.returncode == 1 and proc.stdout == b""
    assert "'carrier-pigeon' is not a transport" in proc.stderr.decode()


def test_start_up_failures_of_the_test_worker(spawn: Spawn) -> None:
    w = spawn(TEST_EXIT_AT_START=4)
    assert w.wait() == 4
    assert "fatal: cannot load model" in w.stderr
    assert w.eof.wait(TIMEOUT) and w.handshake_line is None

    w = spawn(TEST_BAD_PROTOCOL=1)
    assert w._handshake.wait(TIMEOUT)
    assert b'"polyglot":99' in (w.handshake_line or b"")

    w = spawn(TEST_NO_HANDSHAKE=1)
    w.wait_stderr("starting...")
    assert not w._handshake.wait(0.3)
    w.close_stdin()  # it still cannot outlive its host
    assert w.wait() == 0


# ---------------------------------------------------------------- socket transport
def test_socket_transport(tmp_path: Path) -> None:
    path = str(tmp_path / "w.sock")
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen(1)
    listener.settimeout(TIMEOUT)
    env = worker_env(POLYGLOT_TRANSPORT="socket", POLYGLOT_SOCKET=path)
    proc = subprocess.Popen([sys.executable, str(FIXTURE_WORKER)], env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        conn, _ = listener.accept()
        peer = socket_peer(conn, "json")
        assert peer.handshake().methods == ["block", "log", "stray", "wait_cancel"]
        # stdout is the worker's own in this transport: stray output stays off the socket.
        assert peer.call("stray", None, 1)["result"] == "ok"
        assert peer.call("block", [0], 2)["result"] == 0
        conn.shutdown(socket.SHUT_WR)  # input ends: the worker exits
        assert proc.wait(TIMEOUT) == 0
        assert peer.errors == [] and peer.messages.empty()
        out = proc.stdout.read() if proc.stdout else b""
        assert b"stray print from a method" in out
        conn.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        listener.close()
