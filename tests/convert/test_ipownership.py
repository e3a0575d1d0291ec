"""IPOwnership: primary owner keeps a key, FIFO hand-over, delete only when nobody claims it."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from apiserver.convert import IPOwnership


def test_first_owner_is_primary_and_pending_updates_are_not_written() -> None:
    own = IPOwnership()
    assert own.update("a", {"ip1": b"A1", "ip2": b"A2"}) == ({"ip1": b"A1", "ip2": b"A2"}, [])
    assert own.update("b", {"ip1": b"B1"}) == ({}, [])
    assert own.update("b", {"ip1": b"B1'"}) == ({}, [])
    assert own.update("a", {"ip1": b"A1'", "ip2": b"A2"}) == ({"ip1": b"A1'", "ip2": b"A2"}, [])
    assert (own.primary("ip1"), own.claimants("ip1")) == ("a", ["a", "b"])
    assert len(own) == 2 and own.owners() == 2 and "ip2" in own


def test_hand_over_goes_to_the_earliest_pending_owner_with_its_latest_value() -> None:
    own = IPOwnership()
    own.update("a", {"ip": b"A"})
    own.update("b", {"ip": b"B"})
    own.update("c", {"ip": b"C"})
    own.update("b", {"ip": b"B2"})  # keeps b's place in the queue
    assert own.remove("a") == ({"ip": b"B2"}, [])
    assert own.claimants("ip") == ["b", "c"]


def test_primary_dropping_the_key_in_an_update_hands_it_over() -> None:
    own = IPOwnership()
    own.update("a", {"ip": b"A", "other": b"A"})
    own.update("b", {"ip": b"B"})
    assert own.update("a", {"other": b"A"}) == ({"other": b"A", "ip": b"B"}, [])


def test_key_deleted_only_when_nobody_claims_it() -> None:
    own = IPOwnership()
    own.update("a", {"ip": b"A"})
    own.update("b", {"ip": b"B"})
    assert own.remove("b") == ({}, [])  # a pending owner leaving changes nothing written
    assert own.remove("a") == ({}, ["ip"])
    assert len(own) == 0 and own.owners() == 0 and own.primary("ip") is None


def test_removing_an_unknown_owner_is_a_no_op() -> None:
    assert IPOwnership().remove("ghost") == ({}, [])


# ----- model-based property test ----- #

_OWNERS = ["o1", "o2", "o3", "o4"]
_KEYS = ["k1", "k2", "k3"]
_op = st.tuples(
    st.sampled_from(_OWNERS),
    st.none() | st.dictionaries(st.sampled_from(_KEYS), st.binary(min_size=1, max_size=2), max_size=3),
)


@settings(max_examples=300)
@given(st.lists(_op, max_size=40))
def test_written_value_always_belongs_to_a_live_claiming_owner(ops: list[tuple[str, dict[str, bytes] | None]]) -> None:
    own = IPOwnership()
    store: dict[str, bytes] = {}
    claims: dict[str, dict[str, bytes]] = {}  # the model: what every live object produces
    arrival: dict[str, list[str]] = {}  # per key, claimants in the order they started claiming
    for owner, entries in ops:
        upserts, deletes = own.remove(owner) if entries is None else own.update(owner, entries)
        assert not set(upserts) & set(deletes)
        for key in deletes:
            del store[key]
        store.update(upserts)

        claims[owner] = entries or {}
        for key in _KEYS:
            queue = arrival.setdefault(key, [])
            if key in claims[owner] and owner not in queue:
                queue.append(owner)
            elif key not in claims[owner] and owner in queue:
                queue.remove(owner)

        claimed = {k for produced in claims.values() for k in produced}
        assert set(store) == claimed, "a key is written iff some live object claims it"
        for key, value in store.items():
            primary = own.primary(key)
            assert primary is not None and claims[primary].get(key) == value, "the value is the primary's"
            assert own.claimants(key) == arrival[key], "primary = earliest claimant, FIFO after it"
        assert len(own) == len(store)
        assert own.owners() == sum(1 for produced in claims.values() if produced)


@pytest.mark.parametrize("owners", [10, 200])
def test_many_owners_of_one_key_hand_over_in_order(owners: int) -> None:
    own = IPOwnership()
    for i in range(owners):
        own.update(f"o{i}", {"ip": str(i).encode()})
    for i in range(owners - 1):
        assert own.remove(f"o{i}") == ({"ip": str(i + 1).encode()}, [])
    assert own.remove(f"o{owners - 1}") == ({}, ["ip"])


def test_an_update_with_the_same_addresses_keeps_no_second_copy_of_the_keys() -> None:
    own = IPOwnership()
    first = {"".join(["10.0.0.", "1"]): b"a", "".join(["fd00::", "1"]): b"b"}
    own.update("ns/pod", first)
    again = {"".join(["10.0.0.", "1"]): b"c", "".join(["fd00::", "1"]): b"d"}  # equal, not the same objects
    assert own.update("ns/pod", again) == (again, [])
    held = {id(k) for k in own._keys_of["ns/pod"]}
    assert held == {id(k) for k in first}  # the strings every other map holds already
    # A changed address set is still taken over, and released keys are deleted.
    assert own.update("ns/pod", {"10.0.0.2": b"e"}) == ({"10.0.0.2": b"e"}, ["10.0.0.1", "fd00::1"])
    assert own.update("ns/pod", {}) == ({}, ["10.0.0.2"])
