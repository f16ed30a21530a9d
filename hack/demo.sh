#!/usr/bin/env bash
# make demo: the zero-downtime migration of the seed's starting point, under load, in the
# local sandbox. Builds (or reuses) the sandbox, seeds alpha-basic, sends 50 requests per
# second of the base model through the gateway for the whole run, runs
# playbooks/zero_downtime.yml, prints the migration report and the load summary, and stops
# the sandbox. Exits non-zero if the playbook failed or any request failed.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
name=${DEMO_SANDBOX:-demo}
rate=${DEMO_RATE:-50}
out="$root/reports/demo-$(date -u +%Y%m%dT%H%M%SZ)"
mkdir -p "$out"
sandbox() { PYTHONPATH="$root/tests/sandbox" "$root/.venv/bin/python" -m igw_sandbox "$@"; }
step() { printf '\n[demo %s] %s\n' "$(date +%T)" "$*"; }

loadgen_pid=
cleanup() {
  [[ -n $loadgen_pid ]] && kill "$loadgen_pid" 2> /dev/null && wait "$loadgen_pid" 2> /dev/null
  step "stopping the sandbox"
  sandbox down --name "$name" || true
}
trap cleanup EXIT

step "bringing the sandbox up (the first time this builds Kubernetes, kwok and helm from Go modules: about 15 minutes)"
sandbox up --name "$name"
sandbox reset --name "$name"
step "seeding alpha-basic: the preview stack of the GKE migration guide"
sandbox seed --name "$name" alpha-basic
# shellcheck disable=SC1091
source ".sandbox/$name/env"
# The env file exports the sandbox's loopback mirrors of the GIE release downloads and of the
# chart registry (GIE_DOWNLOAD_URL, GIE_CHART_REGISTRY) and SSL_CERT_FILE, which trusts their CA:
# the playbook runs its defaults, with only the hosts swapped.

step "waiting until the gateway serves the preview pool"
for attempt in $(seq 60); do
  code=$(curl -s -o /dev/null -w '%{http_code}' -X POST "$GATEWAY_URL/v1/completions" -H 'Content-Type: application/json' \
    -d '{"model": "meta-llama/Llama-3.1-8B-Instruct", "prompt": "hi", "max_tokens": 10, "temperature": 0}' || true)
  [[ $code == 200 ]] && break
  [[ $attempt == 60 ]] && { echo "demo: the gateway did not answer 200 within 60 s (last: $code)"; exit 1; }
  sleep 1
done

step "starting the load: $rate requests/s of the base model through $GATEWAY_URL for the whole run"
PYTHONPATH="$root/tests/sandbox" "$root/.venv/bin/python" -m igw_sandbox.loadgen \
  --url "$GATEWAY_URL" --rate "$rate" --duration 1800 --max-requests $((rate * 1800)) \
  --model meta-llama/Llama-3.1-8B-Instruct --summary "$out/load-summary.json" --stop-file "$out/stop" \
  > "$out/loadgen.log" 2>&1 &
loadgen_pid=$!

step "running playbooks/zero_downtime.yml"
playbook_rc=0
"$root/.venv/bin/ansible-playbook" playbooks/zero_downtime.yml \
  -e migration_kubeconfig="$KUBECONFIG" -e migration_helm_binary="$HELM" \
  -e migration_gie_download_url="$GIE_DOWNLOAD_URL" -e migration_chart_registry="$GIE_CHART_REGISTRY" \
  -e migration_accept_model_name_changes=true -e migration_pause_seconds=5 \
  -e migration_backup_dest="$out/backups" -e report_dir="$out" || playbook_rc=$?

step "stopping the load"
touch "$out/stop"
wait "$loadgen_pid" || true
loadgen_pid=

step "migration report"
report=$(find "$out" -maxdepth 1 -name 'migration-*.md' | sort | tail -n 1)
if [[ -n $report ]]; then cat "$report"; else echo "no report was written"; fi

step "load summary ($out/load-summary.json)"
load_rc=0
"$root/.venv/bin/python" - "$out/load-summary.json" <<'PY' || load_rc=$?
import json, sys
s = json.load(open(sys.argv[1]))
lat = s.get("latency_ms", {})
print("requests sent: %(sent)d, ok: %(ok)d, failed: %(failed)d" % s)
print("latency ms: p50 %s, p95 %s, p99 %s" % (lat.get("p50"), lat.get("p95"), lat.get("p99")))
print("served per pool: %s" % json.dumps(s.get("per_pool", {}), sort_keys=True))
for window in s.get("failure_windows", []):
    print("failure window: %s" % json.dumps(window))
sys.exit(0 if s["failed"] == 0 and s["sent"] > 0 else 3)
PY
[[ $playbook_rc -eq 0 && $load_rc -eq 0 ]] || { echo "demo: FAILED (playbook exit $playbook_rc, load check exit $load_rc)"; exit 1; }
echo "demo: migration finished with zero failed requests"
