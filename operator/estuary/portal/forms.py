"""The portal's forms (WTForms), each with a CSRF token bound to the user's session.

WTForms' SessionCSRF puts a random value in the (signed) session cookie and an HMAC of it, with an
expiry, in a hidden field; a POST without the matching field is refused. This holds whichever way
the user's token arrives, including from a reverse proxy that adds `Authorization` to every request
(which a cross-site form post would also get). See docs/portal.md, "Security".
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from starlette.requests import Request
from wtforms import Form, IntegerField, PasswordField, SelectField, StringField
from wtforms.csrf.session import SessionCSRF
from wtforms.validators import DataRequired, Length, NumberRange, Optional, Regexp

DNS_LABEL = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class PortalForm(Form):
    class Meta:
        csrf = True
        csrf_class = SessionCSRF
        csrf_field_name = "csrf_token"
        csrf_time_limit = timedelta(hours=8)


def bind(form_class: type[PortalForm], request: Request, secret: bytes, formdata: Any = None) -> Any:
    """A form bound to this request's session (created if missing, so a forged post fails cleanly)."""
    request.session.setdefault("csrf", secrets.token_hex(20))
    return form_class(formdata=formdata, meta={"csrf_secret": secret, "csrf_context": request.session})


class LoginForm(PortalForm):
    token = PasswordField(
        "Bearer token",
        validators=[DataRequired(message="Paste a token."), Length(max=16 * 1024)],
        description="From `kubectl create token`, your OIDC provider, or your kubeconfig.",
    )


class ActionForm(PortalForm):
    """A button that changes something (sign out): a CSRF token and nothing else."""


class SubmitForm(PortalForm):
    template = SelectField("Template", validators=[DataRequired()])
    job_name = StringField(
        "Job name",
        validators=[
            DataRequired(),
            Length(max=50),
            Regexp(DNS_LABEL, message="lower-case letters, digits and '-', starting with a letter"),
        ],
    )
    namespace = SelectField("Namespace", validators=[DataRequired()])
    accelerator_types = StringField(
        "Accelerator types",
        validators=[Optional()],
        description="vendor/model, comma-separated, in order of preference; empty: the template's.",
    )
    image = StringField("Image", validators=[Optional(), Length(max=512)])
    workers = IntegerField("Workers", validators=[Optional(), NumberRange(min=1, max=1024)])
    accelerators_per_worker = IntegerField(
        "Accelerators per worker", validators=[Optional(), NumberRange(min=0, max=64)]
    )
    dataset_pvc = StringField(
        "Dataset volume (PVC)",
        validators=[Optional(), Length(max=63), Regexp(DNS_LABEL, message="a PersistentVolumeClaim name")],
    )
    command = StringField("Command", validators=[Optional(), Length(max=4096)])
