"""Names cilium-cli and the Helm chart use for the mesh's Kubernetes objects
(``cilium-cli/defaults/defaults.go``, ``install/kubernetes/cilium/templates/clustermesh-*``). Pure."""

from __future__ import annotations

DEFAULT_NAMESPACE = "kube-system"
FIELD_MANAGER = "clustermeshctl"
# Set on every object ``enable``/``connect`` create, so ``disable`` removes exactly those.
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY = "clustermeshctl"

CONFIGMAP = "cilium-config"
SERVICE = "clustermesh-apiserver"
DEPLOYMENT = "clustermesh-apiserver"
SERVICE_ACCOUNT = "clustermesh-apiserver"
CLUSTER_ROLE = "clustermesh-apiserver"
METRICS_SERVICE = "clustermesh-apiserver-metrics"
AGENT_DAEMONSET = "cilium"

APISERVER_CONTAINER = "apiserver"
KVSTOREMESH_CONTAINER = "kvstoremesh"
ETCD_CONTAINER = "etcd"
AGENT_CONTAINER = "cilium-agent"

AGENT_SELECTOR = "k8s-app=cilium"
APISERVER_SELECTOR = "k8s-app=clustermesh-apiserver"
APISERVER_LABELS = {"k8s-app": "clustermesh-apiserver", "app.kubernetes.io/part-of": "cilium",
                    "app.kubernetes.io/name": "clustermesh-apiserver"}

CA_SECRET = "cilium-ca"
CA_CERT_KEY = "ca.crt"
CA_KEY_KEY = "ca.key"
SERVER_SECRET = "clustermesh-apiserver-server-cert"
ADMIN_SECRET = "clustermesh-apiserver-admin-cert"
REMOTE_SECRET = "clustermesh-apiserver-remote-cert"
LOCAL_SECRET = "clustermesh-apiserver-local-cert"
CERT_SECRETS = (SERVER_SECRET, ADMIN_SECRET, REMOTE_SECRET, LOCAL_SECRET)

AGENTS_SECRET = "cilium-clustermesh"  # the agents' config directory
KVSTOREMESH_SECRET = "cilium-kvstoremesh"  # KVStoreMesh's config directory
USERS_CONFIGMAP = "clustermesh-remote-users"
USERS_KEY = "users.yaml"

MESH_DOMAIN = "mesh.cilium.io"
APISERVER_PORT = 2379
NODEPORT = 32379
CONFIG_DIR = "/var/lib/cilium/clustermesh"

KVSTOREMESH_STATUS_COMMAND = ("/usr/bin/clustermesh-apiserver", "kvstoremesh-dbg", "status", "-o", "json")
KVSTOREMESH_TROUBLESHOOT = "/usr/bin/clustermesh-apiserver kvstoremesh-dbg troubleshoot"
AGENT_STATUS_COMMAND = ("cilium-dbg", "status", "-o", "json")
# Agents of the local runtime have no cilium-dbg: the same ClusterMesh section comes from agent-dbg.
AGENT_STATUS_FALLBACK = ("clustermesh-apiserver", "agent-dbg", "status", "-o", "json")
AGENT_TROUBLESHOOT = "cilium-dbg troubleshoot clustermesh"

CONNECTION_MODES = ("unicast", "bidirectional", "mesh")
SERVICE_TYPES = ("LoadBalancer", "NodePort")

# U+2139 U+FE0F, written as escapes (the character looks like a letter i).
INFO = "\u2139\ufe0f"
