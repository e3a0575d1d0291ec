"""The exporter's table of exported prefixes: where each sync store writes, what it owns, its canary."""

from __future__ import annotations

import pytest

from apiserver.clustermesh._exports import EXPORTS, ExportedPrefix

BY_NAME = {row.name: row for row in EXPORTS}


@pytest.mark.parametrize(("name", "prefix", "stale", "synced"), [
    pytest.param("nodes", "cilium/state/nodes/v1", "cilium/state/nodes/v1/c1/", None, id="nodes"),
    pytest.param("identities", "cilium/state/identities/v1/id", "cilium/state/identities/v1/id/",
                 "cilium/state/identities/v1", id="identities"),
    pytest.param("ip", "cilium/state/ip/v1/default", "cilium/state/ip/v1/default/", "cilium/state/ip/v1",
                 id="ip"),
    pytest.param("services", "cilium/state/services/v1", "cilium/state/services/v1/c1/", None, id="services"),
    pytest.param("serviceexports", "cilium/state/serviceexports/v1", "cilium/state/serviceexports/v1/c1/",
                 None, id="serviceexports"),
])
def test_rows(name: str, prefix: str, stale: str, synced: str | None) -> None:
    row: ExportedPrefix = BY_NAME[name]
    assert (row.prefix, row.stale_prefix("c1"), row.synced_key) == (prefix, stale, synced)


def test_one_store_per_prefix() -> None:
    assert len({row.name for row in EXPORTS}) == len({row.prefix for row in EXPORTS}) == len(EXPORTS) == 5
