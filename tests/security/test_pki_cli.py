"""``clustermesh-apiserver pki``: layout, identities, SANs, chains, re-runs and refusals."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from apiserver.cli import main
from apiserver.kvstore.etcd import EtcdConfig
from apiserver.security.users_config import DesiredUser, parse_users_config

IDENTITIES = {"admin-c1": "admin-c1", "local-c1": "local-c1", "remote": "remote", "remote-c2": "remote-c2",
              "remote-c3": "remote-c3", "server": "clustermesh-apiserver.cilium.io"}


def cert(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def cn(c: x509.Certificate) -> str:
    return str(c.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def eku(c: x509.Certificate) -> set[x509.ObjectIdentifier]:
    return set(c.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)


@pytest.fixture
def out(tmp_path: Path) -> Path:
    target = tmp_path / "pki"
    code = main(["pki", f"--out={target}", "--cluster-name=c1", "--peer=c2", "--peer", "c3",
                 "--namespace=cilium", "--endpoint=https://c1.mesh.cilium.io:2379", "--validity-days=30"])
    assert code == 0
    return target


def test_layout_and_modes(out: Path) -> None:
    files = {str(p.relative_to(out)): p.stat().st_mode & 0o777 for p in out.rglob("*") if p.is_file()}
    expected = {"ca.crt": 0o644, "ca.key": 0o600, "users.yaml": 0o644}
    for identity in IDENTITIES:
        expected |= {f"{identity}/ca.crt": 0o644, f"{identity}/tls.crt": 0o644, f"{identity}/tls.key": 0o600}
        if identity != "server":
            expected[f"{identity}/etcd-config.yaml"] = 0o644
    assert files == expected


def test_identities_chain_to_the_ca(out: Path) -> None:
    ca = cert(out / "ca.crt")
    for identity, common_name in IDENTITIES.items():
        leaf = cert(out / identity / "tls.crt")
        assert cn(leaf) == common_name
        leaf.verify_directly_issued_by(ca)
        assert (out / identity / "ca.crt").read_bytes() == (out / "ca.crt").read_bytes()
        expected_eku = {ExtendedKeyUsageOID.CLIENT_AUTH}
        if identity == "server":
            expected_eku.add(ExtendedKeyUsageOID.SERVER_AUTH)
        assert eku(leaf) == expected_eku
        assert leaf.not_valid_after_utc - dt.datetime.now(dt.UTC) < dt.timedelta(days=30, minutes=1)


def test_server_sans_are_upstreams(out: Path) -> None:
    sans = cert(out / "server" / "tls.crt").extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sans.get_values_for_type(x509.DNSName) == [
        "clustermesh-apiserver.cilium.io", "*.mesh.cilium.io", "clustermesh-apiserver.cilium.svc"]
    assert sans.get_values_for_type(x509.IPAddress) == [ipaddress.ip_address("127.0.0.1"),
                                                        ipaddress.ip_address("::1")]


def test_client_configs_and_users_file(out: Path) -> None:
    config = EtcdConfig.from_yaml(out / "remote-c2" / "etcd-config.yaml")
    assert config.endpoints == ("https://c1.mesh.cilium.io:2379",)
    assert (config.trusted_ca_file, config.cert_file, config.key_file) == (
        str(out / "remote-c2" / "ca.crt"), str(out / "remote-c2" / "tls.crt"), str(out / "remote-c2" / "tls.key"))
    users = parse_users_config((out / "users.yaml").read_bytes())
    assert users.users == (DesiredUser("remote-c2", "remote"), DesiredUser("remote-c3", "remote"))


def test_rerun_keeps_the_ca_and_rotates_leaves(out: Path) -> None:
    ca_before, leaf_before = (out / "ca.crt").read_bytes(), (out / "remote" / "tls.crt").read_bytes()
    assert main(["pki", f"--out={out}", "--cluster-name=c1"]) == 0
    assert (out / "ca.crt").read_bytes() == ca_before
    assert (out / "remote" / "tls.crt").read_bytes() != leaf_before
    cert(out / "remote" / "tls.crt").verify_directly_issued_by(cert(out / "ca.crt"))
    assert main(["pki", f"--out={out}", "--cluster-name=c1", "--new-ca"]) == 0
    assert (out / "ca.crt").read_bytes() != ca_before


@pytest.mark.parametrize(("args", "message"), [
    pytest.param(["--cluster-name=C_1"], "invalid cluster name", id="bad-cluster"),
    pytest.param(["--cluster-name=c1", "--peer=Bad"], "invalid cluster name", id="bad-peer"),
    pytest.param(["--cluster-name=c1", "--peer=c1"], "local cluster itself", id="self-peer"),
    pytest.param(["--cluster-name=c1", "--validity-days=0"], "at least one day", id="validity"),
])
def test_refusals(args: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["pki", f"--out={tmp_path / 'x'}", *args]) == 1
    assert message in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_help_says_development_only(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["pki", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "DEVELOPMENT" in text and "in production the certificates come from the Cilium operator" in text
