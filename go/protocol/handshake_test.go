package protocol

import (
	"errors"
	"strings"
	"testing"
)

func TestHandshakeCarriesTheGRPCTransportAndAddress(t *testing.T) {
	h := &Handshake{Protocol: 1, Module: "m", Version: "1", Methods: []string{"a"}, MaxConcurrency: 2,
		Transport: TransportGRPC, Address: "unix:/tmp/polyglot-grpc-x/worker.sock"}
	line := h.Line()
	if !strings.HasSuffix(string(line), `"transport":"grpc","address":"unix:/tmp/polyglot-grpc-x/worker.sock"}`+"\n") {
		t.Fatalf("line %s", line)
	}
	back, err := ParseHandshake(line)
	if err != nil || back.Transport != TransportGRPC || back.Address != h.Address {
		t.Fatalf("read back %+v, %v", back, err)
	}
	// Without them the line has neither field.
	h.Transport, h.Address = "", ""
	if s := string(h.Line()); strings.Contains(s, "transport") || strings.Contains(s, "address") {
		t.Fatalf("line %s", s)
	}
	for line, problem := range map[string]string{
		`{"polyglot":1,"module":"m","version":"1","methods":[],"transport":"grpc"}`:             `"transport" is "grpc" but there is no "address"`,
		`{"polyglot":1,"module":"m","version":"1","methods":[],"transport":"grpc","address":7}`: `"address" must be a string`,
		`{"polyglot":1,"module":"m","version":"1","methods":[],"transport":1,"address":"h:1"}`:  `"transport" must be a string`,
	} {
		_, err := ParseHandshake([]byte(line))
		var he *HandshakeError
		if !errors.As(err, &he) || !strings.Contains(err.Error(), problem) {
			t.Errorf("%s: %v, want %q", line, err, problem)
		}
	}
}
