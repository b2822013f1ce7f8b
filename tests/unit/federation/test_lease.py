"""Lease arithmetic: the origin never gives a copy up before the partner has stopped it."""

from __future__ import annotations

import os

from hypothesis import given, settings
from hypothesis import strategies as st

from estuary.federation import lease
from estuary.federation.lease import Timing


def test_margin_names_its_terms() -> None:
    t = Timing(request_timeout_s=10, partner_step_s=2, kill_s=5, drift=0.0, slack_s=0)
    assert lease.margin(30, 0, t) == 17  # 10 + 2 + 5
    assert lease.margin(30, 30, t) == 47  # + the pods' grace period
    assert lease.margin(120, 0, Timing()) > lease.margin(30, 0, Timing())  # drift grows with the lease


def test_origin_gives_up_only_after_lease_and_margin_since_its_anchor() -> None:
    m = lease.margin(30, 0)
    assert not lease.origin_may_give_up(100.0, 30, 0, 100.0 + 30 + m - 0.5)
    assert lease.origin_may_give_up(100.0, 30, 0, 100.0 + 30 + m)
    assert lease.give_up_at(100.0, 30, 0) == 130.0 + m


def test_partner_expiry_is_strictly_after_the_lease() -> None:
    assert not lease.partner_expired(1000.0, 30, 1030.0)
    assert lease.partner_expired(1000.0, 30, 1030.5)


def test_credit_is_the_start_of_the_previous_read_and_never_on_the_first_read() -> None:
    assert lease.credit("t2", "t1", 500.0) == 500.0
    assert lease.credit("t1", None, 500.0) == 500.0  # a copy that was not there before
    assert lease.credit("t1", "t1", 500.0) is None  # unchanged
    assert lease.credit("t2", "t1", None) is None  # first read of this process: cannot tell when


SETTINGS = settings(max_examples=int(os.environ.get("ESTUARY_PROPERTY_EXAMPLES", "300")), deadline=None)


@SETTINGS
@given(
    lease_s=st.integers(30, 3600),
    grace=st.integers(0, 600),
    drift=st.sampled_from([0.0, 0.001, 0.01, 0.05]),
    data=st.data(),
)
def test_property_partner_stops_before_origin_gives_up_under_rate_drift(
    lease_s: int, grace: int, drift: float, data: st.DataObject
) -> None:
    """Real time everywhere; each side's clock runs at a rate within 1 ± drift (offsets are
    irrelevant: each side only measures durations on its own clock)."""
    timing = Timing(drift=drift, slack_s=0)
    rate_origin = data.draw(st.floats(1 - drift, 1 + drift))
    rate_partner = data.draw(st.floats(1 - drift, 1 + drift))
    attempt_end = data.draw(st.floats(0, 1e6))  # real time the origin's last renewal attempt ended
    # it committed at the partner within the request timeout after that (or not at all, which only
    # helps); the partner's previous successful read started before the commit
    commit = attempt_end + data.draw(st.floats(0, timing.request_timeout_s))
    previous_read = commit - data.draw(st.floats(0, 600))
    step_delay = data.draw(st.floats(0, timing.partner_step_s))
    kill_delay = data.draw(st.floats(0, timing.kill_s + grace))
    # partner: expires lease_s of ITS seconds after the credited read; acts within a step
    expired_real = previous_read + lease_s / rate_partner
    pods_gone_real = expired_real + step_delay + kill_delay
    # origin: gives up lease + margin of ITS seconds after the anchor
    give_up_real = attempt_end + (lease_s + lease.margin(lease_s, grace, timing)) / rate_origin
    assert pods_gone_real <= give_up_real + 1e-6
