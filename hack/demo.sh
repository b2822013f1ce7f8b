#!/usr/bin/env bash
# The local demo: two clusters (Hong Kong: NVIDIA H800 + Ascend 910B; Guangzhou partner), the CRDs,
# the operator, sample jobs, and what Estuary made of them.
#   hack/demo.sh        bring it all up and show it
#   hack/demo.sh down   stop the operator and delete the clusters (no process left behind)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"
TOPOLOGY=hack/topologies/campus.yaml
OUT="$ROOT/out"
PY=.venv/bin/python

stop_operators() {
  for pidfile in "$OUT"/operator-*.pid; do
    [ -f "$pidfile" ] || continue
    kill "$(cat "$pidfile")" 2>/dev/null || true
    rm -f "$pidfile"
  done
}

if [ "${1:-up}" = "down" ]; then
  stop_operators
  $PY hack/cluster.py down --topology "$TOPOLOGY"
  exit 0
fi

bash hack/venv.sh
mkdir -p "$OUT"
$PY hack/cluster.py up --topology "$TOPOLOGY"
KUBECTL="$($PY hack/cluster.py tools | awk '$1 == "kubectl" {print $2}')"
stop_operators
for cluster in hk gz; do
  kc="$OUT/kubeconfig-$cluster"
  "$KUBECTL" --kubeconfig "$kc" apply --server-side -f crds/ >/dev/null
  "$KUBECTL" --kubeconfig "$kc" wait --for=condition=Established crd --all --timeout=60s >/dev/null
  jurisdiction=hk; [ "$cluster" = gz ] && jurisdiction=mainland
  KUBECONFIG="$kc" ESTUARY_JURISDICTION=$jurisdiction ESTUARY_CLUSTER_NAME=$cluster nohup $PY -m estuary.cli operator \
    >"$OUT/operator-$cluster.log" 2>&1 &
  echo $! >"$OUT/operator-$cluster.pid"
  echo "==> operator for $cluster running (log: out/operator-$cluster.log)"
done
HK=(--kubeconfig "$OUT/kubeconfig-hk")
"$KUBECTL" "${HK[@]}" apply --server-side -f examples/tenants/quotas.yaml
for tenant in physics chemistry biology; do
  "$KUBECTL" "${HK[@]}" create namespace $tenant --dry-run=client -o yaml | "$KUBECTL" "${HK[@]}" apply -f - >/dev/null
  "$KUBECTL" "${HK[@]}" label namespace $tenant estuary.dev/tenant=$tenant --overwrite >/dev/null
done
"$KUBECTL" "${HK[@]}" -n physics apply -f examples/jobs/
"$KUBECTL" "${HK[@]}" -n biology apply -f examples/tenants/biology-genome.yaml
# Federation: hk links to the gz partner; a job hk can never fit bursts there.
GZ=(--kubeconfig "$OUT/kubeconfig-gz")
"$KUBECTL" "${GZ[@]}" apply -f examples/federation/pools-gz.yaml >/dev/null
"$KUBECTL" "${HK[@]}" create namespace estuary-system --dry-run=client -o yaml | "$KUBECTL" "${HK[@]}" apply -f - >/dev/null
# One signing key shared by the two sides: hk signs the copies it sends, gz treats only copies signed
# with the key it holds for "hk" as federation copies (docs/federation.md, "Which jobs are copies").
KEY_FILE="$OUT/hk-gz-signing-key"
[ -s "$KEY_FILE" ] || $PY -c 'import secrets; print(secrets.token_hex(32))' >"$KEY_FILE"
"$KUBECTL" "${HK[@]}" -n estuary-system create secret generic gz-kubeconfig \
  --from-file=kubeconfig="$OUT/kubeconfig-gz" --from-file=signing-key="$KEY_FILE" \
  --dry-run=client -o yaml | "$KUBECTL" "${HK[@]}" apply -f - >/dev/null
"$KUBECTL" "${GZ[@]}" create namespace estuary-system --dry-run=client -o yaml | "$KUBECTL" "${GZ[@]}" apply -f - >/dev/null
"$KUBECTL" "${GZ[@]}" -n estuary-system create secret generic estuary-origin-keys --from-file=hk="$KEY_FILE" \
  --dry-run=client -o yaml | "$KUBECTL" "${GZ[@]}" apply -f - >/dev/null
"$KUBECTL" "${HK[@]}" apply -f examples/federation/link-gz.yaml
"$KUBECTL" "${HK[@]}" -n physics apply -f examples/federation/a800-finetune.yaml -f examples/federation/hk-only.yaml
echo "==> waiting for the scheduler to place the sample jobs"
for _ in $(seq 1 60); do
  running=$("$KUBECTL" "${HK[@]}" -n physics get aij -o jsonpath='{range .items[*]}{.status.phase}{"\n"}{end}' | grep -c Running || true)
  [ "$running" -ge 4 ] && break
  sleep 1
done
echo; echo "\$ kubectl get nodes   (hk)"; "$KUBECTL" "${HK[@]}" get nodes -L estuary.dev/model \
  -o custom-columns='NAME:.metadata.name,MODEL:.metadata.labels.estuary\.dev/model,GPU:.status.allocatable.nvidia\.com/gpu,NPU:.status.allocatable.huawei\.com/Ascend910'
echo; echo "\$ kubectl get cpool   (hk)"; "$KUBECTL" "${HK[@]}" get cpool
echo; echo "\$ kubectl get aij -A   (hk)"; "$KUBECTL" "${HK[@]}" get aij -A
echo; echo "\$ kubectl get flink -n estuary-system   (hk)"; "$KUBECTL" "${HK[@]}" get flink -n estuary-system
echo; echo "\$ kubectl get aij -A   (gz, the partner)"; "$KUBECTL" "${GZ[@]}" get aij -A
echo; echo "\$ kubectl -n physics get aij hk-only-finetune -o jsonpath='{.status.message}'"
"$KUBECTL" "${HK[@]}" -n physics get aij hk-only-finetune -o jsonpath='{.status.message}'; echo
echo; echo "\$ estuary explain too-big -n physics"
.venv/bin/estuary explain too-big -n physics --kubeconfig "$OUT/kubeconfig-hk" --jurisdiction hk
echo; echo "\$ estuary explain genome-assembly -n biology"
.venv/bin/estuary explain genome-assembly -n biology --kubeconfig "$OUT/kubeconfig-hk" --jurisdiction hk
echo
echo "Try it yourself:  export KUBECONFIG=$OUT/kubeconfig-hk; alias kubectl=$KUBECTL"
echo "Stop everything:  hack/demo.sh down"
