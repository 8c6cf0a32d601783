"""A runtime in this process: what `with` and `close` leave behind, builtins, load and
reload problems, and the documentation `help()` shows."""

from __future__ import annotations

import gc
import inspect
import json
import pydoc
import subprocess
import sys
from pathlib import Path

import pytest

import polyglot
from conftest import alive, wait_until, worker_pids


def test_the_with_block_leaves_no_worker_behind(echo_modules):
    echo_modules.add("pool", "rust", instances=3)
    with polyglot.Runtime(echo_modules.dir) as rt:
        assert rt.call("echo", "echo", 1) == 1
        pids = worker_pids(rt.modules())
        assert len(pids) == 5  # echo, echo-py, three of pool; crypto runs in process
        assert all(alive(p) for p in pids)
        assert rt.call("echo", "pid") in pids
    assert rt.closed
    assert not [p for p in pids if alive(p)], "workers outlived the with block"
    with pytest.raises(polyglot.ShuttingDown):
        rt.call("echo", "echo", 1)
    rt.close()  # a second close does nothing
    assert repr(rt) == "<polyglot.Runtime closed, 4 modules>"


def test_a_runtime_dropped_without_close_stops_its_workers(modules):
    modules.add("echo", "rust")

    def use() -> list:
        rt = polyglot.Runtime(modules.dir)
        return worker_pids(rt.modules())

    pids = use()
    gc.collect()
    wait_until("the dropped runtime's workers are gone",
               lambda: not any(alive(p) for p in pids), within=20)


def test_builtins_serve_in_process_unless_disabled(echo_modules):
    with polyglot.Runtime(echo_modules.dir) as rt:
        assert rt.module("crypto")["in_process"] is True
        assert rt.load_errors == []
    with pytest.warns(RuntimeWarning, match="builtin"):
        rt = polyglot.Runtime(echo_modules.dir, builtins=False)
    with rt:
        assert any("builtin" in e for e in rt.load_errors)
        with pytest.raises(polyglot.ModuleNotFound):
            rt.call("crypto", "blake3", params={"data": b"abc"})
        assert rt.call("echo", "echo", 2) == 2  # the others serve


def test_strict_loading_raises_with_every_problem(modules):
    modules.add("echo", "rust")
    bad = modules.dir / "bad"
    bad.mkdir()
    (bad / "module.json").write_text('{"name": "bad", "language": "rust", "nonsense": 1}')
    with pytest.raises(polyglot.LoadError) as info:
        polyglot.Runtime(modules.dir, strict=True)
    assert len(info.value.errors) == 1 and "nonsense" in info.value.errors[0]
    with pytest.warns(RuntimeWarning, match="nonsense"):
        rt = polyglot.Runtime(modules.dir)
    with rt:
        assert rt.call("echo", "echo", 3) == 3


def test_reload_problems_keep_the_running_version(modules):
    folder = modules.add("echo", "rust")
    with polyglot.Runtime(modules.dir) as rt:
        (folder / "module.json").write_text('{"name": "echo", "language": "rust"}')
        with pytest.raises(polyglot.LoadError, match="version"):
            rt.reload("echo")
        assert rt.call("echo", "echo", 4) == 4
        with pytest.raises(polyglot.ModuleNotFound):
            rt.reload("nope")


def test_more_modules_load_later(modules, tmp_path):
    modules.add("echo", "rust")
    with polyglot.Runtime() as rt:
        assert rt.modules() == []
        report = rt.load(modules.dir)
        assert report == {"ready": ["echo"], "errors": []}
        with pytest.warns(RuntimeWarning, match="already defined"):
            again = rt.load(modules.dir)
        assert again["ready"] == [] and len(again["errors"]) == 1
        assert rt.call("echo", "echo", 5) == 5


def test_help_shows_the_api():
    text = pydoc.render_doc(polyglot, renderer=pydoc.plaintext)
    for name in ("Runtime", "connect", "blake3", "encrypt", "decompress", "PolyglotError"):
        assert name in text
    assert "GIL" in polyglot.Runtime.call.__doc__
    assert "asyncio" in polyglot.Runtime.acall.__doc__
    assert "canary" in polyglot.Runtime.deploy.__doc__
    assert polyglot.Runtime.__doc__ and polyglot.Client.__doc__ and polyglot.connect.__doc__
    assert polyglot.blake3.__text_signature__ == "(data, /, *, key=None, context=None, length=32)"
    for name in polyglot.__all__:
        obj = getattr(polyglot, name)
        if isinstance(obj, type) or inspect.isroutine(obj):
            assert obj.__doc__, name
    public = [m for m in dir(polyglot.Runtime) if not m.startswith("_")]
    undocumented = [m for m in public if not getattr(polyglot.Runtime, m).__doc__]
    assert not undocumented, undocumented


def test_the_package_ships_its_stubs_and_py_typed():
    pkg = Path(polyglot.__file__).parent
    assert (pkg / "py.typed").exists()
    stub = (pkg / "__init__.pyi").read_text()
    for name in polyglot.__all__:
        if name != "__version__":
            assert name in stub, name
    assert polyglot.Timeout.__mro__[1:3] == (polyglot.PolyglotError, TimeoutError)
    assert issubclass(polyglot.InvalidArgument, ValueError)
    assert polyglot.ModuleNotFound.__module__ == "polyglot"
    assert json.loads(json.dumps(polyglot.__version__))


def test_the_type_stubs_match_the_module_and_type_check_its_uses():
    # stubtest compares the stubs with the module as built; mypy --strict checks typical
    # uses against them.
    for args in (["-m", "mypy.stubtest", "polyglot"],
                 ["-m", "mypy", "--strict", str(Path(__file__).parent / "typing" / "usage.py")]):
        out = subprocess.run([sys.executable, *args], capture_output=True, text=True)
        assert out.returncode == 0, out.stdout + out.stderr
