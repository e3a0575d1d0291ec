"""The Dockerfile as far as it can be checked without a container engine, and the wheel it installs."""

from __future__ import annotations

import subprocess
import zipfile

import pytest
import yaml
from deploy_image import (
    DOCKERFILE,
    ImageInstall,
    builder_copy_sources,
    exec_form,
    in_context,
    parse_dockerfile,
    project_version,
)
from deploy_render import REPO, find, render

from apiserver.kvstore.etcd import EtcdConfig

OCI_LABELS = ("title", "description", "version", "licenses", "source")


def test_two_stages_on_a_slim_debian_python() -> None:
    global_args, parsed = parse_dockerfile(DOCKERFILE.read_text())
    assert [s.name for s in parsed] == ["builder", "runtime"]
    assert [s.base for s in parsed] == ["${BUILDER_IMAGE}", "${PYTHON_IMAGE}"]
    image = global_args["PYTHON_IMAGE"]
    assert image.startswith("docker.io/library/python:3.11") and image.endswith("-slim-bookworm")
    # The builder (with a compiler for the compiled twins) runs the very same Python, non-slim.
    assert global_args["BUILDER_IMAGE"] == image.removesuffix("-slim-bookworm") + "-bookworm"
    builder = parsed[0]
    assert builder_copy_sources(builder) == ["pyproject.toml", "setup.py", "README.md", "apiserver/"]
    assert builder.all("RUN") == ["python -m pip wheel --wheel-dir=/wheels /src"]


def test_runtime_installs_exactly_the_built_wheel() -> None:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    runtime = parsed[1]
    assert runtime.all("ARG") == [f"VERSION={project_version()}"]
    installs = [run for run in runtime.all("RUN") if "pip install" in run]
    assert len(installs) == 1
    words = installs[0].split()
    assert "--mount=type=bind,from=builder,source=/wheels,target=/wheels" in words
    assert "--no-index" in words and "--find-links=/wheels" in words
    # One requirement: this project at this version, found only among the builder's wheels.
    after = words[words.index("install") + 1:words.index("&&")]
    requirements = [w for w in after if not w.startswith("--")]
    assert requirements == ['"clustermesh-apiserver==${VERSION}"']


def test_runtime_paths_user_and_entrypoint() -> None:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    runtime = parsed[1]
    run = " ".join(runtime.all("RUN"))
    assert "apt-get install -y --no-install-recommends etcd-server=" in run  # Debian's: /usr/bin/etcd
    assert "ln -s /usr/local/bin/clustermesh-apiserver /usr/bin/clustermesh-apiserver" in run
    assert runtime.all("COPY") == ["deploy/image/etcd-config.yaml /var/lib/cilium/etcd-config.yaml"]
    assert runtime.all("USER") == ["65532:65532"]
    assert exec_form(runtime.all("ENTRYPOINT")[0]) == ["/usr/bin/clustermesh-apiserver"]
    assert "CMD" not in [op for op, _ in runtime.instructions]
    labels = " ".join(runtime.all("LABEL"))
    for label in OCI_LABELS:
        assert f"org.opencontainers.image.{label}=" in labels
    # The user is the one the pod's securityContext runs as.
    pod = find(render(REPO / "deploy", "base"), "Deployment", "clustermesh-apiserver")["spec"]["template"]["spec"]
    context = pod["securityContext"]
    assert f"{context['runAsUser']}:{context['runAsGroup']}" == "65532:65532" == f"{context['fsGroup']}:65532"


def test_etcd_client_config_is_upstreams() -> None:
    """What upstream's image ships at /var/lib/cilium/etcd-config.yaml, read by our own parser."""
    path = REPO / "deploy" / "image" / "etcd-config.yaml"
    assert yaml.safe_load(path.read_text()) == {
        "endpoints": ["https://127.0.0.1:2379"],
        "trusted-ca-file": "/var/lib/cilium/etcd-secrets/ca.crt",
        "cert-file": "/var/lib/cilium/etcd-secrets/tls.crt",
        "key-file": "/var/lib/cilium/etcd-secrets/tls.key",
    }
    config = EtcdConfig.from_yaml(path)
    assert config.endpoints == ("https://127.0.0.1:2379",)
    assert config.key_file == "/var/lib/cilium/etcd-secrets/tls.key"


@pytest.mark.parametrize(("path", "sent"), [
    pytest.param("pyproject.toml", True, id="pyproject"),
    pytest.param("README.md", True, id="readme"),
    pytest.param("apiserver/cli/__init__.py", True, id="product"),
    pytest.param("apiserver/kvstore/proto/etcd_rpc.proto", True, id="proto"),
    pytest.param("deploy/image/etcd-config.yaml", True, id="etcd-config"),
    pytest.param("apiserver/__pycache__/x.cpython-311.pyc", False, id="bytecode"),
    pytest.param("localmesh/kubesim/__init__.py", False, id="localmesh"),
    pytest.param("tests/conftest.py", False, id="tests"),
    pytest.param("bench/run.py", False, id="bench"),
    pytest.param("deploy/base/deployment.yaml", False, id="manifests"),
    pytest.param(".git/HEAD", False, id="git"),
    pytest.param("Dockerfile", False, id="dockerfile"),
])
def test_dockerignore(path: str, sent: bool) -> None:
    assert in_context(path) is sent


def test_every_copy_source_is_in_the_context() -> None:
    _, parsed = parse_dockerfile(DOCKERFILE.read_text())
    for stage in parsed:
        for source in builder_copy_sources(stage):
            probe = source + "__init__.py" if source.endswith("/") else source
            assert in_context(probe), source


def test_the_wheel_holds_the_product_only(image_install: ImageInstall) -> None:
    # A platform wheel: the compiled twins are built in (this machine has a compiler, as the builder).
    assert image_install.wheel.name.startswith(f"clustermesh_apiserver-{project_version()}-cp311-cp311-")
    assert not (image_install.context / "localmesh").exists()
    with zipfile.ZipFile(image_install.wheel) as wheel:
        names = wheel.namelist()
        entry_points = wheel.read(f"clustermesh_apiserver-{project_version()}.dist-info/entry_points.txt").decode()
    tops = {name.split("/")[0] for name in names}
    assert tops == {"apiserver", f"clustermesh_apiserver-{project_version()}.dist-info"}
    assert "apiserver/kvstore/proto/etcd_rpc.proto" in names and "apiserver/py.typed" in names
    for twin in ("apiserver/kvstore/etcd/_txn_c", "apiserver/convert/_endpoints_c"):
        assert [n for n in names if n.startswith(twin + ".cpython-311-") and n.endswith(".so")], twin
        assert twin + ".pyi" in names and twin + ".c" not in names
    assert "clustermesh-apiserver = apiserver.cli:main" in entry_points


def test_the_installed_command(image_install: ImageInstall) -> None:
    py = str(image_install.python)
    code = "import apiserver, importlib.util as u; print(apiserver.__file__); print(u.find_spec('localmesh'))"
    done = subprocess.run([py, "-I", "-c", code], capture_output=True, text=True, timeout=60, cwd="/")
    assert done.returncode == 0, done.stderr
    location, localmesh = done.stdout.split()
    assert location.startswith(str(image_install.venv)) and localmesh == "None"
    version = subprocess.run([str(image_install.console_script), "version"], capture_output=True, text=True,
                             timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert version.returncode == 0 and project_version() in version.stdout, version.stderr
    # The local tooling's subcommands say which extra they need, instead of a traceback.
    demo = subprocess.run([str(image_install.console_script), "kubesim"], capture_output=True, text=True,
                          timeout=60, cwd="/", env={"PATH": "/usr/bin:/bin"})
    assert demo.returncode == 2 and "clustermesh-apiserver[local]" in demo.stderr
