"""Capacity in PFLOPS: accelerators times their model's peak dense FP16/BF16 TFLOPS.

Why it exists: the platforms Estuary serves plan and buy compute in PFLOPS ("200P", "500P"), so
`kubectl get cpool` and the metrics show pools in that unit too. The per-model figures, each with
its source, are in vendors/profiles.yaml; a model without one gets no PFLOPS fields (never a guess).
"""

from __future__ import annotations

from typing import Any

from estuary.vendors.loader import tflops_per_accelerator

__all__ = ["pool_status_fields", "tflops_per_accelerator"]


def pool_status_fields(vendor: str, model: str, capacity: int, allocated: int, free: int) -> dict[str, Any]:
    """ComputePool status fields in PFLOPS (camelCase), or {} when the model has no figure."""
    tflops = tflops_per_accelerator(vendor, model)
    if tflops is None:
        return {}
    return {
        "tflopsPerAccelerator": tflops,
        "capacityPflops": round(capacity * tflops / 1000.0, 3),
        "allocatedPflops": round(allocated * tflops / 1000.0, 3),
        "freePflops": round(free * tflops / 1000.0, 3),
    }
