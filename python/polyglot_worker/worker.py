"""`Worker`: registers methods, then serves them over the protocol.

`Worker.serve` is a worker program's entry point: it reads the host's environment, takes
the transport, writes the handshake and answers requests until the input ends or
`$shutdown` is done, then ends the process. `Worker.run` serves one pair of binary
streams in-process (tests, tools).

Inside, one `_Connection` owns a served stream: frames in, dispatch, calls in flight,
frames out. Requests are read on a thread and dispatched on an asyncio event loop; async
methods run as tasks on it, sync ones on a pool of `max_concurrency` threads. Each call is
answered when it finishes, so answers leave in completion order.
"""

from __future__ import annotations

import asyncio
import inspect
import os
import sys
import time
import traceback
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, BinaryIO, Callable, Dict, List, Mapping, Optional, Set, Tuple, TypeVar, Union, overload

from . import transport
from .codec import CODECS, DEFAULT_MAX_FRAME, JSON, Codec, Frame, get_codec
from .context import Context
from .envelope import (
    PROTOCOL_VERSION,
    Handshake,
    Request,
    build_handshake,
    error_response,
    log_message,
    parse_request,
    result_response,
)
from .errors import (
    DecodeError,
    EncodeError,
    ErrorCode,
    FrameTooLarge,
    Id,
    InvalidRequest,
    MethodError,
    MissingDependency,
)
from .transport import Output, log_stderr

F = TypeVar("F", bound=Callable[..., Any])

EXIT_FLUSH_TIMEOUT = 2.0
"""Seconds the worker waits, when it stops, for its last frames to be written. Bounded so a
host that stopped reading cannot keep a worker alive; long enough for any live host."""

DEFAULT_MAX_CONCURRENCY = 1
"""Calls a worker takes at once unless told otherwise: the protocol's own default, and the
safe one for methods that were not written to run on several threads at once."""


# ---------------------------------------------------------------- registered methods
@dataclass
class _Method:
    """A registered method and how to call it."""

    name: str
    fn: Callable[..., Any]
    is_async: bool
    raw: bool
    signature: Optional[inspect.Signature]
    ctx_param: Optional[str]

    @classmethod
    def wrap(cls, name: str, fn: Callable[..., Any], raw: bool) -> "_Method":
        try:
            signature: Optional[inspect.Signature] = inspect.signature(fn)
        except (TypeError, ValueError):  # some builtins have none
            signature = None
        ctx_param = None
        if signature is not None:
            for p in signature.parameters.values():
                if p.name == "ctx" or _is_context_annotation(p.annotation):
                    if p.kind is inspect.Parameter.POSITIONAL_ONLY:
                        raise TypeError(f"method {name}: the Context parameter {p.name!r} cannot be positional-only")
                    ctx_param = p.name
                    break
        call = getattr(fn, "__call__", None)
        is_async = inspect.iscoroutinefunction(fn) or (
            not inspect.isfunction(fn) and inspect.iscoroutinefunction(call)
        )
        return cls(name, fn, is_async, raw, signature, ctx_param)

    def arguments(self, params: Any, ctx: Context) -> Tuple[List[Any], Dict[str, Any]]:
        """Maps params to arguments: an array is positional, an object is named, null (or
        absent) is none, anything else is one positional argument.

        Raises `MethodError(INVALID_PARAMS)` when they do not fit the signature."""
        args: List[Any]
        kwargs: Dict[str, Any]
        if self.raw:
            args, kwargs = [params], {}
        elif params is None:
            args, kwargs = [], {}
        elif isinstance(params, list):
            args, kwargs = params, {}
        elif isinstance(params, dict):
            args, kwargs = [], dict(params)
            if self.ctx_param is not None and self.ctx_param in kwargs:
                raise MethodError(
                    ErrorCode.INVALID_PARAMS,
                    f"{self.name}: {self.ctx_param!r} is filled in by the worker, not a param",
                )
        else:
            args, kwargs = [params], {}
        if self.ctx_param is not None:
            kwargs[self.ctx_param] = ctx
        if self.signature is not None:
            try:
                self.signature.bind(*args, **kwargs)
            except TypeError as exc:
                raise MethodError(ErrorCode.INVALID_PARAMS, f"{self.name}: {exc}") from None
        return args, kwargs


def _is_context_annotation(annotation: Any) -> bool:
    if annotation is Context:
        return True
    return isinstance(annotation, str) and annotation.strip("\"' ").split(".")[-1] == "Context"


def _call_sync(fn: Callable[..., Any], args: List[Any], kwargs: Dict[str, Any], ctx: Context) -> Any:
    # On a pool thread. A call cancelled while it waited for a thread does not start.
    if ctx.cancelled:
        return None
    return fn(*args, **kwargs)


# ---------------------------------------------------------------- the worker
class Worker:
    """A polyglot worker: a module's methods, served over the protocol.

    >>> worker = Worker("text-python", version="1.0.0", max_concurrency=8)
    >>> @worker.method
    ... def upper(text: str) -> str:
    ...     return text.upper()
    >>> worker.methods
    ['upper']
    """

    def __init__(self, name: str, version: str = "0.0.0", max_concurrency: int = DEFAULT_MAX_CONCURRENCY):
        if not isinstance(name, str) or not name:
            raise ValueError("a worker needs its module's name")
        if not isinstance(max_concurrency, int) or isinstance(max_concurrency, bool) or max_concurrency < 1:
            raise ValueError(f"max_concurrency must be an integer >= 1, got {max_concurrency!r}")
        self.name = name
        self.version = str(version)
        self.max_concurrency = max_concurrency
        self._methods: Dict[str, _Method] = {}
        self._health: Optional[_Method] = None
        self._conn: Optional[_Connection] = None

    # ------------------------------------------------------------ registration
    @overload
    def method(self, fn: F) -> F: ...

    @overload
    def method(self, fn: Optional[str] = None, *, name: Optional[str] = None, raw: bool = False) -> Callable[[F], F]: ...

    def method(self, fn: Any = None, *, name: Optional[str] = None, raw: bool = False) -> Any:
        """Registers a method, as `@worker.method` (under the function's name),
        `@worker.method("name")` or `@worker.method(name="name", raw=True)`. Sync or async.
        The function is returned unchanged, so it can still be called directly.

        Params become arguments: an array positional ones, an object named ones, null none,
        any other value one positional argument. With `raw=True` the method instead gets
        the params value itself as its one argument (`None` when absent). A parameter named
        `ctx` (or annotated `Context`) gets the call's `Context`.
        """
        if callable(fn):
            return self._register(name or fn.__name__, fn, raw)
        if fn is not None and name is not None:
            raise TypeError("give the method name once: @worker.method(\"name\") or @worker.method(name=\"name\")")
        explicit = fn if fn is not None else name

        def decorator(f: F) -> F:
            return self._register(explicit or f.__name__, f, raw)

        return decorator

    def _register(self, name: str, fn: F, raw: bool) -> F:
        if not isinstance(name, str) or not name:
            raise ValueError(f"method name must be a non-empty string, got {name!r}")
        if name.startswith("$"):
            raise ValueError(f"method name {name!r}: names starting with '$' are reserved")
        if name in self._methods:
            raise ValueError(f"method {name!r} is registered twice")
        self._methods[name] = _Method.wrap(name, fn, raw)
        return fn

    def health(self, fn: F) -> F:
        """Registers the health check behind `$health` (sync or async, no params).

        It returns a dict merged into `{"status": "ok"}` (or `None`); returning
        `{"status": "degraded", "reason": ...}` reports a degraded worker. Raising reports it
        unhealthy: a `MethodError` with its code, anything else as `UNHEALTHY`.
        """
        self._health = _Method.wrap("$health", fn, raw=False)
        return fn

    @property
    def methods(self) -> List[str]:
        """The registered method names, sorted: what the handshake announces."""
        return sorted(self._methods)

    def handshake(self, codec: str = JSON) -> Handshake:
        """The handshake this worker sends for `codec`."""
        return build_handshake(
            self.name,
            self.version,
            self.methods,
            codec=codec,
            max_concurrency=self.max_concurrency,
            language="python",
            pid=os.getpid(),
        )

    def log(self, level: str, message: str, **fields: Any) -> None:
        """Sends a log message while serving (from any thread); before or after serving it
        goes to stderr."""
        conn = self._conn
        if conn is not None:
            conn.log(level, message, fields)
        else:
            extra = "".join(f" {k}={v!r}" for k, v in fields.items())
            log_stderr(f"{level}: {message}{extra}")

    # ------------------------------------------------------------ serving
    def serve(self) -> None:
        """Serves as the host started this program, then ends the process; never returns.

        Reads `POLYGLOT_*` from the environment. Started by hand (no `POLYGLOT_PROTOCOL`),
        it says what it is on stderr and exits 1. With the stdio transport, stdout is taken
        for the protocol and `print` goes to stderr. Exits 0 when the input ends or after
        `$shutdown`, without waiting for threads still running (`os._exit`).
        """
        try:
            status = self._serve_env(os.environ)
        except SystemExit as exc:  # sys.exit() in a method ends the worker with its status
            status = 0 if exc.code is None else exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            status = 1
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(status)

    def _serve_env(self, env: Mapping[str, str]) -> int:
        protocol = env.get("POLYGLOT_PROTOCOL")
        if protocol is None:
            sys.stderr.write(
                f"This program is a polyglot worker for module {self.name!r}. It is started by "
                "polyglot-host, which speaks to it over stdin/stdout (see docs/protocol.md); "
                "add it to a module.json and run polyglot-host instead.\n"
            )
            return 1
        if protocol.strip() != str(PROTOCOL_VERSION):
            sys.stderr.write(
                f"polyglot worker {self.name!r}: the host speaks protocol version {protocol!r} "
                f"(POLYGLOT_PROTOCOL), but this worker's SDK (polyglot-worker for Python) speaks "
                f"version {PROTOCOL_VERSION}. Use a host and an SDK of the same protocol version.\n"
            )
            return 1
        codec_name = env.get("POLYGLOT_CODEC", "") or JSON
        if codec_name not in CODECS:
            log_stderr(f"POLYGLOT_CODEC={codec_name!r} is not a codec; the protocol knows {', '.join(CODECS)}")
            return 1
        try:
            codec = get_codec(codec_name)
        except MissingDependency as exc:
            log_stderr(str(exc))
            return 1
        max_frame_text = env.get("POLYGLOT_MAX_FRAME", "") or str(DEFAULT_MAX_FRAME)
        try:
            max_frame = int(max_frame_text)
            if max_frame < 1:
                raise ValueError
        except ValueError:
            log_stderr(f"POLYGLOT_MAX_FRAME={max_frame_text!r} is not a frame size in bytes (an integer >= 1)")
            return 1
        transport.die_with_parent()
        kind = env.get("POLYGLOT_TRANSPORT", "") or "stdio"
        if kind == "stdio":
            proto_in, proto_out = transport.take_stdio()
            read, write = transport.fd_reader(proto_in), transport.fd_writer(proto_out)
        elif kind == "socket":
            path = env.get("POLYGLOT_SOCKET", "")
            if not path:
                log_stderr("POLYGLOT_TRANSPORT=socket needs POLYGLOT_SOCKET, the socket to connect to")
                return 1
            try:
                sock = transport.connect_socket(path)
            except OSError as exc:
                log_stderr(f"cannot connect to the host's socket {path!r}: {exc}")
                return 1
            read, write = sock.recv, sock.sendall
        elif kind == "grpc":
            log_stderr(
                "POLYGLOT_TRANSPORT=grpc: this SDK serves the stdio and socket transports; "
                "use \"transport\": \"stdio\" or \"socket\" in module.json (the Rust, Go "
                "and C++ SDKs serve gRPC)"
            )
            return 1
        else:
            log_stderr(
                f"POLYGLOT_TRANSPORT={kind!r} is not a transport; the protocol knows stdio, "
                "socket and grpc"
            )
            return 1
        return asyncio.run(self._serve_streams(read, write, codec, max_frame))

    def run(
        self,
        input: BinaryIO,
        output: BinaryIO,
        *,
        codec: Union[str, Codec] = JSON,
        max_frame: int = DEFAULT_MAX_FRAME,
    ) -> int:
        """Serves one pair of binary streams in this process, the way `serve` serves stdio:
        writes the handshake, answers requests, and returns the exit status `serve` would
        exit with (0 when `input` ends or after `$shutdown`). Calls still running when the
        input ends are abandoned, as in `serve`. Touches no environment and no stdio."""
        codec_obj = get_codec(codec) if isinstance(codec, str) else codec
        read, write = transport.file_streams(input, output)
        return asyncio.run(self._serve_streams(read, write, codec_obj, max_frame))

    async def _serve_streams(
        self, read: transport.Reader, write: transport.Writer, codec: Codec, max_frame: int
    ) -> int:
        loop = asyncio.get_running_loop()
        conn = _Connection(self, codec, max_frame, loop, write)
        self._conn = conn
        try:
            return await conn.serve(read)
        finally:
            self._conn = None
            conn.close()


# ---------------------------------------------------------------- one served stream
class _Call:
    """A call in flight: its context and the task that runs it."""

    __slots__ = ("ctx", "task")

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self.task: Optional["asyncio.Task[None]"] = None


class _Connection:
    """Serves one stream: see the module docs."""

    def __init__(
        self,
        worker: Worker,
        codec: Codec,
        max_frame: int,
        loop: asyncio.AbstractEventLoop,
        write: transport.Writer,
    ) -> None:
        self.worker = worker
        self.codec = codec
        self.max_frame = max_frame
        self.loop = loop
        self.output = Output(write, on_broken=self._on_output_broken)
        self.decoder = codec.frame_decoder(max_frame)
        self.calls: Dict[Id, _Call] = {}
        self.notifications: Set["asyncio.Task[None]"] = set()
        self.shutting_down = False
        self.pool = ThreadPoolExecutor(worker.max_concurrency, thread_name_prefix="polyglot-call")
        self.health_pool = ThreadPoolExecutor(1, thread_name_prefix="polyglot-health")
        self.ended: "asyncio.Future[int]" = loop.create_future()

    async def serve(self, read: transport.Reader) -> int:
        self.output.start()
        self.output.send(self.worker.handshake(self.codec.name).to_line())
        transport.start_reader(read, self.loop, self.on_data, self.on_eof)
        return await self.ended

    def close(self) -> None:
        for call in self.calls.values():
            if call.task is not None:
                call.task.cancel()
        for task in self.notifications:
            task.cancel()
        self.pool.shutdown(wait=False, cancel_futures=True)
        self.health_pool.shutdown(wait=False, cancel_futures=True)
        if not self.output.close(EXIT_FLUSH_TIMEOUT):
            log_stderr("the last messages could not be written (the host stopped reading)")

    def end(self, status: int) -> None:
        if not self.ended.done():
            self.ended.set_result(status)

    def _on_output_broken(self, exc: BaseException) -> None:
        # On the writer thread.
        log_stderr(f"writing to the host failed, stopping: {exc}")
        try:
            self.loop.call_soon_threadsafe(self.end, 1)
        except RuntimeError:
            pass

    # ------------------------------------------------------------ sending
    def encode_frame(self, message: Any) -> bytes:
        """The framed bytes of `message`; raises `EncodeError` or `FrameTooLarge`."""
        payload = self.codec.encode(message)
        if len(payload) > self.max_frame:
            raise FrameTooLarge(len(payload), self.max_frame)
        return self.codec.frame(payload)

    def respond(self, message: Dict[str, Any], ctx: Optional[Context] = None) -> None:
        """Sends a response; one that cannot be sent is replaced by an error response
        (`FRAME_TOO_LARGE` over the limit, `INTERNAL` outside the data model). Marks `ctx`
        answered, so no progress follows its response."""
        id = message["id"]
        try:
            frame = self.encode_frame(message)
        except FrameTooLarge as exc:
            frame = self._error_frame(
                id,
                ErrorCode.FRAME_TOO_LARGE,
                f"the response is {exc.size} bytes, over the frame limit of {exc.limit} bytes",
                message,
            )
        except EncodeError as exc:
            what = "result" if "result" in message else "error"
            frame = self._error_frame(id, ErrorCode.INTERNAL, f"the {what} cannot be sent: {exc}", message)
        if ctx is None:
            self.output.send(frame)
            return
        with ctx._lock:
            if ctx._done:
                return
            ctx._done = True
            self.output.send(frame)

    def _error_frame(self, id: Id, code: str, text: str, original: Dict[str, Any]) -> bytes:
        err = error_response(id, code, text, None, original.get("executionTime"))
        return self.encode_frame(err)

    def answer_error(self, id: Id, code: str, message: str) -> None:
        self.respond(error_response(id, code, message))

    def log(self, level: str, message: str, fields: Mapping[str, Any]) -> None:
        msg = log_message(level, message, fields)
        try:
            frame = self.encode_frame(msg)
        except EncodeError as exc:
            log_stderr(f"a log message could not be sent ({exc}): {level}: {message}")
            return
        self.output.send(frame)

    # ------------------------------------------------------------ reading
    def on_data(self, data: bytes) -> None:
        for event in self.decoder.feed(data):
            if isinstance(event, Frame):
                self.on_frame(event.payload)
            elif event.id is not None:
                self.answer_error(
                    event.id,
                    ErrorCode.FRAME_TOO_LARGE,
                    f"the request is {event.size} bytes, over the frame limit of {self.max_frame} bytes",
                )
            else:
                log_stderr(f"dropped a {event.size}-byte request over the frame limit (no id readable)")

    def on_eof(self) -> None:
        truncated = self.decoder.finish()
        if truncated is not None:
            log_stderr(f"the input ended inside a frame ({truncated.buffered} bytes of it)")
        if not self.shutting_down:
            # The host is gone or wants this worker gone: stop now, abandoning calls.
            self.end(0)

    def on_frame(self, payload: bytes) -> None:
        try:
            request = parse_request(self.codec.decode(payload))
        except DecodeError as exc:
            id = self.codec.id_from_head(payload)
            if id is not None:
                self.answer_error(id, ErrorCode.INVALID_REQUEST, str(exc))
            else:
                log_stderr(f"dropped a request that does not decode: {exc}")
            return
        except InvalidRequest as exc:
            if exc.id is not None:
                self.answer_error(exc.id, ErrorCode.INVALID_REQUEST, str(exc))
            else:
                log_stderr(f"dropped an invalid request: {exc}")
            return
        self.dispatch(request)

    # ------------------------------------------------------------ dispatch
    def dispatch(self, req: Request) -> None:
        method, id = req.method, req.id
        if method == "$cancel":
            self.cancel(req.params)
            if id is not None:
                self.respond(result_response(id, None))
            return
        if method == "$shutdown":
            if id is not None:
                self.respond(result_response(id, None))
            self.shutting_down = True
            self.maybe_drained()
            return
        if self.shutting_down:
            if id is not None:
                self.answer_error(
                    id,
                    ErrorCode.SHUTTING_DOWN,
                    f"the worker is shutting down and takes no new calls ({method})",
                )
            return
        if method == "$health":
            if id is None:
                return
            if self.worker._health is None:
                self.respond(result_response(id, {"status": "ok"}, 0))
                return
            self.start(req, self.worker._health, health=True)
            return
        if method.startswith("$"):
            if id is not None:
                self.answer_error(
                    id, ErrorCode.METHOD_NOT_FOUND, f"{method!r} is not a reserved method this worker knows"
                )
            return
        handler = self.worker._methods.get(method)
        if handler is None:
            if id is not None:
                served = ", ".join(self.worker.methods) or "nothing"
                self.answer_error(
                    id,
                    ErrorCode.METHOD_NOT_FOUND,
                    f"this worker ({self.worker.name}) does not serve {method!r}; it serves {served}",
                )
            else:
                log_stderr(f"dropped a notification of unknown method {method!r}")
            return
        if id is not None and id in self.calls:
            self.answer_error(id, ErrorCode.INVALID_REQUEST, f"id {id!r} is already in flight")
            return
        self.start(req, handler)

    def start(self, req: Request, handler: _Method, health: bool = False) -> None:
        ctx = Context(self, req.id, req.method, req.timeout_ms)
        call = _Call(ctx)
        task = self.loop.create_task(self.run_call(req, handler, call, health))
        call.task = task
        if req.id is None:
            self.notifications.add(task)
            task.add_done_callback(self._notification_done)
        else:
            self.calls[req.id] = call

    def _notification_done(self, task: "asyncio.Task[None]") -> None:
        self.notifications.discard(task)
        self.maybe_drained()

    def cancel(self, params: Any) -> None:
        """`$cancel`: answers the call `CANCELLED` now and stops it (best effort: an async
        method's task is cancelled, a sync method sees `ctx.cancelled`)."""
        target = params.get("id") if isinstance(params, dict) else None
        if target is None or isinstance(target, bool) or not isinstance(target, (int, str)):
            return
        call = self.calls.pop(target, None)
        if call is None:
            return  # unknown, or already answered
        call.ctx._set_cancelled()
        self.respond(error_response(target, ErrorCode.CANCELLED, "cancelled by the host"), call.ctx)
        if call.task is not None:
            # An async method gets CancelledError; for a sync one this drops the wait (its
            # thread runs on until the method returns; a call still queued never starts).
            call.task.cancel()
        self.maybe_drained()

    def maybe_drained(self) -> None:
        if self.shutting_down and not self.calls and not self.notifications:
            self.end(0)

    async def run_call(self, req: Request, handler: _Method, call: _Call, health: bool) -> None:
        ctx = call.ctx
        started = time.perf_counter_ns()
        outcome: Optional[Dict[str, Any]] = None
        try:
            try:
                args, kwargs = handler.arguments(None if health else req.params, ctx)
                if handler.is_async:
                    value = await handler.fn(*args, **kwargs)
                else:
                    pool = self.health_pool if health else self.pool
                    value = await self.loop.run_in_executor(pool, _call_sync, handler.fn, args, kwargs, ctx)
                    if inspect.isawaitable(value):
                        value = await value
                if health:
                    value = self.health_result(value)
                outcome = {"result": value}
            except asyncio.CancelledError:
                if not ctx.cancelled:
                    raise  # the worker is stopping; nobody to answer
                return  # `$cancel` already answered it
            except MethodError as exc:
                outcome = {"error": (exc.code, exc.message, exc.data)}
            except Exception as exc:
                if health:
                    outcome = {"error": (ErrorCode.UNHEALTHY, f"{type(exc).__name__}: {exc}", None)}
                else:
                    log_stderr(f"method {req.method} failed:\n" + traceback.format_exc().rstrip())
                    outcome = {"error": (ErrorCode.INTERNAL, f"{type(exc).__name__}: {exc}", None)}
            if req.id is None:
                if "error" in outcome:
                    code, message, _ = outcome["error"]
                    log_stderr(f"notification {req.method} failed: {code}: {message}")
                return
            elapsed_us = (time.perf_counter_ns() - started) // 1000
            if self.calls.get(req.id) is call:
                del self.calls[req.id]
            if "result" in outcome:
                self.respond(result_response(req.id, outcome["result"], elapsed_us), ctx)
            else:
                code, message, data = outcome["error"]
                self.respond(error_response(req.id, code, message, data, elapsed_us), ctx)
        finally:
            if req.id is not None and self.calls.get(req.id) is call:
                del self.calls[req.id]
            self.maybe_drained()

    @staticmethod
    def health_result(value: Any) -> Dict[str, Any]:
        result: Dict[str, Any] = {"status": "ok"}
        if value is None:
            return result
        if not isinstance(value, dict):
            raise TypeError(f"the health function returned a {type(value).__name__}, not a dict")
        result.update(value)
        return result
