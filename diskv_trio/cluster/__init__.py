"""The local cluster supervisor behind `diskv cluster up`, the demo and the end-to-end tests."""

from ._supervisor import ClusterError, LocalCluster, Placement, ServerSpec, open_local_cluster

__all__ = ["ClusterError", "LocalCluster", "Placement", "ServerSpec", "open_local_cluster"]
