"""The local kubelet's configuration: which node it is, which images it runs, where it keeps state,
and what the project's image holds (its binaries and files, taken from this machine)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from localmesh.kubelet._backoff import BackoffPolicy
from localmesh.kubelet._state import DEFAULT_ROOT

IMAGE_REPOSITORY = "ghcr.io/clustermesh-python/clustermesh-apiserver"
IMAGE_ETCD_CONFIG = "/var/lib/cilium/etcd-config.yaml"
REPO_ETCD_CONFIG = Path(__file__).resolve().parents[2] / "deploy" / "image" / "etcd-config.yaml"
# What the image's etcd-config.yaml holds when the repository file is not there.
DEFAULT_ETCD_CONFIG = """\
---
endpoints:
- https://127.0.0.1:2379
trusted-ca-file: /var/lib/cilium/etcd-secrets/ca.crt
cert-file: /var/lib/cilium/etcd-secrets/tls.crt
key-file: /var/lib/cilium/etcd-secrets/tls.key
"""


def image_repository(image: str) -> str:
    """``repo[:tag][@digest]`` -> ``repo`` (a registry port is not a tag)."""
    name = image.split("@", 1)[0]
    slash = name.rfind("/")
    colon = name.rfind(":")
    return name[:colon] if colon > slash else name


def installed_console_script() -> Path:
    return Path(sys.executable).parent / "clustermesh-apiserver"


@dataclass(frozen=True, slots=True)
class KubeletConfig:
    node_name: str = "localmesh-node"
    images: tuple[str, ...] = (IMAGE_REPOSITORY,)
    state_root: Path = DEFAULT_ROOT
    pod_subnet: str | None = None  # a free /24 of 10.201.0.0/16 when unset
    backoff: BackoffPolicy = field(default_factory=BackoffPolicy)
    api_ca_pem: bytes = b""  # the API server's CA, the pods' service account ca.crt
    # Variables of the kubelet's own environment passed to containers (the image's Python finds the
    # product's code through them, e.g. in a development checkout).
    host_env: tuple[str, ...] = ("PYTHONPATH",)
    entrypoint: tuple[str, ...] = ("/usr/bin/clustermesh-apiserver",)
    clustermesh_apiserver: Path = field(default_factory=installed_console_script)
    etcd: Path = Path("/usr/bin/etcd")
    etcd_config: Path = REPO_ETCD_CONFIG

    def supports(self, image: str) -> bool:
        return image_repository(image) in self.images

    def image_binds(self) -> dict[str, str]:
        """Container path -> host file bound there, as the image would hold them."""
        return {"/usr/bin/clustermesh-apiserver": str(self.clustermesh_apiserver), "/usr/bin/etcd": str(self.etcd)}

    def image_files(self) -> dict[str, str]:
        text = self.etcd_config.read_text() if self.etcd_config.is_file() else DEFAULT_ETCD_CONFIG
        return {IMAGE_ETCD_CONFIG: text}

    def check(self) -> None:
        for target, source in self.image_binds().items():
            if not Path(source).is_file():
                raise FileNotFoundError(f"the image's {target} is bound to {source}, which does not exist")
