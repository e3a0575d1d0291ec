"""First process of a pod sandbox or of a container, run as a script with the standard library only.

``hold`` (under ``unshare --net --uts``): holds the pod's network and UTS namespaces; prints
``ready`` and exits when its stdin closes (the kubelet went away or tore the pod down).

``container SPEC FD`` (in the pod's namespaces, under ``unshare --mount --propagation private``): builds
the container's root and execs its command. The root is an overlay whose lower layer is the host's
``/`` and whose upper layer is a fresh tmpfs, so whatever the container writes outside its volumes
(and every mount point created for them) exists only in memory and only in this mount namespace: the
host file system is never changed, and a restarted container starts from a clean layer, as from its
image. Volumes and image files are bound at their paths, ``/proc``, ``/sys`` and ``/dev`` mounted, and
``pivot_root`` makes the overlay the namespace's root. SPEC is a JSON file ``{"scratch", "hostname",
"argv", "workdir", "files": [{"path", "data", "mode"}], "binds": [{"source", "target", "file",
"readonly"}]}``; the environment is the container's.
"""

import json
import os
import socket
import subprocess
import sys


def sh(*argv: str) -> None:
    subprocess.run(argv, check=True)


def resolve_in(root: str, path: str) -> str:
    """``path`` inside ``root`` with every symlink on the way resolved inside ``root`` too (``/var/run``
    is ``/run`` in the image as on the host; an absolute link must not lead out of the container)."""
    parts = [p for p in path.split("/") if p]
    done: list[str] = []
    hops = 0
    while parts:
        part = parts.pop(0)
        if part == "..":
            if done:
                done.pop()
            continue
        candidate = os.path.join(root, *done, part)
        if os.path.islink(candidate):
            hops += 1
            if hops > 40:
                raise OSError(f"too many levels of symbolic links in {path}")
            link = os.readlink(candidate)
            if link.startswith("/"):
                done = []
            parts = [p for p in link.split("/") if p and p != "."] + parts
            continue
        done.append(part)
    return os.path.join(root, *done)


def make_target(path: str, is_file: bool) -> None:
    if is_file:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        if os.path.islink(path):
            os.unlink(path)
        if not os.path.exists(path):
            open(path, "a").close()
    else:
        os.makedirs(path, exist_ok=True)


def build_root(spec: dict) -> None:  # type: ignore[type-arg]
    scratch = spec["scratch"]
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "container", scratch)
    upper, work, root = (os.path.join(scratch, d) for d in ("upper", "work", "root"))
    for d in (upper, work, root):
        os.mkdir(d)
    sh("mount", "-t", "overlay", "overlay", "-o", f"lowerdir=/,upperdir={upper},workdir={work}", root)
    sh("mount", "--rbind", "/dev", root + "/dev")
    sh("mount", "-t", "proc", "proc", root + "/proc")
    sh("mount", "-t", "sysfs", "sysfs", root + "/sys")
    for file in spec["files"]:
        path = resolve_in(root, file["path"])
        make_target(path, True)
        with open(path, "w") as out:
            out.write(file["data"])
        os.chmod(path, file["mode"])
    for bind in spec["binds"]:
        target = resolve_in(root, bind["target"])
        make_target(target, bind["file"])
        sh("mount", "--bind", bind["source"], target)
        if bind["readonly"]:
            sh("mount", "-o", "remount,bind,ro", target)
    os.chdir(root)
    os.makedirs(".oldroot", exist_ok=True)
    sh("pivot_root", ".", ".oldroot")
    os.chdir("/")
    sh("umount", "-l", "/.oldroot")
    os.rmdir("/.oldroot")


def container(spec_path: str, started_fd: int) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
    # Closed by a successful exec (or by the exit on failure): the kubelet waits for that to know the
    # root is built, so nothing (exec, probes) reaches the container half set up.
    os.set_inheritable(started_fd, False)
    try:
        build_root(spec)
        os.chdir(spec["workdir"] or "/")
    except (OSError, subprocess.CalledProcessError) as exc:
        sys.stderr.write(f"container setup failed: {exc}\n")
        sys.exit(128)
    argv = spec["argv"]
    try:
        os.execvpe(argv[0], argv, os.environ)
    except OSError as exc:
        sys.stderr.write(f'exec: "{argv[0]}": {exc.strerror}\n')
        sys.exit(127 if isinstance(exc, FileNotFoundError) else 126)


def hold(hostname: str) -> None:
    socket.sethostname(hostname)
    sys.stdout.write("ready\n")
    sys.stdout.flush()
    sys.stdin.read()


if __name__ == "__main__":
    if sys.argv[1] == "hold":
        hold(sys.argv[2])
    else:
        container(sys.argv[2], int(sys.argv[3]))
