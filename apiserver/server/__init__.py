"""HTTP servers beside the data flow: health probes, Prometheus metrics, small REST APIs.

They read state the other modules publish (callables passed in); they never drive the data flow.
"""

from apiserver.server._http import HttpServer, parse_listen_address
from apiserver.server.health import HealthServer
from apiserver.server.metrics import MetricsServer

__all__ = ["HealthServer", "HttpServer", "MetricsServer", "parse_listen_address"]
