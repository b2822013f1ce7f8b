"""The burst chooser: table tests of each rule, and a property: residency is never violated."""

from __future__ import annotations

import os
from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from estuary.federation import datamove
from estuary.federation.choose import (
    POLICY,
    Decision,
    JobDemand,
    LinkOffer,
    TypeOffer,
    Why,
    choose,
    residency_allows,
)
from estuary.model import AcceptedType

H800 = AcceptedType("nvidia", "H800")
ASCEND = AcceptedType("huawei", "Ascend910B")


def link(name: str = "gz", jurisdiction: str = "mainland", **kw: Any) -> LinkOffer:
    base = LinkOffer(
        name=name,
        jurisdiction=jurisdiction,
        allowed_residency=frozenset({"any", jurisdiction}),
        allowed_tenants=frozenset({"physics"}),
        after_seconds=600,
        when_never_fits=True,
        ready=True,
        types=(TypeOffer("nvidia", "H800", 64, 64, 1.0), TypeOffer("huawei", "Ascend910B", 64, 64, 0.8)),
        costs=(("nvidia", "H800", 3.0), ("huawei", None, 1.0)),
        budgets={"physics": 100.0},
    )
    return replace(base, **kw)


def job(**kw: Any) -> JobDemand:
    base = JobDemand(
        key="ns/j",
        tenant="physics",
        residency="any",
        accepted=(H800, ASCEND),
        accelerators=16,
        min_accelerators=16,
        waited=0.0,
    )
    return replace(base, **kw)


def test_waits_until_the_link_threshold_then_bursts() -> None:
    assert choose(job(waited=599), [link()]).why == Why.NOT_YET
    decision = choose(job(waited=600), [link()])
    assert decision.link == "gz" and decision.why == Why.BURST
    assert (decision.vendor, decision.model, decision.start_now) == ("nvidia", "H800", True)


def test_the_jobs_own_threshold_overrides_the_links() -> None:
    assert choose(job(waited=30, after_seconds=30), [link()]).link == "gz"
    assert choose(job(waited=700, after_seconds=900), [link()]).why == Why.NOT_YET


def test_never_fits_bursts_at_once_only_where_the_link_allows_it() -> None:
    assert choose(job(never_fits=True), [link()]).link == "gz"
    assert choose(job(never_fits=True), [link(when_never_fits=False)]).why == Why.NOT_YET


@pytest.mark.parametrize(
    ("residency", "jurisdiction", "allowed", "ok"),
    [
        ("any", "mainland", {"any"}, True),
        ("any", "mainland", {"mainland"}, False),
        ("hk", "mainland", {"any", "mainland"}, False),
        ("hk", "hk", {"any"}, False),
        ("hk", "hk", {"hk"}, True),
        ("mainland", "mainland", {"any", "mainland"}, True),
        ("overseas", "hk", {"any", "hk", "overseas"}, False),  # a list the CRD refuses: still safe
    ],
)
def test_residency_table(residency: str, jurisdiction: str, allowed: set[str], ok: bool) -> None:
    offer = link(jurisdiction=jurisdiction, allowed_residency=frozenset(allowed))
    decision = choose(job(residency=residency, never_fits=True), [offer])
    assert (decision.link == "gz") is ok
    assert residency_allows(residency, jurisdiction, frozenset(allowed)) is ok
    if not ok:
        assert decision.why == Why.RESIDENCY


def test_residency_refusal_is_explained_before_any_trigger() -> None:
    decision = choose(job(residency="hk"), [link()])
    assert decision.why == Why.RESIDENCY
    assert decision.message == "may not burst: data must stay in hk; link gz is mainland"


def test_tenant_and_budget_refusals_name_the_tenant_and_the_numbers() -> None:
    assert (
        choose(job(tenant="bio", never_fits=True), [link()]).message
        == "may not burst: tenant bio may not use link gz"
    )
    no_budget = choose(job(never_fits=True), [link(budgets={})])
    assert no_budget.why == Why.NO_BUDGET and "no budget for tenant physics" in no_budget.message
    spent = choose(job(never_fits=True), [link(spent={"physics": 100.0})])
    assert spent.why == Why.BUDGET
    assert spent.message == "may not burst: tenant physics has spent 100.00 of its 100.00 budget at link gz"
    assert choose(job(never_fits=True), [link(spent={"physics": 99.9})]).link == "gz"


def test_unready_refusing_and_full_links_are_skipped_with_a_reason() -> None:
    down = choose(job(never_fits=True), [link(ready=False, not_ready="Unreachable: no answer")])
    assert down.why == Why.NOT_READY and "Unreachable: no answer" in down.message
    refused = choose(job(never_fits=True, excluded={"gz": "refused this job recently"}), [link()])
    assert refused.why == Why.REFUSED
    assert refused.message == "may not burst: link gz refused this job recently"
    full = choose(job(never_fits=True), [link(jobs=2, max_jobs=2)])
    assert full.why == Why.FULL and "limit 2" in full.message
    many = choose(job(never_fits=True), [link(accelerators=50, max_accelerators=64)])
    assert many.why == Why.FULL and "66" in many.message


def test_no_accepted_type_at_the_partner() -> None:
    decision = choose(job(accepted=(AcceptedType("cambricon", None),)), [link()])
    assert decision.why == Why.NO_TYPE and "offers nvidia/H800 (64)" in decision.message
    too_big = choose(job(accelerators=128, min_accelerators=128, never_fits=True), [link()])
    assert too_big.why == Why.NO_TYPE


def test_earliest_start_wins_then_throughput_then_cost_then_name() -> None:
    busy = link("a-busy", types=(TypeOffer("nvidia", "H800", 64, 0, 1.0),))
    free = link("b-free", types=(TypeOffer("huawei", "Ascend910B", 64, 64, 0.8),))
    assert choose(job(never_fits=True), [busy, free]).link == "b-free"
    fast = link("z-fast", types=(TypeOffer("nvidia", "H800", 64, 64, 1.0),))
    assert choose(job(never_fits=True), [free, fast]).link == "z-fast"
    cheap = link("y", types=(TypeOffer("nvidia", "H800", 64, 64, 1.0),), costs=(("nvidia", None, 1.0),))
    dear = link("x", types=(TypeOffer("nvidia", "H800", 64, 64, 1.0),), costs=(("nvidia", None, 5.0),))
    assert choose(job(never_fits=True), [dear, cheap]).link == "y"
    twin = link("w", types=(TypeOffer("nvidia", "H800", 64, 64, 1.0),), costs=(("nvidia", None, 1.0),))
    assert choose(job(never_fits=True), [cheap, twin]).link == "w"


def test_a_type_hint_of_the_job_overrides_the_partners_throughput() -> None:
    hinted = job(never_fits=True, accepted=(H800, AcceptedType("huawei", "Ascend910B", 2.0)))
    assert choose(hinted, [link()]).model == "Ascend910B"


def test_disabled_or_no_links_says_nothing() -> None:
    assert choose(job(enabled=False, never_fits=True), [link()]) == Decision(None, Why.DISABLED, "")
    assert choose(job(never_fits=True), []).message == ""


def test_several_links_refusing_are_all_named() -> None:
    decision = choose(job(residency="hk", never_fits=True), [link("gz"), link("sg", jurisdiction="overseas")])
    assert decision.message == "may not burst: data must stay in hk; link gz is mainland; link sg is overseas"
    assert decision.why == Why.RESIDENCY


# ---- property: whatever the jobs, links and failures, residency holds ----------------------------

RESIDENCIES = ("any", "hk", "mainland", "overseas")
JURISDICTIONS = ("hk", "mainland", "overseas")
TYPES = (("nvidia", "H800"), ("nvidia", "A800"), ("huawei", "Ascend910B"), ("hygon", "K100"))


@st.composite
def offers(draw: st.DrawFn, name: str) -> LinkOffer:
    jurisdiction = draw(st.sampled_from(JURISDICTIONS))
    types = tuple(
        TypeOffer(v, m, cap, draw(st.integers(0, cap)), draw(st.sampled_from([0.5, 1.0, 2.0])))
        for (v, m), cap in draw(
            st.dictionaries(st.sampled_from(TYPES), st.integers(0, 64), max_size=3)
        ).items()
    )
    return LinkOffer(
        name=name,
        jurisdiction=jurisdiction,
        # any subset, including ones the CRD would refuse (a class other than the jurisdiction)
        allowed_residency=frozenset(draw(st.sets(st.sampled_from(RESIDENCIES)))),
        allowed_tenants=frozenset(draw(st.sets(st.sampled_from(("a", "b", "c"))))),
        after_seconds=draw(st.sampled_from([0, 60, 600])),
        when_never_fits=draw(st.booleans()),
        ready=draw(st.booleans()),  # link failures: unreachable, bad credentials, refused
        types=types,
        costs=(("nvidia", None, 2.0),),
        budgets=draw(st.dictionaries(st.sampled_from(("a", "b", "c")), st.floats(0, 10))),
        spent=draw(st.dictionaries(st.sampled_from(("a", "b", "c")), st.floats(0, 20))),
        jobs=draw(st.integers(0, 5)),
        accelerators=draw(st.integers(0, 64)),
        max_jobs=draw(st.none() | st.integers(0, 6)),
        max_accelerators=draw(st.none() | st.integers(0, 96)),
    )


@st.composite
def scenarios(draw: st.DrawFn) -> tuple[JobDemand, list[LinkOffer]]:
    names = draw(st.lists(st.sampled_from(("gz", "sz", "hk2", "sg", "bj")), unique=True, max_size=5))
    links = [draw(offers(n)) for n in names]
    accepted = tuple(
        AcceptedType(v, draw(st.sampled_from([m, None])))
        for v, m in draw(st.lists(st.sampled_from(TYPES), min_size=1, max_size=3, unique=True))
    )
    need = draw(st.integers(0, 64))
    demand = JobDemand(
        key="ns/job",
        tenant=draw(st.sampled_from(("a", "b", "c"))),
        residency=draw(st.sampled_from(RESIDENCIES)),
        accepted=accepted,
        accelerators=need,
        min_accelerators=draw(st.integers(0, need)),
        waited=draw(st.floats(0, 2000)),
        enabled=draw(st.booleans()),
        after_seconds=draw(st.none() | st.integers(0, 900)),
        never_fits=draw(st.booleans()),
        excluded={n: "refused it" for n in draw(st.sets(st.sampled_from(names)))} if names else {},
    )
    return demand, links


SETTINGS = settings(max_examples=int(os.environ.get("ESTUARY_PROPERTY_EXAMPLES", "300")), deadline=None)


@SETTINGS
@given(scenarios())
def test_property_a_chosen_link_always_honours_residency_tenant_budget_and_health(
    scenario: tuple[JobDemand, list[LinkOffer]],
) -> None:
    demand, links = scenario
    decision = choose(demand, links)
    if decision.link is None:
        assert decision.why != Why.BURST
        return
    chosen = next(lk for lk in links if lk.name == decision.link)
    if demand.residency == "any":
        assert "any" in chosen.allowed_residency
    else:
        assert chosen.jurisdiction == demand.residency and demand.residency in chosen.allowed_residency
    assert residency_allows(demand.residency, chosen.jurisdiction, chosen.allowed_residency)
    assert demand.enabled and chosen.ready and chosen.name not in demand.excluded
    assert demand.tenant in chosen.allowed_tenants
    assert chosen.spent.get(demand.tenant, 0.0) < chosen.budgets[demand.tenant]
    assert any(
        AcceptedType(a.vendor, a.model).matches(decision.vendor or "", decision.model or "")
        for a in demand.accepted
    )


@SETTINGS
@given(scenarios())
def test_property_a_residency_refusal_never_depends_on_link_health_or_timing(
    scenario: tuple[JobDemand, list[LinkOffer]],
) -> None:
    """Flipping every link healthy, every trigger on, never moves a job to a forbidden link."""
    demand, links = scenario
    healed = [replace(lk, ready=True, after_seconds=0, when_never_fits=True) for lk in links]
    decision = choose(replace(demand, waited=10_000, never_fits=True, excluded={}), healed)
    for verdict in decision.verdicts:
        link_offer = next(lk for lk in healed if lk.name == verdict.link)
        if not residency_allows(demand.residency, link_offer.jurisdiction, link_offer.allowed_residency):
            assert verdict.why == Why.RESIDENCY and verdict.why in POLICY
    if decision.link is not None:
        chosen = next(lk for lk in healed if lk.name == decision.link)
        assert residency_allows(demand.residency, chosen.jurisdiction, chosen.allowed_residency)


# ---- data-aware placement -----------------------------------------------------------------------
TB = 2 * 10**12  # a 2 TB dataset


def scans(cluster: str, residency: str = "any", jurisdiction: str = "mainland") -> datamove.Dataset:
    return datamove.Dataset("scans", cluster, jurisdiction, TB, residency)


def two_partners(gbps_gz: float = 1.0, gbps_bj: float = 1.0, **bj: Any) -> list[LinkOffer]:
    money = {"physics": 10_000.0}
    return [
        link("gz", path=datamove.Path("gz", 0.02, gbps_gz * 1e9, 0.5), budgets=money),
        link("bj", path=datamove.Path("bj", 0.04, gbps_bj * 1e9, 0.5), budgets=money, **bj),
    ]


def test_a_job_whose_data_is_in_guangzhou_goes_to_the_guangzhou_partner_and_says_why() -> None:
    decision = choose(job(never_fits=True, datasets=(scans("gz"),)), two_partners())
    assert decision.link == "gz"
    assert "scans already in gz" in decision.message
    # 2 TB over 1 Gbps: 16,000 s = 4.4 h; 2,000 GB x 0.5 at each of the two links = 2,000.00
    assert "not bj: data there ~4.4 h later, 2000.00 to move it" in decision.message


def test_data_at_home_goes_where_it_arrives_first_even_to_a_slower_type() -> None:
    faster_type = (TypeOffer("nvidia", "H800", 64, 64, 1.0),)
    links = two_partners(gbps_gz=10, gbps_bj=1, types=(TypeOffer("nvidia", "H800", 64, 64, 1.5),))
    links[0] = replace(links[0], types=faster_type)
    assert choose(job(never_fits=True), links).link == "bj"  # no data: the faster type wins
    decision = choose(job(never_fits=True, datasets=(scans("local"),)), links)
    assert decision.link == "gz"
    assert "moving 2,000 GB takes ~27 min, costs 1000.00" in decision.message
    assert "scans 2,000 GB from local at 10,000 Mbps: 27 min, 1000.00" in decision.message


def test_with_a_runtime_estimate_the_earliest_finish_wins() -> None:
    links = two_partners(gbps_gz=1, gbps_bj=10, types=(TypeOffer("nvidia", "H800", 64, 64, 1.0),))
    links[0] = replace(links[0], types=(TypeOffer("nvidia", "H800", 64, 64, 2.0),))
    data = (scans("local"),)
    # gz: 4.4 h moving + 10 h at speed 2 = 9.4 h; bj: 0.4 h moving + 20 h = 20.4 h
    assert choose(job(never_fits=True, datasets=data, estimated_seconds=20 * 3600), links).link == "gz"
    # a short job: gz 4.4 h + 0.5 h; bj 0.4 h + 1 h
    assert choose(job(never_fits=True, datasets=data, estimated_seconds=3600), links).link == "bj"


def test_a_dataset_that_must_stay_in_hk_refuses_every_mainland_link() -> None:
    decision = choose(job(never_fits=True, datasets=(scans("local", "hk", "hk"),)), two_partners())
    assert decision.link is None and decision.why == Why.RESIDENCY
    assert "dataset scans must stay in hk; link gz is mainland" in decision.message


def test_moving_the_data_must_fit_the_budget() -> None:
    decision = choose(
        job(never_fits=True, datasets=(scans("local"),)), [link(path=datamove.Path("gz", 0, 1e9, 0.5))]
    )
    assert decision.why == Why.BUDGET  # 1000.00 to move it, 100.00 of budget
    assert "would cost 1000.00, more than the 100.00 left" in decision.message


def test_data_at_another_partner_crosses_both_links_at_the_slower_speed() -> None:
    links = two_partners(gbps_gz=10, gbps_bj=1)
    move = datamove.plan((scans("bj"),), links[0].route, {lk.route.cluster: lk.route for lk in links})
    assert move.seconds == pytest.approx(TB * 8 / 1e9 + 0.06)
    assert move.cost == pytest.approx(2000 * (0.5 + 0.5))


def test_unmeasured_bandwidth_is_said_not_guessed() -> None:
    move = datamove.plan((scans("local"),), datamove.Path("gz"), {})
    assert move.seconds == 0 and "bandwidth not measured yet" in move.lines[0]


@given(
    residency=st.sampled_from(["any", "hk", "mainland", "overseas"]),
    jurisdictions=st.lists(st.sampled_from(["hk", "mainland", "overseas"]), min_size=1, max_size=4),
    where=st.sampled_from(["local", "l0", "l1"]),
)
@settings(max_examples=100, deadline=None)
def test_property_a_dataset_never_goes_where_its_residency_forbids(
    residency: str, jurisdictions: list[str], where: str
) -> None:
    links = [
        link(f"l{i}", j, allowed_residency=frozenset({"any", j}), path=datamove.Path(f"l{i}", 0.01, 1e9))
        for i, j in enumerate(jurisdictions)
    ]
    home = "hk" if residency == "any" else residency
    data = (datamove.Dataset("d", where, home, 10**9, residency),)
    decision = choose(job(never_fits=True, datasets=data, tenant="physics"), links)
    if decision.link is not None:
        chosen = next(lk for lk in links if lk.name == decision.link)
        assert residency == "any" or chosen.jurisdiction == residency


def test_a_link_may_refuse_data_that_would_take_too_long_to_move() -> None:
    slow = link(path=datamove.Path("gz", 0.02, 1e9, 0.0), max_data_seconds=6 * 3600)
    assert choose(job(never_fits=True, datasets=(scans("local"),)), [slow]).link == "gz"  # 4.4 h
    big = datamove.Dataset("archive", "local", "hk", 5 * TB)
    decision = choose(job(never_fits=True, datasets=(big,)), [slow])
    assert decision.why == Why.DATA_TOO_SLOW
    assert "would take ~22.2 h, more than the link allows (6.0 h)" in decision.message
