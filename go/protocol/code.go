package protocol

// The error codes of docs/protocol.md, section 6. Methods may also use their own
// UPPER_SNAKE codes.
const (
	// CodeMethodNotFound: the worker does not serve this method.
	CodeMethodNotFound = "METHOD_NOT_FOUND"
	// CodeInvalidParams: the params do not fit the method.
	CodeInvalidParams = "INVALID_PARAMS"
	// CodeInvalidRequest: the request is not a valid envelope (answered when the id can
	// be read).
	CodeInvalidRequest = "INVALID_REQUEST"
	// CodeInternal: the method failed unexpectedly (an error that is not a method
	// error, a panic).
	CodeInternal = "INTERNAL"
	// CodeCancelled: the call was cancelled with $cancel.
	CodeCancelled = "CANCELLED"
	// CodeFrameTooLarge: the message would exceed the frame size limit.
	CodeFrameTooLarge = "FRAME_TOO_LARGE"
	// CodeShuttingDown: the worker got $shutdown and takes no new calls.
	CodeShuttingDown = "SHUTTING_DOWN"
	// CodeUnhealthy: $health: the worker is running but unhealthy.
	CodeUnhealthy = "UNHEALTHY"
	// CodeNotSupported: this implementation announces the method but does not serve it
	// (a fallback implementing part of a module); the host sends the call on down the
	// module's fallback chain.
	CodeNotSupported = "NOT_SUPPORTED"
)

// The environment variables the host sets for a worker (docs/protocol.md, section 1).
const (
	// EnvProtocol is the protocol version the host speaks.
	EnvProtocol = "POLYGLOT_PROTOCOL"
	// EnvModule is the module name from the manifest.
	EnvModule = "POLYGLOT_MODULE"
	// EnvVersion is the module version from the manifest.
	EnvVersion = "POLYGLOT_VERSION"
	// EnvCodec is json or msgpack.
	EnvCodec = "POLYGLOT_CODEC"
	// EnvTransport is stdio, socket or grpc.
	EnvTransport = "POLYGLOT_TRANSPORT"
	// EnvSocket is, with the socket transport, the Unix socket path to connect to.
	EnvSocket = "POLYGLOT_SOCKET"
	// EnvMaxFrame is the frame size limit in bytes.
	EnvMaxFrame = "POLYGLOT_MAX_FRAME"
	// EnvInstance is the instance number inside the module's pool.
	EnvInstance = "POLYGLOT_INSTANCE"
	// EnvGRPCListen is a remote gRPC worker's listen address, host:port or unix:/path
	// (docs/protocol.md, section 10); set by its operator, never by the host.
	EnvGRPCListen = "POLYGLOT_GRPC_LISTEN"
)

// The reserved methods (docs/protocol.md, section 5).
const (
	// MethodHealth asks the worker how it is.
	MethodHealth = "$health"
	// MethodCancel stops a running call.
	MethodCancel = "$cancel"
	// MethodShutdown asks the worker to finish its calls and exit.
	MethodShutdown = "$shutdown"
)
