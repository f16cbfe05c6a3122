"""Runs inside the sandbox's child process, as the unprivileged sandbox user, before the
untrusted program: applies resource limits and, in `namespaces` mode, enters fresh user, network,
IPC, mount and PID namespaces, then execs the program. Standard library only (it may run under a
system interpreter), never imported by benchrun itself.

usage: python _confine.py MODE CPU_S AS_BYTES NPROC FSIZE_BYTES DIR[:KEEP...] -- PROGRAM ARGS...
MODE: bwrap | namespaces | rlimits-only (bwrap: PROGRAM is already the bwrap command line)."""
import ctypes
import os
import resource
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
CLONE_NEWIPC, CLONE_NEWPID = 0x08000000, 0x20000000
MS_BIND, MS_REC, MS_PRIVATE = 0x1000, 0x4000, 0x40000
PR_SET_PDEATHSIG = 1


def _die(msg: str) -> None:
    os.write(2, f"sandbox: {msg}\n".encode())
    os._exit(126)


def _limits(cpu_s: int, as_bytes: int, nproc: int, fsize: int) -> None:
    for res, val in ((resource.RLIMIT_CPU, cpu_s), (resource.RLIMIT_AS, as_bytes),
                     (resource.RLIMIT_NPROC, nproc), (resource.RLIMIT_FSIZE, fsize),
                     (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (val, val))


def _write(path: str, text: str) -> None:
    with open(path, "w") as fh:
        fh.write(text)


def _namespaces(libc, box: str, keep_dirs: list) -> None:
    """New namespaces owned by this (unprivileged) user: no network (a fresh netns has only a
    downed loopback), private tmpfs over the world-writable dirs, the sandbox dir (and any
    Python dirs that lived under /tmp) bound back."""
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID) != 0:
        _die(f"unshare failed: {os.strerror(ctypes.get_errno())}")
    _write("/proc/self/setgroups", "deny")
    _write("/proc/self/uid_map", f"{uid} {uid} 1")
    _write("/proc/self/gid_map", f"{gid} {gid} 1")
    libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None)
    fds = {d: os.open(d, os.O_RDONLY | os.O_DIRECTORY) for d in [box, *keep_dirs]}
    for d in ("/tmp", "/var/tmp", "/dev/shm"):
        if os.path.isdir(d):
            libc.mount(b"tmpfs", d.encode(), b"tmpfs", 0, b"size=64m")
    for d, fd in fds.items():
        os.makedirs(d, exist_ok=True)  # on the new /tmp when the dir lived under it
        if libc.mount(f"/proc/self/fd/{fd}".encode(), d.encode(), None, MS_BIND | MS_REC, None) != 0:
            _die(f"bind of {d} failed: {os.strerror(ctypes.get_errno())}")
        os.close(fd)
    os.chdir(box)


def _pid1(libc, argv: list[str]) -> None:
    """Fork into the new PID namespace. The child is its init: when it dies, the kernel kills
    everything left in the namespace, so nothing forked by the program outlives the check."""
    pid = os.fork()
    if pid == 0:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        libc.mount(b"proc", b"/proc", b"proc", 0, None)  # best effort: hide host processes
        try:
            os.execvp(argv[0], argv)
        except OSError as e:
            _die(f"exec {argv[0]}: {e}")
    _, status = os.waitpid(pid, 0)
    os._exit(os.WEXITSTATUS(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))


def main() -> None:
    sep = sys.argv.index("--")
    mode, cpu_s, as_b, nproc, fsize, dirs = sys.argv[1:sep]
    box, *keep_dirs = dirs.split(os.pathsep)
    argv = sys.argv[sep + 1:]
    libc = ctypes.CDLL(None, use_errno=True)
    if mode == "namespaces":
        _namespaces(libc, box, keep_dirs)  # before the limits: RLIMIT_AS/NPROC could starve the setup
    _limits(int(cpu_s), int(as_b), int(nproc), int(fsize))
    if mode == "namespaces":
        _pid1(libc, argv)
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        _die(f"exec {argv[0]}: {e}")


if __name__ == "__main__":
    main()
