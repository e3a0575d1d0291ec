"""The protobuf codec: wire primitives, Go's JSON shape of decoded messages, round trips, and the HTTP
surface (decoding bodies, 400/406/415 answers, protobuf responses for clients that accept only it)."""

from __future__ import annotations

import asyncio
import base64
import copy
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import pytest_asyncio

from localmesh.kubesim import KubeSim
from localmesh.kubesim._protobuf import CODEC, KINDS, MAGIC, ProtobufError, unwrap, wants_protobuf, wrap
from localmesh.kubesim._protobuf import _wire as wire

PB = "application/vnd.kubernetes.protobuf"
# Bodies written by kubectl 1.37 (Go's gogo-generated marshallers), taken from its -v=9 log.
KUBECTL_SECRET = bytes.fromhex(
    "6b3873000a0c0a0276311206536563726574121d0a110a017812001a0022002a0032003800420012060a01611201621a001a002200")
KUBECTL_CONFIGMAP = bytes.fromhex(
    "6b3873000a0f0a0276311209436f6e6669674d6170121c0a120a02633912001a0022002a0032003800420012060a01781201791a002200")
KUBECTL_DEPLOYMENT = bytes.fromhex(
    "6b3873000a150a07617070732f7631120a4465706c6f796d656e7412b5010a1b0a016412001a0022002a0032003800420"
    "05a080a036170701201641287010802120a0a080a036170701201641a6f0a1a0a0012001a0022002a003200380042005a"
    "080a03617070120164125112330a0179120d717561792e696f2f782f793a312a00320b0a00100018cb1222002a00420"
    "06a007200800100880100900100a201001a00320042004a0052005800600068008201008a01009a0100c2010022020a"
    "00280038001a0c0800100018002000280038001a002200")

KUBECTL_SERVICE = bytes.fromhex(
    "6b3873000a0d0a02763112075365727669636512650a1d0a026e7012001a0022002a003200380042005a090a0361707012026e7012400a"
    "1b0a0738302d38303830120354435018502207080010903f1a00280012090a0361707012026e701a0022084e6f6465506f72743a004200"
    "52005a00600068001a020a001a002200")
KUBECTL_NAMESPACE = bytes.fromhex(
    "6b3873000a0f0a02763112094e616d657370616365121c0a140a046d65736812001a0022002a0032003800420012001a020a001a002200")
KUBECTL_PDB = bytes.fromhex(
    "6b3873000a200a09706f6c6963792f76311213506f6444697372757074696f6e427564676574123a0a130a0370646212001a0022002a00"
    "3200380042001217120a0a080a036170701201781a09080110001a033530251a0a080018002000280030001a002200")
KUBECTL_CLUSTERROLE = bytes.fromhex(
    "6b3873000a2b0a1c726261632e617574686f72697a6174696f6e2e6b38732e696f2f7631120b436c7573746572526f6c6512290a120a02"
    "637212001a0022002a0032003800420012130a036765740a046c69737412001a04706f64731a002200")

Obj = dict[str, Any]


def _decode(body: bytes) -> tuple[str, str, Obj]:
    envelope = unwrap(body)
    return envelope.api_version, envelope.kind, CODEC.decode(KINDS[(envelope.api_version, envelope.kind)],
                                                             envelope.raw)


# -- wire ------------------------------------------------------------------------------------------

@pytest.mark.parametrize(("value", "encoded"), [
    pytest.param(0, "00", id="zero"),
    pytest.param(1, "01", id="one"),
    pytest.param(300, "ac02", id="two-bytes"),
    pytest.param((1 << 63) - 1, "ffffffffffffffff7f", id="max-int64"),
    pytest.param(-1, "ffffffffffffffffff01", id="minus-one-10-bytes"),
    pytest.param(-(1 << 31), "80808080f8ffffffff01", id="min-int32"),
])
def test_varint(value: int, encoded: str) -> None:
    assert wire.varint(value).hex() == encoded
    read, end = wire.read_varint(bytes.fromhex(encoded), 0)
    assert end == len(encoded) // 2
    assert wire.to_signed(read, 64) == value


def test_varint_errors() -> None:
    with pytest.raises(wire.WireError, match="unexpected EOF"):
        wire.read_varint(b"\x80\x80", 0)
    with pytest.raises(wire.WireError, match="overflow"):
        wire.read_varint(b"\xff" * 10 + b"\x01", 0)
    assert wire.to_signed(wire.read_varint(wire.varint(-7), 0)[0], 32) == -7


# -- decoding: Go's JSON of what kubectl sent ---------------------------------------------------------

@pytest.mark.parametrize(("body", "expected"), [
    pytest.param(KUBECTL_SECRET, ("v1", "Secret", {"metadata": {"name": "x"}, "data": {"a": "Yg=="}}),
                 id="secret"),
    pytest.param(KUBECTL_CONFIGMAP, ("v1", "ConfigMap", {"metadata": {"name": "c9"}, "data": {"x": "y"}}),
                 id="configmap"),
    pytest.param(KUBECTL_DEPLOYMENT, ("apps/v1", "Deployment", {
        "metadata": {"name": "d", "labels": {"app": "d"}},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "d"}},
                 "template": {"metadata": {"labels": {"app": "d"}}, "spec": {"containers": [
                     {"name": "y", "image": "quay.io/x/y:1", "ports": [{"containerPort": 2379}],
                      "resources": {}}]}},
                 "strategy": {}},
        "status": {}}), id="deployment"),
    pytest.param(KUBECTL_SERVICE, ("v1", "Service", {
        "metadata": {"name": "np", "labels": {"app": "np"}},
        "spec": {"ports": [{"name": "80-8080", "protocol": "TCP", "port": 80, "targetPort": 8080}],
                 "selector": {"app": "np"}, "type": "NodePort"},
        "status": {"loadBalancer": {}}}), id="service"),
    pytest.param(KUBECTL_NAMESPACE, ("v1", "Namespace", {"metadata": {"name": "mesh"}, "spec": {}, "status": {}}),
                 id="namespace"),
    pytest.param(KUBECTL_PDB, ("policy/v1", "PodDisruptionBudget", {
        "metadata": {"name": "pdb"}, "spec": {"selector": {"matchLabels": {"app": "x"}}, "maxUnavailable": "50%"},
        "status": {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0}}),
                 id="poddisruptionbudget"),
    pytest.param(KUBECTL_CLUSTERROLE, ("rbac.authorization.k8s.io/v1", "ClusterRole", {
        "metadata": {"name": "cr"}, "rules": [{"verbs": ["get", "list"], "apiGroups": [""], "resources": ["pods"]}]}),
                 id="clusterrole"),
])
def test_kubectl_bodies(body: bytes, expected: tuple[str, str, Obj]) -> None:
    # Each decodes to what `kubectl create ... --dry-run=client -o json` prints for the same object ...
    assert _decode(body) == expected
    # ... and encodes back to Go's bytes exactly: protobuf answers are what kube-apiserver would write.
    api_version, kind, doc = expected
    assert wrap(api_version, kind, CODEC.encode(KINDS[(api_version, kind)], doc)) == body


def test_zero_values_follow_go_json() -> None:
    # appsv1.Deployment{} marshals to exactly this: structs stay, `json:"selector"` and `json:"containers"`
    # are null.
    assert CODEC.decode("Deployment", b"") == {
        "metadata": {}, "spec": {"selector": None, "template": {"metadata": {}, "spec": {"containers": None}},
                                 "strategy": {}},
        "status": {}}
    # A pointer is written when set, even to zero; a value with omitempty is not.
    spec = wire.tag(1, wire.VARINT) + wire.varint(0) + wire.tag(5, wire.VARINT) + wire.varint(0)
    assert CODEC.decode("DeploymentSpec", spec)["replicas"] == 0
    assert "minReadySeconds" not in CODEC.decode("DeploymentSpec", spec)
    # Without omitempty, zero scalars are written; a zero Time is null, a zero Quantity "0".
    assert CODEC.decode("ContainerStatus", b"") == {
        "name": "", "state": {}, "lastState": {}, "ready": False, "restartCount": 0, "image": "", "imageID": ""}
    assert CODEC.decode("Condition", b"")["lastTransitionTime"] is None
    assert CODEC.decode("ResourceFieldSelector", b"") == {"resource": "", "divisor": "0"}
    # A nil pointer without omitempty is null (DaemonSetSpec.selector `json:"selector"`).
    assert CODEC.decode("DaemonSetSpec", b"")["selector"] is None
    # creationTimestamp is omitzero: a zero one is not written at all.
    assert CODEC.decode("ObjectMeta", wire.length_delimited(8, b"")) == {}


def test_packed_and_unpacked_repeated_ints_decode_alike() -> None:
    values = [1, 2, 300, -5]
    unpacked = b"".join(wire.tag(4, wire.VARINT) + wire.varint(v) for v in values)
    packed = wire.length_delimited(4, b"".join(wire.varint(v) for v in values))
    assert CODEC.decode("PodSecurityContext", unpacked) == {"supplementalGroups": values}
    assert CODEC.decode("PodSecurityContext", packed) == {"supplementalGroups": values}
    assert CODEC.encode("PodSecurityContext", {"supplementalGroups": values}) == unpacked


def test_maps_sorted_bytes_base64_missing_value() -> None:
    def entry(key: bytes, value: bytes | None) -> bytes:
        body = wire.length_delimited(1, key) + (wire.length_delimited(2, value) if value is not None else b"")
        return wire.length_delimited(2, body)

    data = entry(b"z", b"\x00\xff") + entry(b"a", None) + entry(b"m", b"text")
    decoded = CODEC.decode("Secret", data)["data"]
    assert list(decoded) == ["a", "m", "z"]
    assert decoded == {"a": "", "m": base64.b64encode(b"text").decode(), "z": "AP8="}
    # Encoding writes keys sorted (as gogo does): decode(encode(x)) == x.
    assert CODEC.decode("Secret", CODEC.encode("Secret", {"data": decoded})) == {"metadata": {}, "data": decoded}


def test_merged_occurrences_and_last_scalar_wins() -> None:
    # A message field given twice merges (proto semantics); a scalar given twice keeps the last.
    meta = (wire.length_delimited(1, wire.length_delimited(1, b"first"))
            + wire.length_delimited(1, wire.length_delimited(1, b"second") + wire.length_delimited(3, b"ns")))
    assert CODEC.decode("ConfigMap", meta) == {"metadata": {"name": "second", "namespace": "ns"}}


@pytest.mark.parametrize(("name", "data", "message"), [
    pytest.param("Secret", wire.length_delimited(99, b"x"),
                 "Secret: unknown field number 99 in message Secret", id="unknown-field"),
    pytest.param("Deployment", wire.length_delimited(2, wire.length_delimited(42, b"")),
                 "Deployment.spec: unknown field number 42 in message DeploymentSpec", id="unknown-nested"),
    pytest.param("Secret", wire.tag(3, wire.VARINT) + wire.varint(1),
                 "Secret.type: wrong wire type 0 for field type (Secret field 3)", id="wrong-wire-type"),
    pytest.param("Secret", wire.tag(1, wire.LEN) + wire.varint(10) + b"abc", "Secret: unexpected EOF",
                 id="truncated"),
    pytest.param("Secret", b"\x00", "illegal tag 0", id="tag-zero"),
])
def test_malformed(name: str, data: bytes, message: str) -> None:
    with pytest.raises(ProtobufError) as caught:
        CODEC.decode(name, data)
    assert message in str(caught.value)


# -- round trips of objects in Go's JSON form -----------------------------------------------------------

TIME = "2026-01-02T03:04:05Z"
POD_SPEC: Obj = {
    "volumes": [
        {"name": "etcd-data", "emptyDir": {"medium": "Memory", "sizeLimit": "256Mi"}},
        {"name": "certs", "projected": {"sources": [
            {"secret": {"name": "ca", "items": [{"key": "ca.crt", "path": "common-etcd-client-ca.crt"}],
                        "optional": True}},
            {"configMap": {"name": "cfg", "items": [{"key": "a", "path": "b", "mode": 0o400}]}},
            {"serviceAccountToken": {"expirationSeconds": 3600, "path": "token"}}], "defaultMode": 0o400}},
        {"name": "secret", "secret": {"secretName": "s", "defaultMode": 420}},
        {"name": "cm", "configMap": {"name": "cfg", "optional": False}},
    ],
    "initContainers": [{"name": "etcd-init", "image": "img", "command": ["/usr/bin/clustermesh-apiserver"],
                        "args": ["etcdinit", "--cluster-name=c1"], "resources": {},
                        "env": [{"name": "CLUSTER", "valueFrom": {"configMapKeyRef": {
                            "name": "cilium-config", "key": "cluster-name", "optional": True}}}]}],
    "containers": [{
        "name": "apiserver", "image": "img", "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "etcd", "containerPort": 2379, "protocol": "TCP"}],
        "env": [{"name": "A", "value": "1"},
                {"name": "POD", "valueFrom": {"fieldRef": {"apiVersion": "v1", "fieldPath": "metadata.name"}}},
                {"name": "PW", "valueFrom": {"secretKeyRef": {"name": "s", "key": "pw"}}},
                {"name": "CPU", "valueFrom": {"resourceFieldRef": {"resource": "limits.cpu", "divisor": "1m"}}}],
        "resources": {"limits": {"cpu": "1", "memory": "512Mi"}, "requests": {"cpu": "100m"}},
        "volumeMounts": [{"name": "certs", "readOnly": True, "mountPath": "/var/lib/etcd-secrets"}],
        "readinessProbe": {"httpGet": {"path": "/readyz", "port": "apiserv-health", "scheme": "HTTP"},
                           "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {"tcpSocket": {"port": 2379}, "initialDelaySeconds": 10,
                          "terminationGracePeriodSeconds": 0},
        "startupProbe": {"exec": {"command": ["true"]}, "failureThreshold": 30},
        "lifecycle": {"preStop": {"sleep": {"seconds": 5}}},
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "securityContext": {"capabilities": {"drop": ["ALL"]}, "allowPrivilegeEscalation": False,
                            "readOnlyRootFilesystem": True, "runAsUser": -1},
    }],
    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30, "dnsPolicy": "ClusterFirst",
    "nodeSelector": {"kubernetes.io/os": "linux"}, "serviceAccountName": "sa", "serviceAccount": "sa",
    "automountServiceAccountToken": False,
    "securityContext": {"runAsUser": 65532, "runAsGroup": 65532, "runAsNonRoot": True, "fsGroup": 65532,
                        "supplementalGroups": [1, 2]},
    "affinity": {"podAntiAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": [
        {"weight": 100, "podAffinityTerm": {"labelSelector": {"matchLabels": {"k8s-app": "x"}},
                                            "topologyKey": "kubernetes.io/hostname"}}]}},
    "tolerations": [{"key": "k", "operator": "Exists", "effect": "NoSchedule", "tolerationSeconds": 10}],
    "priorityClassName": "system-cluster-critical",
    "topologySpreadConstraints": [{"maxSkew": 1, "topologyKey": "zone", "whenUnsatisfiable": "ScheduleAnyway",
                                   "labelSelector": {"matchExpressions": [
                                       {"key": "a", "operator": "In", "values": ["b"]}]}}],
}
OBJECTS: list[Any] = [
    pytest.param("Deployment", {
        "metadata": {"name": "clustermesh-apiserver", "namespace": "kube-system", "uid": "u-1",
                     "resourceVersion": "7", "generation": 3, "creationTimestamp": TIME,
                     "labels": {"app": "x"}, "annotations": {"a": "b"},
                     "ownerReferences": [{"apiVersion": "v1", "kind": "X", "name": "n", "uid": "u",
                                          "controller": True}],
                     "finalizers": ["f"],
                     "managedFields": [{"manager": "kubectl", "operation": "Apply", "apiVersion": "apps/v1",
                                        "time": TIME, "fieldsType": "FieldsV1",
                                        "fieldsV1": {"f:spec": {"f:replicas": {}}}}]},
        "spec": {"replicas": 0, "selector": {"matchLabels": {"k8s-app": "x"}},
                 "template": {"metadata": {"labels": {"k8s-app": "x"}, "annotations": {"h": "1"}},
                              "spec": POD_SPEC},
                 "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": "25%"}},
                 "revisionHistoryLimit": 10, "progressDeadlineSeconds": 600},
        "status": {"observedGeneration": 3, "replicas": 1, "updatedReplicas": 1, "readyReplicas": 1,
                   "availableReplicas": 1, "conditions": [
                       {"type": "Available", "status": "True", "lastUpdateTime": TIME,
                        "lastTransitionTime": TIME, "reason": "MinimumReplicasAvailable", "message": "ok"}]},
    }, id="deployment"),
    pytest.param("Pod", {
        "metadata": {"name": "p", "deletionTimestamp": TIME, "deletionGracePeriodSeconds": 30},
        "spec": POD_SPEC,
        "status": {"phase": "Running", "conditions": [
            {"type": "Ready", "status": "True", "lastProbeTime": None, "lastTransitionTime": TIME}],
            "hostIP": "10.0.0.1", "hostIPs": [{"ip": "10.0.0.1"}], "podIP": "10.1.0.5", "podIPs": [{"ip": "10.1.0.5"}],
            "startTime": TIME, "containerStatuses": [
                {"name": "apiserver", "state": {"running": {"startedAt": TIME}},
                 "lastState": {"terminated": {"exitCode": 137, "reason": "Error", "startedAt": TIME,
                                              "finishedAt": TIME}},
                 "ready": True, "restartCount": 2, "image": "img", "imageID": "", "started": True}],
            "qosClass": "Burstable"},
    }, id="pod"),
    pytest.param("DaemonSet", {
        "metadata": {"name": "ds"},
        "spec": {"selector": None, "template": {"metadata": {}, "spec": {"containers": None}},
                 "updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1}}},
        "status": {"currentNumberScheduled": 1, "numberMisscheduled": 0, "desiredNumberScheduled": 1,
                   "numberReady": 0},
    }, id="daemonset"),
    pytest.param("ReplicaSet", {
        "metadata": {"name": "rs"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"a": "b"}},
                 "template": {"metadata": {}, "spec": {"containers": [{"name": "c", "resources": {}}]}}},
        "status": {"replicas": 0},
    }, id="replicaset"),
    pytest.param("Service", {
        "metadata": {"name": "clustermesh-apiserver"},
        "spec": {"ports": [{"name": "etcd", "protocol": "TCP", "port": 2379, "targetPort": 2379, "nodePort": 32379},
                           {"port": 80, "targetPort": "http", "appProtocol": "http"}],
                 "selector": {"k8s-app": "clustermesh-apiserver"}, "clusterIP": "10.96.0.10",
                 "clusterIPs": ["10.96.0.10"], "type": "LoadBalancer", "sessionAffinity": "None",
                 "externalTrafficPolicy": "Cluster", "ipFamilies": ["IPv4"], "ipFamilyPolicy": "SingleStack",
                 "allocateLoadBalancerNodePorts": True, "internalTrafficPolicy": "Cluster"},
        "status": {"loadBalancer": {"ingress": [{"ip": "172.18.255.1", "ipMode": "VIP"}]}},
    }, id="service"),
    pytest.param("Endpoints", {
        "metadata": {"name": "e"},
        "subsets": [{"addresses": [{"ip": "10.1.0.5", "nodeName": "n1",
                                    "targetRef": {"kind": "Pod", "namespace": "ns", "name": "p", "uid": "u"}}],
                     "ports": [{"name": "etcd", "port": 2379, "protocol": "TCP"}]}],
    }, id="endpoints"),
    pytest.param("EndpointSlice", {
        "metadata": {"name": "es", "labels": {"kubernetes.io/service-name": "s"}},
        "addressType": "IPv4",
        "endpoints": [{"addresses": ["10.1.0.5"], "conditions": {"ready": True, "serving": True,
                                                                 "terminating": False},
                       "nodeName": "n1", "zone": "z", "hints": {"forZones": [{"name": "z"}]}}],
        "ports": None,
    }, id="endpointslice"),
    pytest.param("Node", {
        "metadata": {"name": "n1"},
        "spec": {"podCIDR": "10.1.0.0/24", "podCIDRs": ["10.1.0.0/24"],
                 "taints": [{"key": "k", "effect": "NoSchedule", "timeAdded": TIME}]},
        "status": {"capacity": {"cpu": "4", "memory": "16Gi", "pods": "110"}, "allocatable": {"cpu": "3500m"},
                   "conditions": [{"type": "Ready", "status": "True", "lastHeartbeatTime": TIME,
                                   "lastTransitionTime": TIME, "reason": "KubeletReady"}],
                   "addresses": [{"type": "InternalIP", "address": "10.0.0.1"}],
                   "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
                   "nodeInfo": {"machineID": "m", "systemUUID": "", "bootID": "", "kernelVersion": "",
                                "osImage": "", "containerRuntimeVersion": "", "kubeletVersion": "v1.37.0",
                                "kubeProxyVersion": "", "operatingSystem": "linux", "architecture": "amd64"}},
    }, id="node"),
    pytest.param("Namespace", {"metadata": {"name": "ns"}, "spec": {"finalizers": ["kubernetes"]},
                               "status": {"phase": "Active"}}, id="namespace"),
    pytest.param("ConfigMap", {"metadata": {"name": "c"}, "immutable": False, "data": {"a": "", "b": "c"},
                               "binaryData": {"bin": "AAEC"}}, id="configmap"),
    pytest.param("Secret", {"metadata": {"name": "s"}, "data": {"tls.crt": "LS0t"}, "type": "kubernetes.io/tls"},
                 id="secret"),
    pytest.param("Lease", {"metadata": {"name": "l"}, "spec": {
        "holderIdentity": "h", "leaseDurationSeconds": 15, "acquireTime": "2026-01-02T03:04:05.123456Z",
        "renewTime": "2026-01-02T03:04:06.000001Z", "leaseTransitions": 0}}, id="lease"),
    pytest.param("Event", {
        "metadata": {"name": "e.1"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started",
        "message": "m", "source": {"component": "kubelet"}, "firstTimestamp": TIME, "lastTimestamp": TIME,
        "count": 1, "type": "Normal", "eventTime": None, "reportingComponent": "", "reportingInstance": ""},
        id="core-event"),
    pytest.param("EventsV1Event", {
        "metadata": {"name": "e.2"}, "eventTime": "2026-01-02T03:04:05.000000Z",
        "series": {"count": 2, "lastObservedTime": "2026-01-02T03:04:09.500000Z"},
        "reportingController": "c", "reason": "R", "regarding": {"kind": "Pod"}, "note": "n", "type": "Normal",
        "deprecatedSource": {}, "deprecatedFirstTimestamp": None, "deprecatedLastTimestamp": None},
        id="events-v1-event"),
    pytest.param("ServiceAccount", {"metadata": {"name": "sa"}, "automountServiceAccountToken": False,
                                    "imagePullSecrets": [{"name": "reg"}]}, id="serviceaccount"),
    pytest.param("ClusterRole", {"metadata": {"name": "cr"}, "rules": [
        {"verbs": ["get", "list", "watch"], "apiGroups": ["cilium.io"], "resources": ["ciliumnodes"]},
        {"verbs": ["get"], "nonResourceURLs": ["/healthz"]}]}, id="clusterrole"),
    pytest.param("ClusterRoleBinding", {"metadata": {"name": "crb"}, "subjects": [
        {"kind": "ServiceAccount", "name": "sa", "namespace": "kube-system"}],
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "cr"}},
        id="clusterrolebinding"),
    pytest.param("Role", {"metadata": {"name": "r"}, "rules": None}, id="role-without-rules"),
    pytest.param("PodDisruptionBudget", {
        "metadata": {"name": "pdb"}, "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"a": "b"}}},
        "status": {"disruptedPods": {"p": TIME}, "disruptionsAllowed": 1, "currentHealthy": 1, "desiredHealthy": 0,
                   "expectedPods": 1}}, id="poddisruptionbudget"),
    pytest.param("NetworkPolicy", {"metadata": {"name": "np"}, "spec": {
        "podSelector": {"matchLabels": {"k8s-app": "clustermesh-apiserver"}},
        "ingress": [{"ports": [{"protocol": "TCP", "port": 2379}, {"port": "metrics", "endPort": 9999}],
                     "from": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}},
                              {"namespaceSelector": {}}]}],
        "policyTypes": ["Ingress"]}}, id="networkpolicy"),
]


@pytest.mark.parametrize(("name", "doc"), OBJECTS)
def test_round_trip(name: str, doc: Obj) -> None:
    encoded = CODEC.encode(name, copy.deepcopy(doc))
    assert CODEC.decode(name, encoded) == doc
    enveloped = wrap("v1", name, encoded)
    assert enveloped.startswith(MAGIC) and unwrap(enveloped).raw == encoded


def test_encode_refuses_what_it_cannot_carry() -> None:
    with pytest.raises(ProtobufError, match="Secret: field 'extra' has no protobuf encoding"):
        CODEC.encode("Secret", {"metadata": {}, "extra": 1})
    with pytest.raises(ProtobufError, match=r"Deployment.spec.replicas: expected an integer, got str"):
        CODEC.encode("Deployment", {"spec": {"replicas": "2"}})
    with pytest.raises(ProtobufError, match="overflows int32"):
        CODEC.encode("DeploymentSpec", {"replicas": 1 << 31})
    with pytest.raises(ProtobufError, match="illegal base64"):
        CODEC.encode("Secret", {"data": {"a": "***"}})


@pytest.mark.parametrize(("accept", "expected"), [
    pytest.param("application/vnd.kubernetes.protobuf", True, id="protobuf-only"),
    pytest.param("application/vnd.kubernetes.protobuf;stream=watch", True, id="protobuf-watch"),
    pytest.param("application/vnd.kubernetes.protobuf,application/json", False, id="client-go-default"),
    pytest.param("application/json;as=Table;v=v1;g=meta.k8s.io,application/json", False, id="kubectl-table"),
    pytest.param("application/vnd.kubernetes.protobuf, */*", False, id="any"),
    pytest.param("application/vnd.kubernetes.protobuf, application/json;q=0", True, id="json-refused"),
    pytest.param("", False, id="none"),
])
def test_negotiation(accept: str, expected: bool) -> None:
    assert wants_protobuf(accept) is expected


# -- over HTTP ---------------------------------------------------------------------------------------

@pytest_asyncio.fixture
async def http(kubesim: KubeSim) -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession(base_url=kubesim.url) as session:
        yield session


SECRETS = "/api/v1/namespaces/default/secrets"


async def _post(http: aiohttp.ClientSession, path: str, body: bytes, accept: str = "application/json"
                ) -> tuple[int, Any]:
    async with http.post(path, data=body, headers={"Content-Type": PB, "Accept": accept}) as resp:
        if resp.content_type == PB:
            return resp.status, await resp.read()
        return resp.status, await resp.json()


def _secret_body(raw: bytes, kind: str = "Secret") -> bytes:
    return wrap("v1", kind, raw)


@pytest.mark.parametrize(("body", "code", "message"), [
    pytest.param(b'{"kind":"Secret"}', 400, "the object provided is unrecognized (must be of type Secret): provided "
                 "data does not appear to be a protobuf message, expected prefix [107 56 115 0] "
                 '({"kind":"Secret"})', id="wrong-magic"),
    pytest.param(b"", 400, "the object provided is unrecognized (must be of type Secret): empty data (<empty>)",
                 id="empty"),
    pytest.param(MAGIC + b"\x0a\x05\x0a", 400, "the object provided is unrecognized (must be of type Secret): "
                 "unexpected EOF (6b3873000a050a)", id="broken-envelope"),
    pytest.param(_secret_body(b"", kind="Foo"), 400, 'Foo in version "v1" cannot be handled as a Secret: no kind '
                 '"Foo" is registered for version "v1" in scheme "pkg/api/legacyscheme/scheme.go:30"',
                 id="unknown-kind"),
    pytest.param(_secret_body(wire.length_delimited(1, b"\x0a\x09abc")), 400,
                 'Secret in version "v1" cannot be handled as a Secret: Secret.metadata: unexpected EOF',
                 id="truncated-object"),
    pytest.param(_secret_body(wire.length_delimited(1, wire.length_delimited(1, b"s")) + wire.length_delimited(
        77, b"")), 400, "Secret: unknown field number 77 in message Secret", id="unknown-field"),
    pytest.param(_secret_body(wire.length_delimited(1, wire.length_delimited(1, b"s")), kind="ConfigMap"), 400,
                 "the kind in the data (ConfigMap) does not match the expected kind (Secret)", id="other-kind"),
])
async def test_bad_bodies(http: aiohttp.ClientSession, body: bytes, code: int, message: str) -> None:
    status, doc = await _post(http, SECRETS, body)
    assert status == code
    assert doc["kind"] == "Status" and doc["reason"] == "BadRequest"
    assert message in doc["message"]


async def test_protobuf_to_a_custom_resource_is_415(http: aiohttp.ClientSession) -> None:
    status, doc = await _post(http, "/apis/cilium.io/v2/ciliumnodes", wrap("cilium.io/v2", "CiliumNode", b""))
    assert status == 415 and doc["reason"] == "UnsupportedMediaType"
    assert "accepted media types include: application/json, application/yaml" in doc["message"]


async def test_protobuf_answers_for_protobuf_only_clients(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    status, created = await _post(http, SECRETS, KUBECTL_SECRET, accept=PB)
    assert status == 201 and isinstance(created, bytes)
    api_version, kind, secret = _decode(created)
    assert (api_version, kind) == ("v1", "Secret")
    stored = kubesim.get("v1", "Secret", "x", "default")
    assert stored is not None and secret == {k: v for k, v in stored.items() if k not in ("apiVersion", "kind")}

    async with http.get(SECRETS + "/x", headers={"Accept": PB}) as resp:
        assert resp.content_type == PB
        assert _decode(await resp.read())[2] == secret
    async with http.get(SECRETS + "/x", headers={"Accept": f"{PB},application/json"}) as resp:
        assert resp.content_type == "application/json" and (await resp.json())["data"] == {"a": "Yg=="}
    async with http.get(SECRETS, headers={"Accept": PB}) as resp:
        listed = unwrap(await resp.read())
        assert (listed.api_version, listed.kind) == ("v1", "SecretList")
        items = CODEC.decode("SecretList", listed.raw)
        assert [i["metadata"]["name"] for i in items["items"]] == ["x"]
        assert items["metadata"]["resourceVersion"] == str(kubesim.store.resource_version)
    async with http.get(SECRETS + "/missing", headers={"Accept": PB}) as resp:
        assert resp.status == 404 and resp.content_type == PB
        failure = unwrap(await resp.read())
        assert failure.kind == "Status"
        status_doc = CODEC.decode("Status", failure.raw)
        assert status_doc["code"] == 404 and status_doc["reason"] == "NotFound"
        assert status_doc["message"] == 'secrets "missing" not found'
    async with http.get("/apis/cilium.io/v2/ciliumnodes", headers={"Accept": PB}) as resp:
        assert resp.status == 406 and (await resp.json())["reason"] == "NotAcceptable"


async def test_protobuf_delete_options(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    assert (await _post(http, SECRETS, KUBECTL_SECRET))[0] == 201
    options = CODEC.encode("DeleteOptions", {"preconditions": {"uid": "not-the-uid"}})
    async with http.delete(SECRETS + "/x", data=wrap("v1", "DeleteOptions", options),
                           headers={"Content-Type": PB}) as resp:
        assert resp.status == 409, await resp.text()
    async with http.delete(SECRETS + "/x", data=wrap("meta.k8s.io/v1", "DeleteOptions", b""),
                           headers={"Content-Type": PB, "Accept": PB}) as resp:
        assert resp.status == 200 and resp.content_type == PB
        assert CODEC.decode("Status", unwrap(await resp.read()).raw)["status"] == "Success"
    assert kubesim.get("v1", "Secret", "x", "default") is None


async def _frames(resp: aiohttp.ClientResponse, count: int) -> list[tuple[str, bytes]]:
    """(type, object body) of the first ``count`` events of a protobuf watch stream."""
    events: list[tuple[str, bytes]] = []
    async with asyncio.timeout(10):
        while len(events) < count:
            size = int.from_bytes(await resp.content.readexactly(4), "big")
            event = dict((n, v) for n, _, v in wire.fields(await resp.content.readexactly(size)))
            raw = dict((n, v) for n, _, v in wire.fields(_as_bytes(event[2])))[1]
            events.append((_as_bytes(event[1]).decode(), _as_bytes(raw)))
    return events


def _as_bytes(value: int | bytes) -> bytes:
    assert isinstance(value, bytes)
    return value


async def test_protobuf_watch(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    kubesim.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "old", "namespace": "default"}})
    headers = {"Accept": "application/vnd.kubernetes.protobuf;stream=watch"}
    params = {"watch": "true", "resourceVersion": "0", "allowWatchBookmarks": "true",
              "sendInitialEvents": "true", "resourceVersionMatch": "NotOlderThan"}
    async with http.get(SECRETS, params=params, headers=headers) as resp:
        assert resp.status == 200 and resp.headers["Content-Type"] == "application/vnd.kubernetes.protobuf;stream=watch"
        initial = await _frames(resp, 2)
        kubesim.apply({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "new", "namespace": "default"},
                       "data": {"k": "AA=="}})
        kubesim.delete("v1", "Secret", "old", "default")
        events = initial + await _frames(resp, 2)
    decoded = [(etype, _decode(body)) for etype, body in events]
    assert [(etype, kind, doc["metadata"].get("name")) for etype, (_, kind, doc) in decoded] == [
        ("ADDED", "Secret", "old"), ("BOOKMARK", "Secret", None), ("ADDED", "Secret", "new"),
        ("DELETED", "Secret", "old")]
    assert [etype for etype, _ in decoded] == ["ADDED", "BOOKMARK", "ADDED", "DELETED"]
    assert decoded[1][1][2]["metadata"]["annotations"] == {"k8s.io/initial-events-end": "true"}
    assert decoded[2][1][2]["data"] == {"k": "AA=="}
    async with http.get("/apis/cilium.io/v2/ciliumnodes", params={"watch": "true"}, headers=headers) as resp:
        assert resp.status == 406


async def test_protobuf_scale_subresource(kubesim: KubeSim, http: aiohttp.ClientSession) -> None:
    kubesim.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web", "namespace": "default"},
                   "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": [{"name": "c", "image": "i"}]}}}})
    path = "/apis/apps/v1/namespaces/default/deployments/web/scale"
    async with http.get(path, headers={"Accept": PB}) as resp:
        assert resp.status == 200 and resp.content_type == PB
        api_version, kind, scale = _decode(await resp.read())
    assert (api_version, kind) == ("autoscaling/v1", "Scale") and scale["spec"] == {"replicas": 1}
    assert scale["status"]["selector"] == "app=web"
    for replicas in (3, 0):  # 0 is not on the wire at all (omitempty): Go reads it as zero
        body = wrap("autoscaling/v1", "Scale", CODEC.encode("Scale", {"metadata": {"name": "web"},
                                                                     "spec": {"replicas": replicas}}))
        async with http.put(path, data=body, headers={"Content-Type": PB, "Accept": PB}) as resp:
            assert resp.status == 200, await resp.text()
            assert _decode(await resp.read())[2]["spec"] == ({"replicas": replicas} if replicas else {})
        stored = kubesim.get("apps/v1", "Deployment", "web", "default")
        assert stored is not None and stored["spec"]["replicas"] == replicas


SERVED = [
    pytest.param("/api/v1/namespaces/default/events", "v1", "Event",
                 {"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "p"}, "reason": "Started",
                  "count": 2, "type": "Normal"}, ("involvedObject", "name"), "p", id="event"),
    pytest.param("/apis/apps/v1/namespaces/default/daemonsets", "apps/v1", "DaemonSet",
                 {"metadata": {"name": "agent"}, "spec": {
                     "selector": {"matchLabels": {"app": "agent"}},
                     "template": {"metadata": {"labels": {"app": "agent"}},
                                  "spec": {"containers": [{"name": "a", "image": "agent:1"}]}}}},
                 ("spec", "template", "spec", "containers", 0, "image"), "agent:1", id="daemonset"),
    pytest.param("/api/v1/namespaces/default/pods", "v1", "Pod",
                 {"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "img:2"}]}},
                 ("spec", "containers", 0, "image"), "img:2", id="pod"),
    pytest.param("/api/v1/nodes", "v1", "Node", {"metadata": {"name": "n1"}, "spec": {"podCIDR": "10.1.0.0/24"}},
                 ("spec", "podCIDR"), "10.1.0.0/24", id="node"),
    pytest.param("/api/v1/namespaces/default/endpoints", "v1", "Endpoints",
                 {"metadata": {"name": "ep"}, "subsets": [{"addresses": [{"ip": "10.1.0.5"}],
                                                           "ports": [{"port": 2379}]}]},
                 ("subsets", 0, "addresses", 0, "ip"), "10.1.0.5", id="endpoints"),
    pytest.param("/apis/discovery.k8s.io/v1/namespaces/default/endpointslices", "discovery.k8s.io/v1",
                 "EndpointSlice", {"metadata": {"name": "es"}, "addressType": "IPv4",
                                   "endpoints": [{"addresses": ["10.1.0.6"]}], "ports": [{"port": 2379}]},
                 ("endpoints", 0, "addresses", 0), "10.1.0.6", id="endpointslice"),
]


@pytest.mark.parametrize(("path", "api_version", "kind", "doc", "field", "value"), SERVED)
async def test_protobuf_create_of_served_kinds(http: aiohttp.ClientSession, path: str, api_version: str, kind: str,
                                               doc: Obj, field: tuple[str | int, ...], value: Any) -> None:
    body = wrap(api_version, kind, CODEC.encode(KINDS[(api_version, kind)], doc))
    status, created = await _post(http, path, body)
    assert status == 201, created
    async with http.get(f"{path}/{doc['metadata']['name']}") as resp:
        stored = await resp.json()
    assert (stored["apiVersion"], stored["kind"]) == (api_version, kind) and stored["metadata"]["uid"]
    got: Any = stored
    for step in field:
        got = got[step]
    assert got == value
