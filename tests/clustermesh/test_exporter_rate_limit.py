"""The exporter's etcd rate limiter: upstream's options when given, no token bucket when not."""

from __future__ import annotations

import pytest

from apiserver.clustermesh.main import rate_limiter


@pytest.mark.parametrize(("opts", "rate", "bootstrap", "max_inflight"), [
    pytest.param({}, None, False, None, id="unset-no-token-bucket"),
    pytest.param({"etcd.maxInflight": "3"}, None, False, 3, id="unset-qps-keeps-max-inflight"),
    pytest.param({"etcd.qps": "20"}, 20, False, 20, id="upstream-qps"),
    pytest.param({"etcd.qps": "20", "etcd.bootstrapQps": "10000"}, 10000, True, 20, id="helm-defaults"),
])
def test_rate_limiter_from_options(opts: dict[str, str], rate: float | None, bootstrap: bool,
                                   max_inflight: int | None) -> None:
    limiter = rate_limiter(opts)
    assert limiter.rate == rate
    assert limiter.bootstrapping is bootstrap
    assert limiter.max_inflight == max_inflight


def test_rate_limiter_rejects_garbage() -> None:
    with pytest.raises(ValueError, match=r"etcd\.qps"):
        rate_limiter({"etcd.qps": "fast"})
