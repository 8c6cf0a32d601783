#!/usr/bin/env bash
# Regenerates gen/echov1 from proto/echo/v1/echo.proto. The output is checked in; run
# this only after changing the proto.
#
# Needs protoc (Debian: protobuf-compiler). The Go plugins are pinned: protoc-gen-go at
# the google.golang.org/protobuf version of go.mod, protoc-gen-go-grpc v1.3.0 (the last
# release whose code works with the grpc v1.61 that go-plugin v1.8.0 requires).
set -euo pipefail
cd "$(dirname "$0")"
export GOWORK=off
bin=$(mktemp -d)
trap 'rm -rf "$bin"' EXIT
GOBIN=$bin go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.6
GOBIN=$bin go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@v1.3.0
# module=...: files land where their go_package says, under this module (gen/echov1).
PATH=$bin:$PATH protoc -I proto \
    --go_out=. --go_opt=module=polyglot.invalid/benches/goplugin \
    --go-grpc_out=. --go-grpc_opt=module=polyglot.invalid/benches/goplugin \
    echo/v1/echo.proto
