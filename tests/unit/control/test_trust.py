"""A placement starts pods only when the operator sealed it (control/seal.py), and an attempt's
tenant is the one it was admitted under (docs/operations.md, "Tenants").

The same rules against a real API server: tests/e2e/test_safety.py."""

from __future__ import annotations

from typing import Any

import pytest

from estuary.api.placement import Placement
from estuary.control.seal import Sealer

from .harness import NS, Harness

POOL = {
    "kind": "ComputePool",
    "metadata": {"name": "h800"},
    "spec": {
        "vendor": "nvidia",
        "model": "H800",
        "nodeSelector": {"estuary.dev/model": "H800"},
        "quotas": [
            {"tenant": "physics", "nominal": 8, "borrowingLimit": 0},
            {"tenant": "chemistry", "nominal": 8, "borrowingLimit": 0},
        ],
    },
}


def _forge(
    h: Harness, name: str, placement: dict[str, Any], attempt: int = 1, phase: str = "Admitted"
) -> None:
    h.server.patch_job_status(NS, name, {"phase": phase, "attempt": attempt, "placement": placement})


def _local(nodes: list[str], **extra: Any) -> dict[str, Any]:
    return {
        "cluster": "local",
        "pool": "h800",
        "vendor": "nvidia",
        "model": "H800",
        "resource": "nvidia.com/gpu",
        "nodes": nodes,
        "workers": len(nodes),
        **extra,
    }


def _namespace(h: Harness, tenant: str) -> None:
    h.server.put({"kind": "Namespace", "metadata": {"name": NS, "labels": {"estuary.dev/tenant": tenant}}})


def _used(h: Harness) -> dict[str, int]:
    pool = h.server.get("computepools", "h800") or {}
    return {t["tenant"]: t["used"] for t in (pool.get("status") or {}).get("tenants") or []}


def test_a_placement_written_by_someone_else_starts_no_pods_and_is_released_with_its_reason() -> None:
    h = Harness()
    h.server.put(POOL)
    _namespace(h, "physics")
    h.submit("greedy", workers=2)  # 16 GPUs: twice physics' nominal quota, no borrowing
    h.step()
    assert h.phase("greedy") == ("Queued", "QuotaExceeded")
    _forge(h, "greedy", _local(["n0", "n1"]))
    h.step()
    assert h.pods("greedy") == []
    status = h.status("greedy")
    assert status["reason"] == "PlacementNotTrusted" and status["phase"] == "Queued"
    assert "not written by Estuary" in status["message"] and "aijobs/status" in status["message"]
    h.step()
    assert "placement" not in h.status("greedy") and h.phase("greedy") == ("Queued", "QuotaExceeded")
    assert h.pods("greedy") == []


def test_a_seal_copied_from_another_job_or_an_edited_placement_is_not_trusted() -> None:
    h = Harness()
    h.submit("own", workers=1)
    h.step()
    sealed = h.status("own")["placement"]
    assert sealed["seal"].startswith("v1:") and sealed["tenant"] == "default" and len(h.pods("own")) == 1
    h.submit("other", workers=1, suspend=True)
    h.step()
    _forge(h, "other", sealed)
    h.server.patch("aijobs", f"{NS}/other", {"spec": {"suspend": False}})
    h.step()
    assert h.pods("other") == [] and h.status("other")["reason"] == "PlacementNotTrusted"
    sealer = Sealer(b"k" * 32)
    placement = sealer.seal("uid-1", 3, Placement.model_validate(_local(["n0"], tenant="physics")))
    assert sealer.trusts("uid-1", 3, placement)
    assert not sealer.trusts("uid-1", 4, placement)
    assert not sealer.trusts("uid-1", 3, placement.model_copy(update={"nodes": ["n1"]}))
    assert not sealer.trusts("uid-1", 3, placement.model_copy(update={"tenant": "chemistry"}))
    assert not Sealer(b"x" * 32).trusts("uid-1", 3, placement)


def test_an_attempt_s_own_placement_written_back_after_its_release_starts_nothing() -> None:
    h = Harness()
    h.running("train", workers=1)
    sealed = h.status("train")["placement"]
    h.server.patch("aijobs", f"{NS}/train", {"spec": {"suspend": True}})
    h.step(2)
    assert h.phase("train")[0] == "Suspended" and h.pods("train") == []
    h.server.patch("aijobs", f"{NS}/train", {"spec": {"suspend": False}})
    _forge(h, "train", sealed, attempt=1)
    h.step()
    assert h.pods("train") == [] and h.status("train")["reason"] == "PlacementNotTrusted"


def test_relabelling_a_namespace_keeps_a_running_attempt_s_tenant_and_moves_the_next_one() -> None:
    h = Harness()
    h.server.put(POOL)
    _namespace(h, "physics")
    h.running("train", workers=1)
    assert h.status("train")["placement"]["tenant"] == "physics" and _used(h)["physics"] == 8
    _namespace(h, "chemistry")
    h.step(3)
    assert h.phase("train") == ("Running", "Running")
    assert _used(h).get("physics") == 8 and not _used(h).get("chemistry")
    # the next attempt (a worker failed: restart) runs under the namespace's tenant now
    h.fail_worker(0, "train")
    h.step()
    h.clock.advance(60)
    h.step(2)
    assert h.phase("train")[0] == "Admitted"
    assert h.status("train")["placement"]["tenant"] == "chemistry"
    assert _used(h).get("chemistry") == 8 and not _used(h).get("physics")
    runs = h.status("train")["runs"]
    assert [r.get("tenant") for r in runs] == ["physics", "chemistry"]


@pytest.mark.parametrize("key", [b"", b"short"])
def test_a_short_key_is_refused(key: bytes) -> None:
    with pytest.raises(ValueError, match="16 bytes"):
        Sealer(key)
