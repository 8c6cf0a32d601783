//go:build linux || darwin || freebsd || openbsd || netbsd || dragonfly || aix

package worker

import (
	"io"
	"os"
	"syscall"
)

// keptStdout holds on to the *os.File that was os.Stdout: were it garbage collected, its
// finalizer would close descriptor 1 (now a copy of stderr), and the next file a method
// opens could get descriptor 1, where stray prints would then land.
var keptStdout *os.File

// takeStdio takes stdin and stdout for the protocol and returns their new private
// descriptors (close-on-exec: child processes a method starts do not inherit them).
//
// Stdout moves to a private descriptor and descriptor 1 is pointed at stderr (and
// os.Stdout at os.Stderr), so a stray fmt.Println, or a C library's printf, lands in the
// log instead of corrupting the protocol. Stdin moves the same way and descriptor 0 reads
// /dev/null, so a child process a method starts cannot swallow requests.
func takeStdio() (io.Reader, io.Writer, error) {
	out, err := dupCloexec(1)
	if err != nil {
		return nil, nil, err
	}
	if err := redirect(2, 1); err != nil {
		syscall.Close(out)
		return nil, nil, err
	}
	in, err := dupCloexec(0)
	if err != nil {
		syscall.Close(out)
		return nil, nil, err
	}
	if devnull, err := syscall.Open(os.DevNull, syscall.O_RDONLY|syscall.O_CLOEXEC, 0); err == nil {
		_ = redirect(devnull, 0) // best effort: the protocol no longer reads descriptor 0
		syscall.Close(devnull)
	}
	keptStdout = os.Stdout
	os.Stdout = os.Stderr
	return os.NewFile(uintptr(in), "polyglot-protocol-in"), os.NewFile(uintptr(out), "polyglot-protocol-out"), nil
}
