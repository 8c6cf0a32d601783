package polyglotv1_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// repoRoot is the repository's root, from this package's folder.
var repoRoot = filepath.Join("..", "..", "..")

// The inputs of the generated code. The test reads them itself so that `go test`'s cache
// knows them: a changed proto runs the test again instead of reusing an old pass.
var generatorInputs = []string{
	"proto/polyglot/v1/runtime.proto",
	"proto/polyglot/v1/worker.proto",
	"scripts/gen-go.sh",
	"go/go.mod",
}

// TestGeneratedCodeIsUpToDate regenerates the code of proto/polyglot/v1 into a temporary
// folder (scripts/gen-go.sh --check) and fails when the checked-in files differ. It
// needs protoc, and the Go module proxy the first time (the plugins are built at pinned
// versions); without protoc it fails, never skips.
func TestGeneratedCodeIsUpToDate(t *testing.T) {
	if _, err := exec.LookPath("protoc"); err != nil {
		t.Fatal("protoc is not installed, so the generated code cannot be checked against " +
			"proto/polyglot/v1: install protobuf-compiler (Debian: apt-get install protobuf-compiler)")
	}
	for _, f := range generatorInputs {
		if _, err := os.ReadFile(filepath.Join(repoRoot, filepath.FromSlash(f))); err != nil {
			t.Fatalf("an input of the generated code: %v", err)
		}
	}
	out, err := exec.Command("bash", filepath.Join(repoRoot, "scripts", "gen-go.sh"), "--check").CombinedOutput()
	if err != nil {
		t.Fatalf("scripts/gen-go.sh --check: %v\n%s", err, out)
	}
}
