"""Bursting jobs to partner clusters (FederationLinks), with residency as a hard rule and
exactly-once placement through leases. See docs/federation.md.

Pure parts: `choose` (where a job may and should burst), `lease` (the lease arithmetic), `naming`
(copy names and markers), `spend` (budget accounting), `remote` (the copy's manifest and view).
I/O: `partner` (client from a kubeconfig Secret), `worker` (one thread per link), `observer`
(partner side: renewals seen on this cluster's clock), `service` (the controller's hooks).
"""

from estuary.federation.service import Federation, FederationConfig

__all__ = ["Federation", "FederationConfig"]
