"""Small helpers over the kubernetes client for end-to-end tests: reads for assertions, applies,
and the logs kwok serves for simulated pods."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client
from kubernetes.client.exceptions import ApiException

GROUP, VERSION = "estuary.dev", "v1alpha1"


class Kube:
    def __init__(self, api: client.ApiClient, kubectl: Any) -> None:
        self.api, self.kubectl = api, kubectl
        self.core = client.CoreV1Api(api)
        self.custom = client.CustomObjectsApi(api)

    def apply(self, obj: dict[str, Any] | str) -> None:
        text = obj if isinstance(obj, str) else yaml.safe_dump(obj)
        self.kubectl("apply", "--server-side", "--force-conflicts", "-f", "-", input=text)

    def job(self, namespace: str, name: str) -> dict[str, Any]:
        out: dict[str, Any] = self.custom.get_namespaced_custom_object(
            GROUP, VERSION, namespace, "aijobs", name
        )
        return out

    def status(self, namespace: str, name: str) -> dict[str, Any]:
        return dict(self.job(namespace, name).get("status") or {})

    def phase(self, namespace: str, name: str) -> str | None:
        return self.status(namespace, name).get("phase")

    def delete_job(self, namespace: str, name: str) -> None:
        try:
            self.custom.delete_namespaced_custom_object(GROUP, VERSION, namespace, "aijobs", name)
        except ApiException as err:
            if err.status != 404:
                raise

    def pods(self, namespace: str, job: str | None = None) -> list[dict[str, Any]]:
        selector = f"estuary.dev/job-name={job}" if job else "estuary.dev/job-name"
        items = self.core.list_namespaced_pod(namespace, label_selector=selector).items
        return [self.api.sanitize_for_serialization(p) for p in items]

    def all_worker_pods(self) -> list[dict[str, Any]]:
        items = self.core.list_pod_for_all_namespaces(label_selector="estuary.dev/job-name").items
        return [self.api.sanitize_for_serialization(p) for p in items]

    def nodes(self) -> list[dict[str, Any]]:
        return [self.api.sanitize_for_serialization(n) for n in self.core.list_node().items]

    def events(self, namespace: str, name: str) -> list[dict[str, Any]]:
        items = self.core.list_namespaced_event(namespace, field_selector=f"involvedObject.name={name}").items
        return [self.api.sanitize_for_serialization(e) for e in items]

    def serve_log(self, namespace: str, pod: str, path: Path, *lines: str) -> None:
        """Give a simulated pod a log: kwok (its Logs CRD, enabled in hack/devcluster) serves the
        file at `path`, followed, for `kubectl logs` and the pods/log API; `lines` start it."""
        cri_log(path, *lines)
        self.apply(
            {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "Logs",
                "metadata": {"name": pod, "namespace": namespace},
                "spec": {"logs": [{"logsFile": str(path), "follow": True}]},
            }
        )


def cri_log(path: Path, *lines: str) -> None:
    """Append lines to `path` in the CRI log format kwok serves."""
    stamp = datetime.fromtimestamp(time.time(), UTC).strftime("%Y-%m-%dT%H:%M:%S.000000000Z")
    with path.open("a") as out:
        for line in lines:
            out.write(f"{stamp} stdout F {line}\n")


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0].get("env") or []}


def aijob(
    name: str,
    namespace: str,
    accelerators: list[dict[str, Any]],
    workers: int = 1,
    per_worker: int = 8,
    annotations: dict[str, str] | None = None,
    **spec: Any,
) -> dict[str, Any]:
    return {
        "apiVersion": f"{GROUP}/{VERSION}",
        "kind": "AIJob",
        "metadata": {"name": name, "namespace": namespace, "annotations": annotations or {}},
        "spec": {
            "workers": workers,
            "acceleratorsPerWorker": per_worker,
            "accelerators": accelerators,
            "resources": {"cpu": "2", "memory": "8Gi"},
            **spec,
        },
    }


NVIDIA = {"vendor": "nvidia", "model": "H800", "image": "example.org/train:cuda12"}
ASCEND = {"vendor": "huawei", "model": "Ascend910B", "image": "example.org/train:cann8"}


def pools(quotas: dict[str, list[dict[str, Any]]] | None = None) -> list[dict[str, Any]]:
    """The ci cluster's two pools: H800 (reference speed) and Ascend 910B (0.8 of it)."""
    quotas = quotas or {}
    out = []
    for name, vendor, model, speed in (
        ("h800", "nvidia", "H800", 1.0),
        ("ascend", "huawei", "Ascend910B", 0.8),
    ):
        spec: dict[str, Any] = {
            "vendor": vendor,
            "model": model,
            "relativeThroughput": speed,
            "nodeSelector": {"estuary.dev/node-pool": name},
            "tolerations": [{"key": "estuary.dev/accelerator", "operator": "Exists"}],
        }
        if name in quotas:
            spec["quotas"] = quotas[name]
        out.append(
            {
                "apiVersion": f"{GROUP}/{VERSION}",
                "kind": "ComputePool",
                "metadata": {"name": name},
                "spec": spec,
            }
        )
    return out


def bound_claim(kube: Kube, namespace: str, name: str) -> None:
    """A bound ReadWriteMany claim (a hostPath volume: kwok runs no kubelet that would mount it)."""
    pv_name = f"{namespace}-{name}"
    pv: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolume",
        "metadata": {"name": pv_name},
        "spec": {
            "capacity": {"storage": "10Gi"},
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "hostPath": {"path": f"/srv/{namespace}/{name}"},
            "claimRef": {"namespace": namespace, "name": name},
        },
    }
    pvc = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "accessModes": ["ReadWriteMany"],
            "storageClassName": "",
            "volumeName": pv_name,
            "resources": {"requests": {"storage": "10Gi"}},
        },
    }
    kube.apply(pv)
    kube.apply(pvc)
