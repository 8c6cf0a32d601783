// polyglot/polyglot.hpp: the C++ worker SDK of polyglot, in one include.
//
// Layout (one concept per header):
//   value.hpp      Value (nlohmann::json, binary as binary_t), Bytes, base64
//   codec.hpp      Codec, the JSON and MessagePack codecs, DecodeError / EncodeError
//   id.hpp         Id: a call's id, echoed verbatim
//   error.hpp      Error (what a method throws) and the protocol's error codes
//   frame.hpp      FrameReader: splitting a byte stream into frames, oversize skipping
//   envelope.hpp   requests, responses, progress, logs: encoders and validating decoders
//   handshake.hpp  Handshake, the POLYGLOT_* environment variables
//   args.hpp       reading arguments out of params
//   call.hpp       Call: progress, log, cancellation
//   worker.hpp     Worker: registering methods and serving them
//   testing.hpp    test-only hooks (not included here)
#pragma once

#include "polyglot/args.hpp"
#include "polyglot/call.hpp"
#include "polyglot/codec.hpp"
#include "polyglot/envelope.hpp"
#include "polyglot/error.hpp"
#include "polyglot/frame.hpp"
#include "polyglot/handshake.hpp"
#include "polyglot/id.hpp"
#include "polyglot/value.hpp"
#include "polyglot/worker.hpp"
