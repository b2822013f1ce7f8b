"""Spend accounting per tenant and link (pure): accelerator-hours actually used, times the link's
price for that accelerator type. The records themselves are kept by spendbook.py.
"""

from __future__ import annotations

from collections.abc import Iterable


def cost_of(costs: Iterable[tuple[str, str | None, float]], vendor: str, model: str) -> float:
    """Price of one accelerator-hour of vendor/model: an entry naming the model wins over one for
    the whole vendor; a type without any entry costs 0."""
    vendor_wide: float | None = None
    for c_vendor, c_model, price in costs:
        if c_vendor != vendor:
            continue
        if c_model is not None and c_model.lower() == model.lower():
            return price
        if c_model is None and vendor_wide is None:
            vendor_wide = price
    return vendor_wide if vendor_wide is not None else 0.0


def accelerator_hours(start: float, end: float, accelerators: int) -> float:
    """Hours between start and end (seconds on one clock) times accelerators; never negative."""
    return max(0.0, end - start) / 3600.0 * max(0, accelerators)
