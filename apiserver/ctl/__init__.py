"""``clustermeshctl``: operate a Cluster Mesh as the Cilium guide teaches -- ``enable``, ``connect``,
``status``, ``disconnect``, ``disable`` with cilium-cli's flags and output, and ``doctor`` for the
prerequisites -- against any Kubernetes API (kubeconfig contexts).

Modules: ``_access`` (access information, connect validation), ``_pairing`` (connection modes),
``_render`` (the Secrets and users written), ``_status`` (figures and output), ``_doctor`` (checks):
pure; ``_kube`` (client, exec), ``_certs``, ``_manifests``, and one module per subcommand: wiring.
It never imports the local tooling (``localmesh``).
"""

from apiserver.ctl._cli import main
from apiserver.ctl._doctor import Check, ClusterFacts, DoctorReport, facts_from, prerequisite_checks

__all__ = ["Check", "ClusterFacts", "DoctorReport", "facts_from", "main", "prerequisite_checks"]
