#!/usr/bin/env bash
# The project's test command (see README): installs what the tests need
# (tests/setup.sh), then runs the unit tests, CLI tests, the kubectl wire
# matrix, and the lab end-to-end tests against a real kube-apiserver.
set -euo pipefail
cd "$(dirname "$0")/.."

bash tests/setup.sh

start=$(date +%s)
cargo test --workspace --locked --lib --bins --test cli
cargo test --locked -p testkit --test recorder
echo "offline tests: $(( $(date +%s) - start ))s"

bash tests/lab-env/test.sh
echo "all tests: $(( $(date +%s) - start ))s"
