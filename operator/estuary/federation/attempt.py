"""One attempt of a job at an agentless provider (pure): the objects the origin creates in the
provider's namespace, and the AIJob-shaped view of them that the rest of federation reads.

Per attempt, all named after the copy (`naming.remote_name`):
  * a ConfigMap, the attempt's record and its lease: the copy's annotations (origin, attempt,
    link uid, `estuary.dev/lease-renew`, which the origin changes every heartbeat), the chosen
    type, and the copy's manifest (so pods can be rendered again from it);
  * a headless Service and one pod per worker, rendered by kube/render.py without a node pin (the
    origin cannot see the provider's nodes) and owned by the ConfigMap (deleting it collects them);
    each pod carries the fence (estuary/fence), which reads the ConfigMap with the pods' own
    credentials and stops the workers when the lease is not renewed in time; with a Kueue queue,
    the pods are one Kueue pod group, so the provider's own admission applies to the whole gang.

`capacity()` says what the provider offers now (declared, its ResourceQuota, its nodes where
readable); gangview.py reads the attempt back.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from estuary.api.aijob import AcceleratorChoice, AIJob
from estuary.api.federationlink import ProviderSpec
from estuary.federation import naming
from estuary.fence import pod as fencepod
from estuary.kube import render
from estuary.state.codec import TERMINAL_POD_PHASES
from estuary.state.quantity import parse
from estuary.vendors import profiles
from estuary.vendors.loader import vendor_for_resource

ACCELERATOR = naming.ORIGIN_ACCELERATOR  # vendor/model the origin chose (on the copy)
WORKERS = "estuary.dev/workers"
CREATED = "estuary.dev/workers-created"  # every worker pod was created once: a missing one was removed
SUSPEND = "estuary.dev/suspend"
MANIFEST = "aijob.json"
KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"
KUEUE_GROUP = "kueue.x-k8s.io/pod-group-name"
KUEUE_COUNT = "kueue.x-k8s.io/pod-group-total-count"
KUEUE_RETRIABLE = "kueue.x-k8s.io/retriable-in-group"


@dataclass(frozen=True)
class Offer:
    vendor: str
    model: str  # "" when discovered (the quota names a resource, not a model): any model
    resource: str
    node_selector: Mapping[str, str]
    tolerations: tuple[Mapping[str, Any], ...]
    accelerators: int | None
    throughput: float


@dataclass(frozen=True)
class Provider:
    """How this cluster submits to one agentless provider."""

    link: str
    namespace: str
    offers: tuple[Offer, ...]
    discover: bool
    kueue_queue: str | None
    service_account: str
    fence_image: str


def declared_offers(spec: ProviderSpec) -> tuple[Offer, ...]:
    out = []
    for o in spec.offers:
        profile = profiles().get(o.vendor)
        out.append(
            Offer(
                o.vendor,
                o.model,
                o.resource_name or (profile.default_resource if profile else ""),
                dict(o.node_selector or {}),
                tuple(t.to_wire() for t in o.tolerations or []),
                o.accelerators,
                o.relative_throughput,
            )
        )
    return tuple(out)


def effective_offers(provider: Provider, quotas: Iterable[Mapping[str, Any]]) -> tuple[Offer, ...]:
    """The declared offers, else (with discovery) those the namespace's quotas show."""
    return provider.offers or (discovered_offers(quotas) if provider.discover else ())


def discovered_offers(quotas: Iterable[Mapping[str, Any]]) -> tuple[Offer, ...]:
    """Offers read from the namespace's ResourceQuotas: each `requests.<resource>` of a known
    vendor is that vendor, any model."""
    seen: dict[str, Offer] = {}
    for quota in quotas:
        for key in (quota.get("status") or {}).get("hard") or (quota.get("spec") or {}).get("hard") or {}:
            resource = key.removeprefix("requests.")
            profile = vendor_for_resource(resource)
            if key.startswith("requests.") and profile is not None and resource not in seen:
                seen[resource] = Offer(profile.key, "", resource, {}, (), None, 1.0)
    return tuple(seen.values())


# ---- what the origin creates -------------------------------------------------------------------
def lease_object(manifest: Mapping[str, Any], namespace: str, workers: int) -> dict[str, Any]:
    """The attempt's ConfigMap: its record, its lease, and the copy's manifest."""
    meta = manifest["metadata"]
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {
            "name": meta["name"],
            "namespace": namespace,
            "labels": dict(meta.get("labels") or {}),
            "annotations": {**(meta.get("annotations") or {}), WORKERS: str(workers)},
        },
        "data": {MANIFEST: json.dumps({"metadata": meta, "spec": manifest["spec"]}, sort_keys=True)},
    }


def _choice(job: AIJob, vendor: str, model: str) -> AcceleratorChoice:
    """The job's accepted type for vendor/model (a discovered offer, model "", takes the first
    type of that vendor that names no model)."""
    for choice in job.spec.accelerators:
        if choice.vendor == vendor and (choice.model is None or choice.model.lower() == model.lower()):
            return choice
    raise ValueError(f"the job accepts no {vendor}/{model or 'any model'}")


def offer_for(provider: Provider, vendor: str, model: str) -> Offer:
    for offer in provider.offers:
        if (offer.vendor, offer.model.lower()) == (vendor, model.lower()):
            return offer
    raise ValueError(f"provider {provider.link} offers no {vendor}/{model}")


def _owned_by(obj: dict[str, Any], lease: Mapping[str, Any], labels: Mapping[str, str]) -> dict[str, Any]:
    meta = obj["metadata"]
    meta["labels"] = {**meta.get("labels", {}), **labels}
    meta["ownerReferences"] = [
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "name": lease["metadata"]["name"],
            "uid": lease["metadata"]["uid"],
            "controller": True,
        }
    ]
    return obj


def workload(lease: Mapping[str, Any], provider: Provider) -> list[dict[str, Any]]:
    """The headless Service and the worker pods of the attempt whose ConfigMap is `lease`."""
    notes = lease["metadata"].get("annotations") or {}
    copy = json.loads(lease["data"][MANIFEST])
    vendor, _, model = notes[ACCELERATOR].partition("/")
    offer = offer_for(provider, vendor, model)
    name, namespace, workers = lease["metadata"]["name"], provider.namespace, int(notes[WORKERS])
    passed = {k: v for k, v in notes.items() if k.startswith(render.PASS_THROUGH_PREFIX)}
    job = AIJob.model_validate(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": lease["metadata"]["uid"],
                "annotations": passed,
            },
            "spec": copy["spec"],
        }
    )
    labels = dict(lease["metadata"].get("labels") or {})
    fence = fencepod.FenceSpec(
        provider.fence_image,
        "configmap",
        name,
        int(notes.get(naming.LEASE_SECONDS) or 120),
        job.spec.preemption.grace_period_seconds,
    )
    out = [_owned_by(render.service(job), lease, labels)]
    for rank in range(workers):
        pod = render.worker_pod(
            job,
            _choice(job, vendor, model),
            profiles()[vendor],
            offer.resource,
            provider.link,
            None,
            rank,
            workers,
            int(notes.get(naming.ORIGIN_ATTEMPT) or 0),
            [dict(t) for t in offer.tolerations],
        )
        pod = _owned_by(pod, lease, labels)
        meta, spec = pod["metadata"], pod["spec"]
        meta["annotations"] = {**meta.get("annotations", {}), **_origin_notes(notes)}
        if provider.kueue_queue:
            meta["labels"].update({KUEUE_QUEUE: provider.kueue_queue, KUEUE_GROUP: name})
            meta["annotations"].update({KUEUE_COUNT: str(workers), KUEUE_RETRIABLE: "false"})
        if offer.node_selector:
            spec["nodeSelector"] = {**spec.get("nodeSelector", {}), **offer.node_selector}
        spec["serviceAccountName"] = provider.service_account
        out.append(fencepod.fenced(pod, fence))
    return out


def _origin_notes(notes: Mapping[str, str]) -> dict[str, str]:
    keep = (
        naming.ORIGIN_CLUSTER,
        naming.ORIGIN_UID,
        naming.ORIGIN_ATTEMPT,
        naming.ORIGIN_LINK_UID,
        ACCELERATOR,
    )
    return {k: notes[k] for k in keep if k in notes}


# ---- what the provider offers ------------------------------------------------------------------
def _quota(quotas: Iterable[Mapping[str, Any]], resource: str) -> tuple[int, int] | None:
    """(hard, used) of the tightest ResourceQuota on requests of `resource`, or None."""
    key, best = f"requests.{resource}", None
    for quota in quotas:
        status = quota.get("status") or {}
        hard = (status.get("hard") or (quota.get("spec") or {}).get("hard") or {}).get(key)
        if hard is None:
            continue
        room = (parse(hard), parse((status.get("used") or {}).get(key) or 0))
        if best is None or room[0] - room[1] < best[0] - best[1]:
            best = room
    return best


def _node_total(nodes: Iterable[Mapping[str, Any]], offer: Offer) -> int:
    total = 0
    for node in nodes:
        labels = node["metadata"].get("labels") or {}
        if all(labels.get(k) == v for k, v in offer.node_selector.items()):
            total += parse(((node.get("status") or {}).get("allocatable") or {}).get(offer.resource) or 0)
    return total


def _own_use(pods: Iterable[Mapping[str, Any]], offer: Offer) -> int:
    used = 0
    for pod in pods:
        notes = pod["metadata"].get("annotations") or {}
        if notes.get(ACCELERATOR, "").lower() != f"{offer.vendor}/{offer.model}".lower():
            continue
        if (pod.get("status") or {}).get("phase") in TERMINAL_POD_PHASES:
            continue
        for container in (pod.get("spec") or {}).get("containers") or []:
            used += parse(((container.get("resources") or {}).get("requests") or {}).get(offer.resource) or 0)
    return used


def capacity(
    provider: Provider,
    quotas: Sequence[Mapping[str, Any]],
    nodes: Sequence[Mapping[str, Any]] | None,
    own_pods: Sequence[Mapping[str, Any]],
) -> list[dict[str, Any]]:
    """What the provider offers now, as ComputePool-shaped dicts (plan.capacity_of reads them):
    capacity is the tightest of the declared limit, the ResourceQuota and the readable nodes;
    free subtracts the quota's use (everyone's in the namespace) and, from the declared limit,
    this cluster's own workers."""
    out = []
    for offer in effective_offers(provider, quotas):
        caps, frees = [], []
        if offer.accelerators is not None:
            caps.append(offer.accelerators)
            frees.append(offer.accelerators - _own_use(own_pods, offer))
        room = _quota(quotas, offer.resource) if provider.discover else None
        if room is not None:
            caps.append(room[0])
            frees.append(room[0] - room[1])
        if provider.discover and nodes is not None:
            caps.append(_node_total(nodes, offer))
        total = min(caps) if caps else 0
        free = max(0, min([total, *frees]))
        out.append(
            {
                "spec": {
                    "vendor": offer.vendor,
                    "model": offer.model,
                    "relativeThroughput": offer.throughput,
                },
                "status": {"capacity": total, "free": free},
            }
        )
    return out
