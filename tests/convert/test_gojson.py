"""go_json / go_map: byte-compatibility with Go's encoding/json."""

from __future__ import annotations

import json
from typing import Any

import pytest
from _go_json_reference import go_marshal
from hypothesis import given
from hypothesis import strategies as st

from apiserver.convert import ConversionError, go_json, go_map


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        pytest.param({"a": 1, "b": [True, False, None]}, b'{"a":1,"b":[true,false,null]}', id="compact"),
        pytest.param({"z": 1, "a": 2}, b'{"z":1,"a":2}', id="struct-keeps-field-order"),
        pytest.param({}, b"{}", id="empty-object"),
        pytest.param([], b"[]", id="empty-array"),
        pytest.param("<a&b>", b'"\\u003ca\\u0026b\\u003e"', id="html-escapes"),
        pytest.param("\u2028\u2029", b'"\\u2028\\u2029"', id="line-separators"),
        pytest.param("\b\f\n\r\t", b'"\\b\\f\\n\\r\\t"', id="short-control-escapes"),
        pytest.param("\x00\x01\x1f", b'"\\u0000\\u0001\\u001f"', id="other-control-chars"),
        pytest.param("\x7f", b'"\x7f"', id="del-is-raw"),
        pytest.param('q"b\\', b'"q\\"b\\\\"', id="quote-backslash"),
        pytest.param("é✓😀", "\"é✓😀\"".encode(), id="non-ascii-raw-utf8"),
        pytest.param("/", b'"/"', id="slash-not-escaped"),
        pytest.param({"<k>": "v"}, b'{"\\u003ck\\u003e":"v"}', id="escapes-in-keys"),
        pytest.param([-(1 << 63), (1 << 64) - 1], b"[-9223372036854775808,18446744073709551615]", id="64-bit-ints"),
        pytest.param("a\ud800b", "\"a\ufffdb\"".encode(), id="lone-surrogate-becomes-fffd"),
        pytest.param({"k\udfff": ["\ud83d\ude00"]}, '{"k\ufffd":["😀"]}'.encode(), id="surrogates-in-keys-and-pairs"),
    ],
)
def test_go_json_table(value: Any, expected: bytes) -> None:
    assert go_json(value) == expected
    assert go_marshal(value) == expected  # the reference agrees on every row


def test_go_json_rejects_unencodable_values() -> None:
    with pytest.raises(ConversionError):
        go_json({"n": 1 << 70})


def test_go_map_sorts_by_key_bytes() -> None:
    d = {"b": 1, "a": 2, "B": 3, "é": 4, "z": 5, "": 6, "😀": 7, "\uffff": 8}
    assert list(go_map(d)) == ["", "B", "a", "b", "z", "é", "\uffff", "😀"]
    assert go_map(d) == d


# ----- properties against the slow reference ----- #

_text = st.text(alphabet=st.characters(codec="utf-8"), max_size=20) | st.sampled_from(
    ["<", ">", "&", "\u2028", "\u2029", "\x00", "\x7f", "\b", '"', "\\", "é"]
)
_scalars = st.none() | st.booleans() | st.integers(-(1 << 63), (1 << 64) - 1) | _text
_values = st.recursive(
    _scalars,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(_text, children, max_size=5),
    max_leaves=30,
)


@given(_values)
def test_go_json_matches_reference(value: Any) -> None:
    assert go_json(value) == go_marshal(value)


@given(_values)
def test_go_json_is_valid_json_for_the_same_value(value: Any) -> None:
    assert json.loads(go_json(value)) == value


@given(st.dictionaries(_text, st.integers(), max_size=20))
def test_go_map_order_is_utf8_byte_order(d: dict[str, int]) -> None:
    assert list(go_map(d)) == sorted(d, key=lambda k: k.encode())
