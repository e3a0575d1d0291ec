"""EtcdConfig parsing, TLS material checks, endpoint parsing and the request codec (no etcd needed)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from apiserver.kvstore import MAX_TXN_OPS, Compare, Delete, KVStoreError, Put
from apiserver.kvstore.etcd import EtcdConfig, EtcdConfigError, EtcdTLSError
from apiserver.kvstore.etcd._codec import encode_txn, prefix_end, prefix_range
from apiserver.kvstore.etcd._transport import METHODS, channel_options, parse_endpoint
from apiserver.kvstore.etcd.tls import load_tls_material
from apiserver.kvstore.options import KVStoreOptions
from apiserver.kvstore.proto import etcd_rpc_pb2 as pb
from apiserver.security.pki import generate_ca, issue_cert


def test_yaml_upstream_layout(tmp_path: Path) -> None:
    path = tmp_path / "etcd-config.yaml"
    path.write_text(
        "endpoints:\n- https://clustermesh-apiserver.cilium.io:2379\n"
        "trusted-ca-file: /var/lib/cilium/etcd-secrets/ca.crt\n"
        "key-file: /var/lib/cilium/etcd-secrets/tls.key\n"
        "cert-file: /var/lib/cilium/etcd-secrets/tls.crt\n"
        "dial-timeout: 3000000000\n"  # Go's time.Duration in nanoseconds
    )
    cfg = EtcdConfig.from_yaml(path)
    assert cfg.endpoints == ("https://clustermesh-apiserver.cilium.io:2379",)
    assert cfg.trusted_ca_file == "/var/lib/cilium/etcd-secrets/ca.crt"
    assert (cfg.cert_file, cfg.key_file) == ("/var/lib/cilium/etcd-secrets/tls.crt",
                                             "/var/lib/cilium/etcd-secrets/tls.key")
    assert cfg.dial_timeout == 3.0
    assert cfg.config_file == str(path)


def test_from_options_reads_the_file_and_the_connection_options(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("endpoints: [http://127.0.0.1:2379]\nca-file: /ca.crt\n")
    cfg = EtcdConfig.from_options(KVStoreOptions.parse({
        "etcd.config": str(path), "etcd.qps": "100", "etcd.bootstrapQps": "10000", "etcd.maxInflight": "10",
        "etcd.limit": "128", "etcd.keepaliveHeartbeat": "2s", "etcd.keepaliveTimeout": "1m",
    }))
    assert cfg.endpoints == ("http://127.0.0.1:2379",)
    assert cfg.trusted_ca_file == "/ca.crt"  # the older "ca-file" spelling
    assert (cfg.keepalive_heartbeat, cfg.keepalive_timeout) == (2.0, 60.0)
    # etcd refuses pings more often than every 5 s, whatever was asked for.
    assert cfg.grpc_keepalive_interval == 5.0
    assert dict(channel_options(cfg))["grpc.keepalive_time_ms"] == 5000


def test_from_options_address_replaces_the_files_endpoints(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("endpoints: [http://127.0.0.1:2379]\ndial-keep-alive-time: 7s\n")
    cfg = EtcdConfig.from_options(KVStoreOptions(config_file=str(path), address="http://127.0.0.1:4001"))
    assert cfg.endpoints == ("http://127.0.0.1:4001",)
    assert cfg.keepalive_heartbeat == 7.0  # the file's, as no option overrides it


def test_from_options_address_and_defaults() -> None:
    cfg = EtcdConfig.from_options(KVStoreOptions(address="http://127.0.0.1:4001"))
    assert cfg.endpoints == ("http://127.0.0.1:4001",)
    assert (cfg.keepalive_heartbeat, cfg.keepalive_timeout) == (15.0, 25.0)


def test_from_options_missing_file() -> None:
    with pytest.raises(EtcdConfigError, match="does not exist"):
        EtcdConfig.from_options(KVStoreOptions(config_file="/nonexistent/etcd.yaml"))


@pytest.mark.parametrize(("text", "message"), [
    pytest.param("endpoints: []\n", "non-empty list", id="no-endpoints"),
    pytest.param("- a\n", "mapping", id="not-a-mapping"),
    pytest.param("endpoints: [a\n", "not valid YAML", id="bad-yaml"),
    pytest.param("endpoints: [a]\ncert-file: /c\n", "set together", id="cert-without-key"),
    pytest.param("endpoints: [a]\ninsecure-skip-tls-verify: true\n", "not supported", id="skip-verify"),
    pytest.param("endpoints: [a]\ndial-timeout: often\n", "dial-timeout", id="bad-dial-timeout"),
])
def test_yaml_errors_name_the_file(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "etcd.yaml"
    path.write_text(text)
    with pytest.raises(EtcdConfigError, match=message) as info:
        EtcdConfig.from_yaml(path)
    assert str(path) in str(info.value) or message == "not valid YAML"


def test_unreadable_yaml(tmp_path: Path) -> None:
    with pytest.raises(EtcdConfigError, match="cannot read"):
        EtcdConfig.from_yaml(tmp_path)  # a directory


@pytest.mark.parametrize(("url", "tls", "target", "secure"), [
    pytest.param("http://127.0.0.1:2379", True, "127.0.0.1:2379", False, id="http-stays-plain"),
    pytest.param("https://localhost", False, "localhost:2379", True, id="default-port"),
    pytest.param("https://[::1]:32379", False, "[::1]:32379", True, id="ipv6"),
    pytest.param("10.0.0.1:2379", True, "10.0.0.1:2379", True, id="bare-with-tls"),
    pytest.param("10.0.0.1:2379", False, "10.0.0.1:2379", False, id="bare-plain"),
    pytest.param("unix:///run/etcd.sock", False, "unix:/run/etcd.sock", False, id="unix"),
])
def test_parse_endpoint(url: str, tls: bool, target: str, secure: bool) -> None:
    ep = parse_endpoint(url, tls_configured=tls)
    assert (ep.target, ep.secure) == (target, secure)


def test_parse_endpoint_rejects_unknown_scheme() -> None:
    with pytest.raises(EtcdConfigError, match="unsupported scheme"):
        parse_endpoint("ftp://x:1", tls_configured=False)


def test_method_paths_are_upstreams() -> None:
    assert METHODS["KV.Range"].path == "/etcdserverpb.KV/Range"
    assert METHODS["Watch.Watch"].path == "/etcdserverpb.Watch/Watch"
    assert METHODS["Auth.RoleGrantPermission"].path == "/etcdserverpb.Auth/RoleGrantPermission"


@pytest.mark.parametrize(("prefix", "end"), [
    pytest.param(b"cilium/state/", b"cilium/state0", id="slash"),
    pytest.param(b"a\xff", b"b", id="carry"),
    pytest.param(b"\xff\xff", b"\0", id="all-ff"),
])
def test_prefix_end(prefix: bytes, end: bytes) -> None:
    assert prefix_end(prefix) == end


def test_empty_prefix_is_the_whole_keyspace() -> None:
    assert prefix_range("") == (b"\0", b"\0")


def test_encode_txn_layout_and_limits() -> None:
    encoded = encode_txn([Compare("k", "mod", "=", 5)], [Put("k", b"v", lease=7)], [Delete("p/", prefix=True)])
    txn = pb.TxnRequest.FromString(encoded)
    assert txn.compare[0].mod_revision == 5 and txn.compare[0].key == b"k"
    assert txn.success[0].request_put.lease == 7
    assert (txn.failure[0].request_delete_range.key, txn.failure[0].request_delete_range.range_end) == (
        b"p/", b"p0")
    with pytest.raises(KVStoreError, match="at most 128"):
        encode_txn((), [Put(f"k{i}", b"") for i in range(MAX_TXN_OPS + 1)])
    with pytest.raises(KVStoreError, match="needs a bytes value"):
        encode_txn([Compare("k", "value", "=", 1)], [])
    with pytest.raises(KVStoreError, match="unsupported compare result"):
        encode_txn([Compare("k", "mod", "<=", 1)], [])


# ---- TLS material -------------------------------------------------------------------------------

@pytest.fixture
def pki(tmp_path: Path) -> dict[str, str]:
    ca = generate_ca()
    (tmp_path / "ca.crt").write_bytes(ca.cert_pem())
    good = issue_cert(ca, "admin-c1").write(tmp_path, "good")
    other = issue_cert(ca, "other").write(tmp_path, "other")
    expired = issue_cert(ca, "old", not_after=dt.datetime.now(dt.UTC) - dt.timedelta(hours=1)).write(tmp_path, "old")
    (tmp_path / "garbage.pem").write_text("not a pem\n")
    return {"ca": str(tmp_path / "ca.crt"), "cert": str(good.cert_file), "key": str(good.key_file),
            "other_key": str(other.key_file), "old_cert": str(expired.cert_file), "old_key": str(expired.key_file),
            "garbage": str(tmp_path / "garbage.pem"), "missing": str(tmp_path / "nope.crt")}


def _cfg(ca: str | None, cert: str | None, key: str | None) -> EtcdConfig:
    return EtcdConfig(endpoints=("https://127.0.0.1:2379",), trusted_ca_file=ca, cert_file=cert, key_file=key)


def test_tls_material_reads_files_and_cn(pki: dict[str, str]) -> None:
    material = load_tls_material(_cfg(pki["ca"], pki["cert"], pki["key"]))
    assert material.client_cn == "admin-c1"
    assert material.root_certificates == Path(pki["ca"]).read_bytes()


@pytest.mark.parametrize(("ca", "cert", "key", "message"), [
    pytest.param("missing", "cert", "key", "trusted-ca-file .* does not exist", id="missing-ca"),
    pytest.param("garbage", "cert", "key", "does not contain a PEM certificate", id="garbage-ca"),
    pytest.param("ca", "garbage", "key", "cert-file .* does not contain a PEM certificate", id="garbage-cert"),
    pytest.param("ca", "cert", "garbage", "not an unencrypted PEM private key", id="garbage-key"),
    pytest.param("ca", "cert", "other_key", "does not match the certificate", id="mismatched-key"),
    pytest.param("ca", "old_cert", "old_key", "expired at", id="expired-cert"),
])
def test_tls_material_errors(pki: dict[str, str], ca: str, cert: str, key: str, message: str) -> None:
    with pytest.raises(EtcdTLSError, match=message):
        load_tls_material(_cfg(pki[ca], pki[cert], pki[key]))
