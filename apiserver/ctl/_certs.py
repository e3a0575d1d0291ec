"""The mesh's certificates as Kubernetes Secrets: the CA ``cilium-ca`` and the four leaf certificates
with upstream's names, CNs and SANs (``templates/clustermesh-apiserver/tls-helm/*``), made with the
product's PKI (``apiserver.security.pki``). Pure apart from key generation.

authMode ``migration`` (the chart's default): the remote certificate's CN is ``remote``, which every
mesh etcd knows (``etcdinit``), while ``connect`` also lists a ``remote-<peer>`` user per peer in
``clustermesh-remote-users`` for a later switch to authMode ``cluster``. ``remote`` keeps unicast
connections working, where the peer does not list the connecting cluster.
"""

from __future__ import annotations

import base64
import datetime as dt
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from apiserver.ctl._errors import CtlError
from apiserver.ctl._names import (
    ADMIN_SECRET,
    CA_CERT_KEY,
    CA_KEY_KEY,
    CA_SECRET,
    LOCAL_SECRET,
    MANAGED_BY,
    MANAGED_BY_LABEL,
    REMOTE_SECRET,
    SERVER_SECRET,
)
from apiserver.security.devpki import CA_CN, DEFAULT_VALIDITY_DAYS, SERVER_CN, server_sans
from apiserver.security.pki import CertKey, generate_ca, issue_cert
from apiserver.security.roles import REMOTE_USER, admin_user, local_user


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def _secret(name: str, namespace: str, data: Mapping[str, bytes], kind: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Secret", "type": kind,
            "metadata": {"name": name, "namespace": namespace, "labels": {MANAGED_BY_LABEL: MANAGED_BY}},
            "data": {k: _b64(v) for k, v in data.items()}}


def new_ca() -> CertKey:
    return generate_ca(CA_CN, not_after=dt.datetime.now(dt.UTC) + dt.timedelta(days=DEFAULT_VALIDITY_DAYS))


def ca_secret(ca: CertKey, namespace: str) -> dict[str, Any]:
    return _secret(CA_SECRET, namespace, {CA_CERT_KEY: ca.cert_pem(), CA_KEY_KEY: ca.key_pem()}, "Opaque")


def ca_from_secret_data(secret: Mapping[str, Any]) -> CertKey:
    """The CA (certificate and key) of an existing ``cilium-ca``; a CA without its key cannot sign."""
    data = secret.get("data") or {}
    cert_b64 = data.get(CA_CERT_KEY) or data.get("tls.crt")
    key_b64 = data.get(CA_KEY_KEY) or data.get("tls.key")
    if not cert_b64 or not key_b64:
        raise CtlError(f'secret "{CA_SECRET}" has no CA certificate and key (ca.crt, ca.key)',
                       f"delete Secret {CA_SECRET} to have a new CA made, or add its key")
    try:
        cert = x509.load_pem_x509_certificate(base64.b64decode(cert_b64))
        key = serialization.load_pem_private_key(base64.b64decode(key_b64), password=None)
    except ValueError as exc:
        raise CtlError(f'secret "{CA_SECRET}" holds an unreadable CA: {exc}',
                       f"delete Secret {CA_SECRET} to have a new CA made") from None
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise CtlError(f'secret "{CA_SECRET}": only EC CA keys are supported', "use an EC P-256 CA")
    return CertKey(cert, key)


def leaf_names(cluster: str) -> dict[str, str]:
    """Secret name -> certificate CN."""
    return {SERVER_SECRET: SERVER_CN, ADMIN_SECRET: admin_user(cluster),
            REMOTE_SECRET: REMOTE_USER, LOCAL_SECRET: local_user(cluster)}


def leaf_secret(ca: CertKey, name: str, cluster: str, namespace: str) -> dict[str, Any]:
    not_after = dt.datetime.now(dt.UTC) + dt.timedelta(days=DEFAULT_VALIDITY_DAYS)
    cn = leaf_names(cluster)[name]
    if name == SERVER_SECRET:
        leaf = issue_cert(ca, cn, server_sans(namespace), server=True, client=True, not_after=not_after)
    else:
        leaf = issue_cert(ca, cn, client=True, not_after=not_after)
    return _secret(name, namespace, {"ca.crt": ca.cert_pem(), "tls.crt": leaf.cert_pem(),
                                     "tls.key": leaf.key_pem()}, "kubernetes.io/tls")


def leaf_is_current(secret: Mapping[str, Any] | None, ca: CertKey, cn: str) -> bool:
    """An existing leaf Secret still fits: same CA, same CN, not expiring within 30 days."""
    if secret is None:
        return False
    data = secret.get("data") or {}
    try:
        # ca.crt may be a bundle of the mesh's CAs (connect --allow-mismatching-ca): it must hold ours.
        if ca.cert_pem() not in base64.b64decode(data.get("ca.crt", "")):
            return False
        cert = x509.load_pem_x509_certificate(base64.b64decode(data.get("tls.crt", "")))
    except ValueError:
        return False
    names = cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)
    remaining = cert.not_valid_after_utc - dt.datetime.now(dt.UTC)
    return bool(names) and names[0].value == cn and remaining > dt.timedelta(days=30)
