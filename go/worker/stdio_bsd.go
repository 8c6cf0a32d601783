//go:build darwin || freebsd || openbsd || netbsd || dragonfly || aix

package worker

import "syscall"

// dieWithParent does nothing here: only Linux has PR_SET_PDEATHSIG. A worker still exits
// when the host closes its stdin, which a dying host's kernel does for it.
func dieWithParent() {}

// dupCloexec duplicates fd with close-on-exec set, holding syscall.ForkLock so that no
// fork inherits it between the two steps.
func dupCloexec(fd int) (int, error) {
	syscall.ForkLock.RLock()
	defer syscall.ForkLock.RUnlock()
	nfd, err := syscall.Dup(fd)
	if err != nil {
		return -1, err
	}
	syscall.CloseOnExec(nfd)
	return nfd, nil
}

// redirect points descriptor to at what from points at.
func redirect(from, to int) error { return syscall.Dup2(from, to) }
