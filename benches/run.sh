#!/usr/bin/env bash
# The benchmark: builds the release binary and, in one run on this machine,
# measures median wall time (hyperfine) and peak memory (GNU time, median of 5)
# of gen and list beside what users do today with kubectl, then prints one table.
# Usage: benches/run.sh [--no-lab | --proxy-only]   (--no-lab skips rows 4 to 6, which need
# the lab; --proxy-only runs row 7 alone, proxy under concurrent uploads, which needs no lab:
# a local sink stands in for the parent)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
with_lab=1 offline=1
[[ "${1:-}" == "--no-lab" ]] && with_lab=0
[[ "${1:-}" == "--proxy-only" ]] && with_lab=0 offline=0

tools=(python3 kubectl bc)
((offline || with_lab)) && tools+=(hyperfine)
for tool in "${tools[@]}"; do
  command -v "$tool" >/dev/null || { echo "bench: $tool is required (apt-get install hyperfine)" >&2; exit 1; }
done
[[ -x /usr/bin/time ]] || { echo "bench: GNU time (/usr/bin/time) is required (apt-get install time)" >&2; exit 1; }

cargo build --release --locked -q
bin=$root/target/release/clusternet-kubeconfig
work=$root/target/bench
rm -rf "$work" && mkdir -p "$work"
id=dc91021d-2361-4f6d-a404-7c33b9e01118
typical=$root/examples/parent.kubeconfig
token=$root/examples/child.token
results=$work/results.tsv
: > "$results"

# median wall time in ms (hyperfine) of a command given as separate arguments
wall() {
  local name=$1; shift
  local runs=$1; shift
  hyperfine -N --warmup 3 --runs "$runs" --export-json "$work/$name.json" "$(printf '%q ' "$@")" > /dev/null 2>&1 \
    || { echo "bench: $name failed: $*" >&2; "$@" > /dev/null; exit 1; }
  python3 -c 'import json,sys; print(round(json.load(open(sys.argv[1]))["results"][0]["median"]*1000, 2))' "$work/$name.json"
}
# median peak RSS in MiB of 5 runs
peak() {
  local samples=()
  for _ in 1 2 3 4 5; do
    /usr/bin/time -f '%M' -o "$work/rss" "$@" > /dev/null 2>&1
    samples+=("$(tail -1 "$work/rss")")
  done
  printf '%s\n' "${samples[@]}" | sort -n | sed -n 3p | awk '{printf "%.1f", $1/1024}'
}
row() { printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$@" >> "$results"; }

if ((offline)); then
python3 benches/make-big-kubeconfig.py "$work/big.kubeconfig" 5000
echo "bench: 1/7 typical gen"
gen_typ=(env -u KUBECONFIG "$bin" gen --kubeconfig "$typical" --cluster-id "$id" --token-file "$token")
kc_typ=(env -u KUBECONFIG kubectl config view --minify --raw --kubeconfig "$typical")
seed=(bash "$root/benches/seed-procedure.sh" "$typical" "$id" "$token" "$work/seed.kubeconfig")
row "1 gen, typical kubeconfig (3 contexts)" "$(wall gen_typ 100 "${gen_typ[@]}")" "$(wall kc_typ 30 "${kc_typ[@]}")" ms "kubectl config view --minify --raw" ""
row "1 memory" "$(peak "${gen_typ[@]}")" "$(peak "${kc_typ[@]}")" MiB "kubectl config view --minify --raw" ""
row "1 gen vs the seed procedure" "$(wall gen_typ2 100 "${gen_typ[@]}")" "$(wall seed 10 "${seed[@]}")" ms "benches/seed-procedure.sh (how-to, scripted)" ""

echo "bench: 2/7 5,000-context gen ($(du -m "$work/big.kubeconfig" | cut -f1) MB)"
gen_big=(env -u KUBECONFIG "$bin" gen --kubeconfig "$work/big.kubeconfig" --context ctx-04999 --cluster-id "$id" --token-file "$token")
kc_big=(env -u KUBECONFIG kubectl config view --minify --raw --kubeconfig "$work/big.kubeconfig" --context ctx-04999)
row "2 gen, 5,000-context kubeconfig" "$(wall gen_big 10 "${gen_big[@]}")" "$(wall kc_big 5 "${kc_big[@]}")" ms "kubectl config view --minify --raw --context" ""
row "2 memory" "$(peak "${gen_big[@]}")" "$(peak "${kc_big[@]}")" MiB "kubectl config view --minify --raw --context" ""

echo "bench: 3/7 --merge-into a 5,000-context kubeconfig"
cp "$work/big.kubeconfig" "$work/merge.kubeconfig"
merge=(env -u KUBECONFIG "$bin" gen --kubeconfig "$typical" --cluster-id "$id" --token-file "$token" --merge-into "$work/merge.kubeconfig")
kc_set=(env -u KUBECONFIG kubectl config set-context bench-ctx --cluster=cluster-00001 --user=user-00001 --kubeconfig "$work/merge.kubeconfig")
row "3 gen --merge-into 5,000-context kubeconfig" "$(wall merge 10 "${merge[@]}")" "$(wall kc_set 5 "${kc_set[@]}")" ms "kubectl config set-context (same file)" ""
row "3 memory" "$(peak "${merge[@]}")" "$(peak "${kc_set[@]}")" MiB "kubectl config set-context (same file)" ""
fi

if ((with_lab)); then
  export CLUSTERNET_LAB_STATE=$root/target/bench-lab-state
  trap 'bash tests/lab-env/lab.sh down > /dev/null 2>&1 || true' EXIT
  bash tests/lab-env/lab.sh build > /dev/null
  bash tests/lab-env/lab.sh up > /dev/null
  bash tests/lab-env/lab.sh seed-many 1000 > /dev/null
  # shellcheck disable=SC1091
  source "$CLUSTERNET_LAB_STATE/lab.env"
  n=$(kubectl --kubeconfig "$LAB_KUBECONFIG" get managedclusters -A --no-headers | wc -l)
  kubectl --kubeconfig "$LAB_KUBECONFIG" get managedclusters -A -o jsonpath='{range .items[*]}{.spec.clusterId}{"\n"}{end}' \
    | python3 -c 'import sys; t=sys.argv[1]; print("clusters:"); [print(f"  {l.strip()}: {{tokenFile: {t}}}") for l in sys.stdin if l.strip()]' "$token" \
    > "$work/credentials.yaml"
  lists() {
    kubectl --kubeconfig "$LAB_KUBECONFIG" get --raw /metrics \
      | awk '/^apiserver_request_total\{/ && /resource="managedclusters"/ && /verb="LIST"/ {s+=$NF} END {print s+0}'
  }
  echo "bench: 4/7 gen --all for $n ManagedClusters on the lab"
  gen_all=(env -u KUBECONFIG "$bin" gen --kubeconfig "$LAB_KUBECONFIG" --all --credentials "$work/credentials.yaml")
  kc_get=(env -u KUBECONFIG kubectl --kubeconfig "$LAB_KUBECONFIG" get managedclusters -A -o json)
  before=$(lists); "${gen_all[@]}" > /dev/null 2>&1; after=$(lists)
  row "4 gen --all, $n ManagedClusters" "$(wall gen_all 10 "${gen_all[@]}")" "$(wall kc_get 10 "${kc_get[@]}")" ms "kubectl get managedclusters -A -o json" "$((after - before)) LIST requests"
  row "4 memory" "$(peak "${gen_all[@]}")" "$(peak "${kc_get[@]}")" MiB "kubectl get managedclusters -A -o json" ""
  echo "bench: 5/7 list for $n ManagedClusters"
  list=(env -u KUBECONFIG "$bin" list --kubeconfig "$LAB_KUBECONFIG")
  kc_list=(env -u KUBECONFIG kubectl --kubeconfig "$LAB_KUBECONFIG" get managedclusters -A)
  before=$(lists); "${list[@]}" > /dev/null 2>&1; after=$(lists)
  row "5 list, $n ManagedClusters" "$(wall list 10 "${list[@]}")" "$(wall kc_list 10 "${kc_list[@]}")" ms "kubectl get managedclusters -A" "$((after - before)) LIST requests"
  row "5 memory" "$(peak "${list[@]}")" "$(peak "${kc_list[@]}")" MiB "kubectl get managedclusters -A" ""

  # proxy: the same GET of the real child's namespace, through the proxy and
  # straight to the parent with the headers the proxy adds (curl, one
  # connection each); then kubectl through the proxy's kubeconfig against
  # kubectl with the generated one.
  reqs=200
  echo "bench: 6/7 proxy: $reqs GETs of the real child through the proxy and directly"
  real_id=7c41d2e3-8f9a-4b0c-9d1e-0000000000c1
  env -u KUBECONFIG "$bin" gen --kubeconfig "$LAB_KUBECONFIG" --cluster-id "$real_id" --token-file "$LAB_CHILD_TOKEN_FILE" \
    --output-file "$work/child.kubeconfig" 2> /dev/null
  env -u KUBECONFIG "$bin" proxy --kubeconfig "$work/child.kubeconfig" --port 0 --write-kubeconfig "$work/proxy.kubeconfig" \
    > "$work/proxy.out" 2> "$work/proxy.err" &
  proxy_pid=$!
  trap 'kill "$proxy_pid" 2> /dev/null || true; bash tests/lab-env/lab.sh down > /dev/null 2>&1 || true' EXIT
  for _ in $(seq 100); do grep -q '^Starting to serve on ' "$work/proxy.out" && break; sleep 0.1; done
  addr=$(sed -n 's/^Starting to serve on //p' "$work/proxy.out")
  [[ -n $addr ]] || { echo "bench: proxy did not start: $(cat "$work/proxy.err")" >&2; exit 1; }
  path=/api/v1/namespaces/child-only
  socket=$LAB_SERVER/apis/proxies.clusternet.io/v1alpha1/sockets/$real_id/proxy/direct
  # seconds for $reqs GETs of $1 on one connection (curl's keep-alive), with the rest as curl options
  gets() {
    local url=$1; shift
    local args=() t0 t1
    for _ in $(seq "$reqs"); do args+=(-o /dev/null "$url"); done
    t0=$(date +%s.%N)
    curl -sf "$@" "${args[@]}" || { echo "bench: curl $url failed" >&2; exit 1; }
    t1=$(date +%s.%N)
    echo "$t1 - $t0" | bc -l
  }
  via=$(gets "http://$addr$path")
  direct=$(gets "$socket$path" --cacert "$LAB_CA" -H "Impersonate-User: clusternet" \
    -H "Impersonate-Extra-Clusternet-Token: $(cat "$LAB_CHILD_TOKEN_FILE")")
  per() { echo "scale=3; $1 * 1000 / $reqs" | bc -l; }
  rps() { echo "scale=0; $reqs / $1" | bc -l; }
  row "6 GET via proxy, curl ($reqs on one connection)" "$(per "$via")" "$(per "$direct")" ms/GET \
    "curl to the parent, same path and headers" "$(rps "$via") vs $(rps "$direct") GET/s; added $(echo "scale=3; ($via - $direct) * 1000 / $reqs" | bc -l) ms/GET"
  kc_via=(env -u KUBECONFIG kubectl --kubeconfig "$work/proxy.kubeconfig" get ns child-only -o name)
  kc_direct=(env -u KUBECONFIG kubectl --kubeconfig "$work/child.kubeconfig" get ns child-only -o name)
  row "6 kubectl get ns, proxy kubeconfig" "$(wall kc_via 30 "${kc_via[@]}")" "$(wall kc_direct 30 "${kc_direct[@]}")" ms \
    "kubectl, generated kubeconfig (directly)" ""
  kill "$proxy_pid"
fi

# proxy under load: $uploads concurrent uploads of $mib MiB each, through
# `proxy`, through `kubectl proxy` (the same kubeconfig) and straight to a
# local sink standing in for the parent (benches/uploads.py): the peak memory
# (VmHWM) of each proxy process, and the time until every upload is answered.
uploads=8 mib=32
echo "bench: 7/7 proxy: $uploads concurrent uploads of $mib MiB, through proxy, kubectl proxy and directly"
python3 benches/uploads.py sink "$work/sink.port" &
sink_pid=$!
trap 'kill "$sink_pid" 2> /dev/null || true; bash tests/lab-env/lab.sh down > /dev/null 2>&1 || true' EXIT
for _ in $(seq 100); do [[ -s $work/sink.port ]] && break; sleep 0.1; done
sink=127.0.0.1:$(cat "$work/sink.port")
route=/apis/proxies.clusternet.io/v1alpha1/sockets/$id/proxy/direct
cat > "$work/sink.kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: c
clusters:
- name: c
  cluster: {server: 'http://$sink$route'}
users:
- name: c
  user: {username: system:anonymous, as: clusternet, as-user-extra: {clusternet-token: [bench-child-token]}}
contexts:
- name: c
  context: {cluster: c, user: c}
EOF
# starts a server that prints "Starting to serve on ADDR"; sets srv_pid and srv_addr
serve() {
  local name=$1; shift
  "$@" > "$work/$name.out" 2> "$work/$name.err" &
  srv_pid=$!
  for _ in $(seq 100); do grep -q '^Starting to serve on ' "$work/$name.out" && break; sleep 0.1; done
  srv_addr=$(sed -n 's/^Starting to serve on //p' "$work/$name.out")
  [[ -n $srv_addr ]] || { echo "bench: $name did not start: $(cat "$work/$name.err")" >&2; exit 1; }
}
hwm() { awk '/^VmHWM:/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
ms() { echo "scale=1; $1 * 1000 / 1" | bc -l; }
put=(python3 benches/uploads.py put)
cms=/api/v1/namespaces/bench/configmaps
serve ours env -u KUBECONFIG "$bin" proxy --kubeconfig "$work/sink.kubeconfig" --port 0
ours_s=$("${put[@]}" "$srv_addr" "$uploads" "$mib" "$cms")
ours_mem=$(hwm "$srv_pid")
kill "$srv_pid"
serve kubectl env -u KUBECONFIG kubectl proxy --kubeconfig "$work/sink.kubeconfig" --port 0
kc_s=$("${put[@]}" "$srv_addr" "$uploads" "$mib" "$cms")
kc_mem=$(hwm "$srv_pid")
kill "$srv_pid"
direct_s=$("${put[@]}" "$sink" "$uploads" "$mib" "$route$cms")
kill "$sink_pid"
total=$((uploads * mib))
row "7 proxy peak memory, $uploads concurrent $mib MiB PUTs" "$ours_mem" "$kc_mem" MiB "kubectl proxy, same uploads" "VmHWM; $total MiB uploaded"
row "7 the same PUTs, until all answered" "$(ms "$ours_s")" "$(ms "$direct_s")" ms "straight to the sink" \
  "$(echo "scale=0; $total / $ours_s" | bc -l) vs $(echo "scale=0; $total / $direct_s" | bc -l) MiB/s; kubectl proxy $(ms "$kc_s") ms"

python3 - "$results" <<'PY'
import sys
rows = [l.rstrip("\n").split("\t") for l in open(sys.argv[1])]
print()
print(f"| figure | ours | theirs | ratio (theirs/ours) | theirs is | note |")
print(f"|---|---:|---:|---:|---|---|")
for figure, ours, theirs, unit, what, note in rows:
    o, t = float(ours), float(theirs)
    ratio = f"{t / o:.1f}x" if o > 0 else "-"
    print(f"| {figure} | {o:g} {unit} | {t:g} {unit} | {ratio} | {what} | {note} |")
PY
echo
echo "machine: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, $(uname -sr); kubectl: $(kubectl version --client -o json 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["clientVersion"]["gitVersion"])')"
