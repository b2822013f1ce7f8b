"""A researcher and a platform team use the portal in a real browser (Debian's headless Chromium)
against the local control plane with the operator running: each acts with their own token, so RBAC
decides what each sees; refusals are pages that say what was refused."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.kube_helpers import NVIDIA, Kube, aijob, pools
from tests.e2e.operator_process import wait_for
from tests.e2e.portal.conftest import World
from tests.e2e.portal.harness import Browser, PortalProcess

pytestmark = pytest.mark.browser
LONG_RUN = {"estuary.dev/sim-duration-ms": "600000"}


def submit(kube: Kube, namespace: str, name: str, workers: int, **spec: Any) -> None:
    kube.apply(aijob(name, namespace, [NVIDIA], workers=workers, per_worker=8, annotations=LONG_RUN, **spec))


@pytest.fixture(scope="module")
def jobs(kube: Kube, world: World) -> Iterator[dict[str, str]]:
    """alice: one job that runs, one that can never fit; bob: one that runs. Deleted after the
    module, pods and all: they run for ten minutes on 16 of the session cluster's 24 H800s, which
    the tests after this module need."""
    astro, genomics = world.alice.namespace, world.bob.namespace
    submit(kube, astro, "galaxy-sim", workers=1)
    submit(kube, astro, "sky-survey", workers=8)  # 64 H800 > the 24 the cluster has
    submit(kube, genomics, "genome-align", workers=1)
    for ns, name in ((astro, "galaxy-sim"), (genomics, "genome-align")):
        wait_for(
            lambda ns=ns, name=name: kube.phase(ns, name) == "Running", timeout=90, what=f"{name} Running"
        )
    wait_for(lambda: kube.status(astro, "sky-survey").get("reason"), timeout=60, what="sky-survey's reason")
    yield {"running": "galaxy-sim", "never": "sky-survey", "bob": "genome-align"}
    for ns, name in ((astro, "galaxy-sim"), (astro, "sky-survey"), (genomics, "genome-align")):
        kube.delete_job(ns, name)
    for ns in (astro, genomics):
        wait_for(lambda ns=ns: not kube.pods(ns), timeout=90, what=f"pods of {ns} gone")


def test_researcher_signs_in_with_her_token_and_sees_why_her_job_waits(
    browser: Browser, world: World, jobs: dict[str, str]
) -> None:
    browser.sign_in(world.alice)
    assert browser.text("#whoami") == world.alice.username
    rows = {r.get_attribute("data-job"): r.text for r in browser.all("#jobs tbody tr")}
    astro = world.alice.namespace
    assert set(rows) == {f"{astro}/galaxy-sim", f"{astro}/sky-survey"}
    waiting = rows[f"{astro}/sky-survey"]
    assert "Queued" in waiting
    assert "Cannot run here: the job is larger than any pool, even an empty one" in waiting
    assert "Running" in rows[f"{astro}/galaxy-sim"]
    browser.shoot("jobs")

    browser.open(f"/jobs/{astro}/sky-survey")
    assert browser.text("#headline") == "Cannot run here: the job is larger than any pool, even an empty one"
    assert browser.text("#queue-position").isdigit()
    assert "needs 8 workers" in browser.text("#status-message")  # the operator's numbers
    assert "No worker pods: the job is waiting" in browser.text("#workers")
    # The operator's verdict per accepted type, read from the job's own status.
    verdict = browser.text("#verdicts tr[data-pool='h800']")
    assert "nvidia/H800" in verdict and " no " in f" {verdict} "
    assert "larger than any pool" in verdict
    browser.shoot("job-waiting")


def test_job_page_shows_workers_events_and_logs(
    browser: Browser, world: World, kube: Kube, jobs: dict[str, str], tmp_path: Path
) -> None:
    astro = world.alice.namespace
    pods = kube.pods(astro, "galaxy-sim")
    (worker,) = [p["metadata"]["name"] for p in pods]
    # What the worker printed: kwok serves this file as the pod's log (its Logs CRD).
    kube.serve_log(astro, worker, tmp_path / "worker-0.log", "epoch 1 loss 0.93", "epoch 2 loss 0.71")
    browser.sign_in(world.alice, then=f"/jobs/{astro}/galaxy-sim")
    assert browser.text("#phase") == "Running"
    shown = {row.get_attribute("data-pod"): row.text for row in browser.all("#workers tbody tr")}
    assert set(shown) == {p["metadata"]["name"] for p in pods}
    for pod in pods:
        assert pod["spec"]["nodeName"] in shown[pod["metadata"]["name"]]
        assert "Running" in shown[pod["metadata"]["name"]]
    # where and when it was admitted: the Admitted condition (a job admitted at once posts no event)
    assert "admitted to pool" in browser.text("#conditions")
    # The last lines of each worker's log, read with alice's own token through the pods/log API.
    shown_log = browser.reload_until(f"#logs details[data-log='{worker}']", "epoch 2 loss 0.71", timeout=60)
    assert "epoch 1 loss 0.93" in shown_log and "API server answered" not in shown_log
    # What it costs so far: 8 H800 held since admission, in accelerator-hours and PFLOPS-hours.
    total = browser.text("#cost-total")
    assert "accelerator-hours" in total and "PFLOPS-hours" in total and "+" not in total
    browser.shoot("job-running")


def test_two_tenants_never_see_each_others_jobs(browser: Browser, world: World, jobs: dict[str, str]) -> None:
    astro, genomics = world.alice.namespace, world.bob.namespace
    browser.sign_in(world.bob)
    keys = {r.get_attribute("data-job") for r in browser.all("#jobs tbody tr")}
    assert keys == {f"{genomics}/genome-align"}
    # Asking for alice's namespace explicitly: refused, in words, and still nothing of hers shown.
    browser.open(f"/jobs?namespace={astro}")
    assert f"may not list aijobs.estuary.dev in namespace {astro}" in browser.text("#refusals")
    assert {r.get_attribute("data-job") for r in browser.all("#jobs tbody tr")} == keys
    browser.open(f"/jobs/{astro}/galaxy-sim")
    assert browser.text("h1") == "You may not see this"
    assert f"may not get aijobs.estuary.dev in namespace {astro}" in browser.text("#refused")
    for path in ("/queue", "/usage"):
        browser.open(path)
        assert astro not in browser.text("main") and "galaxy-sim" not in browser.text("main")


def test_a_user_without_rights_gets_plain_refusals_not_errors(browser: Browser, world: World) -> None:
    browser.sign_in(world.carol)
    assert "No jobs here yet." in browser.text("main")
    assert f"may not list aijobs.estuary.dev in namespace {world.carol.namespace}" in browser.text(
        "#refusals"
    )
    browser.open("/pools")
    assert browser.text("h1") == "You may not see this"
    assert browser.text("#refused .sentence") == (
        f"You ({world.carol.username}) may not list computepools.estuary.dev across the cluster."
    )
    browser.shoot("refused")


def test_a_token_that_the_api_server_rejects_is_not_accepted(browser: Browser) -> None:
    browser.open("/login")
    browser.driver.find_element("id", "token").send_keys("not-a-real-token")
    browser.press("#signin")
    assert browser.text("#login-error") == "The API server did not accept this token."
    browser.open("/jobs")
    assert browser.path().startswith("/login")


def test_behind_an_oidc_proxy_the_forwarded_token_is_used_without_sign_in(
    browser: Browser, world: World, jobs: dict[str, str]
) -> None:
    browser.proxy_headers({"X-Forwarded-Access-Token": world.bob.token})
    browser.open("/jobs")
    assert browser.path() == "/jobs"
    assert browser.text("#whoami") == world.bob.username
    assert not browser.all("form[action='/logout']"), "nothing to sign out of: the proxy holds the session"
    keys = {r.get_attribute("data-job") for r in browser.all("#jobs tbody tr")}
    assert keys == {f"{world.bob.namespace}/genome-align"}


def test_platform_team_sees_pools_tenants_queue_and_partners(
    browser: Browser, world: World, kube: Kube, jobs: dict[str, str]
) -> None:
    quotas = {"h800": [{"tenant": "astronomy", "nominal": 16}, {"tenant": "genomics", "nominal": 8}]}
    for pool in pools(quotas):
        kube.apply(pool)
    kube.apply(partner_link(world.estuary_namespace))
    try:
        browser.sign_in(world.ops, then="/pools")
        h800 = kube.custom.get_cluster_custom_object("estuary.dev", "v1alpha1", "computepools", "h800")[
            "status"
        ]
        row = browser.text("#pools tr[data-pool='h800']")
        assert f"nvidia/H800 3 {h800['capacity']} {h800['healthy']}" in row
        browser.shoot("pools")
        browser.open("/tenants")
        browser.reload_until("#tenants tr[data-tenant='astronomy']", "astronomy 8 16")  # used 8 of 16
        browser.shoot("tenants")
        browser.open("/queue")
        assert f"{world.alice.namespace}/sky-survey" in browser.text("#queue")
        assert f"{world.bob.namespace}/genome-align" in browser.text("#running")
        browser.shoot("queue")
        browser.open("/links")
        browser.reload_until("#links tr[data-link='gz']", "mainland")
        assert "no" in browser.text("#links tr[data-link='gz'] td:nth-child(3)")  # its Secret is missing
        browser.shoot("links")
    finally:
        kube.kubectl("delete", "flink", "gz", "-n", world.estuary_namespace, "--ignore-not-found")
        for pool in pools():
            kube.apply(pool)


def test_researcher_sees_her_tenants_quota(
    browser: Browser, world: World, kube: Kube, jobs: dict[str, str]
) -> None:
    for pool in pools({"h800": [{"tenant": "astronomy", "nominal": 16, "borrowingLimit": 8}]}):
        kube.apply(pool)
    try:
        browser.sign_in(world.alice, then="/usage")
        assert browser.text("#my-tenants") == "astronomy"
        browser.reload_until("#quota-astronomy tr[data-pool='h800']", "h800 nvidia/H800 8 16")
        assert "genomics" not in browser.text("main")
        usage = browser.text("#usage tr[data-accelerator='nvidia/H800']")
        assert usage.startswith("astronomy nvidia/H800")
        csv = browser.driver.execute_async_script(
            "fetch('/usage.csv').then(r => r.text()).then(arguments[arguments.length - 1])"
        )
        assert csv.splitlines()[0].startswith("tenant,accelerator,period_start")
        assert any(line.startswith("astronomy,nvidia/H800,") for line in csv.splitlines())
        browser.shoot("usage")
    finally:
        for pool in pools():
            kube.apply(pool)


def test_no_token_ever_reaches_the_portal_log(
    browser: Browser, world: World, portal: PortalProcess, jobs: dict[str, str]
) -> None:
    browser.sign_in(world.alice)
    browser.open(f"/jobs/{world.alice.namespace}/galaxy-sim")
    browser.open(f"/jobs/{world.bob.namespace}/genome-align")  # a refusal, logged or not
    log = portal.log()
    assert "GET /jobs" in log, "the access log is on, so this test can fail"
    for token in world.tokens:
        assert token not in log
        assert token[-24:] not in log


def partner_link(namespace: str) -> dict[str, Any]:
    return {
        "apiVersion": "estuary.dev/v1alpha1",
        "kind": "FederationLink",
        "metadata": {"name": "gz", "namespace": namespace},
        "spec": {
            "kubeconfigSecretRef": {"name": "gz-kubeconfig"},
            "signingKeySecretRef": {"name": "gz-signing-key"},
            "jurisdiction": "mainland",
            "allowedTenants": ["astronomy"],
            "budgets": [{"tenant": "astronomy", "budget": 5000}],
            "costs": [{"vendor": "nvidia", "model": "A800", "costPerAcceleratorHour": 1.6}],
        },
    }
