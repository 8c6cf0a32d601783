#!/usr/bin/env python3
"""Call polyglot modules through a running `polyglot-host` over its gRPC API.

`polyglot-host serve` exposes the `polyglot.v1.Runtime` service
(`proto/polyglot/v1/runtime.proto`). This client needs no generated code checked in: the
first time it runs it compiles that proto with `grpcio-tools` (the bundled protoc, no
system protoc) into a cache folder named for the proto's content hash, and reuses it
afterwards. Params and results travel as JSON bytes (`CODEC_JSON`), so a module's methods
need no schema here; binary values are `{"$bytes": "<base64>"}` as in
`docs/protocol.md`.

Needs `grpcio` and `grpcio-tools` (`pip install grpcio grpcio-tools`).

From the command line (the JSON result goes to stdout; on an error, a line
`error: STATUS (kind): message` goes to stderr and the exit status is 1)::

    python grpc_client.py --connect 127.0.0.1:50051 text-rust slugify '["Hello World"]'
    python grpc_client.py --connect 127.0.0.1:50051 --api-key KEY text-rust stats '["a b"]'

From other code::

    from grpc_client import connect

    with connect("127.0.0.1:50051", api_key=None) as client:
        print(client.call("text-rust", "slugify", ["Hello World"]))   # "hello-world"
        print([m.name for m in client.list_modules()])

A call that fails raises :class:`CallFailed`, which carries the gRPC status code and the
host's `ErrorDetail` (its kind, and for a worker's own error its code, message and data).
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import json
import os
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any, List, Optional, Sequence, Tuple

import grpc
from google.rpc import status_pb2  # googleapis-common-protos

DEFAULT_PROTO = Path(__file__).resolve().parents[2] / "proto" / "polyglot" / "v1" / "runtime.proto"
"""The API's proto in this repository; `POLYGLOT_PROTO` or `proto=` point elsewhere."""

PROTO_NAME = "polyglot/v1/runtime.proto"
"""The proto's path under its include root, which the generated imports follow
(`from polyglot.v1 import runtime_pb2`)."""

STATUS_DETAILS_KEY = "grpc-status-details-bin"
"""The trailer that carries a status's details: an encoded `google.rpc.Status` whose
details hold the host's `ErrorDetail` as an `Any`."""

ERROR_DETAIL_TYPE_URL = "type.googleapis.com/polyglot.v1.ErrorDetail"


# ------------------------------------------------------------------ generated stubs
def _cache_root() -> Path:
    """`$POLYGLOT_GRPC_CACHE`, else `$XDG_CACHE_HOME/polyglot/grpc-stubs`, else
    `~/.cache/polyglot/grpc-stubs`."""
    if os.environ.get("POLYGLOT_GRPC_CACHE"):
        return Path(os.environ["POLYGLOT_GRPC_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "polyglot" / "grpc-stubs"


def _tools_version() -> str:
    try:
        from importlib.metadata import version

        return version("grpcio-tools")
    except Exception:  # not installed as a distribution: the key falls back to "unknown"
        return "unknown"


def _generate(proto: Path, out: Path) -> None:
    """Compiles `proto` (at `PROTO_NAME` under its include root) into `out`."""
    try:
        from grpc_tools import protoc
    except ImportError:
        raise RuntimeError(
            "generating the gRPC stubs needs grpcio-tools: pip install grpcio-tools"
        ) from None
    import importlib.resources

    include_root = proto.parents[len(Path(PROTO_NAME).parts) - 1]
    # The well-known types (google/protobuf/*.proto) ship inside grpc_tools.
    well_known = str(importlib.resources.files("grpc_tools") / "_proto")
    args = [
        "grpc_tools.protoc",
        f"-I{include_root}",
        f"-I{well_known}",
        f"--python_out={out}",
        f"--grpc_python_out={out}",
        PROTO_NAME,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc could not compile {proto} (see its message above)")
    # Regular packages, so a namespace package of the same name elsewhere cannot win.
    for pkg in (out / "polyglot", out / "polyglot" / "v1"):
        (pkg / "__init__.py").touch()


def load_stubs(proto: Optional[Path] = None) -> Tuple[ModuleType, ModuleType]:
    """The generated `runtime_pb2` (messages) and `runtime_pb2_grpc` (stub) modules.

    They are generated once into `<cache>/<sha256 of the proto>-<grpcio-tools version>/`
    and imported from there. Generation writes a temporary folder and renames it into
    place, so concurrent first runs do not see half-written files.

    Raises RuntimeError when grpcio-tools is missing or the proto does not compile.
    """
    proto = Path(proto or os.environ.get("POLYGLOT_PROTO") or DEFAULT_PROTO).resolve()
    if proto.as_posix().split("/")[-3:] != PROTO_NAME.split("/"):
        raise RuntimeError(f"{proto} is not at {PROTO_NAME} under an include root")
    digest = hashlib.sha256(proto.read_bytes()).hexdigest()[:16]
    root = _cache_root()
    target = root / f"{digest}-grpcio-tools-{_tools_version()}"
    if not (target / "polyglot" / "v1" / "runtime_pb2_grpc.py").is_file():
        root.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(prefix=".gen-", dir=root))
        _generate(proto, scratch)
        try:
            os.rename(scratch, target)
        except OSError:
            if not target.is_dir():  # not "another process got there first"
                raise
    if str(target) not in sys.path:
        sys.path.insert(0, str(target))
    return (
        importlib.import_module("polyglot.v1.runtime_pb2"),
        importlib.import_module("polyglot.v1.runtime_pb2_grpc"),
    )


# ------------------------------------------------------------------ errors and results
@dataclass(eq=False)
class CallFailed(Exception):
    """An RPC the host refused or a call that failed.

    `status` is the gRPC status code (`NOT_FOUND` for an unknown module or method,
    `UNAUTHENTICATED` for a missing or wrong API key, `UNKNOWN` for most errors a worker
    answered, ...). `kind` is the host's error kind (`module_not_found`, `remote`,
    `timeout`, ...; empty when the status has no `ErrorDetail`, as for authentication).
    For `remote`, `code`, `remote_message` and `data` are the worker's error.
    """

    status: grpc.StatusCode
    message: str
    kind: str = ""
    module: str = ""
    method: str = ""
    code: str = ""
    remote_message: str = ""
    data: Any = None
    causes: List[Tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__(self.message)

    def __str__(self) -> str:
        # NOT_FOUND (module_not_found): ..., or UNAUTHENTICATED: ... when there is no kind
        kind = f" ({self.kind})" if self.kind else ""
        return f"{self.status.name}{kind}: {self.message}"


@dataclass
class CallResult:
    """A call's decoded result and who served it."""

    value: Any
    served_by: str
    version: str
    fallback: bool
    instance: int
    execution_time_us: int


def _call_failed(pb2: ModuleType, err: grpc.RpcError) -> CallFailed:
    failed = CallFailed(status=err.code(), message=err.details() or "")
    raw = dict(err.trailing_metadata() or ()).get(STATUS_DETAILS_KEY)
    details = status_pb2.Status.FromString(raw).details if raw else []
    for any_detail in details:
        if any_detail.type_url != ERROR_DETAIL_TYPE_URL:
            continue
        detail = pb2.ErrorDetail.FromString(any_detail.value)
        failed.kind, failed.module, failed.method = detail.kind, detail.module, detail.method
        failed.code, failed.remote_message = detail.code, detail.message
        failed.data = json.loads(detail.data_json) if detail.data_json else None
        failed.causes = [(c.implementation, c.reason) for c in detail.causes]
    return failed


# ------------------------------------------------------------------ the client
def _target(addr: str) -> str:
    """`host:port` from `host:port` or a URL like `http://host:port` (as the host's own
    `--connect` takes)."""
    for scheme in ("http://", "https://"):
        if addr.startswith(scheme):
            return addr[len(scheme):].rstrip("/")
    return addr


class Client:
    """A connection to one host. Use as a context manager, or call :meth:`close`."""

    def __init__(self, addr: str, api_key: Optional[str] = None, proto: Optional[Path] = None):
        self.pb2, pb2_grpc = load_stubs(proto)
        self._channel = grpc.insecure_channel(_target(addr))
        self._stub = pb2_grpc.RuntimeStub(self._channel)
        # The host reads `authorization: Bearer KEY` (or `x-api-key: KEY`).
        self._metadata = [("authorization", f"Bearer {api_key}")] if api_key else []

    def call(
        self,
        module: str,
        method: str,
        params: Any = None,
        *,
        timeout_ms: Optional[int] = None,
        routing_key: str = "",
    ) -> Any:
        """Calls `module.method` with `params` (a list of positional arguments, a dict of
        named ones, or None) and returns the decoded result.

        Raises CallFailed when the host or the worker answers an error.
        """
        return self.call_with_meta(
            module, method, params, timeout_ms=timeout_ms, routing_key=routing_key
        ).value

    def call_with_meta(
        self,
        module: str,
        method: str,
        params: Any = None,
        *,
        timeout_ms: Optional[int] = None,
        routing_key: str = "",
    ) -> CallResult:
        """Like :meth:`call`, but returns the result with who served it.

        Raises CallFailed when the host or the worker answers an error.
        """
        req = self.pb2.CallRequest(
            module=module,
            method=method,
            # Empty params mean null to the host.
            params=b"" if params is None else json.dumps(params).encode("utf-8"),
            codec=self.pb2.CODEC_JSON,
            routing_key=routing_key,
        )
        if timeout_ms is not None:
            req.timeout_ms = timeout_ms
        try:
            r = self._stub.Call(req, metadata=self._metadata)
        except grpc.RpcError as e:
            raise _call_failed(self.pb2, e) from None
        return CallResult(
            value=json.loads(r.result) if r.result else None,
            served_by=r.served_by,
            version=r.version,
            fallback=r.fallback,
            instance=r.instance,
            execution_time_us=r.execution_time_us,
        )

    def list_modules(self) -> List[Any]:
        """Every loaded module, as `ModuleInfo` messages (name, version, language,
        health, methods, instances, ...).

        Raises CallFailed when the host refuses (a wrong API key, say).
        """
        try:
            r = self._stub.ListModules(self.pb2.ListModulesRequest(), metadata=self._metadata)
        except grpc.RpcError as e:
            raise _call_failed(self.pb2, e) from None
        return list(r.modules)

    def close(self) -> None:
        """Closes the channel."""
        self._channel.close()

    def __enter__(self) -> "Client":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect(addr: str, api_key: Optional[str] = None, proto: Optional[Path] = None) -> Client:
    """A client of the host at `addr` (`host:port`), sending `api_key` if given."""
    return Client(addr, api_key, proto)


def call(
    addr: str, module: str, method: str, params: Any = None, api_key: Optional[str] = None
) -> Any:
    """One call on a fresh connection: the decoded result, or CallFailed raised."""
    with connect(addr, api_key) as client:
        return client.call(module, method, params)


# ------------------------------------------------------------------ command line
def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        description="Call a module's method through a running polyglot-host and print the "
        "JSON result.",
    )
    parser.add_argument(
        "--connect", required=True, metavar="ADDR", help="the host's gRPC address, e.g. 127.0.0.1:50051"
    )
    parser.add_argument(
        "--api-key",
        default=os.environ.get("POLYGLOT_API_KEY"),
        help="the host's API key (default: $POLYGLOT_API_KEY)",
    )
    parser.add_argument("--timeout-ms", type=int, help="the call's deadline in milliseconds")
    parser.add_argument("--proto", type=Path, help=f"the API's proto (default: {DEFAULT_PROTO})")
    parser.add_argument("module")
    parser.add_argument("method")
    parser.add_argument(
        "params",
        nargs="?",
        default="[]",
        help="the params as JSON: an array of positional arguments or an object of named ones "
        "(default: [])",
    )
    args = parser.parse_args(argv)
    try:
        params = json.loads(args.params)
    except ValueError as e:
        parser.error(f"the params are not valid JSON: {e}")
    try:
        with connect(args.connect, args.api_key, args.proto) as client:
            result = client.call(args.module, args.method, params, timeout_ms=args.timeout_ms)
    except CallFailed as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(result, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
