"""Tenant quotas per pool: nominal, borrowing limit, lending limit, the '*' entry."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from estuary.model import Reason, TenantQuota

from .builders import admitted, cycle, make_job, make_nodes, make_pool, quota, run, snapshot

# 4 nodes x 8 = 32 accelerators; physics already uses 16 on n1 and n2.
PHYSICS_16 = [run(make_job(f"ns/p{i}", tenant="physics"), "h800", [f"n{i}"]) for i in (1, 2)]


def _try(quotas: Mapping[str, TenantQuota], job_gpus: int = 8, tenant: str = "physics") -> tuple[bool, str]:
    snap = snapshot([make_pool(quotas=quotas)], make_nodes("n", 4), PHYSICS_16)
    workers = job_gpus // 8
    result = cycle(snap, make_job("ns/new", workers=workers, tenant=tenant))
    waiting = result.waiting.get("ns/new")
    return bool(result.admissions), "" if waiting is None else waiting.message


@pytest.mark.parametrize(
    ("case", "quotas", "gpus", "tenant", "fits", "message"),
    [
        ("within nominal", {"physics": quota(24)}, 8, "physics", True, ""),
        (
            "borrows idle nominal of others",
            {"physics": quota(16), "chem": quota(16)},
            16,
            "physics",
            True,
            "",
        ),
        (
            "borrowing limit binds",
            {"physics": quota(16, borrowing_limit=0), "chem": quota(16)},
            8,
            "physics",
            False,
            "tenant physics in pool h800: used 16 of nominal 16, may borrow 0 more (borrowing limit 0); "
            "needs 8",
        ),
        (
            "lending limit binds",
            {"physics": quota(16), "chem": quota(16, lending_limit=8)},
            16,
            "physics",
            False,
            "tenant physics in pool h800: used 16 of nominal 16, may borrow 8 more (no borrowing limit; "
            "8 left to borrow in the pool); needs 16",
        ),
        (
            "lending limit leaves enough",
            {"physics": quota(16), "chem": quota(16, lending_limit=8)},
            8,
            "physics",
            True,
            "",
        ),
        ("unassigned capacity is borrowable", {"physics": quota(16)}, 16, "physics", True, ""),
        (
            "unlisted tenant without '*' cannot use the pool",
            {"physics": quota(16)},
            8,
            "bio",
            False,
            "tenant bio has no quota in pool h800 (not listed, and no '*' entry); needs 8",
        ),
        (
            "'*' entry applies to unlisted tenants",
            {"physics": quota(16), "*": quota(8, borrowing_limit=0)},
            8,
            "bio",
            True,
            "",
        ),
        (
            "'*' entry limits each unlisted tenant",
            {"physics": quota(16), "*": quota(8, borrowing_limit=0)},
            16,
            "bio",
            False,
            "tenant bio in pool h800: used 0 of nominal 8, may borrow 0 more (borrowing limit 0); needs 16",
        ),
        ("no quotas: nothing enforced", {}, 16, "bio", True, ""),
    ],
)
def test_quota_rules(
    case: str, quotas: Mapping[str, TenantQuota], gpus: int, tenant: str, fits: bool, message: str
) -> None:
    assert _try(quotas, gpus, tenant) == (fits, message), case


def test_what_others_already_borrow_is_not_borrowable_again() -> None:
    quotas = {"physics": quota(8), "chem": quota(8), "bio": quota(16)}
    # physics uses 16 with nominal 8: it borrows 8 of bio's idle 16; chem may borrow the other 8 only
    snap = snapshot([make_pool(quotas=quotas)], make_nodes("n", 4), PHYSICS_16)
    result = cycle(
        snap,
        make_job("ns/c", workers=3, tenant="chem"),
        make_job("ns/d", workers=2, tenant="chem", arrival=1),
    )
    assert set(admitted(result)) == {"ns/d"}
    assert result.waiting["ns/c"].reason == Reason.QUOTA
    assert "may borrow 8 more" in result.waiting["ns/c"].message


def test_admissions_in_one_cycle_count_against_quota() -> None:
    snap = snapshot([make_pool(quotas={"physics": quota(16, borrowing_limit=0)})], make_nodes("n", 4))
    result = cycle(snap, *[make_job(f"ns/j{i}", arrival=i) for i in range(3)])
    assert set(admitted(result)) == {"ns/j0", "ns/j1"}
    assert result.waiting["ns/j2"].reason == Reason.QUOTA


def test_quota_only_counts_the_jobs_of_that_pool() -> None:
    pools = [
        make_pool("h800", quotas={"physics": quota(8, borrowing_limit=0)}),
        make_pool("a800", model="A800"),
    ]
    nodes = make_nodes("h", 2, pool="h800") + make_nodes("a", 2, pool="a800")
    busy = [run(make_job("ns/elsewhere", workers=2, tenant="physics"), "a800", ["a1", "a2"])]
    result = cycle(snapshot(pools, nodes, busy), make_job("ns/x", accepts=("nvidia",)))
    assert admitted(result)["ns/x"][0] == "h800"
