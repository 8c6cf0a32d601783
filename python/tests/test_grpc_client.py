"""The example gRPC client (`python/examples/grpc_client.py`) against a real
`polyglot-host serve`, whose module's worker is the Python test worker.

The host binary is `target/debug/polyglot-host` (or `$POLYGLOT_HOST_BIN`); the test
command builds it before this suite runs. Without it these tests fail, never skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Iterator, List, Optional, Tuple

import pytest

from conftest import REPO, SDK, TEST_WORKER, TIMEOUT

CLIENT = REPO / "python" / "examples" / "grpc_client.py"
HOST_BIN = Path(os.environ.get("POLYGLOT_HOST_BIN") or REPO / "target" / "debug" / "polyglot-host")
API_KEY = "s3cret-test-key"

START_TIMEOUT = 30.0
"""Seconds the host may take to start its worker and print its address (generous: CI
machines are busy)."""

STOP_TIMEOUT = 15.0
"""Seconds the host gets to drain and stop its workers after SIGTERM before it is killed."""


def _load_client():
    spec = importlib.util.spec_from_file_location("grpc_client", CLIENT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["grpc_client"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


grpc_client = _load_client()


def _write_module(root: Path, name: str) -> None:
    """A module folder whose worker is `tests/workers/python_worker.py` in this interpreter
    (the project venv, which has msgpack)."""
    folder = root / name
    folder.mkdir()
    manifest = {
        "name": name,
        "version": "1.0.0",
        "language": "python",
        "command": sys.executable,
        "args": [str(TEST_WORKER)],
        "env": {"PYTHONPATH": str(SDK), "PYTHONUNBUFFERED": "1"},
        "timeoutMs": 5000,
        "handshakeTimeoutMs": 10000,
    }
    (folder / "module.json").write_text(json.dumps(manifest, indent=2), encoding="utf-8")


def _children(pid: int) -> List[int]:
    """The processes whose parent is `pid` (the host's workers)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:  # it exited while we looked
            continue
        # pid (comm) state ppid ...: comm may hold spaces and parentheses.
        if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
            found.append(int(entry.name))
    return found


def _alive(pid: int) -> bool:
    """Whether `pid` runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _wait_gone(pids: List[int], timeout: float) -> List[int]:
    """Waits for `pids` to end; returns those still running after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        left = [p for p in pids if _alive(p)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


class Host:
    """A `polyglot-host serve` on a free loopback port (`--grpc-addr 127.0.0.1:0`: the
    host prints the port it bound)."""

    def __init__(self, modules: Path, log: Path, api_key: Optional[str] = None):
        if not HOST_BIN.is_file():
            pytest.fail(
                f"no polyglot-host binary at {HOST_BIN}: run `cargo build -p polyglot-host` "
                "(or point POLYGLOT_HOST_BIN at one)",
                pytrace=False,
            )
        cmd = [str(HOST_BIN), "--modules", str(modules), "serve", "--grpc-addr", "127.0.0.1:0"]
        if api_key:
            cmd += ["--api-key", api_key]
        env = {k: v for k, v in os.environ.items() if k != "POLYGLOT_API_KEY"}
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._log_file, env=env
        )
        self.stdout: List[str] = []
        self.addr = self._wait_for_addr()

    def _wait_for_addr(self) -> str:
        """Reads stdout up to "gRPC API on ADDR", then keeps draining it on a thread so the
        host never blocks on a full pipe."""
        found = threading.Event()
        addr: List[str] = []

        def read() -> None:
            assert self.proc.stdout is not None
            for raw in self.proc.stdout:
                line = raw.decode("utf-8", "replace").rstrip("\n")
                self.stdout.append(line)
                if line.startswith("gRPC API on "):
                    addr.append(line[len("gRPC API on "):].strip())
                    found.set()
            found.set()

        threading.Thread(target=read, daemon=True).start()
        if not found.wait(START_TIMEOUT) or not addr:
            self.stop()
            pytest.fail(
                f"the host printed no 'gRPC API on ADDR' line within {START_TIMEOUT}s\n"
                "stdout:\n" + "\n".join(self.stdout) + f"\nstderr:\n{self.log.read_text()}",
                pytrace=False,
            )
        return addr[0]

    def stop(self) -> Tuple[Optional[int], List[int]]:
        """SIGTERM (the host drains, then stops its workers), SIGKILL if it lingers.
        Returns its exit status (None if it had to be killed) and the workers that
        outlived it, which are then killed so no test leaves processes behind."""
        workers = _children(self.proc.pid) if self.proc.poll() is None else []
        code: Optional[int] = None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log_file.close()
        # Workers die with their host (a parent-death signal); give them a moment.
        left = _wait_gone(workers, TIMEOUT)
        for pid in left:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return code, left


@pytest.fixture(scope="module")
def modules_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("modules")
    _write_module(root, "pyecho")
    return root


@pytest.fixture(scope="module")
def host(modules_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = Host(modules_dir, tmp_path_factory.mktemp("log") / "host.log")
    yield h
    h.stop()


@pytest.fixture(scope="module")
def keyed_host(modules_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Host]:
    h = Host(modules_dir, tmp_path_factory.mktemp("log") / "host.log", api_key=API_KEY)
    yield h
    h.stop()


@pytest.fixture(autouse=True)
def stub_cache(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The generated stubs go to a folder of this run, not the user's cache."""
    cache = tmp_path_factory.getbasetemp() / "grpc-stubs"
    monkeypatch.setenv("POLYGLOT_GRPC_CACHE", str(cache))
    return cache


# ---------------------------------------------------------------- calls
def test_call_returns_the_result_and_who_served_it(host: Host) -> None:
    with grpc_client.connect(host.addr) as c:
        assert c.call("pyecho", "add", [40, 2]) == 42
        assert c.call("pyecho", "echo", {"text": "héllo", "n": [1, 2.5, None]}) == {
            "text": "héllo", "n": [1, 2.5, None]}
        assert c.call("pyecho", "version") == "1.0.0"
        r = c.call_with_meta("pyecho", "echo", ["x"])
        assert (r.value, r.served_by, r.version, r.fallback) == ("x", "pyecho", "1.0.0", False)
    assert grpc_client.call(f"http://{host.addr}", "pyecho", "add", [1, 2]) == 3


def test_a_remote_error_keeps_its_code_and_message(host: Host) -> None:
    with grpc_client.connect(host.addr) as c:
        with pytest.raises(grpc_client.CallFailed) as e:
            c.call("pyecho", "fail", ["NOT_READY", "model not loaded"])
        assert e.value.status == grpc_client.grpc.StatusCode.UNKNOWN
        assert (e.value.kind, e.value.module, e.value.method) == ("remote", "pyecho", "fail")
        assert (e.value.code, e.value.remote_message) == ("NOT_READY", "model not loaded")

        with pytest.raises(grpc_client.CallFailed) as e:
            c.call("pyecho", "add", [1, "x"])
        assert e.value.status == grpc_client.grpc.StatusCode.INVALID_ARGUMENT
        assert (e.value.kind, e.value.code) == ("remote", "INVALID_PARAMS")


def test_an_unknown_module_or_method_is_not_found(host: Host) -> None:
    with grpc_client.connect(host.addr) as c:
        with pytest.raises(grpc_client.CallFailed) as e:
            c.call("nope", "add", [1, 2])
        assert e.value.status == grpc_client.grpc.StatusCode.NOT_FOUND
        assert (e.value.kind, e.value.module) == ("module_not_found", "nope")

        with pytest.raises(grpc_client.CallFailed) as e:
            c.call("pyecho", "teleport")
        assert e.value.status == grpc_client.grpc.StatusCode.NOT_FOUND
        assert e.value.kind == "method_not_found"


def test_list_modules(host: Host) -> None:
    with grpc_client.connect(host.addr) as c:
        modules = c.list_modules()
    assert [m.name for m in modules] == ["pyecho"]
    m = modules[0]
    assert (m.version, m.language, m.state) == ("1.0.0", "python", "running")
    assert {"echo", "add", "fail"} <= set(m.methods)
    assert len(m.instances) == 1 and m.instances[0].pid > 0


# ---------------------------------------------------------------- API keys
def test_the_api_key_is_accepted(keyed_host: Host) -> None:
    with grpc_client.connect(keyed_host.addr, api_key=API_KEY) as c:
        assert c.call("pyecho", "add", [2, 3]) == 5
        assert [m.name for m in c.list_modules()] == ["pyecho"]


@pytest.mark.parametrize("key", [None, "wrong-key"], ids=["missing", "wrong"])
def test_a_missing_or_wrong_api_key_is_unauthenticated(keyed_host: Host, key: Optional[str]) -> None:
    with grpc_client.connect(keyed_host.addr, api_key=key) as c:
        with pytest.raises(grpc_client.CallFailed) as e:
            c.call("pyecho", "add", [2, 3])
        assert e.value.status == grpc_client.grpc.StatusCode.UNAUTHENTICATED
        with pytest.raises(grpc_client.CallFailed) as e:
            c.list_modules()
        assert e.value.status == grpc_client.grpc.StatusCode.UNAUTHENTICATED


# ---------------------------------------------------------------- the command line
def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "POLYGLOT_API_KEY"}
    return subprocess.run(
        [sys.executable, str(CLIENT), *args],
        capture_output=True, text=True, timeout=60, env=env,
    )


def test_cli_prints_the_json_result(keyed_host: Host) -> None:
    out = _cli("--connect", keyed_host.addr, "--api-key", API_KEY, "pyecho", "echo", '[{"a": [1, 2]}]')
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == {"a": [1, 2]}


def test_cli_reports_an_error_on_stderr_with_status_1(keyed_host: Host) -> None:
    out = _cli("--connect", keyed_host.addr, "--api-key", API_KEY, "nope", "add", "[1, 2]")
    assert out.returncode == 1 and out.stdout == ""
    assert out.stderr.startswith("error: NOT_FOUND (module_not_found): ")
    out = _cli("--connect", keyed_host.addr, "pyecho", "add", "[1, 2]")
    assert out.returncode == 1 and "UNAUTHENTICATED" in out.stderr


# ---------------------------------------------------------------- stubs and shutdown
def test_stubs_are_generated_once_per_proto_content(stub_cache: Path) -> None:
    grpc_client.load_stubs()
    folders = [p for p in stub_cache.iterdir() if not p.name.startswith(".")]
    assert len(folders) == 1
    digest = grpc_client.hashlib.sha256(grpc_client.DEFAULT_PROTO.read_bytes()).hexdigest()[:16]
    assert folders[0].name.startswith(digest)
    assert (folders[0] / "polyglot" / "v1" / "runtime_pb2_grpc.py").is_file()
    grpc_client.load_stubs()
    assert [p for p in stub_cache.iterdir() if not p.name.startswith(".")] == folders


def test_sigterm_stops_the_host_and_its_workers(modules_dir: Path, tmp_path: Path) -> None:
    h = Host(modules_dir, tmp_path / "host.log")
    try:
        with grpc_client.connect(h.addr) as c:
            pids = [i.pid for m in c.list_modules() for i in m.instances]
            worker_pid = c.call("pyecho", "pid")
        assert pids == [worker_pid] and _children(h.proc.pid) == [worker_pid]
    finally:
        code, left = h.stop()
    assert code == 0, h.log.read_text()
    assert left == [], f"workers {left} outlived their host"
    assert not _alive(worker_pid)
