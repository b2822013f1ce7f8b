"""Capacity in PFLOPS: accelerators times their model's peak dense FP16/BF16 TFLOPS.

Why it exists: the platforms Estuary serves plan and buy compute in PFLOPS ("200P", "500P"), so
`kubectl get cpool` and the metrics show pools in that unit too. The per-model figures, each with
its source, are in vendors/profiles.yaml; a model without one gets no PFLOPS fields (never a guess).
"""

from __future__ import annotations

from typing import TypedDict

from estuary.vendors.loader import tflops_per_accelerator

__all__ = ["PoolPflops", "pool_status_fields", "tflops_per_accelerator"]


class PoolPflops(TypedDict, total=False):
    """The PFLOPS fields of `ComputePoolStatus`, by field name."""

    tflops_per_accelerator: float
    capacity_pflops: float
    allocated_pflops: float
    free_pflops: float


def pool_status_fields(vendor: str, model: str, capacity: int, allocated: int, free: int) -> PoolPflops:
    """ComputePool status fields in PFLOPS, or none when the model has no figure."""
    tflops = tflops_per_accelerator(vendor, model)
    if tflops is None:
        return {}
    return {
        "tflops_per_accelerator": tflops,
        "capacity_pflops": round(capacity * tflops / 1000.0, 3),
        "allocated_pflops": round(allocated * tflops / 1000.0, 3),
        "free_pflops": round(free * tflops / 1000.0, 3),
    }
