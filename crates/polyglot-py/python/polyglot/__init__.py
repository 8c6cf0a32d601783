"""polyglot: call modules written in Rust, Go, C++ and Python from Python.

Three ways in:

- ``polyglot.Runtime(modules_dir)``: the polyglot runtime inside this process. It starts
  each module's workers, supervises them, and calls them (``call``, or ``await acall``
  from asyncio); deploys and rolls back versions; streams events.
- ``polyglot.connect(url)``: the same interface against a running ``polyglot-host
  serve``, over its gRPC API.
- ``polyglot.blake3``, ``encrypt``/``decrypt`` (AES-256-GCM), ``compress``/``decompress``
  (zstd): the native functions, called directly, with the GIL released.

>>> with polyglot.Runtime("polyglot-modules") as rt:
...     rt.call("text-rust", "slugify", "Hello World")
'hello-world'

Every error is a ``polyglot.PolyglotError``; see ``help(polyglot.PolyglotError)`` and
its subclasses.
"""

from ._errors import (
    AccessDenied,
    AuthenticationFailed,
    ConnectionFailed,
    CorruptData,
    DeploymentError,
    FallbackFailed,
    FrameTooLarge,
    InvalidArgument,
    LoadError,
    MethodNotFound,
    ModuleNotFound,
    Overloaded,
    PolyglotError,
    RemoteError,
    ShuttingDown,
    Timeout,
    TooLarge,
    Unavailable,
    WorkerExited,
)
from ._types import (
    DeploymentStatus,
    HealthSummary,
    InstanceInfo,
    LoadReport,
    ModuleInfo,
    ReloadReport,
    Rollout,
    Seconds,
    Strategy,
    StrPath,
    TrafficShare,
    Value,
    VersionInfo,
)
from ._polyglot import (
    Api,
    Client,
    EventStream,
    Reply,
    Runtime,
    __version__,
    blake3,
    blake3_hex,
    compress,
    connect,
    decompress,
    decrypt,
    encrypt,
)

__all__ = [
    "Runtime",
    "Client",
    "Api",
    "Reply",
    "EventStream",
    "connect",
    "blake3",
    "blake3_hex",
    "encrypt",
    "decrypt",
    "compress",
    "decompress",
    "PolyglotError",
    "ModuleNotFound",
    "MethodNotFound",
    "Timeout",
    "WorkerExited",
    "RemoteError",
    "FrameTooLarge",
    "Overloaded",
    "Unavailable",
    "FallbackFailed",
    "ShuttingDown",
    "InvalidArgument",
    "DeploymentError",
    "LoadError",
    "ConnectionFailed",
    "AccessDenied",
    "AuthenticationFailed",
    "TooLarge",
    "CorruptData",
    "Value",
    "Seconds",
    "StrPath",
    "Strategy",
    "ModuleInfo",
    "InstanceInfo",
    "DeploymentStatus",
    "Rollout",
    "TrafficShare",
    "HealthSummary",
    "VersionInfo",
    "ReloadReport",
    "LoadReport",
    "__version__",
]
