"""`status.hold` of an AIJob: why the job is kept out of the queue until a person acts.

Written when the API server refuses the job's first worker (a dry run, control/precheck.py) or a
worker of an admitted gang (control/lifecycle.py), with the rules of control/refusals.py; read by
state/snapshot.py (`is_held`). docs/operations.md explains it to people.
"""

from __future__ import annotations

from pydantic import Field

from estuary.api.base import StatusModel


class Hold(StatusModel):
    """Why a job is kept out of the queue until a person acts (docs/operations.md): the API server
    refused its pods as invalid (until the spec changes) or forbidden (until the spec changes or
    retryAt), or an object that is not the job's own has a name it needs (until it is gone)."""

    reason: str = Field(description="InvalidPodTemplate, PodForbidden or NameConflict.")
    generation: int = Field(0, description="The spec generation that was refused.")
    pod: str | None = Field(None, description="NameConflict: the pod (same namespace) holding the name.")
    retry_at: str | None = Field(None, description="When Estuary checks the job again (RFC 3339).")
    refusals: int = Field(1, description="Refusals in a row (the retry wait doubles with each).")
