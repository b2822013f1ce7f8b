"""Everything the portal reads, through the user's own API client and nothing else.

Each method is one API call (or one per namespace), returning plain dicts as the API server sent
them. A page that needs several reads asks for the main one directly (a refusal there is the page's
answer) and the rest through `attempt`, so a refused side read (events, logs, pools for the cost)
becomes a sentence in its section rather than a broken page.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from kubernetes import client
from kubernetes.client.exceptions import ApiException

from estuary.api.base import GROUP, VERSION
from estuary.portal.refusals import Refusal, plain

T = TypeVar("T")
JOB_LABEL = "estuary.dev/job-name"
TENANT_LABEL = "estuary.dev/tenant"


@dataclass(frozen=True)
class Outcome(Generic[T]):
    """A side read: its value, or why there is none."""

    value: T | None = None
    refusal: Refusal | None = None


def attempt(read: Callable[[], T]) -> Outcome[T]:
    try:
        return Outcome(value=read())
    except ApiException as err:
        if err.status == 401:
            raise
        return Outcome(refusal=plain(err))


@dataclass
class JobListing:
    """AIJobs the user may list, and the namespaces where they may not."""

    jobs: list[dict[str, Any]] = field(default_factory=list)
    cluster_wide: bool = False
    namespaces: list[str] = field(default_factory=list)
    refused: dict[str, Refusal] = field(default_factory=dict)


class UserReads:
    def __init__(self, api: client.ApiClient) -> None:
        self.api = api
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def _dicts(self, items: Iterable[Any]) -> list[dict[str, Any]]:
        return [self.api.sanitize_for_serialization(item) for item in items]

    # ---- AIJobs --------------------------------------------------------------------------------
    def jobs(self, candidates: Callable[[], Iterable[str]]) -> JobListing:
        """All AIJobs when the user may list them cluster-wide; else those of each candidate namespace."""
        try:
            items = self.custom.list_cluster_custom_object(GROUP, VERSION, "aijobs")["items"]
            return JobListing(jobs=items, cluster_wide=True)
        except ApiException as err:
            if err.status != 403:
                raise
        listing = JobListing()
        for ns in sorted(set(candidates())):
            try:
                listing.jobs += self.custom.list_namespaced_custom_object(GROUP, VERSION, ns, "aijobs")[
                    "items"
                ]
                listing.namespaces.append(ns)
            except ApiException as err:
                if err.status not in (403, 404):
                    raise
                listing.refused[ns] = plain(err)
        return listing

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "aijobs", name
        )
        return out

    def create_job(self, namespace: str, body: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.custom.create_namespaced_custom_object(
            GROUP, VERSION, namespace, "aijobs", body
        )
        return out

    # ---- what a job consists of ----------------------------------------------------------------
    def worker_pods(self, namespace: str, job: str) -> list[dict[str, Any]]:
        pods = self.core.list_namespaced_pod(namespace, label_selector=f"{JOB_LABEL}={job}").items
        return sorted(self._dicts(pods), key=lambda p: p["metadata"]["name"])

    def events(self, namespace: str, names: set[str]) -> list[dict[str, Any]]:
        """Events of the named objects (the job and its pods), newest last; one list call."""
        items = self._dicts(self.core.list_namespaced_event(namespace).items)
        mine = [e for e in items if (e.get("involvedObject") or {}).get("name") in names]
        return sorted(mine, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")

    def log_tail(self, namespace: str, pod: str, lines: int) -> str:
        text: str = self.core.read_namespaced_pod_log(pod, namespace, tail_lines=lines)
        return text

    def namespace_tenant(self, namespace: str) -> str:
        labels = self.core.read_namespace(namespace).metadata.labels or {}
        return str(labels.get(TENANT_LABEL, "default"))

    def listable_namespaces(self) -> list[str]:
        """Namespace names, when the user may list them; none otherwise (the usual case)."""
        try:
            return [n.metadata.name for n in self.core.list_namespace().items]
        except ApiException as err:
            if err.status != 403:
                raise
            return []

    # ---- cluster-level objects -----------------------------------------------------------------
    def pools(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_cluster_custom_object(GROUP, VERSION, "computepools")[
            "items"
        ]
        return sorted(items, key=lambda p: p["metadata"]["name"])

    def pool(self, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self.custom.get_cluster_custom_object(GROUP, VERSION, "computepools", name)
        return out

    def ledgers(self) -> list[dict[str, Any]]:
        """UsageLedgers (platform teams may read them; researchers usually may not)."""
        items: list[dict[str, Any]] = self.custom.list_cluster_custom_object(GROUP, VERSION, "usageledgers")[
            "items"
        ]
        return items

    def links(self, namespace: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.custom.list_namespaced_custom_object(
            GROUP, VERSION, namespace, "federationlinks"
        )["items"]
        return sorted(items, key=lambda link: link["metadata"]["name"])

    def may(self, verb: str, resource: str, namespace: str, group: str = GROUP) -> bool:
        """SelfSubjectAccessReview: whether the API server would allow this (any user may ask)."""
        review = client.AuthorizationV1Api(self.api).create_self_subject_access_review(
            {
                "apiVersion": "authorization.k8s.io/v1",
                "kind": "SelfSubjectAccessReview",
                "spec": {
                    "resourceAttributes": {
                        "verb": verb,
                        "group": group,
                        "resource": resource,
                        "namespace": namespace,
                    }
                },
            }
        )
        return bool(review.status and review.status.allowed)
