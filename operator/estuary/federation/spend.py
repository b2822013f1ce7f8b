"""Spend accounting per tenant and link (pure): accelerator-hours actually used, times the link's
price for that accelerator type. Spend is kept in the link's status as wire dicts
(`{"tenant", "acceleratorHours", "spend"}`) next to the ids of the attempts already counted, so a
restart between counting and forgetting a copy never counts it twice.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

MAX_CHARGED = 500  # attempt ids kept in status.charged (most recent last)


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


def spent(spend: Sequence[Mapping[str, Any]], tenant: str) -> float:
    return sum(float(e.get("spend") or 0.0) for e in spend if e.get("tenant") == tenant)


def charge(
    spend: Sequence[Mapping[str, Any]],
    charged: Sequence[str],
    attempt: str,
    tenant: str,
    hours: float,
    price: float,
) -> tuple[list[dict[str, Any]], list[str]] | None:
    """New (spend, charged) after counting `hours` of one attempt for `tenant` at `price` per
    accelerator-hour, or None when that attempt was counted already."""
    if attempt in charged:
        return None
    out: list[dict[str, Any]] = []
    found = False
    for entry in spend:
        entry = dict(entry)
        if entry.get("tenant") == tenant:
            found = True
            entry["acceleratorHours"] = round(float(entry.get("acceleratorHours") or 0.0) + hours, 6)
            entry["spend"] = round(float(entry.get("spend") or 0.0) + hours * price, 6)
        out.append(entry)
    if not found:
        out.append({"tenant": tenant, "acceleratorHours": round(hours, 6), "spend": round(hours * price, 6)})
    out.sort(key=lambda e: str(e.get("tenant")))
    return out, [*charged, attempt][-MAX_CHARGED:]
