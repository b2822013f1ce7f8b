"""The Estuary web portal (`estuary portal`): jobs, pools, queue, quotas and partner links in a browser.

It exists so that a researcher needs neither kubectl nor YAML, and so that a platform team sees
capacity and usage in one place. It acts only with each user's own identity: every page is read with
the bearer token the user brought (from an OIDC reverse proxy, or pasted on the login page), so
Kubernetes RBAC decides what each person sees. The portal's own ServiceAccount has no rights and no
token. See docs/portal.md.
"""
