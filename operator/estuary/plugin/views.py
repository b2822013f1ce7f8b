"""What `kubectl estuary list` and `explain` print, from AIJob objects alone (pure: no client).

`explain` reads one object: the operator writes there everything a person needs to understand
where the job is (phase, placement, queue position, the reason with its numbers, one verdict per
accepted accelerator type, the run of every attempt), so it needs no cluster-wide rights.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from estuary.usage import format_time, parse_time


def age(since: str | None, now: float) -> str:
    """kubectl's age: 45s, 12m, 3h, 5d."""
    start = parse_time(since)
    if start is None:
        return "<unknown>"
    seconds = max(0, int(now - start))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def table(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    rows = [list(r) for r in rows]
    widths = [max(len(str(line[i])) for line in [list(header), *rows]) for i in range(len(header))]
    lines = (
        "   ".join(str(c).ljust(w) for c, w in zip(line, widths, strict=True)) for line in [header, *rows]
    )
    return "\n".join(line.rstrip() for line in lines)


def job_rows(jobs: Iterable[Mapping[str, Any]], now: float, wide: bool, namespaces: bool) -> str:
    header = ["NAME", "PHASE", "ACCELERATOR", "WORKERS", "POSITION", "REASON", "AGE"]
    if wide:
        header += ["POOL", "CLUSTER", "RESTARTS", "MESSAGE"]
    if namespaces:
        header = ["NAMESPACE", *header]
    rows = []
    for job in sorted(jobs, key=lambda j: (j["metadata"]["namespace"], j["metadata"]["name"])):
        meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
        placement = status.get("placement") or {}
        row = [
            meta["name"],
            status.get("phase") or "New",
            status.get("accelerator") or "",
            str(spec.get("workers", "")),
            str(status.get("queuePosition") or ""),
            status.get("reason") or "",
            age(meta.get("creationTimestamp"), now),
        ]
        if wide:
            row += [
                placement.get("pool") or "",
                placement.get("cluster") or "",
                str(status.get("restarts", 0)),
                status.get("message") or "",
            ]
        rows.append([meta["namespace"], *row] if namespaces else row)
    return table(header, rows)


def _runs(status: Mapping[str, Any], now: float) -> list[str]:
    rows = []
    for run in status.get("runs") or []:
        start, end = parse_time(run.get("startTime")), parse_time(run.get("endTime"))
        hours = ((end if end is not None else now) - start) / 3600.0 if start is not None else 0.0
        rows.append(
            [
                str(run.get("attempt", "")),
                f"{run.get('vendor')}/{run.get('model')}",
                run.get("pool") or run.get("cluster") or "",
                str(run.get("accelerators", 0)),
                run.get("startTime") or "",
                run.get("endTime") or "running",
                f"{hours * int(run.get('accelerators') or 0):.2f}",
                run.get("outcome") or "",
            ]
        )
    if not rows:
        return []
    header = ["ATTEMPT", "ACCELERATOR", "POOL", "ACCELERATORS", "START", "END", "ACC-HOURS", "OUTCOME"]
    return ["  runs (accelerator use of each attempt):", _indent(table(header, rows), 4)]


def _indent(text: str, spaces: int) -> str:
    return "\n".join(" " * spaces + line for line in text.splitlines())


def _verdicts(job: Mapping[str, Any], status: Mapping[str, Any]) -> list[str]:
    verdicts = status.get("verdicts")
    if verdicts is None:
        return []
    lines = ["  accelerator types, in the job's order of preference:"]
    if not verdicts:
        accepted = ", ".join(
            f"{a['vendor']}/{a.get('model') or '*'}"
            for a in (job.get("spec") or {}).get("accelerators") or []
        )
        lines.append(f"    no ComputePool offers any of them ({accepted})")
    for v in verdicts:
        verdict = "fits now" if v.get("fits") else (v.get("reason") or "does not fit")
        lines.append(
            f"    {v['vendor']}/{v['model']} in pool {v['pool']}: {verdict}"
            + (f" - {v['message']}" if v.get("message") else "")
            + f" (relative runtime {float(v.get('relativeRuntime', 1.0)):.2f})"
        )
    return lines


def explain(job: Mapping[str, Any], now: float, events: Sequence[Mapping[str, Any]] = ()) -> str:
    """Where the job is and why, from its status (and its events when the caller may read them)."""
    meta, spec, status = job["metadata"], job.get("spec") or {}, job.get("status") or {}
    per_worker = spec.get("acceleratorsPerWorker", 1)
    shape = f"{spec.get('workers', 1)} worker(s) x {per_worker} accelerator(s)"
    lines = [
        f"AIJob {meta['namespace']}/{meta['name']} ({spec.get('framework', 'pytorch')}, {shape}, "
        f"priority {spec.get('priority', 0)})",
        f"  phase:    {status.get('phase') or 'New (the operator has not seen it yet)'}"
        + (" (suspended by spec.suspend)" if spec.get("suspend") else ""),
    ]
    placement = status.get("placement")
    if placement:
        nodes = ", ".join(placement.get("nodes") or []) or "-"
        lines.append(
            f"  runs on:  {placement.get('cluster')} pool {placement.get('pool') or '-'} "
            f"({placement.get('vendor')} {placement.get('model')}), nodes {nodes}"
        )
    if status.get("queuePosition"):
        lines.append(f"  position: {status['queuePosition']} in the queue")
    if status.get("reason"):
        lines.append(f"  reason:   {status['reason']}: {status.get('message', '')}")
    if status.get("restarts"):
        lines.append(
            f"  restarts: {status['restarts']} (limit {spec.get('restartPolicy', {}).get('maxRestarts', 3)})"
        )
    lines += _verdicts(job, status)
    lines += _runs(status, now)
    recent = sorted(events, key=lambda e: e.get("lastTimestamp") or e.get("eventTime") or "")[-8:]
    if recent:
        lines.append("  events:")
        for event in recent:
            when = event.get("lastTimestamp") or event.get("eventTime") or ""
            kind, reason = event.get("type", ""), event.get("reason", "")
            lines.append(f"    {age(when, now):>5} {kind:7} {reason}: {event.get('message', '')}")
    return "\n".join(lines)


def now_stamp(now: float) -> str:
    return format_time(now)
