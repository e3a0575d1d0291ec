"""The other kinds a mesh install writes beside its workload: core/v1 ServiceAccount, rbac/v1 roles
and bindings, policy/v1 PodDisruptionBudget and networking/v1 NetworkPolicy (``kubectl create
serviceaccount|clusterrole|clusterrolebinding|role|rolebinding|poddisruptionbudget`` send them as
protobuf, as does every client-go installer). Facts from those groups' ``types.go`` in k8s.io/api.
"""

ACCESS = """
= ServiceAccount
1 metadata ObjectMeta
2 secrets [ObjectReference]
3 imagePullSecrets [LocalObjectReference]
4 automountServiceAccountToken b*

= PolicyRule
1 verbs [s]!
2 apiGroups [s]
3 resources [s]
4 resourceNames [s]
5 nonResourceURLs [s]

= AggregationRule
1 clusterRoleSelectors [LabelSelector]

= ClusterRole
1 metadata ObjectMeta
2 rules [PolicyRule]!
3 aggregationRule AggregationRule*

= Role
1 metadata ObjectMeta
2 rules [PolicyRule]!

= Subject
1 kind s!
2 apiGroup s
3 name s!
4 namespace s

= RoleRef
1 apiGroup s!
2 kind s!
3 name s!

= ClusterRoleBinding
1 metadata ObjectMeta
2 subjects [Subject]
3 roleRef RoleRef!

= RoleBinding
1 metadata ObjectMeta
2 subjects [Subject]
3 roleRef RoleRef!

= PodDisruptionBudget
1 metadata ObjectMeta
2 spec PodDisruptionBudgetSpec
3 status PodDisruptionBudgetStatus

= PodDisruptionBudgetSpec
1 minAvailable IntOrString*
2 selector LabelSelector*
3 maxUnavailable IntOrString*
4 unhealthyPodEvictionPolicy s*

= PodDisruptionBudgetStatus
1 observedGeneration i64
2 disruptedPods {Time}
3 disruptionsAllowed i32!
4 currentHealthy i32!
5 desiredHealthy i32!
6 expectedPods i32!
7 conditions [Condition]

= NetworkPolicy
1 metadata ObjectMeta
2 spec NetworkPolicySpec

= NetworkPolicySpec
1 podSelector LabelSelector!
2 ingress [NetworkPolicyIngressRule]
3 egress [NetworkPolicyEgressRule]
4 policyTypes [s]

= NetworkPolicyIngressRule
1 ports [NetworkPolicyPort]
2 from [NetworkPolicyPeer]

= NetworkPolicyEgressRule
1 ports [NetworkPolicyPort]
2 to [NetworkPolicyPeer]

= NetworkPolicyPort
1 protocol s*
2 port IntOrString*
3 endPort i32*

= NetworkPolicyPeer
1 podSelector LabelSelector*
2 namespaceSelector LabelSelector*
3 ipBlock IPBlock*

= IPBlock
1 cidr s!
2 except [s]
"""
