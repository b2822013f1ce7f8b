"""Read a gang's state from its pods: how many run, which failed and why, which cannot be placed."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from estuary.kube.render import ATTEMPT_LABEL, RANK_LABEL
from estuary.state.codec import TERMINAL_POD_PHASES


@dataclass(frozen=True)
class GangState:
    expected: int
    running: int = 0
    succeeded: int = 0
    present_ranks: frozenset[int] = frozenset()
    failures: tuple[str, ...] = ()  # one line per failed worker: pod, node, exit code, reason
    unschedulable: tuple[str, ...] = ()  # pods kube-scheduler could not place, with its message
    stale: tuple[str, ...] = field(default=())  # pods of an older attempt (names)

    @property
    def missing(self) -> list[int]:
        return [r for r in range(self.expected) if r not in self.present_ranks]

    @property
    def all_running(self) -> bool:
        return self.expected > 0 and self.running + self.succeeded == self.expected

    @property
    def all_succeeded(self) -> bool:
        return self.expected > 0 and self.succeeded == self.expected


def _failure(pod: dict[str, Any]) -> str:
    name, node = pod["metadata"]["name"], pod.get("spec", {}).get("nodeName") or "?"
    for cs in (pod.get("status") or {}).get("containerStatuses") or []:
        term = (cs.get("state") or {}).get("terminated")
        if term:
            return (
                f"worker {name} on node {node} exited with code {term.get('exitCode')} "
                f"({term.get('reason') or 'Error'})"
            )
    reason = (pod.get("status") or {}).get("reason") or "Failed"
    return f"worker {name} on node {node} failed ({reason})"


def assess(pods: list[dict[str, Any]], expected: int, attempt: int) -> GangState:
    running = succeeded = 0
    ranks: set[int] = set()
    failures: list[str] = []
    unschedulable: list[str] = []
    stale: list[str] = []
    for pod in pods:
        labels = pod["metadata"].get("labels") or {}
        if labels.get(ATTEMPT_LABEL) != str(attempt):
            stale.append(pod["metadata"]["name"])
            continue
        ranks.add(int(labels.get(RANK_LABEL, "-1")))
        status = pod.get("status") or {}
        phase = status.get("phase")
        if pod["metadata"].get("deletionTimestamp") and phase not in TERMINAL_POD_PHASES:
            failures.append(f"worker {pod['metadata']['name']} is being deleted")
        elif phase == "Running":
            running += 1
        elif phase == "Succeeded":
            succeeded += 1
        elif phase == "Failed":
            failures.append(_failure(pod))
        else:
            for cond in status.get("conditions") or []:
                if cond.get("type") == "PodScheduled" and cond.get("reason") == "Unschedulable":
                    unschedulable.append(f"{pod['metadata']['name']}: {cond.get('message', '')}")
    return GangState(
        expected, running, succeeded, frozenset(ranks), tuple(failures), tuple(unschedulable), tuple(stale)
    )
