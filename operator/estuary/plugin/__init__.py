"""`kubectl estuary`: the researcher's command line for AIJobs (a kubectl plugin).

Why it exists: a researcher should run, watch and understand her jobs with the rights her
namespace gives her (`edit`, which includes the chart's `estuary-user`), without YAML and without
cluster-wide reads. Every verb reads or writes objects in her namespace only; what needs
cluster-wide knowledge (why a job waits, queue position, per-type verdicts, usage) the operator
writes into the job's own status. It acts with the user's kubeconfig identity, like kubectl.
"""
