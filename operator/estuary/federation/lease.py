"""Lease arithmetic of exactly-once placement across clusters (pure; see docs/federation.md).

Each side measures durations on its own clock and never compares a time from the other side:

* The partner credits a renewal at the start of its previous successful read of the copies (a
  read that did not yet show that renewal), so it credits no later than the renewal was written.
  It stops the copy once `lease_seconds` have passed on its clock since the credited renewal
  (`partner_expired`), at its next controller step.
* The origin anchors each copy at the end of the last renewal (or creation) request that may have
  reached the partner, and gives a copy up only `lease_seconds + margin` after that anchor on its
  own clock (`origin_may_give_up`). The margin covers what can make the partner's stop late in
  the origin's terms: a write committed after the origin stopped waiting for it, the partner's
  step period, the pods' termination grace, and the bounded difference in clock *rates*.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from estuary.fence.lease import credit as credit  # the crediting rule, shared with the fence


@dataclass(frozen=True, slots=True)
class Timing:
    """Bounds the exactly-once argument rests on; each is a term of `margin`."""

    request_timeout_s: float = 10.0  # the origin waits at most this long for a partner write; a
    # write it stopped waiting for commits within this bound or not at all (assumption)
    partner_step_s: float = 2.0  # the partner's controller steps at least this often (resync)
    kill_s: float = 5.0  # after a pod's deletion, the kubelet stops it within this + its grace
    drift: float = 0.01  # |clock rate - 1| on either side (NTP slews; steps are not expected)
    slack_s: float = 3.0  # rounding of persisted times to whole seconds, scheduling jitter


DEFAULT_TIMING = Timing()


def margin(lease_seconds: float, grace_seconds: float, timing: Timing = DEFAULT_TIMING) -> float:
    """Seconds the origin waits beyond `lease_seconds` after its anchor before giving a copy up.

    Real-time bound on the partner's stop, from the origin's anchor A: the renewal commits by
    A + request_timeout; the partner credits it no later than that; its clock, running at least
    (1 - drift) as fast as real time, lets at most lease/(1 - drift) real seconds pass before its
    lease ends; it notices within one step, and the pods are gone within kill_s + grace. The
    origin's own clock may run fast by (1 + drift), so lease + margin on it must cover that much
    real time times (1 + drift)."""
    partner_side = (
        timing.request_timeout_s
        + lease_seconds / (1 - timing.drift)
        + timing.partner_step_s
        + timing.kill_s
        + grace_seconds
        + timing.slack_s
    )
    needed = partner_side * (1 + timing.drift) - lease_seconds
    return float(math.ceil(needed))


def give_up_at(
    anchor: float, lease_seconds: float, grace_seconds: float, timing: Timing = DEFAULT_TIMING
) -> float:
    """Origin clock: when a copy that was last renewed (or created) at `anchor` can no longer run."""
    return anchor + lease_seconds + margin(lease_seconds, grace_seconds, timing)


def origin_may_give_up(
    anchor: float, lease_seconds: float, grace_seconds: float, now: float, timing: Timing = DEFAULT_TIMING
) -> bool:
    """Whether the origin may forget the copy and run the job again elsewhere."""
    return now >= give_up_at(anchor, lease_seconds, grace_seconds, timing)


def partner_expired(credited_at: float, lease_seconds: float, now: float) -> bool:
    """Partner clock: whether the copy's lease has run out since the last credited renewal."""
    return now - credited_at > lease_seconds
