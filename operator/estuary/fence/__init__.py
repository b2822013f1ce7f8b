"""Fencing at the workers: a sidecar that stops a job's worker processes when it cannot confirm
the job's lease in time, so a job never runs in two clusters at once even when the cluster it
runs in cannot be reached or controlled (an agentless provider, or a partner whose control plane
is lost while its kubelets keep running). See docs/federation.md, "Fencing at the workers".

`lease` (pure): crediting renewals on the sidecar's own monotonic clock, and when the lease is
over. `procs`: which processes are the workers (a pod's shared process namespace, less the
sidecar itself and the pause process), and how they are really stopped. `source`: reading the
lease object through the API with the pod's own credentials. `sidecar`: the `estuary fence wait`
and `estuary fence watch` loops, with state kept in a shared emptyDir across sidecar restarts.
`pod` (pure): the containers and volume a worker pod gets.
"""
