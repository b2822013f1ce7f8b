"""What Estuary owns in a worker pod, as data: the CRD's CEL rules and the docs come from here.

A job's `spec.template` may shape its worker pods (volumes, sidecars, securityContext, ...) but
must not set what Estuary decides: the node, the accelerators, the rendezvous and the vendor's
device variables. Setting one of those is refused by the API server (a CEL rule that names the
field), never silently overridden. docs/jobs.md has the same table for people; a unit test keeps
the two in step, and another checks that every variable the renderer sets is listed here.
"""

from __future__ import annotations

from typing import Any

from estuary.vendors.loader import VendorProfile, profiles

WORKER_CONTAINER = "worker"
RESERVED_VOLUME_PREFIX = "estuary-"
RESERVED_LABEL_PREFIX = "estuary.dev/"

# Variables Estuary sets in every worker (the rendezvous, ranks, and its own conveniences).
RENDEZVOUS_ENV = (
    "MASTER_ADDR",
    "MASTER_PORT",
    "WORLD_SIZE",
    "RANK",
    "LOCAL_RANK",
    "NODE_RANK",
    "NNODES",
    "NPROC_PER_NODE",
    "LOCAL_WORLD_SIZE",
    "DS_ACCELERATOR",
    "JAX_COORDINATOR_ADDRESS",
)
# Set by msrun for each process it starts, from the flags Estuary gives it (kube/launch.py).
MINDSPORE_ENV = (
    "MS_ROLE",
    "MS_SCHED_HOST",
    "MS_SCHED_PORT",
    "MS_WORKER_NUM",
    "MS_NODE_ID",
    "RANK_ID",
    "RANK_SIZE",
    "DEVICE_ID",
)
# Prefixes: torchrun's flags (PET_*) and Estuary's own variables (ESTUARY_*).
OWNED_ENV_PREFIXES = ("PET_", "ESTUARY_")

# Pod-level fields of spec.template.spec that Estuary sets: field -> what to do instead.
OWNED_POD_FIELDS: dict[str, str] = {
    "nodeName": "Estuary binds each worker to the node it chose; filter nodes with nodeSelector or "
    "tolerations",
    "affinity": "Estuary pins each worker to its node by node affinity; filter nodes with nodeSelector "
    "or tolerations",
    "topologySpreadConstraints": "Estuary places the whole gang itself; kube-scheduler would refuse a "
    "pinned worker the constraint does not allow",
    "schedulerName": "Estuary's workers are bound by the default scheduler to the node Estuary chose",
    "restartPolicy": "Estuary restarts whole gangs: set spec.restartPolicy",
    "hostname": "the rendezvous name {job}-worker-{rank}.{job} is each worker's hostname",
    "subdomain": "the rendezvous name {job}-worker-{rank}.{job} needs the job's headless Service",
    "terminationGracePeriodSeconds": "set spec.preemption.gracePeriodSeconds",
    "resources": "pod-level resources would override what Estuary counts: set spec.resources",
    "ephemeralContainers": "ephemeral containers cannot be set when a pod is created",
}

# Fields of the template's container named `worker` that come from elsewhere in the spec.
OWNED_WORKER_FIELDS: dict[str, str] = {
    "image": "the worker's image comes from spec.accelerators[].image of the type it runs on",
    "command": "set spec.command (the framework's launcher is the default)",
    "args": "set spec.args",
}
WORKER_RESOURCES = ("cpu", "memory")


def device_env(all_profiles: dict[str, VendorProfile] | None = None) -> tuple[str, ...]:
    """Every vendor's visible-devices and device-plugin variables."""
    found = {
        name
        for p in (all_profiles or profiles()).values()
        for name in (*p.visible_devices_env, *p.plugin_devices_env)
    }
    return tuple(sorted(found))


def accelerator_resources(all_profiles: dict[str, VendorProfile] | None = None) -> tuple[str, ...]:
    """Every extended resource name a vendor profile knows."""
    return tuple(sorted({r for p in (all_profiles or profiles()).values() for r in p.resource_names}))


def owned_env() -> tuple[str, ...]:
    return (*RENDEZVOUS_ENV, *MINDSPORE_ENV, *device_env())


def is_owned_env(name: str) -> bool:
    return name in owned_env() or name.startswith(OWNED_ENV_PREFIXES)


# -- CEL rules, attached to schema nodes by podspec.py and the AIJob model -----------------------


def _cel_list(values: tuple[str, ...]) -> str:
    return "[" + ", ".join(f"'{v}'" for v in values) + "]"


def _forbidden(rule: str, message: str, field: str = "", expression: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {"rule": rule, "message": message, "reason": "FieldValueForbidden"}
    if expression:
        out["messageExpression"] = expression
    if field:
        out["fieldPath"] = field
    return out


def env_var_rules() -> list[dict[str, Any]]:
    """On every EnvVar: its name is not one Estuary sets."""
    prefixes = " && ".join(f"!self.name.startsWith('{p}')" for p in OWNED_ENV_PREFIXES)
    why = "Estuary sets it in every worker (rendezvous, ranks, visible devices); see docs/jobs.md"
    return [
        _forbidden(
            f"!(self.name in {_cel_list(owned_env())}) && {prefixes}",
            f"this variable is owned by Estuary: {why}",
            ".name",
            f"'variable ' + self.name + ' is owned by Estuary: {why}'",
        )
    ]


def resource_rules() -> list[dict[str, Any]]:
    """On every container's `resources`: no accelerator resource (they come from the job's type)."""
    names = _cel_list(accelerator_resources())
    why = "accelerators are requested only through spec.acceleratorsPerWorker and spec.accelerators"
    return [
        _forbidden(f"!has(self.{part}) || {names}.all(r, !(r in self.{part}))", why, f".{part}")
        for part in ("limits", "requests")
    ]


def pod_rules() -> list[dict[str, Any]]:
    """On spec.template.spec: none of the pod-level fields Estuary owns."""
    return [
        _forbidden(f"!has(self.{field})", f"{field} is set by Estuary: {why}", f".{field}")
        for field, why in OWNED_POD_FIELDS.items()
    ]


def container_rules() -> list[dict[str, Any]]:
    """On every item of spec.template.spec.containers."""
    worker = f"self.name != '{WORKER_CONTAINER}'"
    rules = [
        _forbidden(f"{worker} || !has(self.{field})", f"the worker container's {field}: {why}", f".{field}")
        for field, why in OWNED_WORKER_FIELDS.items()
    ]
    for part in ("limits", "requests"):
        held = " && ".join(f"!('{r}' in self.resources.{part})" for r in WORKER_RESOURCES)
        rules.append(
            _forbidden(
                f"{worker} || !has(self.resources) || !has(self.resources.{part}) || ({held})",
                "the worker container's cpu and memory come from spec.resources",
                f".resources.{part}",
            )
        )
    rules.append(
        {
            "rule": f"!({worker}) || has(self.image)",
            "message": "a sidecar container needs an image (only the container named worker gets "
            "spec.accelerators[].image)",
            "fieldPath": ".image",
            "reason": "FieldValueRequired",
        }
    )
    return rules


def init_container_rules() -> list[dict[str, Any]]:
    return [
        _forbidden(
            f"self.name != '{WORKER_CONTAINER}'",
            "the name worker is taken by the worker container",
            ".name",
        ),
        {
            "rule": "has(self.image)",
            "message": "an init container needs an image",
            "fieldPath": ".image",
            "reason": "FieldValueRequired",
        },
    ]


def volume_rules() -> list[dict[str, Any]]:
    return [
        _forbidden(
            f"!self.name.startsWith('{RESERVED_VOLUME_PREFIX}')",
            f"volume names starting with {RESERVED_VOLUME_PREFIX} are Estuary's (e.g. estuary-shm)",
            ".name",
        )
    ]


def metadata_key_rules(kind: str) -> list[dict[str, Any]]:
    """On the template's labels or annotations: Estuary's keys are its own."""
    return [
        _forbidden(
            f"self.all(k, !k.startsWith('{RESERVED_LABEL_PREFIX}') && k != 'app.kubernetes.io/managed-by')",
            f"{kind} under {RESERVED_LABEL_PREFIX} and app.kubernetes.io/managed-by are set by Estuary",
        )
    ]
