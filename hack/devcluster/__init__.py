"""Local Kubernetes clusters for development and tests, without containers.

A cluster is a real control plane (etcd, kube-apiserver, kube-controller-manager, kube-scheduler)
started by kwokctl from locally built binaries, with simulated accelerator nodes (kwok) described
by a topology file. ``binaries`` finds or builds the binaries, ``topology`` reads the topology file,
``clusters`` starts, fills and stops the clusters.
"""
