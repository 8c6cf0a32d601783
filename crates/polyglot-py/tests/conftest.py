"""Fixtures: module folders in temporary directories whose workers are the repository's
test workers (the Rust `test_worker` example and `tests/workers/python_worker.py`), and a
real `polyglot-host serve` started as a subprocess.

The Rust binaries are built with cargo when missing (`cargo build -p polyglot-worker
--example test_worker`, `cargo build -p polyglot-host`), as the Rust end-to-end tests
do; `CARGO_TARGET_DIR` is honoured.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import pytest

import polyglot

REPO = Path(__file__).resolve().parents[3]
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
PYTHON_WORKER = REPO / "tests" / "workers" / "python_worker.py"

#: How long a host may take to load its modules and announce its address.
HOST_START_TIMEOUT = 120.0


def _cargo_build(*args: str) -> None:
    subprocess.run(["cargo", "build", "--quiet", *args], cwd=REPO, check=True)


@pytest.fixture(scope="session")
def rust_worker() -> Path:
    """The Rust test worker (`crates/polyglot-worker/examples/test_worker.rs`)."""
    path = TARGET / "debug" / "examples" / "test_worker"
    if not path.exists():
        _cargo_build("-p", "polyglot-worker", "--example", "test_worker")
    assert path.exists(), f"no test worker at {path}"
    return path


@pytest.fixture(scope="session")
def host_binary() -> Path:
    """`polyglot-host`, debug build."""
    path = TARGET / "debug" / "polyglot-host"
    if not path.exists():
        _cargo_build("-p", "polyglot-host")
    assert path.exists(), f"no polyglot-host at {path}"
    return path


def _merge(base: Dict[str, Any], extra: Dict[str, Any]) -> None:
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(base.get(k), dict):
            _merge(base[k], v)
        else:
            base[k] = v


class Modules:
    """A modules directory; `add` writes one module folder."""

    def __init__(self, root: Path, rust_worker: Path) -> None:
        self.dir = root
        self.rust_worker = rust_worker
        root.mkdir(parents=True, exist_ok=True)

    def manifest(self, name: str, lang: str = "rust", **extra: Any) -> Dict[str, Any]:
        m: Dict[str, Any] = {
            "name": name,
            "version": "1.0.0",
            "timeoutMs": 5000,
            "handshakeTimeoutMs": 10000,
            "healthCheck": {"intervalMs": 200, "timeoutMs": 2000},
            "restart": {"maxRestarts": 50, "windowMs": 60000, "backoffInitialMs": 20,
                        "backoffMaxMs": 200},
            "shutdownGraceMs": 2000,
        }
        if lang == "rust":
            m.update({"language": "rust", "command": str(self.rust_worker),
                      "codec": "msgpack"})
        elif lang == "python":
            m.update({
                "language": "python",
                "command": sys.executable,
                "args": [str(PYTHON_WORKER)],
                "env": {"PYTHONPATH": str(REPO / "python"), "PYTHONUNBUFFERED": "1"},
            })
        else:
            raise ValueError(lang)
        _merge(m, extra)
        return m

    def add(self, name: str, lang: str = "rust", *, folder: Optional[str] = None,
            root: Optional[Path] = None, **extra: Any) -> Path:
        """Writes module `name`'s folder (under `root`, default the modules directory)
        and returns it. `extra` fields go into its manifest."""
        d = (root or self.dir) / (folder or name)
        d.mkdir(parents=True, exist_ok=True)
        (d / "module.json").write_text(json.dumps(self.manifest(name, lang, **extra),
                                                  indent=2))
        return d


@pytest.fixture
def modules(tmp_path: Path, rust_worker: Path) -> Modules:
    return Modules(tmp_path / "modules", rust_worker)


def alive(pid: int) -> bool:
    """Whether process `pid` exists and is not a zombie."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return not stat.rsplit(")", 1)[-1].strip().startswith("Z")


def worker_pids(infos: List[Dict[str, Any]]) -> List[int]:
    return [i["pid"] for m in infos for i in m["instances"] if i["pid"]]


def wait_until(what: str, check: Any, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting until {what}")
        time.sleep(0.02)


class Host:
    """A `polyglot-host serve` subprocess on a free loopback port."""

    def __init__(self, binary: Path, modules_dir: Path, log: Path, *extra: str) -> None:
        self.log = log
        self._log_file = open(log, "wb")
        self.proc = subprocess.Popen(
            [str(binary), "serve", "--grpc-addr", "127.0.0.1:0", "--modules",
             str(modules_dir), "--drain-timeout", "5", *extra],
            stdout=subprocess.PIPE, stderr=self._log_file, cwd=modules_dir,
            # The host reads its settings from POLYGLOT_* variables too: none leak in.
            env={k: v for k, v in os.environ.items() if not k.startswith("POLYGLOT_")},
        )
        self.addr = self._read_addr()
        self.url = f"http://{self.addr}"
        # Keep reading stdout so that the host never blocks on a full pipe.
        threading.Thread(target=self._drain, daemon=True).start()

    def _read_addr(self) -> str:
        assert self.proc.stdout is not None
        deadline = time.monotonic() + HOST_START_TIMEOUT
        seen = []
        while time.monotonic() < deadline:
            line = self.proc.stdout.readline()
            if not line:
                break
            text = line.decode(errors="replace").strip()
            seen.append(text)
            m = re.match(r"gRPC API on (\S+)$", text)
            if m:
                return m.group(1)
        self.stop()
        raise AssertionError(
            "the host did not announce its address:\n" + "\n".join(seen)
            + "\n" + self.log.read_text(errors="replace"))

    def _drain(self) -> None:
        assert self.proc.stdout is not None
        for _ in self.proc.stdout:
            pass

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self._log_file.close()


@pytest.fixture
def start_host(host_binary: Path, tmp_path: Path) -> Iterator[Any]:
    """`start_host(modules_dir, *flags)` starts a host; every host is stopped after the
    test."""
    hosts: List[Host] = []

    def start(modules_dir: Path, *flags: str) -> Host:
        h = Host(host_binary, modules_dir, tmp_path / f"host-{len(hosts)}.log", *flags)
        hosts.append(h)
        return h

    yield start
    for h in hosts:
        h.stop()


@pytest.fixture(params=["embedded", "connected"])
def open_api(request: Any, start_host: Any) -> Iterator[Any]:
    """`open_api(modules_dir)`: a `polyglot.Runtime` on that directory, or a `Client` of a
    host serving it; every test using it runs in both modes."""
    opened: List[Any] = []

    def open_(modules_dir: Path, **kwargs: Any) -> Any:
        if request.param == "embedded":
            api = polyglot.Runtime(modules_dir, **kwargs)
        else:
            api = polyglot.connect(start_host(modules_dir).url)
        opened.append(api)
        return api

    open_.mode = request.param  # type: ignore[attr-defined]
    yield open_
    for api in opened:
        api.close()


@pytest.fixture
def echo_modules(modules: Modules) -> Modules:
    """`echo` (the Rust test worker, MessagePack), `echo-py` (the Python test worker,
    JSON) and `crypto` (the native builtin, served in process)."""
    modules.add("echo", "rust")
    modules.add("echo-py", "python")
    d = modules.dir / "crypto"
    d.mkdir()
    (d / "module.json").write_text(json.dumps({
        "name": "crypto", "language": "rust", "version": "1.0.0", "builtin": "crypto",
    }))
    return modules
