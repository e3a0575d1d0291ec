"""The kubelet's pure parts: $(VAR) expansion, the atomic writer's layout, image names, probe ports,
kube-apiserver's graceful pod deletion rule."""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import os
from pathlib import Path

import pytest

from localmesh.kubelet._atomic import FileProjection, write_atomic
from localmesh.kubelet._config import IMAGE_REPOSITORY, image_repository
from localmesh.kubelet._expand import expand
from localmesh.kubelet._probes import ProbeSpec, resolve_port, run_probe
from localmesh.kubesim._objects import graceful_pod_deletion

ENV = {"A": "alpha", "EMPTY": "", "B": "$(A)"}


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("$(A)", "alpha", id="defined"),
    pytest.param("x$(A)y$(A)", "xalphayalpha", id="twice"),
    pytest.param("$(NOPE)", "$(NOPE)", id="undefined-kept"),
    pytest.param("$$(A)", "$(A)", id="escaped"),
    pytest.param("$$$(A)", "$alpha", id="escaped-then-defined"),
    pytest.param("$$", "$", id="double-dollar"),
    pytest.param("$(A", "$(A", id="unclosed"),
    pytest.param("$A", "$A", id="no-parens"),
    pytest.param("a$", "a$", id="trailing-dollar"),
    pytest.param("$(EMPTY)x", "x", id="empty-value"),
    pytest.param("$(B)", "$(A)", id="not-recursive"),
    pytest.param("$()", "$()", id="empty-name"),
])
def test_expand(text: str, expected: str) -> None:
    assert expand(text, ENV) == expected


@pytest.mark.parametrize(("image", "repository"), [
    pytest.param(f"{IMAGE_REPOSITORY}:v0.1.0", IMAGE_REPOSITORY, id="tag"),
    pytest.param(f"{IMAGE_REPOSITORY}@sha256:ab", IMAGE_REPOSITORY, id="digest"),
    pytest.param("registry:5000/x/y:1@sha256:ab", "registry:5000/x/y", id="port-tag-digest"),
    pytest.param("registry:5000/x/y", "registry:5000/x/y", id="port-no-tag"),
    pytest.param("nginx", "nginx", id="bare"),
])
def test_image_repository(image: str, repository: str) -> None:
    assert image_repository(image) == repository


def test_atomic_writer_layout_and_swap(tmp_path: Path) -> None:
    t1 = dt.datetime(2026, 12, 3, 13, 0, 0, 1, tzinfo=dt.UTC)
    assert write_atomic(tmp_path, {"a": FileProjection(b"1", 0o400), "d/b": FileProjection(b"2")}, now=t1)
    assert os.readlink(tmp_path / "..data") == "..2026_12_03_13_00_00.000001"
    assert os.readlink(tmp_path / "a") == "..data/a" and os.readlink(tmp_path / "d") == "..data/d"
    assert (tmp_path / "d" / "b").read_bytes() == b"2"
    assert (tmp_path / "a").stat().st_mode & 0o777 == 0o400
    assert not write_atomic(tmp_path, {"a": FileProjection(b"1", 0o400), "d/b": FileProjection(b"2")})
    t2 = t1 + dt.timedelta(seconds=1)
    assert write_atomic(tmp_path, {"a": FileProjection(b"new", 0o400)}, now=t2)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["..2026_12_03_13_00_01.000001", "..data", "a"]
    assert (tmp_path / "a").read_bytes() == b"new"
    with pytest.raises(ValueError, match="invalid volume file path"):
        write_atomic(tmp_path, {"../escape": FileProjection(b"x")})


def test_probe_port_by_number_or_name() -> None:
    container = {"ports": [{"name": "health", "containerPort": 9880}]}
    assert resolve_port(9880, container) == 9880
    assert resolve_port("9881", container) == 9881
    assert resolve_port("health", container) == 9880
    with pytest.raises(ValueError, match="no container port"):
        resolve_port("metrics", container)


def _pod(**spec: object) -> dict:  # type: ignore[type-arg]
    return {"metadata": {"name": "p"}, "spec": {"nodeName": "n1", **spec}, "status": {"phase": "Running"}}


def test_graceful_pod_deletion() -> None:
    marked = graceful_pod_deletion(_pod(terminationGracePeriodSeconds=5), None)
    assert marked is not None and marked[1] and marked[0]["metadata"]["deletionGracePeriodSeconds"] == 5
    # a later, longer grace keeps the first mark; a shorter one replaces it
    again = graceful_pod_deletion(marked[0], 30)
    assert again is not None and not again[1]
    shorter = graceful_pod_deletion(marked[0], 1)
    assert shorter is not None and shorter[1] and shorter[0]["metadata"]["deletionGracePeriodSeconds"] == 1
    assert graceful_pod_deletion(_pod(), 0) is None  # grace 0: at once
    assert graceful_pod_deletion({"metadata": {"name": "p"}, "spec": {}}, None) is None  # not bound
    done = _pod()
    done["status"]["phase"] = "Succeeded"
    assert graceful_pod_deletion(done, None) is None  # terminal


async def _probe_results(spec: ProbeSpec, outcomes: list[bool], *, initial: bool) -> tuple[list[bool], list[float]]:
    """Run the probe loop over scripted check outcomes with a fake clock: (reported results, sleeps)."""
    reported: list[bool] = []
    sleeps: list[float] = []
    script = iter(outcomes)

    async def check() -> bool:
        return next(script)

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        if len(sleeps) > len(outcomes):
            raise asyncio.CancelledError

    with contextlib.suppress(asyncio.CancelledError, StopIteration, RuntimeError):
        await run_probe(spec, check, reported.append, initial=initial, sleep=sleep)
    return reported, sleeps


async def test_probe_thresholds_and_timings() -> None:
    spec = ProbeSpec.parse({"httpGet": {"port": 1}, "initialDelaySeconds": 5, "periodSeconds": 2,
                            "successThreshold": 2, "failureThreshold": 3})
    reported, sleeps = await _probe_results(spec, [True, True, False, False, True, False, False, False],
                                            initial=False)
    assert reported == [True, False]  # ready after 2 successes; 1 failure between does not count
    assert sleeps[0] == 5 and set(sleeps[1:]) == {2}
    # liveness starts as success: the first report comes from the first failureThreshold failures
    live = ProbeSpec.parse({"exec": {"command": ["x"]}, "failureThreshold": 1})
    assert live.period == 10 and live.timeout == 1 and live.success_threshold == 1  # API defaults
    reported, _ = await _probe_results(live, [True, False], initial=True)
    assert reported == [True, False]
