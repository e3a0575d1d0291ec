"""Kubernetes ``Status`` failures, raised anywhere in the emulator and rendered by the HTTP layer.

Messages, reasons and ``details`` follow kube-apiserver's wording so that clients (kubectl,
kubernetes-asyncio) print and classify them exactly as they would against a real cluster.
"""

from __future__ import annotations

from typing import Any

from localmesh.kubesim._resources import ResourceType

REASONS: dict[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "Conflict",
    410: "Expired",
    415: "UnsupportedMediaType",
    422: "Invalid",
    429: "TooManyRequests",
    500: "InternalError",
    503: "ServiceUnavailable",
    504: "Timeout",
}

_GENERIC_MESSAGES: dict[int, str] = {
    429: "Too many requests, please try again later.",
    500: "Internal error occurred: injected fault",
    503: "the server is currently unable to handle the request",
    504: "the server was unable to return a response in the time allotted, but may still be "
         "processing the request",
}


class KubeError(Exception):
    """A failed request, carried to the client as a ``Status`` object with ``code``."""

    def __init__(self, code: int, reason: str, message: str, details: dict[str, Any] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.details = details
        self.headers = headers or {}

    def status(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
        }
        if self.details:
            doc["details"] = self.details
        doc["code"] = self.code
        return doc


def _details(rt: ResourceType, name: str) -> dict[str, Any]:
    d: dict[str, Any] = {"name": name}
    if rt.group:
        d["group"] = rt.group
    d["kind"] = rt.plural
    return d


def not_found(rt: ResourceType, name: str) -> KubeError:
    return KubeError(404, "NotFound", f'{rt.group_resource} "{name}" not found', _details(rt, name))


def namespace_not_found(name: str) -> KubeError:
    return KubeError(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})


def path_not_found() -> KubeError:
    return KubeError(404, "NotFound", "the server could not find the requested resource",
                     {"causes": [{"reason": "UnexpectedServerResponse", "message": "404 page not found"}]})


def already_exists(rt: ResourceType, name: str) -> KubeError:
    return KubeError(409, "AlreadyExists", f'{rt.group_resource} "{name}" already exists', _details(rt, name))


def conflict(rt: ResourceType, name: str, why: str = "the object has been modified; please apply your "
             "changes to the latest version and try again") -> KubeError:
    return KubeError(409, "Conflict", f'Operation cannot be fulfilled on {rt.group_resource} "{name}": {why}',
                     _details(rt, name))


def invalid(rt: ResourceType, name: str, field: str, cause_reason: str, detail: str) -> KubeError:
    """422 with one field cause, e.g. ``metadata.name: Required value: name or generateName is required``."""
    details = {"name": name, "group": rt.group, "kind": rt.kind,
               "causes": [{"reason": cause_reason, "message": detail, "field": field}]}
    if not rt.group:
        del details["group"]
    return KubeError(422, "Invalid", f'{rt.group_kind} "{name}" is invalid: {field}: {detail}', details)


def bad_request(message: str) -> KubeError:
    return KubeError(400, "BadRequest", message)


def method_not_allowed(method: str) -> KubeError:
    return KubeError(405, "MethodNotAllowed", f"the server does not allow this method on the requested "
                     f"resource ({method})")


def unsupported_media_type(content_type: str) -> KubeError:
    return KubeError(415, "UnsupportedMediaType", f'the body of the request was in an unknown format - '
                     f'accepted media types include: application/json-patch+json, application/merge-patch+json, '
                     f'application/apply-patch+yaml, application/strategic-merge-patch+json (got "{content_type}")')


def expired(message: str) -> KubeError:
    return KubeError(410, "Expired", message)


def too_old_resource_version(requested: int, oldest: int) -> KubeError:
    return expired(f"too old resource version: {requested} ({oldest})")


def too_large_resource_version(requested: int, current: int) -> KubeError:
    return KubeError(504, "Timeout", f"Too large resource version: {requested}, current: {current}",
                     {"causes": [{"reason": "ResourceVersionTooLarge",
                                  "message": "Too large resource version"}], "retryAfterSeconds": 1})


def generic(code: int, message: str | None = None) -> KubeError:
    """A failure with only a status code (fault injection)."""
    reason = REASONS.get(code, "Unknown")
    headers = {"Retry-After": "1"} if code in (429, 503) else None
    details = {"retryAfterSeconds": 1} if code in (429, 503) else None
    return KubeError(code, reason, message or _GENERIC_MESSAGES.get(code, f"injected fault ({code})"),
                     details, headers)
