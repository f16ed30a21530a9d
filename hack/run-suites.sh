#!/usr/bin/env bash
# Run the named test suites (all of them by default), each reported by name,
# and exit non-zero if any failed. A suite that runs no test counts as failed.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
ALL_SUITES=(lint sanity unit collection integration molecule)
suites=("${@:-${ALL_SUITES[@]}}")
mkdir -p reports
declare -A result duration

pytest_suite() {
  # pytest exits 5 when it collected nothing: that is a failure here.
  .venv/bin/python -m pytest "$@"
}

run_suite() {
  case "$1" in
    lint) ansible-lint --profile production ;;
    sanity) hack/sanity.sh ;;
    unit) pytest_suite -p no:cacheprovider tests/unit tests/sandbox/unit ;;
    collection) pytest_suite -p no:cacheprovider tests/packaging ;;
    integration) hack/ensure-sandbox-binaries.sh && pytest_suite -p no:cacheprovider tests/integration ;;
    molecule) hack/molecule.sh ;;
    *) echo "unknown suite $1"; return 2 ;;
  esac
}

for suite in "${suites[@]}"; do
  echo "===== suite $suite: start $(date +%T)"
  started=$SECONDS
  run_suite "$suite" 2>&1 | tee "reports/suite-$suite.log"
  rc=${PIPESTATUS[0]}
  duration[$suite]=$((SECONDS - started))
  if [[ $rc -eq 0 ]]; then result[$suite]=passed; else result[$suite]="FAILED (exit $rc)"; fi
  echo "===== suite $suite: ${result[$suite]} in ${duration[$suite]}s"
done

echo
echo "===== summary"
failed=0 passed=0
for suite in "${suites[@]}"; do
  printf '  %-12s %-18s %5ss\n' "$suite" "${result[$suite]}" "${duration[$suite]}"
  if [[ ${result[$suite]} == passed ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "suites: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
