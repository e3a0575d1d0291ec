"""cilium/cluster-config/<cluster>: writing, Go-style reading, remote validation."""

from __future__ import annotations

import pytest
from _convert_golden import compact
from hypothesis import given
from hypothesis import strategies as st

from apiserver.clusterinfo import ClusterInfo
from apiserver.convert import (
    CiliumClusterConfig,
    ConversionError,
    RemoteConfigError,
    cluster_config_value,
    local_cluster_config,
    parse_cluster_config,
    validate_remote_config,
)

# Spec section 1.8 example, verbatim.
SPEC_EXAMPLE = (
    b'{"id":3,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255,"serviceExportsEnabled":false}}'
)
# Upstream golden testdata/clusterconfig-serviceexport.txtar (--cluster-id=5 --clustermesh-enable-mcs-api).
GOLDEN_MCS = """{
  "id": 5,
  "capabilities": {
    "syncedCanaries": true,
    "maxConnectedClusters": 255,
    "serviceExportsEnabled": true
  }
}"""


@pytest.mark.parametrize(
    ("cluster", "mcs", "expected"),
    [
        pytest.param(ClusterInfo("cluster3", 3), False, SPEC_EXAMPLE, id="spec-example-and-golden"),
        pytest.param(ClusterInfo("cluster5", 5), True, compact(GOLDEN_MCS), id="golden-mcs-api"),
        pytest.param(ClusterInfo("c", 7, 511), False,
                     b'{"id":7,"capabilities":{"syncedCanaries":true,"maxConnectedClusters":511,'
                     b'"serviceExportsEnabled":false}}', id="511-clusters"),
        pytest.param(ClusterInfo(), False,
                     b'{"capabilities":{"syncedCanaries":true,"maxConnectedClusters":255,"serviceExportsEnabled":false}}',
                     id="id-0-omitted"),
    ],
)
def test_local_config(cluster: ClusterInfo, mcs: bool, expected: bytes) -> None:
    assert cluster_config_value(local_cluster_config(cluster, mcs_api_enabled=mcs)) == expected


@pytest.mark.parametrize(
    ("cfg", "expected"),
    [
        pytest.param(CiliumClusterConfig(), b'{"capabilities":{}}', id="zero-value-keeps-capabilities"),
        pytest.param(CiliumClusterConfig(4, True, True, 255, None, ""),
                     b'{"id":4,"capabilities":{"syncedCanaries":true,"cached":true,"maxConnectedClusters":255}}',
                     id="kvstoremesh-cached-peer-without-mcs"),
        pytest.param(CiliumClusterConfig(9, service_exports_enabled=True,
                                         endpoint_slices_export_mode="services-and-endpointslices"),
                     b'{"id":9,"capabilities":{"serviceExportsEnabled":true,'
                     b'"endpointSlicesExportMode":"services-and-endpointslices"}}', id="endpoint-slices-mode"),
    ],
)
def test_value_omitempty(cfg: CiliumClusterConfig, expected: bytes) -> None:
    assert cluster_config_value(cfg) == expected


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(SPEC_EXAMPLE, CiliumClusterConfig(3, True, False, 255, False, ""), id="spec-example"),
        pytest.param(b"null", CiliumClusterConfig(), id="null-document"),
        pytest.param(b' {} ', CiliumClusterConfig(), id="empty-object"),
        pytest.param(b'{"ID":3,"Capabilities":{"SYNCEDCANARIES":true}}', CiliumClusterConfig(3, True),
                     id="case-insensitive-names"),
        pytest.param(b'{"id":3,"foo":[1,{"x":null}],"capabilities":{"bar":1.5}}', CiliumClusterConfig(3),
                     id="unknown-fields-ignored"),
        pytest.param(b'{"id":3,"id":null,"capabilities":null}', CiliumClusterConfig(3), id="null-leaves-field"),
        pytest.param(b'{"capabilities":{"serviceExportsEnabled":true,"serviceExportsEnabled":null}}',
                     CiliumClusterConfig(), id="null-resets-pointer"),
        pytest.param(b'{"id":1,"id":2,"Id":3}', CiliumClusterConfig(3), id="last-duplicate-wins"),
        pytest.param(b'{"capabilities":{"cached":true},"capabilities":{"syncedCanaries":true}}',
                     CiliumClusterConfig(0, True, True), id="repeated-struct-merges"),
        pytest.param(b'{"id":4294967295,"capabilities":{"maxConnectedClusters":511,"endpointSlicesExportMode":"x\xff"}}',
                     CiliumClusterConfig(0xFFFFFFFF, max_connected_clusters=511, endpoint_slices_export_mode="x\ufffd"),
                     id="uint32-max-and-invalid-utf8-replaced"),
    ],
)
def test_parse(raw: bytes, expected: CiliumClusterConfig) -> None:
    assert parse_cluster_config(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [b"", b"{", b"[]", b'"x"', b"3", b"NaN", b'{"id":3} x', b'{"id":-1}', b'{"id":-0}', b'{"id":1.0}', b'{"id":1e2}',
     b'{"id":4294967296}', b'{"id":"3"}', b'{"id":true}', b'{"capabilities":[]}', b'{"capabilities":"x"}',
     b'{"capabilities":{"cached":1}}', b'{"capabilities":{"serviceExportsEnabled":"true"}}',
     b'{"capabilities":{"maxConnectedClusters":' + b"9" * 5000 + b"}}",
     b'{"capabilities":{"endpointSlicesExportMode":3}}', b"\xef\xbb\xbf{}", b"[" * 100000],
    ids=lambda raw: raw[:24].decode("latin-1"),
)
def test_parse_garbage(raw: bytes) -> None:
    with pytest.raises(ConversionError):
        parse_cluster_config(raw)


_configs = st.builds(
    CiliumClusterConfig,
    st.integers(0, 0xFFFFFFFF),
    st.booleans(),
    st.booleans(),
    st.integers(0, 0xFFFFFFFF),
    st.none() | st.booleans(),
    st.sampled_from(["", "services-and-endpointslices", "endpointslices-only", "é<&>"]),
)


@given(_configs)
def test_value_round_trips(cfg: CiliumClusterConfig) -> None:
    assert parse_cluster_config(cluster_config_value(cfg)) == cfg


@pytest.mark.parametrize("bad", [-1, 1 << 32, True, "3"])
def test_out_of_range_config_is_refused(bad: object) -> None:
    with pytest.raises(ConversionError):
        CiliumClusterConfig(id=bad)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("cfg", "local", "error"),
    [
        pytest.param(CiliumClusterConfig(3, max_connected_clusters=255), ClusterInfo("c1", 1), None, id="ok"),
        pytest.param(CiliumClusterConfig(3), ClusterInfo("c1", 1), None, id="ok-255-reader-ignores-max"),
        pytest.param(CiliumClusterConfig(0), ClusterInfo("c1", 1), "reserved", id="id-0"),
        pytest.param(CiliumClusterConfig(256), ClusterInfo("c1", 1), "not supported", id="id-over-255"),
        pytest.param(CiliumClusterConfig(300, max_connected_clusters=511), ClusterInfo("c1", 1, 511), None,
                     id="511-mesh"),
        pytest.param(CiliumClusterConfig(300, max_connected_clusters=255), ClusterInfo("c1", 1, 511), "mismatched",
                     id="511-reader-needs-equal-max"),
        pytest.param(CiliumClusterConfig(512, max_connected_clusters=511), ClusterInfo("c1", 1, 511), "not supported",
                     id="id-over-511"),
        pytest.param(CiliumClusterConfig(3, endpoint_slices_export_mode="endpointslices-only"), ClusterInfo("c1", 1),
                     None, id="known-export-mode"),
        pytest.param(CiliumClusterConfig(3, endpoint_slices_export_mode="all"), ClusterInfo("c1", 1), "unknown",
                     id="unknown-export-mode"),
    ],
)
def test_validate_remote_config(cfg: CiliumClusterConfig, local: ClusterInfo, error: str | None) -> None:
    if error is None:
        validate_remote_config(cfg, local)
    else:
        with pytest.raises(RemoteConfigError, match=error):
            validate_remote_config(cfg, local)
