"""Every object of the project's manifests (deploy/, the emulator's sample cluster) whose kind the
protobuf tables carry survives encode -> decode with all its fields: what a client-go installer sends
for them is understood, field for field."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from localmesh.kubesim import SAMPLES_DIR
from localmesh.kubesim._protobuf import CODEC, KINDS

ROOT = Path(__file__).resolve().parents[3]


def _objects() -> list[Any]:
    files = sorted((ROOT / "deploy").rglob("*.yaml")) + sorted(SAMPLES_DIR.glob("*.yaml"))
    params = []
    for path in files:
        for index, doc in enumerate(yaml.safe_load_all(path.read_text())):
            if isinstance(doc, dict) and (doc.get("apiVersion"), doc.get("kind")) in KINDS:
                name = f"{path.relative_to(ROOT)}#{index}:{doc['kind']}/{doc['metadata'].get('name')}"
                params.append(pytest.param(doc, id=name))
    return params


def _zero(value: Any) -> bool:
    return value in (None, "", 0, False, {}, [])


def _assert_kept(sent: Any, decoded: Any, path: str) -> None:
    """Everything in ``sent`` is in ``decoded``; encoding/json leaves out only zero values."""
    if isinstance(sent, dict):
        assert isinstance(decoded, dict), path
        for key, value in sent.items():
            if key not in decoded:
                assert _zero(value), f"{path}.{key} lost"
                continue
            _assert_kept(value, decoded[key], f"{path}.{key}")
    elif isinstance(sent, list):
        assert isinstance(decoded, list) and len(decoded) == len(sent), path
        for index, (a, b) in enumerate(zip(sent, decoded, strict=True)):
            _assert_kept(a, b, f"{path}[{index}]")
    else:
        assert sent == decoded or str(sent) == str(decoded), f"{path}: {sent!r} became {decoded!r}"


OBJECTS = _objects()


def test_the_sample_cluster_has_protobuf_kinds() -> None:
    assert any("cluster1.yaml" in p.id for p in OBJECTS)


@pytest.mark.parametrize("doc", OBJECTS)
def test_manifest_object_round_trips(doc: dict[str, Any]) -> None:
    name = KINDS[(doc["apiVersion"], doc["kind"])]
    body = {k: v for k, v in doc.items() if k not in ("apiVersion", "kind")}
    _assert_kept(body, CODEC.decode(name, CODEC.encode(name, body)), doc["kind"])
