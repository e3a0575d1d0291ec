"""Go ``net.IP`` / ``netip.Addr`` text forms and ``net.ParseCIDR``."""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given
from hypothesis import strategies as st

from apiserver.convert._ip import (
    b64,
    canonical_addr_cluster,
    canonical_net_ip,
    net_ip_string,
    net_ip_text,
    netip_text,
    parse_addr,
    parse_cidr,
)


@pytest.mark.parametrize(
    ("text", "net_ip", "netip"),
    [
        pytest.param("10.244.1.79", "10.244.1.79", "10.244.1.79", id="ipv4"),
        pytest.param("0.0.0.0", "0.0.0.0", "0.0.0.0", id="ipv4-zero"),
        pytest.param("::ffff:10.0.0.1", "10.0.0.1", "::ffff:10.0.0.1", id="ipv4-mapped"),
        pytest.param("::FFFF:a00:1", "10.0.0.1", "::ffff:10.0.0.1", id="ipv4-mapped-hex"),
        pytest.param("::1.2.3.4", "::102:304", "::102:304", id="ipv4-compatible-is-ipv6"),
        pytest.param("FD00:10:244:1::D643", "fd00:10:244:1::d643", "fd00:10:244:1::d643", id="upper-case"),
        pytest.param("fd00:0010:0244:0001:0000:0000:0000:d643", "fd00:10:244:1::d643", "fd00:10:244:1::d643",
                     id="leading-zeros-and-long-form"),
        pytest.param("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1", "2001:db8::1:0:0:1", id="first-of-equal-runs"),
        pytest.param("2001:0:0:1:0:0:0:1", "2001:0:0:1::1", "2001:0:0:1::1", id="longest-run"),
        pytest.param("1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1", "1:0:1:1:1:1:1:1", id="single-zero-not-compressed"),
        pytest.param("0:0:0:0:0:0:0:0", "::", "::", id="all-zero"),
        pytest.param("1::", "1::", "1::", id="trailing-run"),
        pytest.param("::1", "::1", "::1", id="loopback"),
    ],
)
def test_text_forms(text: str, net_ip: str, netip: str) -> None:
    assert canonical_net_ip(text) == net_ip
    assert net_ip_string(text) == net_ip  # the uncached form used for endpoint addresses
    assert canonical_addr_cluster(text) == netip


@pytest.mark.parametrize(
    "text",
    ["", "01.2.3.4", "1.2.3.04", "1.2.3", "1.2.3.4.5", "256.0.0.1", " 1.2.3.4", "1.2.3.4 ", "fe80::1%eth0",
     "1::2::3", "12345::", "1:2:3:4:5:6:7:8:9", "1:2:3:4::5:6:7:8", ":1::", "::01.2.3.4", "1.2.3.4::",
     "a" * 100, "x\x00", "\uff11.2.3.4", "10.0.0.1/32", "\ud800"],
)
def test_invalid_addresses(text: str) -> None:
    assert parse_addr(text) is None
    assert canonical_net_ip(text) is None
    assert net_ip_string(text) is None
    assert canonical_addr_cluster(text) is None


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("10.0.0.1@3", "10.0.0.1", id="cluster-suffix"),
        pytest.param("::ffff:10.0.0.1@007", "::ffff:10.0.0.1", id="mapped-with-cluster"),
        pytest.param("10.0.0.1@", None, id="empty-cluster"),
        pytest.param("10.0.0.1@x", None, id="bad-cluster"),
        pytest.param("10.0.0.1@4294967296", None, id="cluster-overflow"),
        pytest.param("10.0.0.1@+3", None, id="signed-cluster"),
    ],
)
def test_addr_cluster(text: str, expected: str | None) -> None:
    assert canonical_addr_cluster(text) == expected


@pytest.mark.parametrize(
    ("text", "ip", "mask"),
    [
        pytest.param("10.244.1.5/24", "10.244.1.0", "////AA==", id="ipv4-masked"),
        pytest.param("10.0.0.0/024", "10.0.0.0", "////AA==", id="leading-zero-length"),
        pytest.param("10.1.2.3/0", "0.0.0.0", "AAAAAA==", id="ipv4-zero-length"),
        pytest.param("200.1.2.3/" + "0" * 5000 + "1", "128.0.0.0", "gAAAAA==", id="many-leading-zeros"),
        pytest.param("10.1.2.3/32", "10.1.2.3", "/////w==", id="ipv4-host"),
        pytest.param("fd00:10:244:1::/64", "fd00:10:244:1::", "//////////8AAAAAAAAAAA==", id="ipv6"),
        pytest.param("FD00:10:244:1::7/64", "fd00:10:244:1::", "//////////8AAAAAAAAAAA==", id="ipv6-masked"),
        pytest.param("::ffff:10.1.2.3/104", "10.0.0.0", "/////////////////wAAAA==", id="ipv4-mapped"),
    ],
)
def test_parse_cidr(text: str, ip: str, mask: str) -> None:
    parsed = parse_cidr(text)
    assert parsed is not None
    assert (net_ip_text(parsed[0]), b64(parsed[1])) == (ip, mask)


@pytest.mark.parametrize(
    "text",
    ["10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "::/129", "10.0.0.0/+24", "10.0.0.0/-1", "/24", "10.0.0.0/2 4",
     "10.0.0.0/24/1", "01.0.0.0/8", "fe80::%eth0/64", "10.0.0.0/" + "0" * 5000 + "33"],
    ids=lambda t: t[:24],
)
def test_parse_cidr_invalid(text: str) -> None:
    assert parse_cidr(text) is None


@given(st.binary(min_size=16, max_size=16))
def test_ipv6_text_is_rfc5952_and_round_trips(raw: bytes) -> None:
    addr = ipaddress.IPv6Address(raw)
    text = net_ip_text(raw)
    if addr.ipv4_mapped is not None:
        assert text == str(addr.ipv4_mapped)
        assert netip_text(raw) == f"::ffff:{addr.ipv4_mapped}"
    else:
        assert text == addr.compressed == netip_text(raw)  # Python's compression is RFC 5952 too
    assert parse_addr(text) == raw
    assert parse_addr(addr.exploded.upper()) == raw


@given(st.binary(min_size=4, max_size=4))
def test_ipv4_text_round_trips(raw: bytes) -> None:
    text = net_ip_text(raw)
    assert text == str(ipaddress.IPv4Address(raw))
    assert parse_addr(text) == raw
    assert canonical_net_ip(text) == text
