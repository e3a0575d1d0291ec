"""First process of a pod sandbox or of a container, run as a script with the standard library only.

``hold`` (under ``unshare --net --uts``): holds the pod's network and UTS namespaces; prints
``ready`` and exits when its stdin closes (the kubelet went away or tore the pod down).

``container SPEC`` (in the pod's namespaces, under ``unshare --mount --propagation private``): builds
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
        path = root + file["path"]
        make_target(path, True)
        with open(path, "w") as out:
            out.write(file["data"])
        os.chmod(path, file["mode"])
    for bind in spec["binds"]:
        target = root + bind["target"]
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


def container(spec_path: str) -> None:
    with open(spec_path) as f:
        spec = json.load(f)
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
        container(sys.argv[2])
