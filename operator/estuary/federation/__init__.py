"""Bursting jobs to partner clusters (FederationLinks), with residency as a hard rule and
exactly-once placement through leases. See docs/federation.md.

The controller (`controller.py`) runs beside the job controller and meets it only in AIJob status.
Pure parts: `choose` (where a job may and should burst), `lease` (the lease arithmetic), `naming`
(copy names and markers), `spend` (budget accounting), `remote` (the copy's manifest and view).
By concern: `bursting` (burst decisions), `following` (following copies), `linkstatus` (link
status and spend), `expiry` (the partner side's lease check), `links` (links and plans).
I/O: `partner` (client from a kubeconfig Secret), `worker` (one thread per link), `observer`
(partner side: renewals seen on this cluster's clock), `home` (this cluster's API).
"""

from estuary.federation.controller import FederationController
from estuary.federation.links import FederationConfig

__all__ = ["FederationConfig", "FederationController"]
