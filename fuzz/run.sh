#!/usr/bin/env bash
# Runs the cargo-fuzz targets in fuzz/ for a while each and prints how many
# inputs each executed and whether it found a crash.
#
#   fuzz/run.sh [SECONDS] [TARGET...]     SECONDS per target, default 600
#   FUZZ_PARALLEL=2 fuzz/run.sh           two targets at a time
#
# Targets: kubeconfig_load (parse + select + server rewrite + emit/merge round
# trip), merge_semantics (a merge keeps the meaning of every untouched entry),
# server_url (server and --child-server rewriting), credentials (tokens,
# base64, PEM pairs, child kubeconfigs), provenance (the record status and
# refresh read, its expiry times). Needs nightly Rust and cargo-fuzz
# (`cargo install cargo-fuzz`). Corpora grow in fuzz/corpus/<target> (seeded
# from fuzz/seeds/<target>), crashes land in fuzz/artifacts/<target>, logs in
# fuzz/artifacts/logs/<target>.log; none of these are committed. A crash found becomes a
# regression test next to the code it broke.
set -euo pipefail
cd "$(dirname "$0")/../fuzz"

seconds=${1:-600}
[ $# -gt 0 ] && shift
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(kubeconfig_load merge_semantics server_url credentials provenance)
parallel=${FUZZ_PARALLEL:-1}

command -v cargo-fuzz >/dev/null || { echo "cargo-fuzz missing: cargo install cargo-fuzz" >&2; exit 2; }
cargo +nightly fuzz build -O
mkdir -p artifacts/logs

run_one() {
    local t=$1
    mkdir -p "corpus/$t" "artifacts/$t"
    # -rss_limit_mb: an input that makes the code use more memory is a finding too.
    cargo +nightly fuzz run -O "$t" "corpus/$t" "seeds/$t" -- \
        -max_total_time="$seconds" -rss_limit_mb=2048 -timeout=20 -print_final_stats=1 \
        >"artifacts/logs/$t.log" 2>&1
}

pids=()
names=()
for t in "${targets[@]}"; do
    run_one "$t" &
    pids+=($!)
    names+=("$t")
    while [ "$(jobs -rp | wc -l)" -ge "$parallel" ]; do sleep 5; done
done

failed=0
for i in "${!pids[@]}"; do
    t=${names[$i]}
    if wait "${pids[$i]}"; then status=ok; else status="CRASH (see fuzz/artifacts/$t, fuzz/artifacts/logs/$t.log)"; failed=1; fi
    execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "artifacts/logs/$t.log" | grep -o '[0-9]*$' || echo "?")
    corpus=$(find "corpus/$t" -type f | wc -l)
    printf '%-16s %8ss  executions %12s  corpus %6s  %s\n' "$t" "$seconds" "$execs" "$corpus" "$status"
done
exit $failed
