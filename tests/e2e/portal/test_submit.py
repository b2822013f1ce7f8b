"""Submitting a job from a template in a real browser: the AIJob is created with the researcher's own
token and the operator runs it; bad input is refused on the form; a forged post from another site is
refused and creates nothing."""

from __future__ import annotations

import html
from collections.abc import Iterator

import pytest
from kubernetes.client.exceptions import ApiException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from tests.e2e.kube_helpers import Kube
from tests.e2e.operator_process import wait_for
from tests.e2e.portal.conftest import World
from tests.e2e.portal.harness import Browser, ForeignSite, PortalProcess

pytestmark = pytest.mark.browser


def fill(browser: Browser, values: dict[str, str]) -> None:
    for name, value in values.items():
        element = browser.driver.find_element(By.NAME, name)
        if element.tag_name == "select":
            Select(element).select_by_value(value)
        else:
            element.clear()
            element.send_keys(value)


def exists(kube: Kube, namespace: str, name: str) -> bool:
    try:
        kube.job(namespace, name)
        return True
    except ApiException as err:
        if err.status == 404:
            return False
        raise


@pytest.fixture
def cleanup(kube: Kube, world: World) -> Iterator[list[str]]:
    names: list[str] = []
    yield names
    for name in names:
        kube.delete_job(world.alice.namespace, name)
    # Their accelerators are free for the tests that follow once the pods are gone.
    wait_for(lambda: not kube.pods(world.alice.namespace), timeout=90, what="the submitted jobs' pods gone")


def test_a_template_form_creates_a_real_aijob_that_the_operator_runs(
    browser: Browser, world: World, kube: Kube, cleanup: list[str]
) -> None:
    astro = world.alice.namespace
    browser.sign_in(world.alice, then="/submit")
    Select(browser.driver.find_element(By.ID, "pick")).select_by_value("pytorch-ddp")
    browser.press("form[action='/submit'][method='get'] button")
    assert "PyTorch DDP" in browser.text("#template-card")
    assert [o.text for o in Select(browser.driver.find_element(By.NAME, "namespace")).options] == [astro]
    cleanup.append("portal-ddp")
    fill(
        browser,
        {
            "job_name": "portal-ddp",
            "accelerator_types": "nvidia/H800",
            "workers": "1",
            "accelerators_per_worker": "4",
            "command": "/workspace/train.py --epochs 3",
        },
    )
    browser.shoot("submit")
    browser.press("#submit-job")
    wait_for(lambda: browser.path() == f"/jobs/{astro}/portal-ddp", timeout=30, what="the new job's page")

    job = kube.job(astro, "portal-ddp")
    assert job["metadata"]["annotations"]["estuary.dev/template"] == "pytorch-ddp"
    assert (job["spec"]["workers"], job["spec"]["acceleratorsPerWorker"]) == (1, 4)
    assert job["spec"]["accelerators"] == [
        {"vendor": "nvidia", "model": "H800", "image": "nvcr.io/nvidia/pytorch:24.07-py3"}
    ]
    assert job["spec"]["args"] == ["/workspace/train.py", "--epochs", "3"]
    browser.reload_until("#phase", "Running")  # the operator admitted it and kwok runs its pod
    assert "portal-ddp-worker-0" in browser.text("#workers")


def test_bad_input_is_refused_on_the_form_and_creates_nothing(
    browser: Browser, world: World, kube: Kube
) -> None:
    browser.sign_in(world.alice, then="/submit")
    # The browser's own checks (required, min, maxlength) are skipped: the server must refuse alone.
    browser.driver.execute_script("document.getElementById('submit-form').noValidate = true")
    fill(browser, {"job_name": "Not_A_Name", "workers": "0"})
    browser.press("#submit-job")
    errors = browser.text("#submit-form")
    assert "lower-case letters, digits and '-', starting with a letter" in errors
    assert "Number must be between 1 and 1024" in errors
    assert not exists(kube, world.alice.namespace, "Not_A_Name".lower())


def test_the_api_servers_refusal_comes_back_as_a_sentence(
    browser: Browser, world: World, kube: Kube, cleanup: list[str]
) -> None:
    """A name the API server refuses (an AIJob of that name exists) is said on the form."""
    browser.sign_in(world.alice, then="/submit")
    cleanup.append("twice")
    for _ in range(2):
        browser.open("/submit")
        fill(browser, {"job_name": "twice", "accelerator_types": "nvidia/H800", "workers": "1"})
        browser.press("#submit-job")
    assert browser.text("#submit-error") == "A job of that name exists already."


def test_a_forged_post_from_another_site_creates_nothing(
    browser: Browser, world: World, kube: Kube, portal: PortalProcess
) -> None:
    """alice is signed in; a page elsewhere posts a complete job form to the portal in her browser
    (her session cookie goes with it: another port on 127.0.0.1 is the same site). No CSRF token,
    no job."""
    fields = {
        "template": "pytorch-ddp",
        "job_name": "forged",
        "namespace": world.alice.namespace,
        "accelerator_types": "nvidia/H800",
        "workers": "1",
        "accelerators_per_worker": "8",
        "csrf_token": "guessed##0000",
    }
    inputs = "".join(f'<input name="{k}" value="{html.escape(v)}">' for k, v in fields.items())
    attacker = ForeignSite(
        f'<form id="f" method="post" action="{portal.url}/submit">{inputs}</form>'
        "<script>document.getElementById('f').submit()</script>"
    )
    try:
        browser.sign_in(world.alice)
        browser.driver.get(attacker.url)
        # The URL changes when the answer starts to load; its heading comes with the document.
        wait_for(
            lambda: browser.path() == "/submit" and browser.all("h1"),
            timeout=30,
            what="the portal's answer to the forged post",
        )
        assert browser.text("h1") == "This form has expired"
    finally:
        attacker.close()
    assert not exists(kube, world.alice.namespace, "forged")


def test_someone_elses_namespace_is_not_offered_and_a_crafted_post_is_refused(
    browser: Browser, world: World, kube: Kube
) -> None:
    browser.sign_in(world.bob, then="/submit")
    namespace = browser.driver.find_element(By.NAME, "namespace")
    assert [o.text for o in Select(namespace).options] == [world.bob.namespace]
    # Rewrite the select's option to alice's namespace, as a user with devtools could, and submit.
    browser.driver.execute_script(
        "arguments[0].options[0].value = arguments[1]", namespace, world.alice.namespace
    )
    fill(browser, {"job_name": "intruder", "accelerator_types": "nvidia/H800", "workers": "1"})
    browser.press("#submit-job")
    assert "Not a valid choice" in browser.text("#submit-form")
    assert not exists(kube, world.alice.namespace, "intruder")
