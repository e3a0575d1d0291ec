"""Every rendered object against the Kubernetes OpenAPI schema; checkov's policies; hadolint.

checkov lives in its own virtual environment (``scripts/setup.sh`` makes ``.tools/checkov``): its
pinned dependencies would otherwise downgrade the project's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from deploy_render import KUBECTL, REPO, TARGETS, Obj, deploy_tree, kustomize

pytestmark = pytest.mark.skipif(KUBECTL is None, reason="kubectl not installed")

# The release the emulator reports, and the newest one the validator ships.
KUBERNETES_VERSIONS = ("1.33.0", kubernetes_validate.latest_version())
KUBERNETES_VERSION = KUBERNETES_VERSIONS[0]
# Custom resources have no schema in the Kubernetes release; the test below checks their shape.
CUSTOM_KINDS = {("monitoring.coreos.com/v1", "ServiceMonitor")}


def tool(name: str, venv: str | None = None) -> str:
    override = os.environ.get(name.upper().replace("-", "_"))
    candidates = [override] if override else []
    if venv:
        candidates.append(str(REPO / ".tools" / venv / "bin" / name))
    candidates += [str(Path(sys.executable).with_name(name)), shutil.which(name) or ""]
    for path in candidates:
        if path and os.access(path, os.X_OK):
            return path
    raise AssertionError(f"{name} is not installed: run scripts/setup.sh")


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    tree = deploy_tree(tmp_path_factory.mktemp("policy"))
    return {target: kustomize(tree / target) for target in TARGETS}


@pytest.mark.parametrize("target", TARGETS)
def test_every_object_validates_against_the_openapi_schema(rendered: dict[str, str], target: str) -> None:
    objs: list[Obj] = [o for o in yaml.safe_load_all(rendered[target]) if o]
    assert objs
    for obj in objs:
        for version in KUBERNETES_VERSIONS:
            if (obj["apiVersion"], obj["kind"]) in CUSTOM_KINDS:
                with pytest.raises(kubernetes_validate.SchemaNotFoundError):
                    kubernetes_validate.validate(obj, version, strict=True)
                continue
            try:
                kubernetes_validate.validate(obj, version, strict=True)
            except kubernetes_validate.ValidationError as exc:
                raise AssertionError(f"{target} ({version}): {obj['kind']}/{obj['metadata']['name']}: "
                                     f"{exc.message} at {list(exc.path)}") from exc


def test_the_validator_refuses_a_wrong_field() -> None:
    """The schema check above can fail: an unknown field and a wrong type are refused."""
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"},
           "spec": {"ports": [{"port": "2379"}], "typo": 1}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, KUBERNETES_VERSION, strict=True)


def checkov(path: Path, framework: str) -> dict[str, Any]:
    command = [tool("checkov", "checkov"), "--framework", framework, "-f", str(path), "-o", "json", "--skip-download"]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300,
        env={**os.environ, "HOME": str(path.parent), "BC_SKIP_MAPPING": "TRUE"})
    report = json.loads(done.stdout)
    report = report[0] if isinstance(report, list) else report
    assert report["summary"]["parsing_errors"] == 0
    results: dict[str, Any] = report["results"]
    return results


@pytest.mark.parametrize("target", TARGETS)
def test_checkov_finds_nothing_unjustified(rendered: dict[str, str], target: str, tmp_path: Path) -> None:
    manifest = tmp_path / "rendered.yaml"
    manifest.write_text(rendered[target])
    results = checkov(manifest, "kubernetes")
    failed = [(c["check_id"], c["resource"]) for c in results["failed_checks"]]
    assert failed == []
    assert len(results["passed_checks"]) > 50
    for skipped in results["skipped_checks"]:
        reason = skipped["check_result"].get("suppress_comment", "")
        assert len(reason) > 20, f"{skipped['check_id']} is skipped without a reason"


def test_checkov_would_fail_a_loose_pod(tmp_path: Path) -> None:
    """The scan above can fail: a privileged container is reported."""
    manifest = tmp_path / "loose.yaml"
    manifest.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "loose", "namespace": "x"},
        "spec": {"containers": [{"name": "c", "image": "img:1", "securityContext": {"privileged": True}}]}}))
    failed = {c["check_id"] for c in checkov(manifest, "kubernetes")["failed_checks"]}
    assert "CKV_K8S_16" in failed  # privileged container


def test_dockerfile_passes_hadolint_and_checkov(tmp_path: Path) -> None:
    done = subprocess.run([tool("hadolint"), "--no-color", str(REPO / "Dockerfile")], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    copy = tmp_path / "Dockerfile"
    shutil.copy(REPO / "Dockerfile", copy)
    results = checkov(copy, "dockerfile")
    assert [c["check_id"] for c in results["failed_checks"]] == []
    assert len(results["passed_checks"]) >= 5


def test_hadolint_would_fail_a_sloppy_dockerfile(tmp_path: Path) -> None:
    sloppy = tmp_path / "Dockerfile"
    sloppy.write_text("FROM debian:latest\nRUN apt-get install etcd-server\n")
    done = subprocess.run([tool("hadolint"), "--no-color", str(sloppy)], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode != 0 and "DL3007" in done.stdout and "DL3008" in done.stdout
