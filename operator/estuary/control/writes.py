"""Writes in the background: the loop decides and assumes, a bounded pool of workers writes.

Why it exists: a tick must not wait for the API server. An admission, a waiting reason or a
job's Running status is assumed in the cache first (kube/status.py: `StatusWriter.assume`), so
the rest of the tick and the next tick see the job admitted and its accelerators booked, and is
then written here, as Kueue writes its admissions. Each job's writes form one chain, run in the
order decided: its status patch first, then the Service and worker pods of an admission (created
in parallel), so a crash never leaves pods without an admission. Chains of different jobs run at
once, at most `workers` at a time; a chain that starts with a waiting reason runs in a lane of its
own (`workers // 2`), so thousands of jobs first seen at once, each told why it waits, never hold
up an admission or a Running job's status behind them.

A ComputePool's or UsageLedger's status has a chain of its own (`latest`): one not yet sent is
replaced by a newer one, and two are spaced by `spacing` seconds in the operator.

A status write not yet sent is the one a later status of the same job joins (`_Unsent`): the
two merge patches become one, so a job's chain never holds two writes of why it waits (the latest
wins), and an admission decided while the job's waiting reason is still queued goes out as one
write. Such an admission is also taken out of the waiting lane: its chain is handed to the main
lane too, and whichever lane reaches it first runs it (`_run` claims a job's chain once).

Accelerators change hands in the order decided, across chains too: a status that frees nodes (a
gang that Succeeded, a placement that moves) is recorded until its chain ends (`_freeing`), and an
admission booking any of those nodes waits, before its status write, for those chains to end; when
one of them failed (the old job still holds the node in what the API server says), the admission is
undone like a failed write. So what the API server holds never books a node twice, even for the
moment between two writes, and a crash between them leaves nothing double-booked for the next leader.

When a status write fails, every assumption made for that job is forgotten and the rest of its
chain dropped: the job shows as the API server holds it (back in the queue, nothing booked) and
the next tick decides again; the reason is logged naming the job. A pod or Service the API server
refuses, or a name someone else's object holds, is kept (`refusal()`) for the lifecycle to
release the attempt with that reason; other failed creates are left to the lifecycle, which
creates missing workers. While a job's chain runs, and until the watch has brought the pods it
created into the cache (Kubernetes controllers' "expectations": the cache has seen pod events up
to the created pods' resourceVersion; at most `EXPECT_S`), `busy()` is true: nothing else acts
on the job, so no worker is created twice.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from typing import Any

from estuary import metrics
from estuary.api.aijob import AIJobStatus
from estuary.control.pods import NameTaken, WorkerRefused, check_created
from estuary.kube.client import KubeApi, Refused
from estuary.kube.status import StatusWriter, joinable, joined
from estuary.state.cache import ClusterCache
from estuary.state.codec import held_nodes
from estuary.state.snapshot import ParsedJob

log = logging.getLogger("estuary.writes")
WORKERS = 8  # chains written at once (and as many creates in flight)
WAITING_QUEUED_MAX = 1024  # jobs told why they wait, queued at once; the rest are told on later ticks
EXPECT_S = 30.0  # how long created pods may take to show in the cache before the job is judged without them
Step = Callable[[], bool]  # one write of a chain; False stops the chain


@dataclass
class _Unsent:
    """A status write queued and not yet started: later statuses of the job join it."""

    update: dict[str, Any]  # the merge patch to send
    assumed: dict[str, Any]  # the object assumed in the cache once it is applied
    after: set[str] = field(default_factory=set)  # jobs whose frees of nodes it books must land first


class Background:
    def __init__(
        self,
        api: KubeApi,
        cache: ClusterCache,
        writer: StatusWriter,
        workers: int = WORKERS,
        spacing: float = 0.0,
    ) -> None:
        self.api, self.cache, self.writer = api, cache, writer
        self.spacing = spacing  # the least time between two `latest` writes of one object
        self._closed = False
        self._chains = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="estuary-writes")
        self._waiting = ThreadPoolExecutor(
            max_workers=max(1, workers // 2), thread_name_prefix="estuary-waits"
        )
        self._creates = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="estuary-creates")
        self._lock = threading.Condition()
        self._queues: dict[str, deque[Step]] = {}
        self._claimed: set[str] = set()  # jobs whose chain a worker runs now
        self._unsent: dict[str, _Unsent] = {}  # a job's last queued step, when a status not yet sent
        self._slow: set[str] = set()  # jobs whose chain is queued in the waiting lane
        self._refused: dict[str, WorkerRefused | NameTaken] = {}
        self._expected: dict[str, tuple[int, float]] = {}  # job -> (its pods' last version, until when)
        self._freeing: dict[str, frozenset[str]] = {}  # job -> nodes a queued status of it frees
        self._latest: dict[str, Callable[[], None]] = {}  # an object's status write not yet started
        self._latest_sent: dict[str, float] = {}  # when each object's last `latest` write started
        self.clock = time.monotonic
        writer.settle_first = self.wait

    def close(self) -> None:
        """Stop: writes not yet started are dropped (as a crash would: the next leader decides
        again from what the API server holds), those under way finish."""
        self._closed = True
        for lane in (self._chains, self._waiting, self._creates):
            lane.shutdown(wait=False, cancel_futures=True)

    # ---- what the loop asks ---------------------------------------------------------------
    def busy(self, key: str) -> bool:
        """Whether writes for this job are decided and not yet answered, or pods it created are
        not yet in the cache."""
        with self._lock:
            if key in self._queues:
                return True
            expected = self._expected.get(key)
        if expected is None:
            return False
        version, until = expected
        if self.clock() < until and self.cache.seen("pods") < version:
            return True
        with self._lock:
            self._expected.pop(key, None)
        return False

    def may_tell(self, key: str) -> bool:
        """Whether a waiting reason of this job may be queued now: it joins what is queued for
        the job, or fewer than WAITING_QUEUED_MAX jobs' reasons are queued. A flood of new jobs
        is told why it waits in batches, not assumed and queued all at once."""
        with self._lock:
            return key in self._queues or len(self._slow) < WAITING_QUEUED_MAX

    def refusal(self, key: str) -> WorkerRefused | NameTaken | None:
        """The refusal a background create of this job met (taken: reported once)."""
        with self._lock:
            return self._refused.pop(key, None)

    def expect_nothing(self, key: str) -> None:
        """Stop waiting for pods of this job to show (they are being deleted)."""
        with self._lock:
            self._expected.pop(key, None)

    def wait(self, key: str | None = None, timeout: float | None = None) -> bool:
        """Wait until this job's writes (every job's, with no key) are answered; True when there
        were some."""
        with self._lock:
            had = bool(self._queues) if key is None else key in self._queues
            self._lock.wait_for(lambda: not self._queues if key is None else key not in self._queues, timeout)
            return had

    # ---- what the loop decides ------------------------------------------------------------
    def status(
        self,
        job: ParsedJob,
        status: AIJobStatus,
        then_create: Callable[[ParsedJob], list[dict[str, Any]]] | None = None,
        waiting: bool = False,
    ) -> bool:
        """Assume `status` for the job now and write it in the background; then create what
        `then_create` makes of the job as assumed (an admission's Service and workers), only if
        the status was written. `waiting`: only why the job waits (the slower lane). False when
        nothing changes."""
        held_before = held_nodes(job.raw.get("status"))
        prepared = self.writer.assume(job, status)
        if prepared is None:
            return False
        update, assumed = prepared
        held_after = held_nodes(assumed.get("status"))
        key, namespace, name, uid = job.key, job.namespace, job.name, job.uid
        creates: list[Step] = []
        if then_create is not None:
            manifests = then_create(job)
            creates.append(lambda: self._create_all(key, uid, manifests))
        with self._lock:
            after = self._frees_of(key, freed=held_before - held_after, booked=held_after - held_before)
            unsent = self._unsent.get(key)
            if unsent is not None and joinable(unsent.update, update):
                unsent.update, unsent.assumed = joined(unsent.update, update), assumed
                unsent.after |= after
                if creates:
                    del self._unsent[key]  # the creates come after it: nothing joins it now
                    self._enqueue(key, *creates, lane=self._chains)
                elif not waiting:
                    self._enqueue(key, lane=self._chains)
                return True
            unsent = _Unsent(update, assumed, after)
            lane = self._waiting if waiting else self._chains
            self._enqueue(key, self._sender(key, namespace, name, unsent), *creates, lane=lane)
            if not creates:
                self._unsent[key] = unsent
        return True

    def _frees_of(self, key: str, freed: frozenset[str], booked: frozenset[str]) -> set[str]:
        """Record the nodes this job's queued status frees; return the other jobs whose queued
        frees of the nodes it books must land before it (called under the lock)."""
        if freed:
            self._freeing[key] = self._freeing.get(key, frozenset()) | freed
        if not booked:
            return set()
        return {other for other, nodes in self._freeing.items() if other != key and nodes & booked}

    def _sender(self, key: str, namespace: str, name: str, unsent: _Unsent) -> Step:
        def send() -> bool:
            with self._lock:  # from here on nothing joins it
                if self._unsent.get(key) is unsent:
                    del self._unsent[key]
                update, assumed, after = unsent.update, unsent.assumed, unsent.after
            if after and not self._freed_first(key, after, held_nodes(assumed.get("status"))):
                return False
            return self._patch(key, namespace, name, update, assumed)

        return send

    def _freed_first(self, key: str, after: set[str], booked: frozenset[str]) -> bool:
        """Wait until the chains of `after` (jobs freeing nodes this job books) have ended; False,
        with this job's assumptions undone, when one of them still holds such a node (its write
        failed, or did not end within EXPECT_S)."""
        with self._lock:
            self._lock.wait_for(lambda: not any(other in self._queues for other in after), EXPECT_S)
        holders = {
            other: sorted(nodes & booked)
            for other in sorted(after)
            if (nodes := held_nodes((self.cache.get("aijobs", other) or {}).get("status"))) and nodes & booked
        }
        if not holders:
            return True
        self.cache.settle("aijobs", key)
        log.warning(
            "AIJob %s: its admission was not written: the nodes it was given are still held by %s "
            "(the write that frees them failed); it is decided again on the next tick",
            key,
            ", ".join(f"{other} ({', '.join(nodes)})" for other, nodes in holders.items()),
        )
        return False

    def latest(self, key: str, write: Callable[[], None]) -> None:
        """Run `write` in the background on the chain `key` (an object that is not a job: a
        ComputePool's or a UsageLedger's status); one queued and not yet started is replaced (the
        latest wins), so a burst of steps costs a write or two, and the step never waits for it.
        Two writes of one object start at least `spacing` seconds apart: a steady trickle of
        admissions (each step moving a pool's allocated count) costs a write per `spacing`, not
        one per step; what a person reads lags by that much at most. `write` reports its own
        failures."""
        with self._lock:
            queued = key in self._latest
            self._latest[key] = write
            if queued:
                return
            delay = self._latest_sent.get(key, -self.spacing) + self.spacing - self.clock()
        if delay <= 0:
            self._enqueue(key, partial(self._send_latest, key))
            return
        timer = threading.Timer(delay, self._send_later, (key,))
        timer.daemon = True
        timer.start()

    def _send_later(self, key: str) -> None:
        if not self._closed:
            self._enqueue(key, partial(self._send_latest, key))

    def _send_latest(self, key: str) -> bool:
        with self._lock:
            write = self._latest.pop(key)
            self._latest_sent[key] = self.clock()
        write()
        return True

    def create(self, job: ParsedJob, manifests: list[dict[str, Any]]) -> None:
        """Create these objects of the job, in parallel, after its writes decided before."""
        key, uid = job.key, job.uid
        self._enqueue(key, lambda: self._create_all(key, uid, manifests))

    # ---- the workers ----------------------------------------------------------------------
    def _enqueue(self, key: str, *steps: Step, lane: ThreadPoolExecutor | None = None) -> None:
        """Queue steps on the job's chain; a new chain goes to `lane` (the main one by default).
        A chain queued and not yet started is handed to the main lane too when `lane` is it: an
        urgent write queued behind a waiting reason does not wait for the slower lane."""
        with self._lock:
            queue = self._queues.get(key)
            if queue is not None:
                if steps:
                    self._unsent.pop(key, None)  # other steps now come after it
                    queue.extend(steps)
                if lane is self._chains:
                    self._slow.discard(key)  # no longer only why it waits
                if lane is not self._chains or key in self._claimed:
                    return
            else:
                self._queues[key] = deque(steps)
                if lane is self._waiting:
                    self._slow.add(key)
        (lane or self._chains).submit(self._run, key)

    def _run(self, key: str) -> None:
        """Run the job's chain until it is empty; a step that fails drops the rest. A chain is
        run by one worker: a second lane that reaches it claimed (or done) does nothing."""
        with self._lock:
            if key in self._claimed or key not in self._queues:
                return
            self._claimed.add(key)
        while True:
            with self._lock:
                queue = self._queues[key]
                step = queue[0]
            try:
                ok = step()
            except Exception as err:  # a bug in a step must not leave the job busy for ever
                log.exception("AIJob %s: a background write failed unexpectedly (%s)", key, err)
                ok = False
            with self._lock:
                queue.popleft()
                if not ok:
                    queue.clear()
                    self._unsent.pop(key, None)
                if not queue:
                    del self._queues[key]
                    self._freeing.pop(key, None)
                    self._claimed.discard(key)
                    self._slow.discard(key)
                    self._lock.notify_all()
                    break
        self.cache.changed.set()  # the next tick sees what was answered

    def _patch(
        self, key: str, namespace: str, name: str, update: dict[str, Any], assumed: dict[str, Any]
    ) -> bool:
        try:
            answer = self.api.patch_job_status(namespace, name, update)
        except Exception as err:
            self.cache.settle("aijobs", key)  # forget every assumption: the job as it really is
            metrics.record_reconcile_error("aijob")
            log.warning(
                "AIJob %s: could not write its status (%s: %s); what was decided for it is undone "
                "(phase %s not recorded, nothing booked) and it is decided again on the next tick",
                key,
                type(err).__name__,
                err,
                update.get("phase") or (assumed.get("status") or {}).get("phase"),
            )
            return False
        self.cache.settle("aijobs", key, answer, assumed)
        return True

    def _create_all(self, key: str, uid: str, manifests: list[dict[str, Any]]) -> bool:
        answers = [(m, self._creates.submit(self._create_one, m)) for m in manifests]
        created = 0  # the highest resourceVersion of the pods created
        for manifest, answer in answers:  # wait for all, then keep the first refusal
            meta, result = manifest["metadata"], answer.exception() or answer.result()
            try:
                check_created(uid, manifest, result)
            except (WorkerRefused, NameTaken) as err:
                with self._lock:
                    self._refused.setdefault(key, err)
            except Exception as err:  # the lifecycle creates missing workers on the next tick
                metrics.record_reconcile_error("aijob")
                log.warning(
                    "AIJob %s: could not create %s %s (%s); retrying on the next tick",
                    key,
                    manifest["kind"],
                    meta["name"],
                    err,
                )
            else:
                if manifest["kind"] == "Pod" and isinstance(result, dict):
                    created = max(created, _version(result))
        if created:
            with self._lock:
                self._expected[key] = (created, self.clock() + EXPECT_S)
        return True

    def _create_one(self, manifest: dict[str, Any]) -> object:
        try:
            return self.api.create(manifest)
        except Refused as refusal:
            return refusal


def _version(obj: dict[str, Any]) -> int:
    try:
        return int(obj["metadata"].get("resourceVersion") or 0)
    except (KeyError, ValueError):
        return 0
