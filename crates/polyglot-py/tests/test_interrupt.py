"""Ctrl-C during a long blocking call: a child Python process running one gets SIGINT
and must raise KeyboardInterrupt at once, then exit leaving no worker behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

from conftest import alive, wait_until

CHILD = r"""
import json, signal, sys, time
import polyglot

# As started from a terminal: a test run in the background of a non-interactive shell
# (CI) inherits SIGINT ignored, and Python then never raises KeyboardInterrupt.
signal.signal(signal.SIGINT, signal.default_int_handler)

mode, target = sys.argv[1], sys.argv[2]
if mode == "embedded":
    api = polyglot.Runtime(target)
else:
    api = polyglot.connect(target)
pids = [i["pid"] for m in api.modules() for i in m["instances"] if i["pid"]]
print(json.dumps({"ready": True, "pids": pids}), flush=True)
started = time.monotonic()
try:
    api.call("echo", "sleep", 60_000, timeout=120)
except KeyboardInterrupt:
    print(json.dumps({"interrupted_after": time.monotonic() - started}), flush=True)
    api.close()
    sys.exit(42)
print(json.dumps({"finished": True}), flush=True)
"""


def run_and_interrupt(target: str, mode: str) -> tuple:
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, mode, target],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    hello = json.loads(child.stdout.readline())
    assert hello["ready"], hello
    time.sleep(0.5)  # well inside the 60 s call
    sent = time.monotonic()
    child.send_signal(signal.SIGINT)
    try:
        out, err = child.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        child.kill()
        raise
    exited_after = time.monotonic() - sent
    return child.returncode, out, err, exited_after, hello["pids"]


def test_ctrl_c_interrupts_a_blocking_call_in_a_runtime(modules):
    modules.add("echo", "rust")
    code, out, err, exited_after, pids = run_and_interrupt(str(modules.dir), "embedded")
    assert code == 42, (code, out, err)
    report = json.loads(out.strip().splitlines()[-1])
    # Signals are checked every 50 ms: the interrupt lands at once, not after 60 s.
    assert report["interrupted_after"] < 5, report
    assert exited_after < 15, exited_after
    assert pids and not [p for p in pids if alive(p)], "workers outlived the process"


def test_ctrl_c_interrupts_a_blocking_call_to_a_host(modules, start_host):
    modules.add("echo", "rust")
    host = start_host(modules.dir)
    code, out, err, exited_after, _ = run_and_interrupt(host.url, "connected")
    assert code == 42, (code, out, err)
    report = json.loads(out.strip().splitlines()[-1])
    assert report["interrupted_after"] < 5, report
    assert exited_after < 15, exited_after


def test_an_unhandled_ctrl_c_ends_the_program_with_keyboard_interrupt(modules):
    modules.add("echo", "rust")
    script = CHILD.replace("except KeyboardInterrupt:", "except ZeroDivisionError:")
    child = subprocess.Popen(
        [sys.executable, "-c", script, "embedded", str(modules.dir)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    assert child.stdout is not None
    pids = json.loads(child.stdout.readline())["pids"]
    time.sleep(0.3)
    os.kill(child.pid, signal.SIGINT)
    _, err = child.communicate(timeout=30)
    assert "KeyboardInterrupt" in err, err
    assert child.returncode != 0
    wait_until("the workers are gone", lambda: not any(alive(p) for p in pids), within=10)
