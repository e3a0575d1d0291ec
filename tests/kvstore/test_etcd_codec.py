"""The hand-written Txn encoder against upb's own serialization of the same request."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.kvstore import Compare, Delete, Op, Put
from apiserver.kvstore.etcd import _codec, _txn_py
from apiserver.kvstore.etcd._codec import encode_txn, encode_varint, fill_compare, prefix_range
from apiserver.kvstore.proto import etcd_rpc_pb2 as pb
from localmesh.testing.twins import KINDS, compiled_module, twin

COMPILED_MODULE = "apiserver.kvstore.etcd._txn_c"


@pytest.fixture(params=KINDS, autouse=True)
def branch_encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test of this module runs with the compiled twin of the encoder and with the pure one."""
    monkeypatch.setattr(_codec, "encode_branch", twin(request.param, COMPILED_MODULE, "encode_branch",
                                                      _txn_py.encode_branch))


def upb_txn(compares: list[Compare], success: list[Op], failure: list[Op]) -> bytes:
    """The reference: the same request built as upb messages."""
    request = pb.TxnRequest()
    for cmp in compares:
        fill_compare(request.compare.add(), cmp)
    for branch, ops in ((request.success, success), (request.failure, failure)):
        for op in ops:
            target: Any = branch.add()
            if isinstance(op, Put):
                target.request_put.key = op.key.encode()
                target.request_put.value = op.value
                target.request_put.lease = op.lease
            else:
                key, range_end = prefix_range(op.key) if op.prefix else (op.key.encode(), b"")
                target.request_delete_range.key = key
                target.request_delete_range.range_end = range_end
    return bytes(request.SerializeToString())


# Sizes around the varint boundaries (127/128, 16383/16384) and the encoder's table (4096).
sizes = st.sampled_from([0, 1, 100, 127, 128, 300, 4095, 4096, 16383, 16384, 70000])
values = st.one_of(st.binary(max_size=300), sizes.map(lambda n: b"v" * n))
keys = st.one_of(st.text(max_size=60), sizes.map(lambda n: "k" * n))
leases = st.one_of(st.just(0), st.integers(1, 2**63 - 1), st.integers(-(2**63), -1))
puts = st.builds(Put, keys, values, leases)
deletes = st.builds(Delete, keys, st.booleans())
ops = st.lists(st.one_of(puts, deletes), max_size=20)
compares = st.lists(st.builds(Compare, st.text(max_size=10), st.just("mod"), st.sampled_from(["=", "<", ">"]),
                              st.integers(0, 2**40)), max_size=2)


@given(compares, ops, ops)
def test_encoded_txn_is_upbs_serialization(cmps: list[Compare], success: list[Op], failure: list[Op]) -> None:
    assert encode_txn(cmps, success, failure) == upb_txn(cmps, success, failure)


@given(st.integers(-(2**63), 2**64 - 1))
def test_varint_round_trips_through_upb(n: int) -> None:
    # PutRequest.lease is an int64 varint: what upb decodes must be what was encoded.
    decoded = pb.PutRequest.FromString(b"\x18" + encode_varint(n)).lease
    assert decoded == (n - 2**64 if n >= 2**63 else n)


def test_a_full_batch_of_puts_decodes_to_the_same_operations() -> None:
    batch = [Put(f"cilium/state/ip/v1/default/10.0.{i // 256}.{i % 256}", b'{"IP":"x"}' * (i % 7), 7 + i % 2)
             for i in range(128)]
    txn = pb.TxnRequest.FromString(encode_txn((), batch))
    got = [(op.request_put.key.decode(), op.request_put.value, op.request_put.lease) for op in txn.success]
    assert got == [(p.key, p.value, p.lease) for p in batch]
    assert not txn.compare and not txn.failure


@given(ops)
def test_compiled_twin_gives_the_pure_twins_bytes(branch: list[Op]) -> None:
    compiled: list[bytes] = []
    pure: list[bytes] = []
    compiled_module(COMPILED_MODULE).encode_branch(b"\x12", branch, compiled)
    _txn_py.encode_branch(b"\x12", branch, pure)
    assert b"".join(compiled) == b"".join(pure)


@pytest.mark.parametrize("op", [
    pytest.param(Put("k", bytearray(b"v")), id="bytearray-value"),
    pytest.param(Put("k", b"v", True), id="bool-lease"),  # type: ignore[arg-type]
    pytest.param(Put("k\udc80", b"v"), id="lone-surrogate-key"),
])
def test_unusual_puts_behave_as_in_the_pure_twin(op: Put) -> None:
    results = []
    for encode in (compiled_module(COMPILED_MODULE).encode_branch, _txn_py.encode_branch):
        parts: list[bytes] = []
        try:
            encode(b"\x12", [Put("a", b"b", 5), op], parts)
            results.append(b"".join(parts))
        except Exception as exc:
            results.append(type(exc))
    assert results[0] == results[1]
