"""The robustness tier runs against the same local control plane and operator as the e2e tests:
their fixtures, reused (tests/conftest.py marks every test here `robustness` and `e2e`)."""

from tests.e2e.conftest import estuary, jobs_ns, kube

__all__ = ["estuary", "jobs_ns", "kube"]
