"""Prometheus metrics with upstream names and labels.

One ``Metrics`` per process, on its own registry. The namespace is
``cilium_clustermesh_apiserver`` for the exporter and ``cilium_kvstoremesh`` for KVStoreMesh.
Modules receive the ``Metrics`` object; none of them creates metrics of its own.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
)

from apiserver import __version__

APISERVER_NAMESPACE = "cilium_clustermesh_apiserver"
KVSTOREMESH_NAMESPACE = "cilium_kvstoremesh"

# Go client_golang emits no *_created series; neither do we.
disable_created_metrics()  # type: ignore[no-untyped-call]

_LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def kvstore_scope(key: str) -> str:
    """Upstream's ``GetScopeFromKey``: elements 3 and 4 of the key joined by ``/``.

    ``cilium/state/nodes/v1/c1/n`` -> ``nodes/v1``; keys with fewer than 4 elements give
    their first 12 characters.
    """
    parts = key.split("/", 4)
    if len(parts) >= 4:
        return f"{parts[2]}/{parts[3]}"
    return key[:12]


class Metrics:
    def __init__(self, namespace: str = APISERVER_NAMESPACE, registry: CollectorRegistry | None = None):
        self.namespace = namespace
        self.registry = registry if registry is not None else CollectorRegistry(auto_describe=True)
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            try:
                self.registry.register(collector)
            except ValueError:  # already registered on a shared registry
                pass
        ns, reg = namespace, self.registry

        self.version = Gauge("version", "Build version", ["version", "revision", "arch"], namespace=ns,
                             registry=reg)
        self.version.labels(__version__, "python", platform.machine()).set(1)
        self.bootstrap_seconds = Gauge(
            "bootstrap_seconds", "Duration in seconds to complete bootstrap", ["source_cluster"],
            namespace=ns, registry=reg)
        self.kvstore_operations_duration_seconds = Histogram(
            "kvstore_operations_duration_seconds", "Duration in seconds of kvstore operations",
            ["scope", "kind", "action", "outcome"], namespace=ns, registry=reg, buckets=_LATENCY_BUCKETS)
        self.kvstore_events_queue_seconds = Histogram(
            "kvstore_events_queue_seconds", "Seconds waited before a received event was queued",
            ["scope", "action"], namespace=ns, registry=reg, buckets=_LATENCY_BUCKETS)
        self.kvstore_quorum_errors_total = Counter(
            "kvstore_quorum_errors", "Number of quorum errors", ["error"], namespace=ns, registry=reg)
        self.kvstore_sync_queue_size = Gauge(
            "kvstore_sync_queue_size", "Number of elements queued for synchronization in the kvstore",
            ["scope", "source_cluster"], namespace=ns, registry=reg)
        self.kvstore_sync_errors_total = Counter(
            "kvstore_sync_errors", "Number of times synchronization to the kvstore failed",
            ["scope", "source_cluster"], namespace=ns, registry=reg)
        self.kvstore_initial_sync_completed = Gauge(
            "kvstore_initial_sync_completed", "Whether the initial synchronization from/to the kvstore "
            "has completed", ["scope", "source_cluster", "action"], namespace=ns, registry=reg)
        # Beyond upstream: what we refused to export, and what we cleaned up after a restart.
        self.malformed_objects_total = Counter(
            "malformed_objects", "Kubernetes objects or kvstore values skipped because they could not be "
            "converted", ["resource", "reason"], namespace=ns, registry=reg)
        self.kvstore_values_too_large_total = Counter(
            "kvstore_values_too_large", "Values not written because etcd refuses a request of their size",
            ["scope", "source_cluster"], namespace=ns, registry=reg)
        self.kvstore_keys_restored_total = Counter(
            "kvstore_keys_restored", "Keys (and canaries) written back after someone else deleted or "
            "overwrote them", ["scope"], namespace=ns, registry=reg)
        self.kvstore_writes_refused_nospace_total = Counter(
            "kvstore_writes_refused_nospace", "Keys whose write etcd refused for lack of space (NOSPACE); "
            "each is retried", ["scope"], namespace=ns, registry=reg)
        self.kvstore_nospace_alarm = Gauge(
            "kvstore_nospace_alarm", "1 while etcd's NOSPACE alarm is raised (writes refused)",
            namespace=ns, registry=reg)
        self.stale_keys_deleted_total = Counter(
            "kvstore_stale_keys_deleted", "Keys left over from a previous run deleted after the initial "
            "sync", ["scope"], namespace=ns, registry=reg)
        self.kube_requests_total = Counter(
            "kube_requests", "List pages and watch requests sent to the Kubernetes API",
            ["resource", "verb"], namespace=ns, registry=reg)
        self.kube_errors_total = Counter(
            "kube_errors", "Failed Kubernetes API list/watch requests (retried with back-off)",
            ["resource", "verb", "reason"], namespace=ns, registry=reg)
        # The etcd client's rate limiter (upstream pkg/rate: api_call "etcd"). Gauges by ``value``:
        # processing/wait "mean" over the last 10 requests, "estimated"/"min"/"max" (not configurable
        # for the kvstore limiter: 0), "in-flight"/"limit", rate "limit"/"burst" (0: no limit).
        self.api_limiter_processing_duration_seconds = Gauge(
            "api_limiter_processing_duration_seconds", "Mean and estimated processing duration in seconds",
            ["api_call", "value"], namespace=ns, registry=reg)
        self.api_limiter_wait_duration_seconds = Gauge(
            "api_limiter_wait_duration_seconds", "Mean, min, and max wait duration", ["api_call", "value"],
            namespace=ns, registry=reg)
        self.api_limiter_requests_in_flight = Gauge(
            "api_limiter_requests_in_flight", "Current and maximum allowed number of requests in flight",
            ["api_call", "value"], namespace=ns, registry=reg)
        self.api_limiter_rate_limit = Gauge(
            "api_limiter_rate_limit", "Current rate limiting configuration (limit and burst)",
            ["api_call", "value"], namespace=ns, registry=reg)
        self.api_limiter_adjustment_factor = Gauge(
            "api_limiter_adjustment_factor", "Most recent adjustment factor for automatic adjustment",
            ["api_call"], namespace=ns, registry=reg)
        self.api_limiter_processed_requests_total = Counter(
            "api_limiter_processed_requests", "Total number of API requests processed",
            ["api_call", "outcome", "return_code"], namespace=ns, registry=reg)
        # KVStoreMesh only (registered for both; they stay empty in the exporter).
        self.remote_clusters = Gauge(
            "remote_clusters", "The total number of remote clusters meshed with the local cluster",
            namespace=ns, registry=reg)
        self.remote_cluster_readiness_status = Gauge(
            "remote_cluster_readiness_status", "The readiness status of the remote cluster",
            ["target_cluster"], namespace=ns, registry=reg)
        self.remote_cluster_failures = Gauge(
            "remote_cluster_failures", "The total number of failures related to the remote cluster",
            ["target_cluster"], namespace=ns, registry=reg)
        self.remote_cluster_last_failure_ts = Gauge(
            "remote_cluster_last_failure_ts", "The timestamp of the last failure of the remote cluster",
            ["target_cluster"], namespace=ns, registry=reg)


class KubeRequestMetrics:
    """The reflectors' ``ReflectorMetrics`` hook, backed by Prometheus counters."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    def request(self, resource: str, verb: str) -> None:
        self._metrics.kube_requests_total.labels(resource, verb).inc()

    def error(self, resource: str, verb: str, reason: str) -> None:
        self._metrics.kube_errors_total.labels(resource, verb, reason).inc()


@dataclass(frozen=True, slots=True)
class LimiterValues:
    """What a rate limiter reports to ``ApiLimiterMetrics`` (upstream's ``rate.MetricsValues``, less
    its auto-adjustment)."""

    mean_processing_seconds: float
    mean_wait_seconds: float
    in_flight: int
    max_inflight: int  # 0: no cap
    rate: float  # operations/s now allowed; 0: no token bucket
    burst: int  # 0: no token bucket
    outcome: str | None  # of the request just finished; None for a configuration change


class ApiLimiterMetrics:
    """A rate limiter's observer (``APILimiter.observe``) writing the ``api_limiter_*`` series of
    one ``api_call`` (upstream names the kvstore's ``etcd``). Called once per etcd write: the
    series are resolved once, here, and the values the kvstore limiter never changes (estimated
    processing, min/max wait, adjustment factor: upstream's kvstore sets none of them) written once."""

    # Upstream derives the code from the outcome when the caller gives none, as its kvstore does.
    # [UNCONFIRMED: the mapping's exact values; 200/500 follow the HTTP meaning of the outcomes.]
    _RETURN_CODES = {"success": "200", "fail": "500"}

    def __init__(self, metrics: Metrics, api_call: str = "etcd") -> None:
        processing, wait = metrics.api_limiter_processing_duration_seconds, metrics.api_limiter_wait_duration_seconds
        in_flight, rate = metrics.api_limiter_requests_in_flight, metrics.api_limiter_rate_limit
        self._mean_processing = processing.labels(api_call, "mean")
        self._mean_wait = wait.labels(api_call, "mean")
        self._in_flight = in_flight.labels(api_call, "in-flight")
        self._in_flight_limit = in_flight.labels(api_call, "limit")
        self._rate = rate.labels(api_call, "limit")
        self._burst = rate.labels(api_call, "burst")
        self._processed = {outcome: metrics.api_limiter_processed_requests_total.labels(api_call, outcome, code)
                           for outcome, code in self._RETURN_CODES.items()}
        for constant in (processing.labels(api_call, "estimated"), wait.labels(api_call, "min"),
                         wait.labels(api_call, "max"), metrics.api_limiter_adjustment_factor.labels(api_call)):
            constant.set(0)

    def __call__(self, values: LimiterValues) -> None:
        self._mean_processing.set(values.mean_processing_seconds)
        self._mean_wait.set(values.mean_wait_seconds)
        self._in_flight.set(values.in_flight)
        self._in_flight_limit.set(values.max_inflight)
        self._rate.set(values.rate)
        self._burst.set(values.burst)
        if values.outcome is not None:
            self._processed[values.outcome].inc()
