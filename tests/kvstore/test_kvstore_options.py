"""``--kvstore-opt`` parsed once (``KVStoreOptions.parse``): every option's accepted and refused values.

What is accepted, and the words of the refusals, follow upstream's ``pkg/kvstore/etcd.go`` (its key
table, ``strconv.Atoi`` / ``time.ParseDuration`` validators and defaults).
"""

from __future__ import annotations

import pytest

from apiserver.kvstore import KVStoreError
from apiserver.kvstore.options import InvalidKVStoreOptions, KVStoreOptions

ADDRESS = {"etcd.address": "http://127.0.0.1:2379"}


def test_defaults() -> None:
    options = KVStoreOptions.parse(ADDRESS)
    assert options == KVStoreOptions(address="http://127.0.0.1:2379")
    assert (options.qps, options.upstream_qps, options.bootstrap_qps, options.max_inflight) == (None, 20, 0, 0)
    assert (options.list_limit, options.keepalive_heartbeat, options.keepalive_timeout) == (256, None, None)


@pytest.mark.parametrize(("key", "raw", "field", "value"), [
    pytest.param("etcd.config", "/var/lib/cilium/etcd-config.yaml", "config_file",
                 "/var/lib/cilium/etcd-config.yaml", id="config"),
    pytest.param("etcd.address", "https://10.0.0.1:2379", "address", "https://10.0.0.1:2379", id="address"),
    pytest.param("etcd.qps", "20", "qps", 20, id="qps"),
    pytest.param("etcd.qps", "0", "qps", 0, id="qps-zero-no-bucket"),
    pytest.param("etcd.qps", "+5", "qps", 5, id="qps-plus-sign"),
    pytest.param("etcd.qps", "007", "qps", 7, id="qps-leading-zeros"),
    pytest.param("etcd.bootstrapQps", "10000", "bootstrap_qps", 10000, id="bootstrap"),
    pytest.param("etcd.bootstrapQps", "0", "bootstrap_qps", 0, id="bootstrap-zero-off"),
    pytest.param("etcd.maxInflight", "10", "max_inflight", 10, id="inflight"),
    pytest.param("etcd.maxInflight", "0", "max_inflight", 0, id="inflight-zero-is-qps"),
    pytest.param("etcd.limit", "128", "list_limit", 128, id="limit"),
    pytest.param("etcd.limit", "+5", "list_limit", 5, id="limit-plus-sign"),
    pytest.param("etcd.limit", "0", "list_limit", 0, id="limit-zero-unpaged"),
    pytest.param("etcd.keepaliveHeartbeat", "2s", "keepalive_heartbeat", 2.0, id="heartbeat"),
    pytest.param("etcd.keepaliveHeartbeat", "1m30s", "keepalive_heartbeat", 90.0, id="heartbeat-compound"),
    pytest.param("etcd.keepaliveTimeout", "500ms", "keepalive_timeout", 0.5, id="timeout"),
])
def test_accepted(key: str, raw: str, field: str, value: object) -> None:
    options = KVStoreOptions.parse({**ADDRESS, key: raw})
    assert getattr(options, field) == value


@pytest.mark.parametrize(("key", "raw", "message"), [
    pytest.param("etcd.qps", "2.5", 'invalid value for key etcd.qps: strconv.Atoi: parsing "2.5": invalid syntax',
                 id="qps-fraction"),
    pytest.param("etcd.qps", "fast", 'strconv.Atoi: parsing "fast": invalid syntax', id="qps-word"),
    pytest.param("etcd.qps", "", 'strconv.Atoi: parsing "": invalid syntax', id="qps-empty"),
    pytest.param("etcd.qps", " 5", 'parsing " 5": invalid syntax', id="qps-space"),
    pytest.param("etcd.qps", "1_000", 'parsing "1_000": invalid syntax', id="qps-underscore"),
    pytest.param("etcd.qps", "-1", '"-1" must not be negative', id="qps-negative"),
    pytest.param("etcd.qps", "9" * 20, "value out of range", id="qps-overflow"),
    pytest.param("etcd.bootstrapQps", "1e4", 'invalid value for key etcd.bootstrapQps: strconv.Atoi',
                 id="bootstrap-float"),
    pytest.param("etcd.maxInflight", "-2", "invalid value for key etcd.maxInflight", id="inflight-negative"),
    pytest.param("etcd.maxInflight", "ten", 'parsing "ten"', id="inflight-word"),
    pytest.param("etcd.limit", "1.5", 'invalid value for key etcd.limit: strconv.Atoi: parsing "1.5"',
                 id="limit-fraction"),
    pytest.param("etcd.limit", "-5", "must not be negative", id="limit-negative"),
    pytest.param("etcd.keepaliveHeartbeat", "soon", "invalid duration", id="heartbeat-word"),
    pytest.param("etcd.keepaliveHeartbeat", "5", "invalid duration", id="heartbeat-no-unit"),
    pytest.param("etcd.keepaliveTimeout", "0s", "must be a positive duration", id="timeout-zero"),
    pytest.param("etcd.keepaliveTimeout", "-1s", "must be a positive duration", id="timeout-negative"),
    pytest.param("etcd.qsp", "1", 'unknown kvstore configuration key "etcd.qsp"', id="unknown-key"),
    pytest.param("etcd.operator", "true", "unknown kvstore configuration key", id="removed-upstream-key"),
])
def test_refused(key: str, raw: str, message: str) -> None:
    with pytest.raises(InvalidKVStoreOptions) as info:
        KVStoreOptions.parse({**ADDRESS, key: raw})
    text = str(info.value)
    assert text.startswith("invalid kvstore configuration: ")
    assert message in text
    assert "known keys: etcd.address, etcd.bootstrapQps, etcd.config" in text


@pytest.mark.parametrize("opts", [
    pytest.param({}, id="neither"),
    pytest.param({"etcd.address": "", "etcd.config": ""}, id="both-empty"),
    pytest.param({"etcd.qps": "20"}, id="only-limits"),
])
def test_an_endpoint_source_is_required(opts: dict[str, str]) -> None:
    with pytest.raises(InvalidKVStoreOptions, match=r"invalid etcd configuration, etcd\.config or etcd\.address "
                                                    r"must be specified"):
        KVStoreOptions.parse(opts)


def test_every_problem_is_named_at_once() -> None:
    with pytest.raises(InvalidKVStoreOptions) as info:
        KVStoreOptions.parse({"etcd.qps": "2.5", "etcd.limit": "x", "etcd.bogus": "1"})
    text = str(info.value)
    for part in ('"etcd.bogus"', "etcd.qps", "etcd.limit", "etcd.config or etcd.address"):
        assert part in text


def test_refusal_is_a_kvstore_error_and_a_value_error() -> None:
    with pytest.raises(InvalidKVStoreOptions) as info:
        KVStoreOptions.parse({"etcd.qps": "x"})
    assert isinstance(info.value, KVStoreError) and isinstance(info.value, ValueError)
