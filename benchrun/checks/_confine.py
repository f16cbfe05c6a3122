"""The last steps before untrusted code runs; standard library only, never imported by benchrun.

usage: python _confine.py SPEC_JSON -- PROGRAM ARGS...   (SPEC: see confinement._spec)
       python _confine.py --kernel-probe   (exit 0 when the kernel grants the namespaces)

mode `namespaces`: build the sandbox's filesystem (confinement.layout) ourselves in fresh mount,
network, IPC, UTS and PID namespaces -- plus a user namespace when we are not root; root needs
none, which is what works in a container with user namespaces off -- pivot into it, and go on
as the PID namespace's init. mode `bwrap`: bubblewrap already did that; this runs inside it.
Then, in every mode: NO_NEW_PRIVS, OOM score 1000, drop to the sandbox uid (as root), copy the
input files into the scratch dir, resource limits, exec. Any failed step is fatal (exit 126):
a half-built sandbox must never run code as if it were whole."""
import ctypes
import json
import os
import platform
import resource
import shutil
import signal
import sys

CLONE_NEWNS, CLONE_NEWUSER, CLONE_NEWNET = 0x00020000, 0x10000000, 0x40000000
CLONE_NEWIPC, CLONE_NEWPID, CLONE_NEWUTS = 0x08000000, 0x20000000, 0x04000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT = 1, 2, 4, 8, 32
MS_NOATIME, MS_NODIRATIME, MS_BIND, MS_REC, MS_PRIVATE = 1024, 2048, 0x1000, 0x4000, 0x40000
MS_RELATIME, MS_STRICTATIME = 1 << 21, 1 << 24
ST_NOATIME, ST_RELATIME = 1024, 4096
MNT_DETACH = 2
PR_SET_PDEATHSIG, PR_SET_NO_NEW_PRIVS = 1, 38
SYS_PIVOT_ROOT = {"x86_64": 155, "aarch64": 41}
DEVICES = ("null", "zero", "full", "random", "urandom")

libc = ctypes.CDLL(None, use_errno=True)


def _die(msg: str) -> None:
    os.write(2, f"sandbox: {msg}\n".encode())
    os._exit(126)


def _enc(s):
    return None if s is None else s.encode()


def _mount(src, dst, fstype, flags: int, data=None) -> None:
    enc = _enc
    if libc.mount(enc(src), enc(dst), enc(fstype), flags, enc(data)) != 0:
        _die(f"mount {fstype or src} on {dst}: {os.strerror(ctypes.get_errno())}")


def _bind_ro(fd: int, src: str, dst: str, recursive: bool) -> None:
    """Bind read-only. In a user namespace the original mount's nosuid/nodev/noexec/atime flags
    are locked, so they are carried over (more restrictive ones added)."""
    if os.path.isdir(src):
        os.makedirs(dst, exist_ok=True)
    else:
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        open(dst, "a").close()
    _mount(f"/proc/self/fd/{fd}", dst, None, MS_BIND | (MS_REC if recursive else 0))
    f = os.statvfs(f"/proc/self/fd/{fd}").f_flag
    atime = MS_NOATIME if f & ST_NOATIME else MS_RELATIME if f & ST_RELATIME else MS_STRICTATIME
    _mount(None, dst, None, MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV | atime
           | (f & (MS_NOEXEC | MS_NODIRATIME)))


def _build(root: str, layout: list) -> None:
    fds = {item[1]: os.open(item[1], os.O_PATH | os.O_CLOEXEC) for item in layout if item[0] == "ro"}
    _mount("tmpfs", root, "tmpfs", MS_NOSUID | MS_NODEV, "mode=0755")  # hides the staging dir
    for item in layout:
        kind = item[0]
        dst = root + (item[-1] if kind in ("ro", "link") else item[1] if kind in ("tmpfs", "dir") else "/" + kind)
        if kind == "dir":
            os.mkdir(dst, 0o755)
        elif kind == "ro":
            # The staging dir (our input) now has the new root mounted on it: bind it alone.
            _bind_ro(fds[item[1]], item[1], dst, recursive=item[1] != root)
        elif kind == "link":
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            os.symlink(item[1], dst)
        elif kind == "tmpfs":
            os.makedirs(dst, exist_ok=True)
            _mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NODEV, f"size={item[2]},mode=1777")
        elif kind == "dev":
            os.makedirs(dst, exist_ok=True)
            _mount("tmpfs", dst, "tmpfs", MS_NOSUID | MS_NOEXEC, "mode=0755")
            for name in DEVICES:
                open(f"{dst}/{name}", "a").close()
                _mount(f"/dev/{name}", f"{dst}/{name}", None, MS_BIND)
            for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                                 ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2")):
                os.symlink(target, f"{dst}/{name}")
        elif kind == "proc":
            os.makedirs(dst, exist_ok=True)  # mounted by the namespace's init (see _namespaces)
    for fd in fds.values():
        os.close(fd)


def _unshare() -> None:
    """Fresh namespaces, with a private mount tree: what the kernel must allow for this mode."""
    uid, gid, root = os.getuid(), os.getgid(), os.geteuid() == 0
    flags = CLONE_NEWNS | CLONE_NEWNET | CLONE_NEWIPC | CLONE_NEWPID | CLONE_NEWUTS
    if libc.unshare(flags | (0 if root else CLONE_NEWUSER)) != 0:
        _die(f"unshare failed: {os.strerror(ctypes.get_errno())}")
    if not root:
        for path, text in (("/proc/self/setgroups", "deny"), ("/proc/self/uid_map", f"{uid} {uid} 1"),
                           ("/proc/self/gid_map", f"{gid} {gid} 1")):
            with open(path, "w") as fh:
                fh.write(text)
    _mount(None, "/", None, MS_REC | MS_PRIVATE)


def _namespaces(spec: dict) -> None:
    """Returns in the PID namespace's init, inside the finished sandbox; the original process
    stays outside, waits for it and exits with its status."""
    os.umask(0o022)  # the dirs made on the way must be traversable by the sandbox user
    _unshare()
    new_root = spec["staging"]
    _build(new_root, spec["layout"])
    pid = os.fork()
    if pid:
        _, status = os.waitpid(pid, 0)
        os._exit(os.waitstatus_to_exitcode(status) if os.WIFEXITED(status) else 128 + os.WTERMSIG(status))
    # The init of the new PID namespace: when it dies the kernel kills everything inside.
    if libc.mount(b"proc", f"{new_root}/proc".encode(), b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, None) != 0:
        pass  # refused where the host's /proc is partly masked (some containers): an empty /proc
    old = f"{new_root}/.old-root"
    os.mkdir(old)
    nr = SYS_PIVOT_ROOT.get(platform.machine())
    if nr is None or libc.syscall(nr, new_root.encode(), old.encode()) != 0:
        _die(f"pivot_root: {os.strerror(ctypes.get_errno()) if nr else 'unsupported machine'}")
    os.chdir("/")
    if libc.umount2(b"/.old-root", MNT_DETACH) != 0:
        _die(f"detaching the old root: {os.strerror(ctypes.get_errno())}")
    os.rmdir("/.old-root")
    _mount(None, "/", None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV)


def _confine(spec: dict, argv: list) -> None:
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:  # setuid binaries in /usr stay powerless
        _die("no_new_privs refused")
    try:
        with open("/proc/self/oom_score_adj", "w") as fh:  # out of memory: the kernel kills us first
            fh.write("1000")
    except OSError:
        pass
    to = spec.get("drop_to")
    if to is not None and os.geteuid() == 0:
        os.setgroups([])
        os.setgid(to)
        os.setuid(to)
        if os.getuid() != to or os.geteuid() != to:
            _die("could not drop privileges")
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)  # after setuid, which clears it
    if spec.get("input"):  # flat: Sandbox.write takes file names
        for name in os.listdir(spec["input"]):
            shutil.copyfile(os.path.join(spec["input"], name), os.path.join(spec["box"], name))
    os.chdir(spec["box"])
    for res, val in ((resource.RLIMIT_CPU, spec["cpu_s"]), (resource.RLIMIT_AS, spec["as_bytes"]),
                     (resource.RLIMIT_NPROC, spec["nproc"]), (resource.RLIMIT_FSIZE, spec["fsize"]),
                     (resource.RLIMIT_CORE, 0)):
        resource.setrlimit(res, (val, val))
    try:
        os.execvp(argv[0], argv)
    except OSError as e:
        _die(f"exec {argv[0]}: {e}")


def main() -> None:
    if sys.argv[1:] == ["--kernel-probe"]:  # sandbox.kernel_refusal: only the kernel's part
        _unshare()
        os._exit(0)
    sep = sys.argv.index("--")
    spec, argv = json.loads(sys.argv[1]), sys.argv[sep + 1:]
    if spec["mode"] == "namespaces":
        _namespaces(spec)
    _confine(spec, argv)


if __name__ == "__main__":
    main()
