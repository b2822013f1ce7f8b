"""The Estuary node agent: reads the accelerators of one node and reports their health.

It runs as a DaemonSet (`estuary agent`), polls a vendor backend (NVML for NVIDIA, `npu-smi` for
Huawei Ascend), writes a small health summary onto its Node as annotations for the operator, and
serves Prometheus metrics. See docs/telemetry.md for the health rules and the annotation contract.

The package re-exports nothing on purpose: importing a backend must not pull in the Kubernetes or
Prometheus clients (hack/gpu-check.sh runs the NVML backend with nothing else installed).
"""
