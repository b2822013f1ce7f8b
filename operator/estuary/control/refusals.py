"""What a job is told, and how long it is held out of the queue, when the API server refuses one
of its workers or a name it needs is taken (the rules of docs/operations.md, "When the API server
refuses a worker").

- Invalid (HTTP 400, 422: the pod as rendered breaks the API server's validation):
  `InvalidPodTemplate`, held until the spec changes (a new metadata.generation). Sending the same
  pod again can only get the same answer.
- Forbidden (403: an admission policy, a LimitRange, a ResourceQuota of the namespace, or RBAC:
  the operator is not bound to create workers in this namespace, and the message says who can
  bind it): `PodForbidden`, held until the spec changes or the retry time passes: 5 minutes, doubling with
  each refusal in a row up to an hour, since the namespace's rules may change without the job.
- A name taken by someone else's object: `NameConflict`. For a worker pod, held until that pod is
  gone (the cache sees it go) or the spec changes; for the job's Service, retried like Forbidden.

The hold is written in `status.hold`; state/snapshot.py: `is_held` reads it; precheck.py checks a
job again with a dry run before the hold lets it back into the queue.
"""

from __future__ import annotations

from estuary.api.hold import Hold
from estuary.control.pods import NameTaken, WorkerRefused
from estuary.state import codec
from estuary.state.snapshot import ParsedJob

INVALID_POD_TEMPLATE = "InvalidPodTemplate"
POD_FORBIDDEN = "PodForbidden"
NAME_CONFLICT = "NameConflict"
FIRST_RETRY_S, LAST_RETRY_S = 300.0, 3600.0


def _retry(job: ParsedJob, reason: str, now: float) -> tuple[Hold, float]:
    """A hold that lets the job be checked again later: 5 min, doubling per refusal in a row."""
    before = job.status.hold
    count = before.refusals + 1 if before is not None and before.reason == reason else 1
    wait = min(FIRST_RETRY_S * 2 ** (count - 1), LAST_RETRY_S)
    hold = Hold(
        reason=reason, generation=job.generation or 0, refusals=count, retry_at=codec.rfc3339(now + wait)
    )
    return hold, wait


def refusal(job: ParsedJob, err: WorkerRefused | NameTaken, now: float) -> tuple[str, str, Hold]:
    """(reason, message, hold) for a worker the API server refused or a name that is taken."""
    where = f"{err.kind} {job.namespace}/{err.name}"
    generation = job.generation or 0
    if isinstance(err, NameTaken):
        taken = f"{where} already exists and is not this job's own ({err.owner}); delete or rename it"
        if err.kind == "Pod":  # watched: the hold lifts as soon as the pod is gone
            hold = Hold(reason=NAME_CONFLICT, generation=generation, pod=err.name)
            return NAME_CONFLICT, f"{taken}: Estuary starts the job once it is gone", hold
        hold, wait = _retry(job, NAME_CONFLICT, now)
        return NAME_CONFLICT, f"{taken}: Estuary tries again in {wait:.0f}s", hold
    said = f"the API server refused {where}: {err.server_says}"
    if err.permanent:
        hold = Hold(reason=INVALID_POD_TEMPLATE, generation=generation)
        return (
            INVALID_POD_TEMPLATE,
            f"{said}; fix the job's spec: Estuary tries again when the spec changes",
            hold,
        )
    hold, wait = _retry(job, POD_FORBIDDEN, now)
    if "cannot create resource" in err.server_says:  # RBAC, not an admission policy: not the user's
        said = (
            f"Estuary's operator may not create {err.kind}s in namespace {job.namespace} "
            f"({err.server_says}); "
            f"ask the platform team to add {job.namespace} to the chart's rbac.workerNamespaces (a "
            "RoleBinding to the ClusterRole <fullname>-workers, estuary-workers by default; "
            'docs/install.md, "Tenant namespaces")'
        )
    message = f"{said}; Estuary tries again in {wait:.0f}s, or at once when the job's spec changes"
    return POD_FORBIDDEN, message, hold
