"""The only code that talks to the API server (with federation's partner and home clients): the
`KubeApi` seam, typed status writes, listings, the leader Lease, and pod rendering."""
