"""The mesh API pod's containers run as kubelet would run them, without a container engine.

One network namespace per pod (so the chart's fixed ports 2379, 9880, 9881, 9962-9964 are free)
and one private mount namespace in which the pod's file system paths are the chart's own:
``/usr/bin/clustermesh-apiserver`` is the wheel's console script, ``/var/lib/cilium/etcd-config.yaml``
the image's file, every volume is mounted at its ``mountPath`` (Secrets and ConfigMaps read-only,
owned by the pod's ``fsGroup``), the service account at ``/var/run/secrets/kubernetes.io/serviceaccount``,
and the root file system is read-only. Containers run as the pod's ``runAsUser``/``runAsGroup``.

Every process started here is stopped by ``Pod.close``, and the namespace is deleted.
"""

from __future__ import annotations

import base64
import concurrent.futures
import ctypes
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from deploy_image import ImageInstall
from deploy_render import DEPLOY, Obj

T = TypeVar("T")
CLONE_NEWNET = 0x40000000
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
# The roots the pod's paths live under; each gets an overlay whose upper layer holds the mount points.
OVERLAID = ("/usr/bin", "/var/lib", "/run")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubelet's ``$(VAR)`` expansion: defined variables are replaced, ``$$`` escapes, others stay."""
    def one(match: re.Match[str]) -> str:
        if match.group(0) == "$$":
            return "$"
        return env.get(match.group(1), match.group(0))
    return re.sub(r"\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)", one, text)


def _real(path: str) -> str:
    """A pod path with the host's symlinks resolved (/var/run is /run)."""
    parent = os.path.realpath(os.path.dirname(path))
    return os.path.join(parent, os.path.basename(path))


class Netns:
    """Calls run on a thread that lives in the pod's network namespace (sockets keep the
    namespace they were created in)."""

    def __init__(self, name: str) -> None:
        self._fd = os.open(f"/run/netns/{name}", os.O_RDONLY)
        self._pool = concurrent.futures.ThreadPoolExecutor(1, initializer=self._enter)

    def _enter(self) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.setns(self._fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns into the pod's network namespace")

    def run(self, fn: Callable[[], T]) -> T:
        return self._pool.submit(fn).result()

    def close(self) -> None:
        self._pool.shutdown()
        os.close(self._fd)


def http_get(netns: Netns, port: int | str, path: str, timeout: float = 5.0) -> tuple[int, str]:
    """One GET on the pod's loopback, as kubelet's httpGet probe does (status 0: no answer)."""
    def get() -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout) as answer:
                return answer.status, answer.read().decode(errors="replace")
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode(errors="replace")
        except (OSError, urllib.error.URLError) as exc:
            return 0, str(exc)
    return netns.run(get)


@dataclass
class Container:
    name: str
    argv: list[str]
    env: dict[str, str]
    spec: Obj
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def port(self, name_or_number: int | str) -> int:
        if isinstance(name_or_number, int):
            return name_or_number
        ports = {p["name"]: p["containerPort"] for p in self.spec.get("ports", [])}
        return int(ports[name_or_number])

    def output(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


@dataclass
class Pod:
    """One pod of ``deployment``: volumes filled from ``objects`` (Secrets, ConfigMaps by name)."""

    install: ImageInstall
    deployment: Obj
    objects: dict[tuple[str, str], Obj]
    root: Path
    uid: str = field(default_factory=lambda: str(uuid.uuid4()))
    netns_name: str = field(default_factory=lambda: f"cmdeploy-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    extra_env: dict[str, str] = field(default_factory=dict)
    _sandbox: subprocess.Popen[bytes] | None = None
    _procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    netns: Netns | None = None

    @property
    def spec(self) -> Obj:
        spec: Obj = self.deployment["spec"]["template"]["spec"]
        return spec

    # ----- the sandbox: namespaces and mounts
    def start_sandbox(self, service_account: dict[str, bytes]) -> None:
        self.root.mkdir(parents=True)
        self.root.chmod(0o755)
        volumes = self._volumes()
        volumes["kube-api-access"] = self._write_files("kube-api-access", service_account, 0o644)
        mounts = self._mounts()
        subprocess.run(["ip", "netns", "add", self.netns_name], check=True, capture_output=True)
        try:
            script = self._mount_script(volumes, mounts)
            log = self.root / "sandbox.log"
            self._sandbox = subprocess.Popen(
                ["ip", "netns", "exec", self.netns_name, "unshare", "--mount", "--propagation", "private", "sh", "-c",
                 f"set -e\n{script}\necho ready\nexec sleep 100000"],
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log.open("wb"))
            assert self._sandbox.stdout is not None
            # The line comes once every mount is in place, or the pipe closes when a step failed.
            if self._sandbox.stdout.readline() != b"ready\n":
                raise AssertionError(f"pod sandbox failed: {log.read_text()}")
            self.netns = Netns(self.netns_name)
        except BaseException:
            self.close()
            raise

    def _write_files(self, volume: str, files: dict[str, bytes], mode: int) -> Path:
        target = self.root / "volumes" / volume
        target.mkdir(parents=True)
        group = int(self.spec["securityContext"]["fsGroup"])
        for path, data in files.items():
            (target / path).parent.mkdir(parents=True, exist_ok=True)
            (target / path).write_bytes(data)
            # kubelet adds group read for the pod's fsGroup to defaultMode.
            os.chown(target / path, 0, group)
            (target / path).chmod(mode | 0o040)
        os.chown(target, 0, group)
        target.chmod(0o2755)
        return target

    def _source_data(self, kind: str, name: str, optional: bool) -> dict[str, bytes] | None:
        obj = self.objects.get((kind, name))
        if obj is None:
            assert optional, f"{kind} {name} is not optional and does not exist"
            return None
        if kind == "Secret":
            return {k: base64.b64decode(v) for k, v in obj.get("data", {}).items()}
        return {k: v.encode() for k, v in obj.get("data", {}).items()}

    def _projection(self, kind: str, source: Obj) -> dict[str, bytes]:
        data = self._source_data(kind, source["name"], bool(source.get("optional")))
        if data is None:
            return {}
        items = source.get("items")
        return {i["path"]: data[i["key"]] for i in items} if items else data

    def _volumes(self) -> dict[str, Path]:
        out: dict[str, Path] = {}
        for volume in self.spec["volumes"]:
            name = volume["name"]
            if "emptyDir" in volume:
                target = self.root / "volumes" / name
                target.mkdir(parents=True)
                target.chmod(0o777)
                out[name] = target
                continue
            files: dict[str, bytes] = {}
            if "projected" in volume:
                mode = int(volume["projected"].get("defaultMode", 0o644))
                for source in volume["projected"]["sources"]:
                    kind = "Secret" if "secret" in source else "ConfigMap"
                    files |= self._projection(kind, source["secret" if kind == "Secret" else "configMap"])
            elif "configMap" in volume:
                mode = int(volume["configMap"].get("defaultMode", 0o644))
                files = self._projection("ConfigMap", volume["configMap"])
            else:
                raise AssertionError(f"volume {name}: unsupported kind {sorted(volume)}")
            out[name] = self._write_files(name, files, mode)
        return out

    def _mounts(self) -> list[tuple[str, str, bool]]:
        mounts = {(m["name"], m["mountPath"], bool(m.get("readOnly")))
                  for c in [*self.spec.get("initContainers", []), *self.spec["containers"]]
                  for m in c.get("volumeMounts", [])}
        paths = [m[1] for m in mounts]
        # One mount namespace serves every container: their mount paths must not collide.
        assert len(paths) == len(set(paths)), f"containers mount different volumes at one path: {sorted(paths)}"
        return [*sorted(mounts, key=lambda m: m[1]), ("kube-api-access", SERVICE_ACCOUNT_DIR, True)]

    def _mount_script(self, volumes: dict[str, Path], mounts: list[tuple[str, str, bool]]) -> str:
        lines = ["ip link set lo up"]
        uppers: dict[str, Path] = {}
        for index, top in enumerate(OVERLAID):
            upper, work = self.root / "overlay" / str(index) / "upper", self.root / "overlay" / str(index) / "work"
            upper.mkdir(parents=True)
            work.mkdir(parents=True)
            upper.chmod(0o755)
            uppers[top] = upper
        # The image's files.
        (uppers["/var/lib"] / "cilium").mkdir(mode=0o755)
        shutil.copy(DEPLOY / "image" / "etcd-config.yaml", uppers["/var/lib"] / "cilium" / "etcd-config.yaml")
        (uppers["/usr/bin"] / "clustermesh-apiserver").symlink_to(self.install.console_script)
        for _, path, _ in mounts:
            real = _real(path)
            top = next(t for t in OVERLAID if real.startswith(t + "/"))
            (uppers[top] / os.path.relpath(real, top)).mkdir(parents=True, exist_ok=True)
        for top, upper in uppers.items():
            work = upper.parent / "work"
            lines.append(f"mount -t overlay overlay -o lowerdir={top},upperdir={upper},workdir={work} {top}")
        for name, path, read_only in mounts:
            lines.append(f"mount --bind {shlex.quote(str(volumes[name]))} {_real(path)}")
            if read_only:
                lines.append(f"mount -o remount,bind,ro {_real(path)}")
        lines += self._python_home()
        lines += [f"mount -o remount,ro {top}" for top in OVERLAID]
        lines.append("mount -o remount,bind,ro /")  # readOnlyRootFilesystem
        return "\n".join(lines)

    def _python_home(self) -> list[str]:
        """The venv's interpreter under /root (mode 0700 here) made reachable for the pod's user, as
        the image's /usr/local is: only the interpreter's own tree is shown under /root."""
        home = Path(sys.base_prefix)
        if home.parts[:2] != ("/", "root"):
            return []
        top = Path("/root", home.parts[2])
        hold = self.root / "python-home"
        hold.mkdir()
        return [f"mount --bind {top} {hold}", "mount -t tmpfs -o mode=0711 tmpfs /root", f"mkdir {top}",
                f"mount --move {hold} {top}"]

    # ----- containers
    def container(self, spec: Obj) -> Container:
        # What the container runtime sets: the image's PATH, HOSTNAME, and HOME from the image's
        # passwd entry for the UID (the Dockerfile's nonroot user).
        env = {"PATH": "/usr/local/bin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin",
               "HOSTNAME": "clustermesh-apiserver-0", "HOME": "/nonexistent", **self.extra_env}
        for var in spec.get("env", []):
            env_value = self._env_value(var)
            if env_value is not None:
                env[var["name"]] = env_value
        argv = [expand(word, env) for word in [*spec.get("command", []), *spec.get("args", [])]]
        return Container(spec["name"], argv, env, spec, self.root / "logs" / f"{spec['name']}.log")

    def _env_value(self, var: Obj) -> str | None:
        if "value" in var:
            return str(var["value"])
        source = var["valueFrom"]
        if "fieldRef" in source:
            fields = {"metadata.uid": self.uid, "metadata.name": "clustermesh-apiserver-0",
                      "metadata.namespace": "kube-system"}
            return fields[source["fieldRef"]["fieldPath"]]
        ref = source["configMapKeyRef"]
        data = self._source_data("ConfigMap", ref["name"], bool(ref.get("optional")))
        if data is None or ref["key"] not in data:
            assert ref.get("optional"), f"env {var['name']}: ConfigMap {ref['name']} has no key {ref['key']}"
            return None
        return data[ref["key"]].decode()

    def start(self, container: Container) -> Container:
        assert self._sandbox is not None
        context = self.spec["securityContext"]
        container.log.parent.mkdir(exist_ok=True)
        command = ["nsenter", f"--target={self._sandbox.pid}", "--mount", "--net", "--wd=/",
                   "setpriv", f"--reuid={context['runAsUser']}", f"--regid={context['runAsGroup']}",
                   f"--groups={context['fsGroup']}", "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--",
                   *container.argv]
        container.proc = subprocess.Popen(command, env=container.env, stdin=subprocess.DEVNULL,
                                          stdout=container.log.open("wb"), stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self._procs.append(container.proc)
        return container

    def in_netns(self, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """A command of the test (as root, host file system) in the pod's network namespace."""
        return subprocess.run(["nsenter", f"--net=/run/netns/{self.netns_name}", "--", *argv],
                              capture_output=True, text=True, timeout=timeout)

    def start_beside(self, argv: list[str], log: Path, env: dict[str, str]) -> subprocess.Popen[bytes]:
        proc = subprocess.Popen(["nsenter", f"--net=/run/netns/{self.netns_name}", "--", *argv], env=env,
                                stdin=subprocess.DEVNULL, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                start_new_session=True)
        self._procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in reversed(self._procs):
            stop(proc, grace=10)
        if self._sandbox is not None:
            stop(self._sandbox, grace=5)
        if self.netns is not None:
            self.netns.close()
        subprocess.run(["ip", "netns", "del", self.netns_name], capture_output=True)


def stop(proc: subprocess.Popen[Any], grace: float) -> int:
    """SIGTERM, then SIGKILL after ``grace`` seconds; the exit code."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def poll(check: Callable[[], T | None], what: str, timeout: float, alive: Callable[[], str | None]) -> T:
    """Call ``check`` until it returns a value; fail after ``timeout`` seconds or when ``alive``
    reports a dead process (its message)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        dead = alive()
        assert dead is None, f"{what}: {dead}"
        assert time.monotonic() < deadline, f"{what}: not within {timeout:g}s"
        time.sleep(0.2)
