"""Submit a job from a template: pick a template, fill in a few fields, and the portal creates the
AIJob with the user's own token (so the API server's RBAC and the CRD's schema decide, and their
refusals come back as sentences on the form). The form carries a CSRF token (forms.py)."""

from __future__ import annotations

import shlex
from typing import Any

from kubernetes.client.exceptions import ApiException
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from estuary import jobtemplates
from estuary.portal import refusals
from estuary.portal.forms import SubmitForm, bind
from estuary.portal.pages_auth import csrf_refusal
from estuary.portal.web import Portal, Session


def _portal(request: Request) -> Portal:
    portal: Portal = request.app.state.portal
    return portal


def _namespaces(request: Request, portal: Portal, s: Session) -> list[str]:
    """Namespaces the user may create AIJobs in (SelfSubjectAccessReview, the API server's answer)."""
    candidates = portal.candidate_namespaces(request, s)
    return sorted(ns for ns in candidates if s.reads.may("create", "aijobs", ns))


def _defaults(template: jobtemplates.JobTemplate) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for p in template.parameters:
        if isinstance(p.default, tuple):
            values[p.name] = (", " if p.name == "accelerator_types" else " ").join(p.default)
        elif p.default is not None:
            values[p.name] = p.default
    return values


def _form(request: Request, portal: Portal, formdata: Any, namespaces: list[str]) -> Any:
    templates = jobtemplates.all_templates()
    form = bind(SubmitForm, request, portal.csrf_secret, formdata)
    form.template.choices = [(t.name, t.title) for t in templates]
    form.namespace.choices = [(ns, ns) for ns in namespaces]
    if formdata is None:  # a fresh form: the chosen (or first) template's values
        wanted = request.query_params.get("template")
        chosen = next((t for t in templates if t.name == wanted), templates[0])
        form.template.data = chosen.name
        for field, value in _defaults(chosen).items():
            getattr(form, field).data = value
    return form


def _render(
    request: Request, portal: Portal, s: Session, form: Any, error: str = "", status: int = 200
) -> Response:
    context = {"form": form, "templates": jobtemplates.all_templates(), "error": error}
    return portal.render(request, "submit.html", context, status_code=status, me=s.me)


def submit_form(request: Request) -> Response:
    portal = _portal(request)
    with portal.user(request) as s:
        form = _form(request, portal, None, _namespaces(request, portal, s))
        return _render(request, portal, s, form)


async def submit(request: Request) -> Response:
    portal = _portal(request)
    formdata = await request.form()
    return await run_in_threadpool(_submit, request, portal, formdata)


def _submit(request: Request, portal: Portal, formdata: Any) -> Response:
    with portal.user(request) as s:
        form = _form(request, portal, formdata, _namespaces(request, portal, s))
        if not form.validate():
            if "csrf_token" in form.errors:
                return portal.render(request, "refused.html", csrf_refusal(), status_code=403, me=s.me)
            return _render(request, portal, s, form, status=400)
        try:
            manifest = _manifest(form)
            created = s.reads.create_job(form.namespace.data, manifest)
        except jobtemplates.TemplateError as err:
            return _render(request, portal, s, form, error=str(err), status=400)
        except ApiException as err:
            if err.status == 401:
                raise
            refusal = refusals.plain(err)
            message = "A job of that name exists already." if err.status == 409 else refusal.sentence
            return _render(request, portal, s, form, error=message, status=refusal.status)
    meta = created["metadata"]
    return RedirectResponse(f"/jobs/{meta['namespace']}/{meta['name']}", status_code=303)


def _manifest(form: Any) -> dict[str, Any]:
    types = [t.strip() for t in (form.accelerator_types.data or "").split(",") if t.strip()]
    try:
        command = shlex.split(form.command.data or "")
    except ValueError as err:  # an unclosed quote
        raise jobtemplates.TemplateError(f"command: {err}") from err
    return jobtemplates.instantiate(
        form.template.data,
        job_name=form.job_name.data,
        namespace=form.namespace.data,
        image=form.image.data or None,
        workers=form.workers.data,
        accelerators_per_worker=form.accelerators_per_worker.data,
        accelerator_types=types or None,
        dataset_pvc=form.dataset_pvc.data or None,
        command=command or None,
    )
