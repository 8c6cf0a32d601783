package main

// The example as a real process (this test binary, re-executed with
// POLYGLOT_EXAMPLE_RUN=1), against a test host on loopback: what it prints, where, and
// its exit status. The Rust test-suite runs it against the real polyglot-host.

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"

	"polyglot.invalid/go/internal/hosttest"
)

func TestMain(m *testing.M) {
	if os.Getenv("POLYGLOT_EXAMPLE_RUN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runExample runs the example with args and env; it gives stdout, stderr and the exit
// status.
func runExample(t *testing.T, env []string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(append(os.Environ(), "POLYGLOT_EXAMPLE_RUN=1", "POLYGLOT_API_KEY="), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code = ee.ExitCode()
	} else if err != nil {
		t.Fatal(err)
	}
	return stdout.String(), stderr.String(), code
}

func TestTheExamplePrintsTheResultAsOneLineOfJSON(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{APIKey: "k3y"})
	url := "http://" + h.Addr
	for _, c := range []struct {
		args []string
		out  string
	}{
		{[]string{"-connect", url, "-api-key", "k3y", "calc", "add", "[2, 40]"}, "42\n"},
		{[]string{"--connect", url, "--api-key", "k3y", "calc", "echo", `[{"b": {"$bytes": "aGk="}, "a": [1, 2.5, "x\ny"]}]`},
			`{"a":[1,2.5,"x\ny"],"b":{"$bytes":"aGk="}}` + "\n"},
		{[]string{"-connect", url, "-api-key", "k3y", "calc", "echo"}, "[]\n"},
		{[]string{"-connect", url, "-api-key", "k3y", "-timeout-ms", "2000", "calc", "sleep", "[10]"}, "10\n"},
	} {
		stdout, stderr, code := runExample(t, nil, c.args...)
		if code != 0 || stdout != c.out || stderr != "" {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q; want %q", c.args, code, stdout, stderr, c.out)
		}
	}
	// The key from the environment.
	if stdout, stderr, code := runExample(t, []string{"POLYGLOT_API_KEY=k3y"}, "-connect", url, "calc", "add", "[1,1]"); code != 0 || stdout != "2\n" {
		t.Fatalf("POLYGLOT_API_KEY: exit %d, %q, %q", code, stdout, stderr)
	}
}

func TestTheExampleReportsErrorsOnStderr(t *testing.T) {
	h := hosttest.Start(t, hosttest.Options{APIKey: "k3y"})
	url := "http://" + h.Addr
	for _, c := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"-connect", url, "-api-key", "k3y", "nope", "add", "[]"}, 1, `error: NOT_FOUND (module_not_found): no module named "nope" is loaded`},
		{[]string{"-connect", url, "-api-key", "k3y", "calc", "fail", `["NOT_READY", "no model"]`}, 1, "error: UNKNOWN (remote): calc.fail failed: NOT_READY: no model"},
		{[]string{"-connect", url, "-api-key", "k3y", "-timeout-ms", "50", "calc", "sleep", "[5000]"}, 1, "error: DEADLINE_EXCEEDED (timeout): "},
		{[]string{"-connect", url, "calc", "add", "[1,1]"}, 1, "error: UNAUTHENTICATED: an API key is required"},
		{[]string{"-connect", url, "-api-key", "k3y", "calc", "add", "[1,"}, 2, "error: the params are not valid JSON"},
		{[]string{"-connect", url, "calc"}, 2, "usage: client -connect URL"},
		{[]string{"calc", "add"}, 2, "usage: client -connect URL"},
		{[]string{"-connect", "ftp://x:1", "calc", "add"}, 2, `error: client: "ftp://x:1": the scheme must be http or https`},
	} {
		stdout, stderr, code := runExample(t, nil, c.args...)
		if code != c.code || stdout != "" || !strings.HasPrefix(stderr, c.stderr) {
			t.Fatalf("%v: exit %d, stdout %q, stderr %q; want exit %d and %q", c.args, code, stdout, stderr, c.code, c.stderr)
		}
		if c.code == 1 && strings.Count(stderr, "\n") != 1 {
			t.Fatalf("%v: the error is not one line: %q", c.args, stderr)
		}
	}
}
