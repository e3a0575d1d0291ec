"""``clustermesh-dbg verify --kvstoremesh``: each local cache against its remote, byte for byte."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from kvmesh_etcd import Mesh, client_of, etcds, seed
from kvmesh_helpers import RemoteData

pytestmark = pytest.mark.slow


async def verify(mesh: Mesh, *extra: str) -> tuple[int, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "apiserver", "clustermesh-dbg", "verify", "--kvstoremesh",
        "--cluster-name=local", "--cluster-id=1", f"--kvstore-opt=etcd.address={mesh.local.endpoint}",
        f"--clustermesh-config={mesh.dir}", *extra,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode() + err.decode()


async def test_caches_equal_then_drift_found(tmp_path: Path) -> None:
    async with etcds("local", "r2", "r3") as srv:
        await seed(srv["r2"], RemoteData.sample("r2", 2, nodes=3))
        await seed(srv["r3"], RemoteData.sample("r3", 3, mcs=None))
        async with Mesh(tmp_path, srv["local"]) as mesh:
            mesh.add("r2", srv["r2"].endpoint)
            mesh.add("r3", srv["r3"].endpoint)
            await mesh.mirrored("r2", srv["r2"])
            await mesh.mirrored("r3", srv["r3"])
            code, out = await verify(mesh)
            assert code == 0, out
        # KVStoreMesh stopped: a change on the remote is not mirrored, a cache key is removed.
        async with client_of(srv["r2"]) as r2:
            await r2.put("cilium/state/nodes/v1/r2/node-0", b'{"changed":1}')
        async with client_of(srv["local"]) as local:
            await local.delete("cilium/cache/ip/v1/r3/10.3.0.1")
        code, out = await verify(mesh, "-o", "json")
        assert code == 1, out
        doc = json.loads(out)
        prefixes = {p["prefix"]: p for p in doc["prefixes"]}
        assert prefixes["cilium/cache/nodes/v1/r2"]["first_differing"] == ["cilium/cache/nodes/v1/r2/node-0"]
        assert prefixes["cilium/cache/ip/v1/r3"]["first_missing"] == ["cilium/cache/ip/v1/r3/10.3.0.1"]
        assert prefixes["cilium/cache/services/v1/r2"]["equal"] is True
        assert doc["problems"] == []
