#!/usr/bin/env bash
# Seeds fuzz/corpus/<target>/ from the shared protocol vectors (tests/vectors/) and the
# bundled module manifests (polyglot-modules/*/module.json). Nothing to build: python3
# (required by the project anyway) turns the vectors into the byte streams each target
# reads. Seeds are named by their SHA-1, as libFuzzer names what it adds, so re-seeding
# never duplicates and never removes what earlier runs found.
#
#   fuzz/seed.sh
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null 2>&1 || { echo "error: python3 is required to seed the corpus" >&2; exit 1; }

python3 - <<'PY'
import glob, hashlib, json, os, struct

VECTORS = "tests/vectors"
OUT = "fuzz/corpus"
counts = {}

def put(target, data):
    if isinstance(data, str):
        data = data.encode()
    d = os.path.join(OUT, target)
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, hashlib.sha1(data).hexdigest())
    if not os.path.exists(path):
        with open(path, "wb") as f:
            f.write(data)
        counts[target] = counts.get(target, 0) + 1

def cases(name):
    with open(os.path.join(VECTORS, name)) as f:
        return json.load(f)["cases"]

def compact(v):
    return json.dumps(v, separators=(",", ":"), ensure_ascii=False)

def mp_frame(payload):
    return struct.pack(">I", len(payload)) + payload

# Whole frames as each codec carries them: a JSON line, a length-prefixed MessagePack map.
json_lines, mp_frames = [], []
for name in ("requests.json", "messages.json"):
    for c in cases(name):
        if c["codec"] == "json":
            json_lines.append(c["frame"].encode() + b"\n")
        else:
            mp_frames.append(mp_frame(bytes.fromhex(c["frame"])))

# Every value, as the result of a response (msgpack: {"id":1,"result":<value>}).
for c in cases("values.json"):
    json_lines.append(b'{"id":1,"result":' + c["json"].encode() + b"}\n")
    if "msgpack" in c:
        mp_frames.append(mp_frame(b"\x82\xa2id\x01\xa6result" + bytes.fromhex(c["msgpack"])))

# What a worker reads in the SDK sessions, as JSON lines (msgpack ones need an encoder).
for c in cases("sessions.json"):
    if c["codec"] == "json":
        put("json_frames", b"".join(compact(m).encode() + b"\n" for m in c["send"]))

for line in json_lines:
    put("json_frames", line)
for frame in mp_frames:
    put("msgpack_frames", frame)
put("json_frames", b"".join(json_lines))
put("json_frames", b"".join(l[:-1] + b"\r\n" for l in json_lines[:8]))
put("msgpack_frames", b"".join(mp_frames))

# Streams with oversize frames, truncations, CRLF: as read, whatever the limit.
for c in cases("frames.json"):
    put("json_frames" if c["codec"] == "json" else "msgpack_frames", bytes.fromhex(c["stream"]))

# Handshakes: the line alone, and as a worker's output starts: a banner, the handshake,
# then frames in the codec it announces.
for c in cases("handshakes.json"):
    line = c["line"].encode() + b"\n"
    put("handshake", line)
    try:
        codec = json.loads(c["line"]).get("codec", "json")
    except ValueError:
        continue
    rest = b"".join(mp_frames[:6]) if codec == "msgpack" else b"".join(json_lines[:6])
    put("handshake", b"starting up...\n" + line + rest)
    put("handshake", line[:-1] + b"\r\n" + rest)

# Manifests: the bundled modules', and one of each shape the parser knows.
for path in sorted(glob.glob("polyglot-modules/*/module.json")):
    with open(path, "rb") as f:
        put("manifest", f.read())
base = {"name": "text", "language": "python", "version": "1.0.0"}
shapes = [
    {"path": "worker.py"},
    {"command": "bin/worker", "args": ["--fast"], "path": "w.js"},
    {"endpoint": "http://127.0.0.1:7070/"},
    {"endpoint": "unix:/run/w.sock"},
    {"builtin": "crypto"},
    {"path": "w", "transport": "grpc", "codec": "msgpack", "instances": 4},
    {"path": "w", "fallback": ["other", "./fallback.py"], "capabilities": ["echo", "add"],
     "smoke": [{"method": "echo", "params": ["hi"], "result": "hi"},
               {"method": "add", "params": [1, 2.5], "error": "E"}]},
    {"command": "./run", "build": {"command": "make", "args": ["-j2"], "inputs": ["src", "Makefile"],
                                   "output": "bin/w"}},
    {"path": "w", "build": "sh build.sh", "env": {"RUST_LOG": "info"}, "maxFrameBytes": 1048576,
     "maxQueue": 8, "timeoutMs": 100, "handshakeTimeoutMs": 5, "shutdownGraceMs": 7,
     "healthCheck": {"intervalMs": 5000, "timeoutMs": 2000, "unhealthyThreshold": 2},
     "restart": {"maxRestarts": 3, "windowMs": 1000, "backoffInitialMs": 10, "backoffMaxMs": 20},
     "$schema": "x", "description": "d"},
]
for s in shapes:
    put("manifest", json.dumps({**base, **s}, indent=1))

for target in ("json_frames", "msgpack_frames", "handshake", "manifest"):
    d = os.path.join(OUT, target)
    total = len(os.listdir(d)) if os.path.isdir(d) else 0
    print(f"seed: {target}: {counts.get(target, 0)} new, {total} in fuzz/corpus/{target}")
PY
