"""Deployments from Python, in both modes: a second version deployed from its own
folder, the active version checked, rolled back, a canary aborted, and the refusals."""

from __future__ import annotations

import pytest

import polyglot
from conftest import wait_until


@pytest.fixture
def two_versions(modules, tmp_path):
    """Module `svc` 1.0.0 in the modules directory, and its 2.0.0 in a release folder."""
    modules.add("svc", "rust")
    v2 = modules.add("svc", "rust", root=tmp_path / "releases", folder="svc-2.0.0",
                     version="2.0.0")
    return modules, v2


def test_deploy_then_roll_back(open_api, two_versions):
    modules, v2 = two_versions
    api = open_api(modules.dir)
    assert api.deployment("svc")["active"] == "1.0.0"
    assert api.call("svc", "version") == "1.0.0"
    # Enough calls for 1.0.0 to be judged healthy: the rollback target by default.
    for i in range(25):
        assert api.call("svc", "echo", i) == i
    wait_until("1.0.0 is known healthy",
               lambda: api.history("svc")[0]["health"] == "healthy")
    assert api.history("svc")[0]["summary"]["calls"] >= 25

    assert api.deploy("svc", v2, "immediate", by="tests", why="a new version") == "2.0.0"
    d = api.deployment("svc")
    assert d["active"] == "2.0.0" and d["rollout"] is None
    assert d["traffic"] == [{"version": "2.0.0", "percent": 100.0, "shadow": False}]
    reply = api.call_reply("svc", "version")
    assert (reply.value, reply.version) == ("2.0.0", "2.0.0")
    history = {h["version"]: h for h in api.history("svc")}
    assert history["2.0.0"]["state"] == "active"
    assert history["2.0.0"]["by"] == "tests" and history["2.0.0"]["why"] == "a new version"
    assert history["2.0.0"]["strategy"] == "immediate"
    assert history["1.0.0"]["state"] == "superseded"

    assert api.rollback("svc") == "1.0.0"
    assert api.deployment("svc")["active"] == "1.0.0"
    assert api.call_reply("svc", "version").version == "1.0.0"
    states = [(h["version"], h["state"]) for h in api.history("svc")]
    assert ("1.0.0", "active") in states and ("2.0.0", "rolled-back") in states
    # Back to a named version.
    assert api.rollback("svc", to="2.0.0") == "2.0.0"
    assert api.call("svc", "version") == "2.0.0"


def test_a_canary_holds_a_share_and_an_abort_sends_it_back(open_api, two_versions):
    modules, v2 = two_versions
    api = open_api(modules.dir)
    assert api.deploy("svc", v2, "canary", stages=[50, 100], stage_duration=60,
                      manual=True) == "2.0.0"
    d = api.deployment("svc")
    assert d["active"] == "1.0.0"
    rollout = d["rollout"]
    assert rollout["version"] == "2.0.0" and rollout["from"] == "1.0.0"
    assert rollout["strategy"] == "canary" and rollout["percent"] == 50
    shares = {t["version"]: t["percent"] for t in d["traffic"]}
    assert shares == {"1.0.0": 50.0, "2.0.0": 50.0}
    # A routing key stays on one version.
    served = {api.call_reply("svc", "echo", 1, routing_key="user-7").version for _ in range(10)}
    assert len(served) == 1
    # Too early to advance by hand: refused, and nothing changes.
    e = pytest.raises(polyglot.DeploymentError, api.advance, "svc").value
    assert e.code in ("not_ready", "too_early"), e.code
    d = api.abort("svc", "changed my mind")
    assert d["active"] == "1.0.0" and d["rollout"] is None
    assert api.call_reply("svc", "echo", 1).version == "1.0.0"
    failed = [h for h in api.history("svc") if h["version"] == "2.0.0"][0]
    assert failed["state"] == "failed" and "changed my mind" in failed["reason"]


def test_deployment_refusals(open_api, two_versions, tmp_path, modules):
    modules_, v2 = two_versions
    other = modules.add("other", "rust", root=tmp_path / "elsewhere")
    d = modules.dir / "crypto"
    d.mkdir()
    (d / "module.json").write_text(
        '{"name": "crypto", "language": "rust", "version": "1.0.0", "builtin": "crypto"}')
    api = open_api(modules.dir)

    e = pytest.raises(polyglot.DeploymentError, api.rollback, "svc").value
    assert e.code == "no_rollback_target" and e.module == "svc"
    e = pytest.raises(polyglot.InvalidArgument, api.deploy, "svc", v2, "canary",
                      stages=[50, 25]).value
    assert e.code == "invalid_strategy" and "stages[1]" in str(e)
    e = pytest.raises(polyglot.InvalidArgument, api.deploy, "svc", other).value
    assert e.code == "wrong_module"
    e = pytest.raises(polyglot.InvalidArgument, api.deploy, "svc", tmp_path / "missing").value
    assert e.code == "manifest"
    e = pytest.raises(polyglot.DeploymentError, api.deployment, "crypto").value
    assert e.code == "in_process"
    pytest.raises(polyglot.ModuleNotFound, api.deployment, "nope")
    pytest.raises(polyglot.ModuleNotFound, api.history, "nope")
    pytest.raises(polyglot.ModuleNotFound, api.rollback, "nope")
    # Checked before anything is sent.
    with pytest.raises(TypeError, match="stage_duration"):
        api.deploy("svc", v2, "immediate", stage_duration=5)
    with pytest.raises(ValueError, match="unknown strategy"):
        api.deploy("svc", v2, "big-bang")
    with pytest.raises(TypeError, match="needs stages"):
        api.deploy("svc", v2, "canary")
    # Whatever was refused, 1.0.0 serves on.
    assert api.deployment("svc")["active"] == "1.0.0"
    assert [d["module"] for d in api.deployments()] == ["svc"]
