"""Go-style flag parsing: upstream's container arguments must parse unchanged."""

from __future__ import annotations

import argparse

import pytest

from apiserver.goflags import go_bool, go_duration, key_value


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        pytest.param("15m", 900.0, id="minutes"),
        pytest.param("0s", 0.0, id="zero-seconds"),
        pytest.param("0", 0.0, id="bare-zero"),
        pytest.param("1h30m", 5400.0, id="compound"),
        pytest.param("1.5s", 1.5, id="fraction"),
        pytest.param("250ms", 0.25, id="millis"),
        pytest.param("-2s", -2.0, id="negative"),
    ],
)
def test_go_duration(text: str, seconds: float) -> None:
    assert go_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "15", "m", "15x", "1h 30m", "s15"])
def test_go_duration_refuses_garbage(text: str) -> None:
    with pytest.raises(argparse.ArgumentTypeError, match="invalid duration"):
        go_duration(text)


@pytest.mark.parametrize(("text", "value"), [("true", True), ("True", True), ("1", True), ("t", True),
                                             ("false", False), ("F", False), ("0", False)])
def test_go_bool(text: str, value: bool) -> None:
    assert go_bool(text) is value


def test_go_bool_refuses_yes() -> None:
    with pytest.raises(argparse.ArgumentTypeError):
        go_bool("yes")


def test_key_value_keeps_equals_in_value() -> None:
    assert key_value("etcd.config=/a=b") == ("etcd.config", "/a=b")
    with pytest.raises(argparse.ArgumentTypeError):
        key_value("novalue")
