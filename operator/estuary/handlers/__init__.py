"""Kopf registrations: a thin shell that feeds the cache and runs the controller thread.

`kopf run -m estuary.handlers` (or `estuary operator`) loads this package.
"""

from estuary.handlers import operator  # noqa: F401  (registers the handlers)
