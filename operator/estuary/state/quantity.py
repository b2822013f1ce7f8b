"""Parse Kubernetes resource quantities ("500m", "8", "64Gi", "1e3") into integers."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

_SUFFIX: dict[str, Decimal | int] = {
    "Ki": 2**10,
    "Mi": 2**20,
    "Gi": 2**30,
    "Ti": 2**40,
    "Pi": 2**50,
    "Ei": 2**60,
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": 1,
    "k": 10**3,
    "M": 10**6,
    "G": 10**9,
    "T": 10**12,
    "P": 10**15,
    "E": 10**18,
}
_QUANTITY = re.compile(r"^([+-]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E)?$")


def parse(value: str | int | float, scale: int = 1) -> int:
    """The quantity times `scale`, rounded up (CPU: scale=1000 gives millicores)."""
    match = _QUANTITY.match(str(value).strip())
    if not match:
        raise ValueError(f"not a Kubernetes quantity: {value!r}")
    try:
        number = Decimal(match.group(1)) * Decimal(_SUFFIX[match.group(2) or ""]) * scale
    except InvalidOperation as err:
        raise ValueError(f"not a Kubernetes quantity: {value!r}") from err
    whole = int(number)
    return whole if number == whole else whole + 1


def cpu_milli(value: str | int | float) -> int:
    return parse(value, 1000)
