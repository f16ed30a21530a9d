#!/usr/bin/env bash
# Run every molecule scenario in full (create, converge, idempotence, verify, destroy).
# A scenario that is missing or fails fails the suite.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH"
hack/ensure-sandbox-binaries.sh || exit 1
scenarios=(default simple zero_downtime)
failed=()
for scenario in "${scenarios[@]}"; do
  if [[ ! -f molecule/$scenario/molecule.yml ]]; then
    echo "molecule: scenario $scenario is missing"
    failed+=("$scenario")
    continue
  fi
  echo "----- molecule scenario $scenario"
  if ! molecule test -s "$scenario"; then failed+=("$scenario"); fi
done
echo "molecule: ${#scenarios[@]} scenarios, $(( ${#scenarios[@]} - ${#failed[@]} )) passed${failed:+, failed: ${failed[*]}}"
[[ ${#failed[@]} -eq 0 ]]
