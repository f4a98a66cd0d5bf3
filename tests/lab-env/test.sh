#!/usr/bin/env bash
# One command for the lab tests: tests/lab-env/lab.sh up, cargo test --features lab-tests
# --test lab, and tests/lab-env/lab.sh down (always, via trap). Extra arguments go to the
# test binary (e.g. a test-name filter). Timings are printed at the end.
#
# Uses its own state dir by default (CLUSTERNET_LAB_STATE, default
# target/lab-test-state) so that it never tears down a lab you started by hand.
set -euo pipefail
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$REPO"
export CLUSTERNET_LAB_STATE=${CLUSTERNET_LAB_STATE:-$REPO/target/lab-test-state}
export CLUSTERNET_LAB_ENV=$CLUSTERNET_LAB_STATE/lab.env

now() { date +%s.%N; }
T0=$(now); T_BUILD=0; T_UP=0; T_TEST=0; T_DOWN=0; TEST_START=""
report() {
  local rc=$?
  local t=$(now)
  [[ -n $TEST_START ]] && T_TEST=$(echo "$t - $TEST_START" | bc)
  tests/lab-env/lab.sh down || true
  T_DOWN=$(echo "$(now) - $t" | bc)
  printf '\n[lab-test] build %.1fs, up %.1fs, tests %.1fs, down %.1fs, total %.1fs: %s\n' \
    "$T_BUILD" "$T_UP" "$T_TEST" "$T_DOWN" "$(echo "$(now) - $T0" | bc)" \
    "$([[ $rc == 0 ]] && echo PASSED || echo "FAILED (exit $rc)")" >&2
  exit $rc
}
trap report EXIT
trap 'exit 130' INT TERM

t=$(now); tests/lab-env/lab.sh build; tests/lab-env/clients.sh; cargo test --features lab-tests --test lab --no-run -q 2>/dev/null || cargo test --features lab-tests --test lab --no-run
T_BUILD=$(echo "$(now) - $t" | bc)
t=$(now); tests/lab-env/lab.sh up; T_UP=$(echo "$(now) - $t" | bc)
TEST_START=$(now); cargo test -q --features lab-tests --test lab -- "$@"
