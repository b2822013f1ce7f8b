"""`kubectl estuary logs`: the logs of every worker of a job, each line prefixed by its rank.

Followed logs (`-f`) stream from all workers at once, one thread per worker, lines interleaved as
they arrive (a line is never split). Reads pods and pods/log in the job's namespace only, which
the namespace's `edit` and `view` roles already grant.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from estuary.kube.render import JOB_LABEL, RANK_LABEL

Write = Callable[[str], None]


def workers(core: Any, namespace: str, job: str) -> list[tuple[int, str]]:
    """(rank, pod name) of the job's worker pods, by rank."""
    pods = core.list_namespaced_pod(namespace, label_selector=f"{JOB_LABEL}={job}").items
    out = []
    for pod in pods:
        labels = pod.metadata.labels or {}
        try:
            rank = int(labels.get(RANK_LABEL, ""))
        except ValueError:
            continue
        out.append((rank, pod.metadata.name))
    return sorted(out)


def _prefix(rank: int, width: int) -> str:
    return f"[rank {rank:>{width}}] "


def _options(tail: int | None, since: int | None) -> dict[str, Any]:
    options: dict[str, Any] = {}
    if tail is not None:
        options["tail_lines"] = tail
    if since is not None:
        options["since_seconds"] = since
    return options


def print_logs(
    core: Any,
    namespace: str,
    pods: list[tuple[int, str]],
    write: Write,
    tail: int | None = None,
    since: int | None = None,
) -> None:
    width = len(str(max(rank for rank, _ in pods)))
    for rank, name in pods:
        text = core.read_namespaced_pod_log(name, namespace, **_options(tail, since))
        for line in str(text).splitlines():
            write(_prefix(rank, width) + line)


def follow_logs(
    core: Any,
    namespace: str,
    pods: list[tuple[int, str]],
    write: Write,
    tail: int | None = None,
    since: int | None = None,
) -> None:
    """Stream every worker's log until all streams end (the pods finish) or Ctrl-C."""
    width = len(str(max(rank for rank, _ in pods)))
    lock = threading.Lock()
    errors: list[str] = []

    def stream(rank: int, name: str) -> None:
        try:
            response = core.read_namespaced_pod_log(
                name, namespace, follow=True, _preload_content=False, **_options(tail, since)
            )
            pending = b""
            for chunk in response.stream(4096):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                with lock:
                    for line in lines:
                        write(_prefix(rank, width) + line.decode(errors="replace"))
            if pending:
                with lock:
                    write(_prefix(rank, width) + pending.decode(errors="replace"))
        except Exception as err:  # one worker's stream failing must not silence the others
            errors.append(f"worker {rank} ({name}): {getattr(err, 'reason', err)}")

    threads = [threading.Thread(target=stream, args=p, daemon=True) for p in pods]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive():
            thread.join(0.5)
    for error in errors:
        write(f"error: could not follow the log of {error}")
