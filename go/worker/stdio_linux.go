//go:build linux

package worker

import "syscall"

// prSetPdeathsig is prctl's option from <linux/prctl.h>: the signal this process gets
// when its parent dies.
const prSetPdeathsig = 1

// dieWithParent asks Linux to kill this process (SIGKILL) when its parent, the host,
// dies, so a worker never outlives a host that was killed outright. Closing stdin does
// the same for a host that exits normally. There is no getppid() == 1 check: the host
// may itself be PID 1 in a container, and a host that died before this line closed our
// stdin, which ends the worker anyway.
func dieWithParent() {
	_, _, _ = syscall.RawSyscall(syscall.SYS_PRCTL, prSetPdeathsig, uintptr(syscall.SIGKILL), 0)
}

// dupCloexec duplicates fd with close-on-exec set atomically (no fork can inherit it
// between the two steps).
func dupCloexec(fd int) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(r), nil
}

// redirect points descriptor to at what from points at.
func redirect(from, to int) error { return syscall.Dup3(from, to, 0) }
