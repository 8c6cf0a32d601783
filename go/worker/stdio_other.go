//go:build !(linux || darwin || freebsd || openbsd || netbsd || dragonfly || aix)

package worker

import (
	"io"
	"os"
)

// dieWithParent does nothing here: only Linux has PR_SET_PDEATHSIG.
func dieWithParent() {}

// takeStdio keeps the protocol on stdin and stdout and points os.Stdout at os.Stderr, so
// fmt.Println lands in the log. (Descriptor-level protection needs a Unix system.)
func takeStdio() (io.Reader, io.Writer, error) {
	in, out := os.Stdin, os.Stdout
	os.Stdout = os.Stderr
	return in, out, nil
}
