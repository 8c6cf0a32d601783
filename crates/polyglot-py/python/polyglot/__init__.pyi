"""Type stubs of the package ``polyglot``."""

import asyncio
import datetime
from collections.abc import AsyncIterator, Awaitable, Iterator
from types import TracebackType
from typing import Any, Literal, Optional, Self, Union, final

from typing_extensions import Buffer, disjoint_base

from ._errors import (
    AccessDenied as AccessDenied,
    AuthenticationFailed as AuthenticationFailed,
    ConnectionFailed as ConnectionFailed,
    CorruptData as CorruptData,
    DeploymentError as DeploymentError,
    FallbackFailed as FallbackFailed,
    FrameTooLarge as FrameTooLarge,
    InvalidArgument as InvalidArgument,
    LoadError as LoadError,
    MethodNotFound as MethodNotFound,
    ModuleNotFound as ModuleNotFound,
    Overloaded as Overloaded,
    PolyglotError as PolyglotError,
    RemoteError as RemoteError,
    ShuttingDown as ShuttingDown,
    Timeout as Timeout,
    TooLarge as TooLarge,
    Unavailable as Unavailable,
    WorkerExited as WorkerExited,
)

from ._types import (
    DeploymentStatus as DeploymentStatus,
    HealthSummary as HealthSummary,
    InstanceInfo as InstanceInfo,
    LoadReport as LoadReport,
    ModuleInfo as ModuleInfo,
    ReloadReport as ReloadReport,
    Rollout as Rollout,
    Seconds as Seconds,
    Strategy as Strategy,
    StrPath as StrPath,
    TrafficShare as TrafficShare,
    Value as Value,
    VersionInfo as VersionInfo,
)

__version__: str
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

@final
class Reply:
    """The result of a call and who served it."""

    @property
    def value(self) -> Any: ...
    @property
    def served_by(self) -> str: ...
    @property
    def version(self) -> str: ...
    @property
    def fallback(self) -> bool: ...
    @property
    def instance(self) -> int: ...
    @property
    def execution_time(self) -> Optional[float]: ...

@final
class EventStream:
    """Events as they happen, each a dict with ``category``, ``type``, ``module`` and
    ``timestamp_ms`` (and the fields of its type)."""

    def __iter__(self) -> Iterator[dict[str, Any]]: ...
    def __next__(self) -> dict[str, Any]: ...
    def __aiter__(self) -> AsyncIterator[dict[str, Any]]: ...
    def __anext__(self) -> Awaitable[dict[str, Any]]: ...
    def get(self, timeout: Optional[float] = None) -> Optional[dict[str, Any]]: ...
    def close(self) -> None: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, *exc: object) -> bool: ...

@disjoint_base
class Api:
    """The interface of ``Runtime`` and ``Client``."""

    def call(self, module: str, method: str, *args: Value, params: Value = None,
             timeout: Optional[Seconds] = None, routing_key: Optional[str] = None) -> Any: ...
    def acall(self, module: str, method: str, *args: Value, params: Value = None,
              timeout: Optional[Seconds] = None,
              routing_key: Optional[str] = None) -> asyncio.Future[Any]: ...
    def call_reply(self, module: str, method: str, *args: Value, params: Value = None,
                   timeout: Optional[Seconds] = None,
                   routing_key: Optional[str] = None) -> Reply: ...
    def acall_reply(self, module: str, method: str, *args: Value, params: Value = None,
                    timeout: Optional[Seconds] = None,
                    routing_key: Optional[str] = None) -> asyncio.Future[Reply]: ...
    def modules(self) -> list[ModuleInfo]: ...
    def module(self, name: str) -> ModuleInfo: ...
    def health(self, name: str) -> Literal["healthy", "degraded", "unhealthy"]: ...
    def reload(self, name: str) -> ReloadReport: ...
    def deploy(self, module: str, path: StrPath, strategy: Strategy = "immediate", *,
               by: Optional[str] = None, why: Optional[str] = None,
               at: Union[None, float, datetime.datetime] = None, **options: Any) -> str: ...
    def rollback(self, module: str, to: Optional[str] = None) -> str: ...
    def advance(self, module: str) -> DeploymentStatus: ...
    def pause(self, module: str) -> DeploymentStatus: ...
    def resume(self, module: str) -> DeploymentStatus: ...
    def abort(self, module: str, reason: str = "") -> DeploymentStatus: ...
    def set_split(self, module: str, percent: int) -> DeploymentStatus: ...
    def deployment(self, module: str) -> DeploymentStatus: ...
    def deployments(self) -> list[DeploymentStatus]: ...
    def history(self, module: str) -> list[VersionInfo]: ...
    def events(self, modules: Optional[list[str]] = None, *,
               timeout: Optional[float] = None) -> EventStream: ...
    def close(self) -> None: ...
    def aclose(self) -> Awaitable[None]: ...
    @property
    def closed(self) -> bool: ...
    def __enter__(self) -> Self: ...
    def __exit__(self, exc_type: Optional[type[BaseException]],
                 exc: Optional[BaseException], tb: Optional[TracebackType]) -> bool: ...
    def __aenter__(self) -> Awaitable[Self]: ...
    def __aexit__(self, exc_type: Optional[type[BaseException]],
                  exc: Optional[BaseException],
                  tb: Optional[TracebackType]) -> Awaitable[bool]: ...

@final
class Runtime(Api):
    """The polyglot runtime, in this process."""

    def __new__(cls, modules_dir: Optional[StrPath] = None, *, builtins: bool = True,
                strict: bool = False, drain_timeout: float = 30.0,
                state_file: Optional[StrPath] = None) -> Self: ...
    @property
    def load_errors(self) -> list[str]: ...
    def load(self, modules_dir: StrPath) -> LoadReport: ...

@final
class Client(Api):
    """A client of a running ``polyglot-host serve``."""

    def __new__(cls, url: str = "http://127.0.0.1:50051", *,
                api_key: Optional[str] = None, tls_ca: Optional[StrPath] = None,
                timeout: float = 10.0) -> Self: ...
    @property
    def url(self) -> str: ...

def connect(url: str = "http://127.0.0.1:50051", *, api_key: Optional[str] = None,
            tls_ca: Optional[StrPath] = None, timeout: float = 10.0) -> Client: ...

def blake3(data: Buffer, /, *, key: Optional[Buffer] = None,
           context: Optional[str] = None, length: int = 32) -> bytes: ...
def blake3_hex(data: Buffer, /, *, key: Optional[Buffer] = None,
               context: Optional[str] = None, length: int = 32) -> str: ...
def encrypt(data: Buffer, key: Buffer, aad: Optional[Buffer] = None) -> bytes: ...
def decrypt(data: Buffer, key: Buffer, aad: Optional[Buffer] = None) -> bytes: ...
def compress(data: Buffer, level: int = 3) -> bytes: ...
def decompress(data: Buffer, max_size: int = 268435456) -> bytes: ...
