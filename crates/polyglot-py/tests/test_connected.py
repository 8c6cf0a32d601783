"""What only a client of a host has: connecting, the API key, and a host that is not
there."""

from __future__ import annotations

import socket

import pytest

import polyglot


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_nothing_listening_is_a_connection_failure():
    url = f"http://127.0.0.1:{free_port()}"
    e = pytest.raises(polyglot.ConnectionFailed, polyglot.connect, url, timeout=2).value
    assert isinstance(e, ConnectionError) and e.url == url
    with pytest.raises(polyglot.ConnectionFailed, match="not a URL"):
        polyglot.connect("not a url")


def test_the_api_key_is_required_and_sent(modules, start_host):
    modules.add("echo", "rust")
    host = start_host(modules.dir, "--api-key", "s3cret")
    anonymous = polyglot.connect(host.url)
    e = pytest.raises(polyglot.AccessDenied, anonymous.call, "echo", "echo", 1).value
    assert isinstance(e, PermissionError) and e.grpc_status == "Unauthenticated"
    wrong = polyglot.connect(host.url, api_key="guess")
    pytest.raises(polyglot.AccessDenied, wrong.modules)
    with polyglot.connect(host.url, api_key="s3cret") as client:
        assert client.call("echo", "echo", b"ok") == b"ok"
        assert client.url == host.url
        assert repr(client) == f"<polyglot.Client {host.url} open>"
    # Closing a client leaves the host serving.
    again = polyglot.Client(host.url, api_key="s3cret")
    assert again.call("echo", "echo", 1) == 1
    assert isinstance(again, polyglot.Api) and not isinstance(again, polyglot.Runtime)


def test_a_host_that_stops_fails_calls_as_connection_problems(modules, start_host):
    modules.add("echo", "rust")
    host = start_host(modules.dir)
    client = polyglot.connect(host.url)
    assert client.call("echo", "echo", 1) == 1
    host.stop()
    with pytest.raises((polyglot.ConnectionFailed, polyglot.ShuttingDown)):
        client.call("echo", "echo", 1, timeout=5)
