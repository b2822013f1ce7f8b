#!/usr/bin/env bash
# Estuary on kind, for anyone with Docker: a 3-node cluster (1 control plane + 2 workers) whose
# workers pose as an NVIDIA H800 node and a Huawei Ascend 910B node with 8 fake accelerators each,
# the Estuary image built and loaded, the chart installed, sample pools and jobs applied.
#
#   deploy/kind/quickstart.sh          create (or reuse) the cluster and install everything
#   deploy/kind/quickstart.sh down     delete the cluster
#
# Needs: docker, kind (v0.20+), kubectl, helm (v3.8+ or v4), run from anywhere in the repository.
# Environment: CLUSTER (default estuary), IMAGE (default estuary:dev), PROXY_PORT (default 8011).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
CLUSTER="${CLUSTER:-estuary}"
IMAGE="${IMAGE:-estuary:dev}"
PROXY_PORT="${PROXY_PORT:-8011}"
NAMESPACE=estuary-system
CONTEXT="kind-$CLUSTER"
KUBECTL=(kubectl --context "$CONTEXT")

for tool in docker kind kubectl helm curl; do
  command -v "$tool" >/dev/null || { echo "error: $tool is not on PATH" >&2; exit 1; }
done

if [ "${1:-up}" = "down" ]; then
  kind delete cluster --name "$CLUSTER"
  exit 0
fi

echo "==> kind cluster $CLUSTER"
if kind get clusters | grep -qx "$CLUSTER"; then
  echo "    exists, reusing it"
else
  kind create cluster --name "$CLUSTER" --config "$ROOT/deploy/kind/kind-config.yaml" --wait 120s
fi

echo "==> image $IMAGE (docker build, kind load)"
docker build -t "$IMAGE" "$ROOT"
kind load docker-image "$IMAGE" --name "$CLUSTER"

mapfile -t WORKERS < <("${KUBECTL[@]}" get nodes -l '!node-role.kubernetes.io/control-plane' \
  -o jsonpath='{range .items[*]}{.metadata.name}{"\n"}{end}' | sort)
if [ "${#WORKERS[@]}" -lt 2 ]; then
  echo "error: expected 2 worker nodes, found ${#WORKERS[@]}" >&2; exit 1
fi
NVIDIA_NODE="${WORKERS[0]}"
ASCEND_NODE="${WORKERS[1]}"

echo "==> labels: $NVIDIA_NODE = NVIDIA H800, $ASCEND_NODE = Ascend 910B"
"${KUBECTL[@]}" label node "$NVIDIA_NODE" --overwrite \
  estuary.dev/model=H800 nvidia.com/gpu.present=true nvidia.com/gpu.product=NVIDIA-H800 nvidia.com/gpu.count=8
"${KUBECTL[@]}" label node "$ASCEND_NODE" --overwrite \
  estuary.dev/model=Ascend910B accelerator=huawei-Ascend910

echo "==> fake accelerators: PATCH the node status through kubectl proxy (extended resources)"
# The classic recipe of "Advertise Extended Resources for a Node": the kubelet keeps an extended
# resource it has no device plugin for, and copies it into allocatable. Re-run this script after a
# node restart if the capacity is gone.
"${KUBECTL[@]}" proxy --port "$PROXY_PORT" >/dev/null 2>&1 &
PROXY_PID=$!
trap 'kill "$PROXY_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 30); do
  curl -fs "http://127.0.0.1:$PROXY_PORT/api" >/dev/null && break
  sleep 0.5
done
advertise() {  # node resource count
  curl -fsS -o /dev/null -X PATCH -H 'Content-Type: application/merge-patch+json' \
    --data "{\"status\":{\"capacity\":{\"$2\":\"$3\"}}}" \
    "http://127.0.0.1:$PROXY_PORT/api/v1/nodes/$1/status"
}
advertise "$NVIDIA_NODE" nvidia.com/gpu 8
advertise "$ASCEND_NODE" huawei.com/Ascend910 8
kill "$PROXY_PID" 2>/dev/null || true
for _ in $(seq 1 30); do
  gpus=$("${KUBECTL[@]}" get node "$NVIDIA_NODE" -o jsonpath='{.status.allocatable.nvidia\.com/gpu}')
  npus=$("${KUBECTL[@]}" get node "$ASCEND_NODE" -o jsonpath='{.status.allocatable.huawei\.com/Ascend910}')
  [ "$gpus" = 8 ] && [ "$npus" = 8 ] && break
  sleep 1
done
echo "    allocatable: $NVIDIA_NODE nvidia.com/gpu=${gpus:-0}, $ASCEND_NODE huawei.com/Ascend910=${npus:-0}"

# The jobs' namespace first: the chart binds the operator's pod and Service rights there
# (rbac.workerNamespaces; docs/install.md, "Tenant namespaces").
"${KUBECTL[@]}" create namespace physics --dry-run=client -o yaml | "${KUBECTL[@]}" apply -f -
echo "==> helm install estuary (namespace $NAMESPACE)"
# No real accelerators here, so no node agent (it would find neither NVML nor npu-smi).
helm upgrade --install estuary "$ROOT/charts/estuary" --kube-context "$CONTEXT" \
  --namespace "$NAMESPACE" --create-namespace \
  --set image.repository="${IMAGE%:*}" --set image.tag="${IMAGE##*:}" \
  --set jurisdiction=hk --set agent.enabled=false --set 'rbac.workerNamespaces={physics}' \
  --wait --timeout 5m
# helm upgrade never touches crds/: keep them current by hand (see docs/install.md).
"${KUBECTL[@]}" apply --server-side -f "$ROOT/crds/" >/dev/null

echo "==> sample pools and jobs (namespace physics, tenant physics)"
"${KUBECTL[@]}" apply -f "$ROOT/deploy/kind/pools.yaml"
"${KUBECTL[@]}" label namespace physics estuary.dev/tenant=physics --overwrite
"${KUBECTL[@]}" -n physics apply -f "$ROOT/deploy/kind/jobs.yaml"
sleep 10
echo; "${KUBECTL[@]}" get cpool
echo; "${KUBECTL[@]}" -n physics get aij
echo; "${KUBECTL[@]}" -n physics get pods -o wide
cat <<DONE

Estuary runs in kind cluster $CLUSTER (context $CONTEXT).
  kubectl --context $CONTEXT -n physics get aij -w
  kubectl --context $CONTEXT -n physics logs hello-nvidia-worker-0    # the environment Estuary set
  kubectl --context $CONTEXT -n $NAMESPACE get lease estuary-operator  # which replica leads
  deploy/kind/quickstart.sh down                                       # delete the cluster
DONE
