#!/usr/bin/env bash
# Loopback Kubernetes lab for clusternet-kubeconfig.
#
# A real etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, with the
# Clusternet CRDs/RBAC, seeded ManagedClusters, the clusternet-hub stand-in
# (testkit's `hub-standin`) registered as the aggregated API
# v1alpha1.proxies.clusternet.io, and an agent stand-in (`agent-standin`) per
# seeded cluster whose agent is connected. No containers, no root-only features.
#
#   tests/lab-env/lab.sh build          build the binaries when missing (cached)
#   tests/lab-env/lab.sh up             start the lab (exits 0 when it is already up), with a
#                             real child kube-apiserver behind the stand-in (child-real)
#   tests/lab-env/lab.sh seed-many N    add N extra ManagedClusters (one `kubectl apply`)
#   tests/lab-env/lab.sh up-noanon      a second kube-apiserver, --anonymous-auth=false, same etcd
#   tests/lab-env/lab.sh hub-stop       stop the hub stand-in (the APIService stays registered)
#   tests/lab-env/lab.sh hub-start [--feature-gates SocketConnection=false] [--request-timeout 5s]
#                             (re)start the hub stand-in; waits for the APIService Available
#                             and the agents' sessions (--request-timeout: the hub's
#                             request timeout, default 60s)
#   tests/lab-env/lab.sh agent-stop ID  stop the agent of cluster ID: its session ends at once
#   tests/lab-env/lab.sh agent-start ID start it (again); waits for its session
#   tests/lab-env/lab.sh env            print `export NAME=value` lines for the running lab
#   tests/lab-env/lab.sh status         what is running, ports, APIService availability
#   tests/lab-env/lab.sh down           stop the recorded PIDs, remove the state dir
#
# Environment:
#   CLUSTERNET_LAB_CACHE  binaries (default ~/.cache/clusternet-kubeconfig/lab)
#   CLUSTERNET_LAB_STATE  state dir (default <repo>/lab/state); labs in different
#                         state dirs run side by side (ports are picked free,
#                         under a lock shared through the cache dir)
#   LAB_READY_TIMEOUT     seconds to wait for each component (default 90)
#
# The certificates, kubeconfigs and every object the lab seeds (and their
# names and IDs, which the tests share) come from testkit's `lab-setup`
# (tests/testkit/src/lab.rs); this script builds, starts, waits and stops.
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/../.." && pwd)
CACHE=${CLUSTERNET_LAB_CACHE:-$HOME/.cache/clusternet-kubeconfig/lab}
STATE=${CLUSTERNET_LAB_STATE:-$LAB_DIR/state}
READY_TIMEOUT=${LAB_READY_TIMEOUT:-90}
# The child's longest token (testkit's lab::CHILD_MAX_TOKEN_HOURS).
CHILD_MAX_TOKEN_HOURS=720
CLUSTERNET_VERSION=v0.18.1

# ------------------------------------------------------------------ components
# The one list of processes: `up` starts them in this order, each once those it
# needs are ready (and then waits for all); `down` stops them in reverse;
# `status` shows them. `on-demand`: started by its own command, not by `up`.
# Each has start_<name> and ready_<name> below.
#   name                    needs
COMPONENTS=(
  "etcd                    -"
  "oidc-issuer             -"
  "kube-apiserver          etcd oidc-issuer"
  "kube-apiserver-child    etcd"
  "hub-standin             -"
  "kube-controller-manager kube-apiserver"
  "kube-apiserver-noanon   on-demand"
)
component_names() { local c; for c in "${COMPONENTS[@]}"; do echo "${c%% *}"; done; }

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

gomod_version() { # <go.mod> <module>: the required version
  awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$1"
}
K8S_VERSION=$(gomod_version "$LAB_DIR/k8s/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(gomod_version "$LAB_DIR/etcd/go.mod" go.etcd.io/etcd/server/v3)
K8S_BIN=$CACHE/bin/k8s-$K8S_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
TESTKIT_BIN=${CARGO_TARGET_DIR:-$REPO/target}/debug
SETUP_BIN=$TESTKIT_BIN/lab-setup
AGENT_BIN=$TESTKIT_BIN/agent-standin
OIDC_BIN=$TESTKIT_BIN/oidc-issuer
# LAB_HUB_BIN: another stand-in binary (debugging only)
HUB_BIN=${LAB_HUB_BIN:-$TESTKIT_BIN/hub-standin}

# ---------------------------------------------------------------------- build
cmd_build() {
  command -v go >/dev/null || die "go is not on PATH"
  local k8s_minor=${K8S_VERSION#v1.}; k8s_minor=${k8s_minor%%.*}
  # Stamp the version so that `kube-apiserver --version` and /version tell the truth.
  local ldflags="-s -w"
  ldflags+=" -X k8s.io/component-base/version.gitVersion=$K8S_VERSION"
  ldflags+=" -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$k8s_minor"
  ldflags+=" -X k8s.io/component-base/version.gitTreeState=clean"
  build_go "$K8S_BIN" "$LAB_DIR/k8s" "$ldflags" "kube-apiserver kube-controller-manager" \
    k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kube-controller-manager
  build_go "$ETCD_BIN" "$LAB_DIR/etcd" "-s -w" "etcd" go.etcd.io/etcd/server/v3
  local bins=(--bin lab-setup --bin agent-standin --bin oidc-issuer --bin hub-standin)
  if [[ -n ${LAB_HUB_BIN:-} ]]; then log "hub stand-in: LAB_HUB_BIN=$LAB_HUB_BIN (not built)"; bins=(--bin lab-setup --bin agent-standin --bin oidc-issuer); fi
  log "building testkit's ${bins[*]}"
  (cd "$REPO" && cargo build -q -p testkit "${bins[@]}")
  local b; for b in "$SETUP_BIN" "$AGENT_BIN" "$OIDC_BIN" "$HUB_BIN"; do [[ -x $b ]] || die "$b not found after cargo build"; done
}

build_go() { # <outdir> <module dir> <ldflags> <"expected binaries"> <packages...>
  local out=$1 mod=$2 ldflags=$3 want=$4; shift 4
  local b missing=0 stamp="go build -trimpath -ldflags=$ldflags $*"
  for b in $want; do [[ -x $out/$b ]] || missing=1; done
  # Rebuild when the recorded build command differs (e.g. new ldflags).
  [[ $(cat "$out/.build" 2>/dev/null) == "$stamp" ]] || missing=1
  if (( !missing )); then log "up to date: $out ($want)"; return; fi
  mkdir -p "$out"
  log "building $want into $out (first build: several minutes on 2 cores)"
  local t0=$SECONDS
  # One package: name the binary (go would call go.etcd.io/etcd/server/v3 "server").
  local dest="$out/"; [[ $# == 1 ]] && dest="$out/$want"
  (cd "$mod" && GOFLAGS=-p=2 go build -trimpath -ldflags="$ldflags" -o "$dest" "$@")
  for b in $want; do [[ -x $out/$b ]] || die "build did not produce $out/$b"; done
  echo "$stamp" >"$out/.build"
  log "built $want in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------------- ports
port_free() { # no socket at all on this port, listening or connected (all addresses, v4 and v6)
  ! ss -Hatn "sport = :$1" 2>/dev/null | grep -q .
}

# Ports are picked below the kernel's ephemeral range, so that no outgoing
# connection (kubectl, the tests, the apiservers) can take one between the pick
# and the bind.
read -r EPHEMERAL_LOW _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
if ((EPHEMERAL_LOW > 12000)); then PORT_LOW=10000 PORT_SPAN=$((EPHEMERAL_LOW - 10000)); else PORT_LOW=20000 PORT_SPAN=30000; fi

port_claimed() { # claimed by a lab (state dir still there) that has not bound it yet?
  local f
  for f in "$CACHE/ports/$1".*; do
    [[ -e $f ]] || continue
    if [[ -d $(cat "$f") ]]; then return 0; fi
    rm -f "$f" # stale claim: its state dir is gone
  done
  return 1
}

state_id() { echo "$STATE" | md5sum | cut -c1-8; }

claim_ports() { # <VAR...>: set each to a free port, claimed under the cache lock until release_ports
  local var p i picked=""
  mkdir -p "$CACHE/ports"
  exec 9>"$CACHE/ports.lock"
  flock 9
  for var in "$@"; do
    for ((i = 0; i < 200; i++)); do
      p=$((PORT_LOW + RANDOM % PORT_SPAN))
      [[ " $picked " == *" $p "* ]] && continue
      port_free "$p" && ! port_claimed "$p" && break
    done
    ((i < 200)) || die "no free port found"
    picked+=" $p"; printf -v "$var" %s "$p"
    echo "$STATE" >"$CACHE/ports/$p.$(state_id)"
    echo "$var=$p" >>"$STATE/ports.env"
  done
  flock -u 9
  exec 9>&-
}

release_ports() { rm -f "$CACHE"/ports/*."$(state_id)"; }

# ------------------------------------------------------------------ processes
pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }
pid_of() { cat "$STATE/pids/$1" 2>/dev/null || true; }

start_bg() { # <name> <cmd...>: start in its own process group, record the PID
  local name=$1; shift
  log "starting $name"
  # fds 8/9 may hold a lab lock (flock): the long-running child must not inherit it
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$STATE/pids/$name"
}

stop() { # <name...>: TERM each, then KILL what is left after 15 s
  local name pid deadline
  for name in "$@"; do
    pid=$(pid_of "$name")
    if pid_alive "$pid"; then log "stopping $name ($pid)"; kill -TERM "$pid" 2>/dev/null || true; fi
  done
  for name in "$@"; do
    pid=$(pid_of "$name"); deadline=$((SECONDS + 15))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    if pid_alive "$pid"; then log "killing $name ($pid)"; kill -KILL "$pid" 2>/dev/null || true; fi
  done
}

fail_component() { # <name> <message>
  local name=$1
  printf '[lab] ERROR: %s\n[lab] last 30 lines of %s:\n' "$2" "$STATE/logs/$name.log" >&2
  tail -n 30 "$STATE/logs/$name.log" >&2 || true
  printf '[lab] the lab is left running for inspection; run `CLUSTERNET_LAB_STATE=%s %s down` to clean up\n' "$STATE" "$0" >&2
  exit 1
}

wait_for() { # <name> <description> <command...>: poll until the command succeeds
  local name=$1 what=$2; shift 2
  local deadline=$((SECONDS + READY_TIMEOUT)) pid
  pid=$(pid_of "$name")
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! pid_alive "$pid"; then fail_component "$name" "$name exited while waiting for $what"; fi
    (( SECONDS < deadline )) || fail_component "$name" "$name: $what not ready within ${READY_TIMEOUT}s"
    sleep 0.3
  done
}

wait_ready() { # <name...>: each component's ready_<name> (once per run)
  local name
  for name in "$@"; do
    [[ " ${READY:-} " == *" $name "* ]] && continue
    wait_for "$name" "ready_$name" "ready_$name"
    READY="${READY:-} $name"
  done
}

kc() { kubectl --kubeconfig "$STATE/admin.kubeconfig" "$@"; }
ck() { kubectl --kubeconfig "$STATE/child.kubeconfig" "$@"; }
as_admin() { curl -fsS --cacert "$PKI/ca.crt" --cert "$PKI/admin.crt" --key "$PKI/admin.key" "$@"; }
wait_apiservice() {
  if ! kc wait --for condition=Available --timeout "${READY_TIMEOUT}s" apiservice/v1alpha1.proxies.clusternet.io >/dev/null 2>&1; then
    kc get apiservice v1alpha1.proxies.clusternet.io -o jsonpath='{.status.conditions}' >&2 || true; echo >&2
    fail_component hub-standin "APIService v1alpha1.proxies.clusternet.io not Available within ${READY_TIMEOUT}s"
  fi
}

# ------------------------------------------------- each component: start, ready
start_etcd() {
  start_bg etcd "$ETCD_BIN/etcd" --name lab --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "lab=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn \
    --quota-backend-bytes 1073741824 --unsafe-no-fsync
}
ready_etcd() { curl -fsS "http://127.0.0.1:$ETCD_PORT/health"; }

parent_apiserver() { # <name> <port> <anonymous-auth true|false> [more flags]: a kube-apiserver on the lab's etcd
  local name=$1 port=$2 anonymous=$3; shift 3
  start_bg "$name" "$K8S_BIN/kube-apiserver" "$@" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
    --secure-port "$port" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --tls-cert-file "$PKI/apiserver.crt" --tls-private-key-file "$PKI/apiserver.key" \
    --client-ca-file "$PKI/client-ca.crt" \
    --authorization-mode RBAC --anonymous-auth="$anonymous" \
    --service-account-issuer https://kubernetes.default.svc.cluster.local \
    --service-account-key-file "$PKI/sa.pub" --service-account-signing-key-file "$PKI/sa.key" \
    --service-cluster-ip-range 10.96.0.0/16 \
    --requestheader-client-ca-file "$PKI/front-proxy-ca.crt" \
    --requestheader-allowed-names front-proxy-client \
    --requestheader-username-headers X-Remote-User \
    --requestheader-group-headers X-Remote-Group \
    --requestheader-extra-headers-prefix X-Remote-Extra- \
    --proxy-client-cert-file "$PKI/front-proxy-client.crt" --proxy-client-key-file "$PKI/front-proxy-client.key" \
    --aggregator-reject-forwarding-redirect=false --enable-aggregator-routing=false \
    --authentication-config "$STATE/authentication-config.yaml" \
    --v 1
}
# The OIDC issuer the parents trust (--authentication-config), with the
# stand-in for the GitHub Actions token endpoint (testkit's `oidc` module).
start_oidc-issuer() {
  start_bg oidc-issuer "$OIDC_BIN" --listen "127.0.0.1:$OIDC_PORT" --cert "$PKI/oidc.crt" --key "$PKI/oidc.key" \
    --signing-key "$PKI/oidc-signing.key" --request-token-file "$PKI/oidc-request.token" --record "$STATE/oidc-mints.jsonl"
}
ready_oidc-issuer() { curl -fsS --cacert "$PKI/oidc-ca.crt" "https://127.0.0.1:$OIDC_PORT/.well-known/openid-configuration"; }

start_kube-apiserver() { parent_apiserver kube-apiserver "$APISERVER_PORT" true; }
ready_kube-apiserver() { as_admin "https://127.0.0.1:$APISERVER_PORT/readyz"; }

# The child cluster's kube-apiserver: the same etcd under another prefix, its
# own serving CA, client CA and service-account key; no anonymous requests.
start_kube-apiserver-child() {
  start_bg kube-apiserver-child "$K8S_BIN/kube-apiserver" \
    --etcd-servers "http://127.0.0.1:$ETCD_PORT" --etcd-prefix /child-registry \
    --secure-port "$CHILD_PORT" --bind-address 127.0.0.1 --advertise-address 127.0.0.1 \
    --endpoint-reconciler-type none \
    --tls-cert-file "$PKI/child-apiserver.crt" --tls-private-key-file "$PKI/child-apiserver.key" \
    --client-ca-file "$PKI/child-client-ca.crt" \
    --authorization-mode RBAC --anonymous-auth=false \
    --service-account-issuer https://kubernetes.default.svc.child.lab \
    --service-account-key-file "$PKI/child-sa.pub" --service-account-signing-key-file "$PKI/child-sa.key" \
    --service-cluster-ip-range 10.97.0.0/16 \
    --service-account-max-token-expiration "$CHILD_MAX_TOKEN_HOURS"h \
    --v 1
}
ready_kube-apiserver-child() {
  curl -fsS --cacert "$PKI/child-ca.crt" --cert "$PKI/child-admin.crt" --key "$PKI/child-admin.key" \
    "https://127.0.0.1:$CHILD_PORT/readyz"
}

# The hub stand-in: reads ManagedClusters from the lab's apiserver at each
# request, keeps the agents' sessions (agents connect to hub-agents.sock), and
# serves the canned child (any credentials) on CANNED_PORT. It does not need
# the apiserver to start.
start_hub-standin() { # [more flags, e.g. --feature-gates SocketConnection=false]
  start_bg hub-standin "$HUB_BIN" --listen "127.0.0.1:$HUB_PORT" --agents-socket "$STATE/hub-agents.sock" \
    --cert "$PKI/hub.crt" --key "$PKI/hub.key" --client-ca "$PKI/front-proxy-ca.crt" \
    --record "$STATE/hub-requests.jsonl" \
    --parent "https://127.0.0.1:$APISERVER_PORT" --parent-ca "$PKI/ca.crt" \
    --parent-cert "$PKI/hub-client.crt" --parent-key "$PKI/hub-client.key" \
    --canned-child "127.0.0.1:$CANNED_PORT" "$@"
}
ready_hub-standin() { grep -q "hub-standin listening on" "$STATE/logs/hub-standin.log"; }

start_kube-controller-manager() {
  start_bg kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$STATE/kcm.kubeconfig" \
    --authentication-kubeconfig "$STATE/kcm.kubeconfig" --authorization-kubeconfig "$STATE/kcm.kubeconfig" \
    --secure-port "$KCM_PORT" --bind-address 127.0.0.1 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false \
    --controllers serviceaccount-token-controller,serviceaccount-controller,namespace-controller,root-ca-certificate-publisher-controller \
    --v 1
}
ready_kube-controller-manager() { curl -fsk "https://127.0.0.1:$KCM_PORT/healthz"; }

# A second parent kube-apiserver on the same etcd (so the same CRDs, RBAC,
# APIService and ManagedClusters) with --anonymous-auth=false, and an audit log
# (nothing but the tests talks to it, so they can count a command's requests).
start_kube-apiserver-noanon() {
  parent_apiserver kube-apiserver-noanon "$NOANON_PORT" false --audit-policy-file "$STATE/audit-policy.yaml" \
    --audit-log-path "$STATE/logs/noanon-audit.log" --audit-log-mode blocking
}
ready_kube-apiserver-noanon() { # its own aggregator must see the APIService Available too
  as_admin "https://127.0.0.1:$NOANON_PORT/apis/proxies.clusternet.io/v1alpha1" | grep -q sockets
}

# ------------------------------------------------------------------------- up
lab_running() { # any recorded component alive?
  local name
  for name in $(component_names); do pid_alive "$(pid_of "$name")" && return 0; done
  return 1
}

need_lab() {
  [[ -f $STATE/lab.env ]] || die "no lab at $STATE (run \`$0 up\`)"
  STATE=$(cd "$STATE" && pwd)
  PKI=$STATE/pki
  # shellcheck disable=SC1091
  source "$STATE/ports.env"
}

cmd_up() {
  local t0=$SECONDS c name needs
  if [[ -f $STATE/lab.env ]] && lab_running; then
    log "lab already up (state $STATE); \`$0 down\` first to restart"
    return 0
  fi
  if [[ -d $STATE ]]; then log "removing stale state $STATE"; cmd_down >/dev/null 2>&1 || true; fi
  for b in "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager" "$ETCD_BIN/etcd" "$HUB_BIN" "$SETUP_BIN" "$AGENT_BIN" "$OIDC_BIN"; do
    [[ -x $b ]] || { log "missing $b: building"; cmd_build; break; }
  done
  command -v kubectl >/dev/null || die "kubectl is not on PATH"
  mkdir -p "$STATE"/{logs,pids,etcd}
  STATE=$(cd "$STATE" && pwd)
  PKI=$STATE/pki
  # Claimed under a lock shared by all labs using this cache, released once
  # the processes listen (claims removed by `down` as well).
  claim_ports ETCD_PORT ETCD_PEER_PORT APISERVER_PORT KCM_PORT HUB_PORT CHILD_PORT CANNED_PORT OIDC_PORT
  "$SETUP_BIN" files --state "$STATE" --apiserver-port "$APISERVER_PORT" --child-port "$CHILD_PORT" \
    --hub-port "$HUB_PORT" --canned-port "$CANNED_PORT" --oidc-port "$OIDC_PORT" --k8s-version "$K8S_VERSION"

  for c in "${COMPONENTS[@]}"; do
    read -r name needs <<<"$c"
    case $needs in on-demand) continue ;; -) ;; *) wait_ready $needs ;; esac
    "start_$name"
  done
  for c in "${COMPONENTS[@]}"; do
    read -r name needs <<<"$c"
    [[ $needs == on-demand ]] || wait_ready "$name"
  done
  release_ports

  apply_clusternet
  seed
  write_env
  log "lab up in $((SECONDS - t0))s: https://127.0.0.1:$APISERVER_PORT; \`source $STATE/lab.env\`"
}

apply_clusternet() {
  local src="" dir="" crds=$LAB_DIR/manifests/crds.yaml rbac=() f
  # Prefer upstream manifests from the Go module cache; they are not served by
  # every module proxy (not by the one this lab was built with).
  if dir=$(cd "$(mktemp -d)" && go mod download -json "github.com/clusternet/clusternet@$CLUSTERNET_VERSION" 2>/dev/null \
           | jq -er '.Dir // empty' 2>/dev/null) && [[ -d $dir/manifests/crds ]]; then
    src=upstream
    log "NOTICE: Clusternet manifests: upstream github.com/clusternet/clusternet@$CLUSTERNET_VERSION ($dir)"
    crds=$dir/manifests/crds/
    # Only the RBAC of deploy/hub: its Deployment/Service would clash with the
    # stand-in's ExternalName Service. tests/lab-env/manifests/rbac.yaml is applied after it.
    for f in "$dir"/deploy/hub/*rbac*.yaml; do [[ -e $f ]] && rbac+=(-f "$f"); done
  else
    log "NOTICE: Clusternet manifests: AUTHORED tests/lab-env/manifests/ (github.com/clusternet/clusternet@$CLUSTERNET_VERSION is not served by the Go module proxy here)"
  fi
  echo "${src:-authored}" >"$STATE/manifests-source"
  kc apply -f "$crds" -f "$STATE/manifests/parent.json" "${rbac[@]}" -f "$LAB_DIR/manifests/rbac.yaml" >/dev/null
  kc wait --for condition=Established --timeout 60s \
    crd/managedclusters.clusters.clusternet.io crd/clusterregistrationrequests.clusters.clusternet.io >/dev/null
}

# What lab-setup wrote into manifests/: the ManagedClusters and their status
# (the status subresource, as clusternet-agent reports it), the child's objects.
seed() {
  kc apply -f "$STATE/manifests/seeds.json" >/dev/null
  kc apply --server-side --field-manager lab --subresource status -f "$STATE/manifests/seeds-status.json" >/dev/null
  ck apply -f "$STATE/manifests/child.json" >/dev/null
  "$SETUP_BIN" child-token --state "$STATE" || fail_component kube-apiserver-child "no token for the child's service account"
  # What clusternet-agent stores on the parent: the child's cluster-admin token
  # (its legacy Secret-based token, held by a token Secret on the child).
  "$SETUP_BIN" deployer-secrets --state "$STATE" --child-port "$CHILD_PORT" ||
    fail_component kube-apiserver-child "no token for the child's deployer service account"
  ck apply -f "$STATE/manifests/deployer-child.json" >/dev/null
  wait_for kube-apiserver-child "the child accepting the deployer's legacy token" \
    curl -fsS --cacert "$PKI/child-ca.crt" -H "Authorization: Bearer $(cat "$STATE/child/deployer.token")" \
    "https://127.0.0.1:$CHILD_PORT/api/v1/namespaces/clusternet-system"
  kc apply -f "$STATE/manifests/deployer.json" >/dev/null
  local id; while read -r id; do start_agent "$id"; done <"$STATE/agents"
  while read -r id; do wait_session "$id"; done <"$STATE/agents"
  wait_for kube-controller-manager "the clusternet-hub-proxy token" \
    bash -c "[[ -n \$(kubectl --kubeconfig '$STATE/admin.kubeconfig' -n clusternet-system get secret clusternet-hub-proxy -o 'jsonpath={.data.token}') ]]"
  wait_apiservice
  # What a CI identity of the OIDC issuer may do (the README's keyless recipe).
  kc apply -f "$LAB_DIR/manifests/oidc-rbac.yaml" >/dev/null
  log "seeded; APIService v1alpha1.proxies.clusternet.io Available (hub stand-in on 127.0.0.1:$HUB_PORT)"
}

# ------------------------------------------------------------------------ env
write_env() { "$SETUP_BIN" env --state "$STATE" --k8s-version "$K8S_VERSION" --etcd-version "$ETCD_VERSION"; }

cmd_env() {
  [[ -f $STATE/lab.env ]] || die "no lab at $STATE (run \`$0 up\`)"
  grep '^export ' "$STATE/lab.env"
}

# ------------------------------------------------------------------ seed-many
cmd_seed_many() {
  local n=${1:?usage: seed-many N}
  [[ $n =~ ^[0-9]+$ ]] || die "seed-many: N must be a number"
  need_lab
  local t0=$SECONDS
  "$SETUP_BIN" seed-many --count "$n" >"$STATE/seed-many.json"
  kc apply --server-side --field-manager lab -f "$STATE/seed-many.json" >/dev/null
  log "seeded $n extra ManagedClusters (many-00001.. in clusternet-m00001..) in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- up-noanon
# Starts kube-apiserver-noanon on demand (tests call it); stopped by `down`.
# Prints and appends LAB_NOANON_SERVER / _KUBECONFIG / _AUDIT (its audit log).
cmd_up_noanon() {
  need_lab
  exec 8>"$STATE/noanon.lock"
  flock 8
  source "$STATE/ports.env" # again, under the lock
  local name=kube-apiserver-noanon
  if [[ -n ${NOANON_PORT:-} ]] && pid_alive "$(pid_of "$name")"; then
    log "$name already up: https://127.0.0.1:$NOANON_PORT"
  else
    claim_ports NOANON_PORT
    "$SETUP_BIN" noanon-kubeconfig --state "$STATE" --port "$NOANON_PORT"
    "start_$name"
    wait_ready "$name"
    release_ports
    write_env
    log "$name up (--anonymous-auth=false): https://127.0.0.1:$NOANON_PORT"
  fi
  grep '^export LAB_NOANON_' "$STATE/lab.env"
}

# ------------------------------------------------------------------- agents
# One agent-standin per cluster whose agent is connected: the hub has a
# session for the cluster exactly while it runs (pids/agent-<id>).
start_agent() { # <cluster ID>
  start_bg "agent-$1" "$AGENT_BIN" --hub-socket "$STATE/hub-agents.sock" --cluster-id "$1"
}
agent_ids() { local f; for f in "$STATE"/pids/agent-*; do [[ -e $f ]] && echo "${f##*/agent-}"; done; true; }
session_lines() { grep -c "^agent session $1: $2\$" "$STATE/logs/hub-standin.log" 2>/dev/null || true; }
wait_session() { # <cluster ID>: until the running hub holds its session
  wait_for "agent-$1" "its session with the hub" grep -q "^session up: $1\$" "$STATE/logs/agent-$1.log"
  wait_for hub-standin "the session of agent $1" bash -c "
    up=\$(grep -c '^agent session up: $1\$' '$STATE/logs/hub-standin.log'); down=\$(grep -c '^agent session down: $1\$' '$STATE/logs/hub-standin.log')
    (( up > down ))"
}
valid_id() { [[ ${1:-} =~ ^[A-Za-z0-9._-]+$ ]] || die "usage: $0 agent-start|agent-stop <cluster ID>"; }

cmd_agent_stop() { # <cluster ID>
  valid_id "${1:-}"; need_lab
  local id=$1 before
  if ! pid_alive "$(pid_of "agent-$id")"; then log "no agent running for $id"; return 0; fi
  before=$(session_lines down "$id")
  stop "agent-$id"
  rm -f "$STATE/pids/agent-$id"
  # The hub sees the connection end at once; wait for it to say so.
  if pid_alive "$(pid_of hub-standin)"; then
    wait_for hub-standin "the end of agent $id's session" bash -c "(( \$(grep -c '^agent session down: $id\$' '$STATE/logs/hub-standin.log') > $before ))"
  fi
  log "agent of $id stopped: its session is gone"
}

cmd_agent_start() { # <cluster ID>
  valid_id "${1:-}"; need_lab
  local id=$1
  if pid_alive "$(pid_of "agent-$id")"; then log "agent of $id already running"; return 0; fi
  start_agent "$id"
  wait_session "$id"
  log "agent of $id up: session held"
}

# ------------------------------------------------------------ hub-stop/start
# Stop the hub stand-in while its APIService stays registered (and, for a
# while, Available), or start it again, e.g. without the SocketConnection gate.
cmd_hub_stop() {
  need_lab
  if pid_alive "$(pid_of hub-standin)"; then stop hub-standin; else log "hub-standin is not running"; fi
}

cmd_hub_start() { # [--feature-gates SocketConnection=true|false] [--request-timeout DURATION]
  need_lab
  cmd_hub_stop 2>/dev/null
  start_hub-standin "$@"
  wait_ready hub-standin
  wait_apiservice
  # The running agents dial the new hub again.
  local id; for id in $(agent_ids); do pid_alive "$(pid_of "agent-$id")" && wait_session "$id"; done
  log "hub-standin up: $(grep -o 'hub-standin listening on.*' "$STATE/logs/hub-standin.log")"
}

# ---------------------------------------------------------------------- down
cmd_down() {
  if [[ -d $STATE/pids ]]; then
    # shellcheck disable=SC2046
    stop $(agent_ids | sed 's/^/agent-/') $(component_names | tac)
  fi
  if [[ -d $STATE ]]; then
    STATE=$(cd "$STATE" && pwd)
    release_ports 2>/dev/null || true
    rm -rf "$STATE"
    log "lab down (removed $STATE)"
  else
    log "nothing to do: no lab at $STATE"
  fi
}

# --------------------------------------------------------------------- status
cmd_status() {
  if [[ ! -d $STATE/pids ]]; then echo "no lab at $STATE"; return 0; fi
  local name pid state
  [[ -f $STATE/lab.env ]] && source "$STATE/lab.env"
  printf '%-24s %-8s %s\n' COMPONENT PID STATE
  for name in $(component_names); do
    pid=$(pid_of "$name"); : "${pid:=-}"
    if pid_alive "$pid"; then state=running; else state=stopped; fi
    printf '%-24s %-8s %s\n' "$name" "$pid" "$state"
  done
  local id
  for id in $(agent_ids); do
    pid=$(pid_of "agent-$id")
    if pid_alive "$pid"; then state=running; else state=stopped; fi
    printf '%-24s %-8s %s\n' "agent $id" "$pid" "$state"
  done
  echo "state:      $STATE"
  echo "apiserver:  ${LAB_SERVER:-?}"
  echo "etcd:       http://127.0.0.1:${LAB_ETCD_PORT:-?}"
  echo "kcm:        https://127.0.0.1:${LAB_KCM_PORT:-?}"
  echo "hub:        https://127.0.0.1:${LAB_HUB_PORT:-?}"
  echo "child:      ${LAB_CHILD_SERVER:-?} (ManagedCluster child-real, reached through the hub stand-in)"
  echo "canned:     ${LAB_CANNED_CHILD_SERVER:-?} (the stand-in's canned child: child-a, child-b, dup)"
  echo "manifests:  ${LAB_MANIFESTS:-?}"
  [[ -n ${LAB_NOANON_SERVER:-} ]] && echo "noanon:     $LAB_NOANON_SERVER (--anonymous-auth=false)"
  printf 'APIService: v1alpha1.proxies.clusternet.io Available=%s\n' \
    "$(kc get apiservice v1alpha1.proxies.clusternet.io -o 'jsonpath={.status.conditions[?(@.type=="Available")].status}' 2>/dev/null || echo unknown)"
}

case ${1:-} in
  build) cmd_build ;;
  up) cmd_up ;;
  down) cmd_down ;;
  env) cmd_env ;;
  status) cmd_status ;;
  seed-many) shift; cmd_seed_many "$@" ;;
  up-noanon) cmd_up_noanon ;;
  hub-stop) cmd_hub_stop ;;
  hub-start) shift; cmd_hub_start "$@" ;;
  agent-stop) shift; cmd_agent_stop "$@" ;;
  agent-start) shift; cmd_agent_start "$@" ;;
  *) sed -n '2,/^# The certificates/{/^# The certificates/!p}' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
