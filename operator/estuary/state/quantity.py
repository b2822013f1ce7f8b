"""Kubernetes resource quantities ("500m", "8", "64Gi", "1e3") as whole numbers for the core.

Parsing is the official client's (`kubernetes.utils.parse_quantity`, the same suffixes and forms
the API server accepts); this module only scales and rounds up, so a request is never undercounted.
"""

from __future__ import annotations

from decimal import Decimal

from kubernetes.utils import parse_quantity


def parse(value: str | int | float, scale: int = 1) -> int:
    """The quantity times `scale`, rounded up (CPU: scale=1000 gives millicores)."""
    try:
        number = Decimal(parse_quantity(value)) * scale
    except (ValueError, ArithmeticError) as err:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from err
    whole = int(number)
    return whole if number == whole else whole + 1


def cpu_milli(value: str | int | float) -> int:
    return parse(value, 1000)
