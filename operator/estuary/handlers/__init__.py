"""The shell around the controllers: Kopf registrations that feed the cache (`operator`), and the
loop that runs the job and federation controllers over it (`loop`).

`kopf run -m estuary.handlers.operator` (or `estuary operator`) loads the registrations.
"""
