"""k8s.io/apimachinery's messages: meta/v1 (ObjectMeta, ListMeta, LabelSelector, Status, DeleteOptions,
Condition, ...) and the runtime envelope. Facts from ``pkg/apis/meta/v1/types.go`` and ``generated.proto``;
``creationTimestamp`` carries ``omitzero`` there (current apimachinery), so a zero one is not written.
"""

META = """
= ObjectMeta
1 name s
2 generateName s
3 namespace s
4 selfLink s
5 uid s
6 resourceVersion s
7 generation i64
8 creationTimestamp Time0
9 deletionTimestamp Time*
10 deletionGracePeriodSeconds i64*
11 labels {s}
12 annotations {s}
13 ownerReferences [OwnerReference]
14 finalizers [s]
17 managedFields [ManagedFieldsEntry]

= OwnerReference
5 apiVersion s!
1 kind s!
3 name s!
4 uid s!
6 controller b*
7 blockOwnerDeletion b*

= ManagedFieldsEntry
1 manager s
2 operation s
3 apiVersion s
4 time Time*
6 fieldsType s
7 fieldsV1 FieldsV1*
8 subresource s

= ListMeta
1 selfLink s
2 resourceVersion s
3 continue s
4 remainingItemCount i64*
5 shardInfo ShardInfo*

= ShardInfo
1 selector s!

= LabelSelector
1 matchLabels {s}
2 matchExpressions [LabelSelectorRequirement]

= LabelSelectorRequirement
1 key s!
2 operator s!
3 values [s]

= Condition
1 type s!
2 status s!
3 observedGeneration i64
4 lastTransitionTime Time!
5 reason s!
6 message s!

= Status
1 metadata ListMeta
2 status s
3 message s
4 reason s
5 details StatusDetails*
6 code i32

= StatusDetails
1 name s
2 group s
3 kind s
6 uid s
4 causes [StatusCause]
5 retryAfterSeconds i32

= StatusCause
1 reason s
2 message s
3 field s

= DeleteOptions
1 gracePeriodSeconds i64*
2 preconditions Preconditions*
3 orphanDependents b*
4 propagationPolicy s*
5 dryRun [s]
6 ignoreStoreReadErrorWithClusterBreakingPotential b*

= Preconditions
1 uid s*
2 resourceVersion s*
"""
