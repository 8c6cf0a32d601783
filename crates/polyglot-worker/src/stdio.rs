//! The stdio transport's plumbing: stdout is taken for the protocol alone, and the
//! process dies with its host.

use std::os::fd::{FromRawFd, OwnedFd};

use tokio::io::{AsyncRead, AsyncWrite};

/// The protocol's input and output streams.
pub(crate) type Streams = (
    Box<dyn AsyncRead + Unpin + Send>,
    Box<dyn AsyncWrite + Unpin + Send>,
);

/// Takes stdin and stdout for the protocol. Stdout is moved to a private descriptor and
/// descriptor 1 is pointed at stderr, so a stray `println!` (or a C library's `printf`)
/// lands in the log instead of corrupting the protocol.
pub(crate) fn protocol_streams() -> std::io::Result<Streams> {
    // SAFETY: dup on descriptor 1, which the process owns for its whole life; the result
    // is checked before use.
    let out_fd = unsafe { libc::dup(1) };
    if out_fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: dup2 between two descriptors this process owns; afterwards descriptor 1
    // refers to stderr and the protocol's output is only reachable through `out_fd`.
    if unsafe { libc::dup2(2, 1) } < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `out_fd` was just returned by dup, is open, and nothing else owns it.
    let out = unsafe { OwnedFd::from_raw_fd(out_fd) };
    // SAFETY: dup on descriptor 0, checked below; the copy is owned only by `input`.
    let in_fd = unsafe { libc::dup(0) };
    if in_fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: `in_fd` was just returned by dup, is open, and nothing else owns it.
    let input = unsafe { OwnedFd::from_raw_fd(in_fd) };

    // Pipes (what the host gives) are driven by the reactor directly; anything else (a
    // file, a terminal) goes through tokio's blocking stdio.
    let reader: Box<dyn AsyncRead + Unpin + Send> =
        match tokio::net::unix::pipe::Receiver::from_owned_fd(input) {
            Ok(r) => Box::new(r),
            Err(_) => Box::new(tokio::io::stdin()),
        };
    let writer: Box<dyn AsyncWrite + Unpin + Send> =
        match tokio::net::unix::pipe::Sender::from_owned_fd(out.try_clone()?) {
            Ok(w) => Box::new(w),
            Err(_) => Box::new(tokio::fs::File::from_std(std::fs::File::from(out))),
        };
    Ok((reader, writer))
}

/// Asks the kernel to kill this process when its parent (the host) dies, so a worker
/// never outlives a host that was killed with SIGKILL. Closing stdin does the same for a
/// host that exits normally.
pub(crate) fn die_with_parent() {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: prctl with PR_SET_PDEATHSIG takes a signal number and touches no memory.
        // (No getppid() == 1 check: a host may itself be PID 1 in a container. A host
        // that died before this line closed our stdin, which ends the worker anyway.)
        unsafe {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        }
    }
}
