"""Type-checked, never run: uses of the API that mypy --strict must accept with the
stubs (test_lifecycle.py runs it)."""

import polyglot

def show(m: polyglot.ModuleInfo) -> str:
    return m["name"] + m["health"]

with polyglot.Runtime("x", builtins=False) as rt:
    v: object = rt.call("a", "b", 1, b"x", timeout=1.5)
    r: polyglot.Reply = rt.call_reply("a", "b")
    print(r.served_by.upper(), [show(m) for m in rt.modules()])
    ver: str = rt.deploy("m", "path", "canary", stages=[5, 100])
    d = rt.deployment("m")
    if d["rollout"] is not None:
        print(d["rollout"]["from"], d["rollout"]["percent"] + 1)
    for e in rt.events(timeout=1.0):
        print(e["type"])
digest: bytes = polyglot.blake3(bytearray(b"x"), length=64)
c = polyglot.connect(timeout=2)


async def main() -> object:
    return await c.acall("m", "f")


async def cancel_one() -> bool:
    fut = c.acall_reply("m", "f", 1, timeout=2)  # an asyncio.Future of a Reply
    return fut.cancel() or fut.result().fallback


try:
    polyglot.decrypt(b"", b"")
except polyglot.RemoteError as e:
    print(e.code, e.data)
