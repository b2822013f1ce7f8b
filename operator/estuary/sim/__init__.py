"""The trace-driven simulator: replays public job traces through Estuary's own scheduling core.

Loaders (``traces``, ``throughputs``) read Gavel's throughput table and traces, the Philly trace
and Ascend ModelZoo ratios; ``cluster`` declares a simulated cluster; ``engine`` is the virtual
clock that calls ``estuary.core.run_cycle``; ``metrics`` and ``report`` turn a replay into numbers,
JSON and plots; ``cli`` is ``estuary sim``. See docs/simulator.md.
"""
