#!/usr/bin/env bash
# Run the named test suites (all of them by default), each reported by name, and exit non-zero
# if any failed. A suite that runs no test counts as failed. The two long suites, integration and
# molecule, drive sandboxes of their own (named pytest* and molecule), so when both are asked for
# they run side by side; each one's output is kept in reports/suite-<name>.log and shown when it ends.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PATH="$PWD/.venv/bin:$PATH"
export ANSIBLE_CONFIG="$PWD/ansible.cfg"
ALL_SUITES=(lint sanity unit collection integration molecule)
SIDE_BY_SIDE=(integration molecule)
suites=("${@:-${ALL_SUITES[@]}}")
mkdir -p reports
declare -A result duration started_at

pytest_suite() {
  # pytest exits 5 when it collected nothing: that is a failure here.
  .venv/bin/python -m pytest -p no:cacheprovider "$@"
}

run_suite() {
  case "$1" in
    # Both lints run; the suite fails if either does.
    lint) local status=0; ansible-lint --profile production || status=$?; hack/docs-lint.sh || status=$?
          return "$status" ;;
    sanity) hack/sanity.sh ;;
    unit) pytest_suite tests/unit tests/sandbox/unit ;;
    collection) pytest_suite tests/packaging ;;
    # Parallel workers, each with its own sandbox (IGW_TEST_WORKERS=0 runs one process); worksteal
    # keeps both busy until the end although full migrations take minutes and status checks seconds.
    # Every setup, call and teardown of 2 s or more is listed at the end (docs/testing.md, "Time").
    integration) hack/ensure-sandbox-binaries.sh &&
      pytest_suite -n "${IGW_TEST_WORKERS:-2}" --dist worksteal --durations=0 --durations-min=2 tests/integration ;;
    molecule) hack/molecule.sh ;;
    *) echo "unknown suite $1"; return 2 ;;
  esac
}

record() {
  local suite=$1 rc=$2
  duration[$suite]=$((SECONDS - started_at[$suite]))
  if [[ $rc -eq 0 ]]; then result[$suite]=passed; else result[$suite]="FAILED (exit $rc)"; fi
  echo "===== suite $suite: ${result[$suite]} in ${duration[$suite]}s"
}

requested() {
  local wanted=$1 suite
  for suite in "${suites[@]}"; do [[ $suite == "$wanted" ]] && return 0; done
  return 1
}

background=()
if requested integration && requested molecule; then background=("${SIDE_BY_SIDE[@]}"); fi
declare -A pid

for suite in "${suites[@]}"; do
  started_at[$suite]=$SECONDS
  if [[ " ${background[*]} " == *" $suite "* ]]; then
    echo "===== suite $suite: start $(date +%T), beside ${background[*]/$suite/} (output: reports/suite-$suite.log)"
    (run_suite "$suite" > "reports/suite-$suite.log" 2>&1; echo $? > "reports/suite-$suite.rc") &
    pid[$suite]=$!
    continue
  fi
  echo "===== suite $suite: start $(date +%T)"
  run_suite "$suite" 2>&1 | tee "reports/suite-$suite.log"
  record "$suite" "${PIPESTATUS[0]}"
done

if [[ ${#background[@]} -gt 0 ]]; then
  remaining=("${background[@]}")
  while [[ ${#remaining[@]} -gt 0 ]]; do
    still=()
    for suite in "${remaining[@]}"; do
      if kill -0 "${pid[$suite]}" 2> /dev/null; then still+=("$suite"); continue; fi
      wait "${pid[$suite]}"
      echo "===== suite $suite: output"
      cat "reports/suite-$suite.log"
      record "$suite" "$(cat "reports/suite-$suite.rc" 2> /dev/null || echo 1)"
    done
    remaining=("${still[@]}")
    if [[ ${#remaining[@]} -gt 0 ]]; then
      sleep 30
      echo "===== $(date +%T) still running: ${remaining[*]} (last line of each: $(for s in "${remaining[@]}"; do tail -n 1 "reports/suite-$s.log" | cut -c1-100; done | tr '\n' '|'))"
    fi
  done
fi

echo
echo "===== summary"
failed=0 passed=0
for suite in "${suites[@]}"; do
  printf '  %-12s %-18s %5ss\n' "$suite" "${result[$suite]}" "${duration[$suite]}"
  if [[ ${result[$suite]} == passed ]]; then passed=$((passed + 1)); else failed=$((failed + 1)); fi
done
echo "suites: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
