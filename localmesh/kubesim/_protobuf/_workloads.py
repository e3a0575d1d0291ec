"""apps/v1 (Deployment, ReplicaSet, DaemonSet), discovery/v1 (EndpointSlice), coordination/v1 (Lease)
and events.k8s.io/v1 (Event) messages. Facts from those groups' ``types.go`` in k8s.io/api.
"""

APPS = """
= Deployment
1 metadata ObjectMeta
2 spec DeploymentSpec
3 status DeploymentStatus

= DeploymentSpec
1 replicas i32*
2 selector LabelSelector*!
3 template PodTemplateSpec!
4 strategy DeploymentStrategy
5 minReadySeconds i32
6 revisionHistoryLimit i32*
7 paused b
9 progressDeadlineSeconds i32*
10 podReplacementPolicy s*

= DeploymentStrategy
1 type s
2 rollingUpdate RollingUpdateDeployment*

= RollingUpdateDeployment
1 maxUnavailable IntOrString*
2 maxSurge IntOrString*

= DeploymentStatus
1 observedGeneration i64
2 replicas i32
3 updatedReplicas i32
7 readyReplicas i32
4 availableReplicas i32
5 unavailableReplicas i32
9 terminatingReplicas i32*
6 conditions [DeploymentCondition]
8 collisionCount i32*

= DeploymentCondition
1 type s!
2 status s!
6 lastUpdateTime Time
7 lastTransitionTime Time
4 reason s
5 message s

= ReplicaSet
1 metadata ObjectMeta
2 spec ReplicaSetSpec
3 status ReplicaSetStatus

= ReplicaSetSpec
1 replicas i32*
4 minReadySeconds i32
2 selector LabelSelector*!
3 template PodTemplateSpec

= ReplicaSetStatus
1 replicas i32!
2 fullyLabeledReplicas i32
4 readyReplicas i32
5 availableReplicas i32
7 terminatingReplicas i32*
3 observedGeneration i64
6 conditions [ReplicaSetCondition]

= ReplicaSetCondition
1 type s!
2 status s!
3 lastTransitionTime Time
4 reason s
5 message s

= DaemonSet
1 metadata ObjectMeta
2 spec DaemonSetSpec
3 status DaemonSetStatus

= DaemonSetSpec
1 selector LabelSelector*!
2 template PodTemplateSpec!
3 updateStrategy DaemonSetUpdateStrategy
4 minReadySeconds i32
6 revisionHistoryLimit i32*

= DaemonSetUpdateStrategy
1 type s
2 rollingUpdate RollingUpdateDaemonSet*

= RollingUpdateDaemonSet
1 maxUnavailable IntOrString*
2 maxSurge IntOrString*

= DaemonSetStatus
1 currentNumberScheduled i32!
2 numberMisscheduled i32!
3 desiredNumberScheduled i32!
4 numberReady i32!
5 observedGeneration i64
6 updatedNumberScheduled i32
7 numberAvailable i32
8 numberUnavailable i32
9 collisionCount i32*
10 conditions [DaemonSetCondition]

= DaemonSetCondition
1 type s!
2 status s!
3 lastTransitionTime Time
4 reason s
5 message s
"""

DISCOVERY = """
= EndpointSlice
1 metadata ObjectMeta
4 addressType s!
2 endpoints [Endpoint]!
3 ports [EndpointSlicePort]!

= Endpoint
1 addresses [s]!
2 conditions EndpointConditions
3 hostname s*
4 targetRef ObjectReference*
5 deprecatedTopology {s}
6 nodeName s*
7 zone s*
8 hints EndpointHints*

= EndpointConditions
1 ready b*
2 serving b*
3 terminating b*

= EndpointHints
1 forZones [ForZone]
2 forNodes [ForNode]

= ForZone
1 name s!

= ForNode
1 name s!

= EndpointSlicePort
1 name s*
2 protocol s*
3 port i32*
4 appProtocol s*
"""

# autoscaling/v1 Scale, the scale subresource's body (client-go's UpdateScale PUTs it as protobuf).
AUTOSCALING = """
= Scale
1 metadata ObjectMeta
2 spec ScaleSpec
3 status ScaleStatus

= ScaleSpec
1 replicas i32

= ScaleStatus
1 replicas i32!
2 selector s
"""

COORDINATION = """
= Lease
1 metadata ObjectMeta
2 spec LeaseSpec

= LeaseSpec
1 holderIdentity s*
2 leaseDurationSeconds i32*
3 acquireTime MicroTime*
4 renewTime MicroTime*
5 leaseTransitions i32*
6 strategy s*
7 preferredHolder s*
"""

EVENTS = """
= EventsV1Event
1 metadata ObjectMeta
2 eventTime MicroTime!
3 series EventsV1EventSeries*
4 reportingController s
5 reportingInstance s
6 action s
7 reason s
8 regarding ObjectReference
9 related ObjectReference*
10 note s
11 type s
12 deprecatedSource EventSource
13 deprecatedFirstTimestamp Time
14 deprecatedLastTimestamp Time
15 deprecatedCount i32

= EventsV1EventSeries
1 count i32!
2 lastObservedTime MicroTime!
"""
