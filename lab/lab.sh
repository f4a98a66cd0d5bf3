#!/usr/bin/env bash
# Loopback Kubernetes lab for clusternet-kubeconfig (issue 4).
#
# A real etcd + kube-apiserver + kube-controller-manager on 127.0.0.1, with the
# Clusternet CRDs/RBAC, seeded ManagedClusters, and the clusternet-hub stand-in
# (testkit's `hub-standin`) registered as the aggregated API
# v1alpha1.proxies.clusternet.io. No containers, no root-only features.
#
#   lab/lab.sh build          build the binaries when missing (cached)
#   lab/lab.sh up             start the lab (exits 0 when it is already up), with a
#                             real child kube-apiserver behind the stand-in (child-real)
#   lab/lab.sh seed-many N    add N extra ManagedClusters (one `kubectl apply`)
#   lab/lab.sh up-noanon      a second kube-apiserver, --anonymous-auth=false, same etcd
#   lab/lab.sh hub-stop       stop the hub stand-in (the APIService stays registered)
#   lab/lab.sh hub-start [--feature-gates SocketConnection=false]
#                             (re)start the hub stand-in; waits for the APIService Available
#   lab/lab.sh env            print `export NAME=value` lines for the running lab
#   lab/lab.sh status         what is running, ports, APIService availability
#   lab/lab.sh down           stop the recorded PIDs, remove the state dir
#
# Environment:
#   CLUSTERNET_LAB_CACHE  binaries (default ~/.cache/clusternet-kubeconfig/lab)
#   CLUSTERNET_LAB_STATE  state dir (default <repo>/lab/state); labs in different
#                         state dirs run side by side (ports are picked free,
#                         under a lock shared through the cache dir)
#   LAB_READY_TIMEOUT     seconds to wait for each component (default 90)
set -euo pipefail

LAB_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB_DIR/.." && pwd)
CACHE=${CLUSTERNET_LAB_CACHE:-$HOME/.cache/clusternet-kubeconfig/lab}
STATE=${CLUSTERNET_LAB_STATE:-$REPO/lab/state}
READY_TIMEOUT=${LAB_READY_TIMEOUT:-90}
CLUSTERNET_VERSION=v0.18.1

# ---------------------------------------------------------------- seeded data
# Fixed, documented IDs (tests and docs rely on them).
#   name       namespace          cluster ID                              sync
SEEDS=(
  "child-a   clusternet-a1b2c   1b2f7d0a-4c1e-4e6b-9a51-0000000000a1   Pull"
  "child-b   clusternet-d3e4f   2c3e8e1b-5d2f-4f7c-8b62-0000000000b2   Push"
  "dup       clusternet-g5h6i   3d4f9f2c-6e3a-4a8d-9c73-0000000000d1   Dual"
  "dup       clusternet-j7k8l   4e5a0a3d-7f4b-4b9e-8d84-0000000000d2   Pull"
  "child-offline clusternet-m9n0p e0000000-0000-4000-8000-000000000401 Pull"
  "child-nourl   clusternet-q1r2s e0000000-0000-4000-8000-000000000402 Pull"
  "child-real    clusternet-r3a1l 7c41d2e3-8f9a-4b0c-9d1e-0000000000c1 Pull"
)
# Failures come from these ManagedClusters, as they would from clusternet-hub:
# child-offline (status.useSocket, Ready False: no agent session → 400 disconnected),
# child-nourl (no status.apiserverURL → 503 for the direct route). child-a,
# child-b and dup point status.apiserverURL at the stand-in's canned child.
# The real child: a second kube-apiserver (own PKI, etcd prefix /child-registry),
# reached through the stand-in like any child (its ManagedCluster, child-real,
# has its URL as status.apiserverURL).
CHILD_REAL_ID=7c41d2e3-8f9a-4b0c-9d1e-0000000000c1
CHILD_ONLY_NS=child-only        # exists only in the child
CHILD_SA=lab-reader             # service account (in $CHILD_ONLY_NS) that may list namespaces
CHILD_CERT_USER=child-reader    # CN of the child client certificate, may list namespaces

log() { printf '[lab] %s\n' "$*" >&2; }
die() { printf '[lab] ERROR: %s\n' "$*" >&2; exit 1; }

gomod_version() { # <go.mod> <module>: the required version
  awk -v m="$2" '$1==m && $2 ~ /^v/ {print $2; exit} $1=="require" && $2==m {print $3; exit}' "$1"
}
K8S_VERSION=$(gomod_version "$LAB_DIR/k8s/go.mod" k8s.io/kubernetes)
ETCD_VERSION=$(gomod_version "$LAB_DIR/etcd/go.mod" go.etcd.io/etcd/server/v3)
K8S_BIN=$CACHE/bin/k8s-$K8S_VERSION
ETCD_BIN=$CACHE/bin/etcd-$ETCD_VERSION
# LAB_HUB_BIN: another stand-in binary (debugging only)
HUB_BIN=${LAB_HUB_BIN:-${CARGO_TARGET_DIR:-$REPO/target}/debug/hub-standin}

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
  if [[ -n ${LAB_HUB_BIN:-} ]]; then log "hub stand-in: LAB_HUB_BIN=$LAB_HUB_BIN (not built)"; return; fi
  log "building hub-standin (cargo build -p testkit --bin hub-standin)"
  (cd "$REPO" && cargo build -q -p testkit --bin hub-standin)
  [[ -x $HUB_BIN ]] || die "hub-standin not found at $HUB_BIN after cargo build"
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

# ------------------------------------------------------------------ utilities
pid_alive() { [[ -n ${1:-} ]] && kill -0 "$1" 2>/dev/null; }

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

pick_port() { # a free port not handed out yet in this run
  local p i
  for ((i = 0; i < 200; i++)); do
    p=$((PORT_LOW + RANDOM % PORT_SPAN))
    [[ " ${PICKED:-} " == *" $p "* ]] && continue
    port_free "$p" || continue
    # not claimed by another lab that has not bound it yet
    if port_claimed "$p"; then continue; fi
    PICKED="${PICKED:-} $p"
    echo "$p"; return
  done
  die "no free port found"
}

start_bg() { # <name> <cmd...>: start in its own process group, record the PID
  local name=$1; shift
  log "starting $name"
  # fds 8/9 may hold a lab lock (flock): the long-running child must not inherit it
  setsid "$@" >"$STATE/logs/$name.log" 2>&1 </dev/null 8>&- 9>&- &
  echo $! >"$STATE/pids/$name"
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
  pid=$(cat "$STATE/pids/$name" 2>/dev/null || true)
  until "$@" >/dev/null 2>&1; do
    if [[ -n $pid ]] && ! pid_alive "$pid"; then fail_component "$name" "$name exited while waiting for $what"; fi
    (( SECONDS < deadline )) || fail_component "$name" "$name: $what not ready within ${READY_TIMEOUT}s"
    sleep 0.3
  done
}

kc() { kubectl --kubeconfig "$STATE/admin.kubeconfig" "$@"; }

# ------------------------------------------------------------------------ PKI
ossl() { openssl "$@" 2>"$PKI/openssl.err" || { cat "$PKI/openssl.err" >&2; die "openssl $1 failed"; }; }

new_ca() { # <name> <CN>
  ossl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 3650 \
    -subj "/CN=$2" -keyout "$PKI/$1.key" -out "$PKI/$1.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign"
}

new_leaf() { # <name> <ca> <subject> <serverAuth|clientAuth> [SANs]
  local name=$1 ca=$2 subj=$3 eku=$4 san=${5:-}
  ossl req -new -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "$subj" \
    -keyout "$PKI/$name.key" -out "$PKI/$name.csr"
  {
    echo "basicConstraints=critical,CA:FALSE"
    echo "keyUsage=critical,digitalSignature,keyEncipherment"
    echo "extendedKeyUsage=$eku"
    [[ -n $san ]] && echo "subjectAltName=$san"
  } >"$PKI/$name.ext"
  ossl x509 -req -in "$PKI/$name.csr" -CA "$PKI/$ca.crt" -CAkey "$PKI/$ca.key" -CAcreateserial \
    -days 3650 -extfile "$PKI/$name.ext" -out "$PKI/$name.crt"
  rm -f "$PKI/$name.csr" "$PKI/$name.ext"
}

gen_pki() {
  PKI=$STATE/pki; mkdir -p "$PKI"; chmod 700 "$PKI"
  new_ca ca lab-cluster-ca
  new_leaf apiserver ca /CN=kube-apiserver serverAuth \
    "IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc"
  new_ca client-ca lab-client-ca
  new_leaf admin client-ca "/O=system:masters/CN=lab-admin" clientAuth
  new_leaf kcm client-ca /CN=system:kube-controller-manager clientAuth
  # The hub stand-in reads ManagedClusters as its own user (not the tests' lab-admin).
  new_leaf hub-client client-ca "/O=system:masters/CN=clusternet-hub" clientAuth
  new_ca front-proxy-ca lab-front-proxy-ca
  new_leaf front-proxy-client front-proxy-ca /CN=front-proxy-client clientAuth
  # kube-aggregator verifies the hub with ServerName <service>.<namespace>.svc,
  # whatever host it dials (here `localhost`, from the ExternalName Service).
  new_ca hub-ca lab-hub-ca
  new_leaf hub hub-ca /CN=clusternet-hub serverAuth \
    "DNS:localhost,IP:127.0.0.1,DNS:clusternet-hub.clusternet-system.svc,DNS:clusternet-hub.clusternet-system.svc.cluster.local"
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/sa.key"
  ossl pkey -in "$PKI/sa.key" -pubout -out "$PKI/sa.pub"
  # The child cluster: nothing shared with the parent.
  new_ca child-ca lab-child-ca
  new_leaf child-apiserver child-ca /CN=child-kube-apiserver serverAuth "IP:127.0.0.1,DNS:localhost"
  new_ca child-client-ca lab-child-client-ca
  new_leaf child-admin child-client-ca "/O=system:masters/CN=child-admin" clientAuth
  new_leaf child-user child-client-ca "/CN=$CHILD_CERT_USER" clientAuth
  ossl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$PKI/child-sa.key"
  ossl pkey -in "$PKI/child-sa.key" -pubout -out "$PKI/child-sa.pub"
}

write_kubeconfig() { # <file> <user> <cert> <key> [port, default APISERVER_PORT] [CA, default the lab's]
  cat >"$1" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: lab
  cluster:
    server: https://127.0.0.1:${5:-$APISERVER_PORT}
    certificate-authority: ${6:-$PKI/ca.crt}
users:
- name: $2
  user:
    client-certificate: $3
    client-key: $4
contexts:
- name: lab
  context: {cluster: lab, user: $2}
current-context: lab
EOF
  chmod 600 "$1"
}

start_apiserver() { # <name> <port> <anonymous-auth true|false> [more flags]: a kube-apiserver on the lab's etcd
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
    --v 1
}

# The child cluster's kube-apiserver: the same etcd under another prefix, its
# own serving CA, client CA and service-account key; no anonymous requests.
start_child_apiserver() {
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
    --v 1
}

ck() { kubectl --kubeconfig "$STATE/child.kubeconfig" "$@"; }

# The hub stand-in: reads ManagedClusters from the lab's apiserver at each
# request, and serves the canned child (any credentials) on CANNED_PORT.
start_hub() { # [more flags, e.g. --feature-gates SocketConnection=false]
  start_bg hub-standin "$HUB_BIN" --listen "127.0.0.1:$HUB_PORT" \
    --cert "$PKI/hub.crt" --key "$PKI/hub.key" --client-ca "$PKI/front-proxy-ca.crt" \
    --record "$STATE/hub-requests.jsonl" \
    --parent "https://127.0.0.1:$APISERVER_PORT" --parent-ca "$PKI/ca.crt" \
    --parent-cert "$PKI/hub-client.crt" --parent-key "$PKI/hub-client.key" \
    --canned-child "127.0.0.1:$CANNED_PORT" "$@"
}

# What the child serves to the tests: a namespace the parent does not have, a
# service account and a client-certificate user that may list namespaces, and
# a token for the service account (TokenRequest, no controller-manager needed).
configure_child() {
  ck apply -f - >/dev/null <<EOF
apiVersion: v1
kind: List
items:
- {apiVersion: v1, kind: Namespace, metadata: {name: $CHILD_ONLY_NS}}
- {apiVersion: v1, kind: ServiceAccount, metadata: {name: $CHILD_SA, namespace: $CHILD_ONLY_NS}}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRole
  metadata: {name: lab-namespace-reader}
  rules:
  - {apiGroups: [""], resources: [namespaces], verbs: [get, list, watch]}
- apiVersion: rbac.authorization.k8s.io/v1
  kind: ClusterRoleBinding
  metadata: {name: lab-namespace-reader}
  roleRef: {apiGroup: rbac.authorization.k8s.io, kind: ClusterRole, name: lab-namespace-reader}
  subjects:
  - {kind: ServiceAccount, name: $CHILD_SA, namespace: $CHILD_ONLY_NS}
  - {apiGroup: rbac.authorization.k8s.io, kind: User, name: $CHILD_CERT_USER}
EOF
  mkdir -p "$STATE/child"
  ck -n "$CHILD_ONLY_NS" create token "$CHILD_SA" --duration 48h >"$STATE/child/$CHILD_SA.token"
  chmod 600 "$STATE/child/$CHILD_SA.token"
  [[ -s $STATE/child/$CHILD_SA.token ]] || fail_component kube-apiserver-child "no token for $CHILD_SA"
  log "child cluster: https://127.0.0.1:$CHILD_PORT (namespace $CHILD_ONLY_NS, service account $CHILD_ONLY_NS/$CHILD_SA, user $CHILD_CERT_USER)"
}

# ------------------------------------------------------------------------- up
lab_running() { # any recorded component alive?
  local f
  for f in "$STATE"/pids/*; do
    [[ -e $f ]] || continue
    pid_alive "$(cat "$f")" && return 0
  done
  return 1
}

cmd_up() {
  local t0=$SECONDS
  if [[ -f $STATE/lab.env ]] && lab_running; then
    log "lab already up (state $STATE); \`$0 down\` first to restart"
    return 0
  fi
  if [[ -d $STATE ]]; then log "removing stale state $STATE"; cmd_down >/dev/null 2>&1 || true; fi
  for b in "$K8S_BIN/kube-apiserver" "$K8S_BIN/kube-controller-manager" "$ETCD_BIN/etcd" "$HUB_BIN"; do
    [[ -x $b ]] || { log "missing $b: building"; cmd_build; break; }
  done
  command -v kubectl >/dev/null || die "kubectl is not on PATH"
  mkdir -p "$STATE"/{logs,pids,etcd} "$CACHE/ports"
  STATE=$(cd "$STATE" && pwd)
  gen_pki

  # Ports: picked and claimed under a lock shared by all labs using this cache,
  # released once the processes listen (claims removed by `down` as well).
  exec 9>"$CACHE/ports.lock"
  flock 9
  PICKED=""
  ETCD_PORT=$(pick_port); PICKED+=" $ETCD_PORT"
  ETCD_PEER_PORT=$(pick_port); PICKED+=" $ETCD_PEER_PORT"
  APISERVER_PORT=$(pick_port); PICKED+=" $APISERVER_PORT"
  KCM_PORT=$(pick_port); PICKED+=" $KCM_PORT"
  HUB_PORT=$(pick_port); PICKED+=" $HUB_PORT"
  CHILD_PORT=$(pick_port); PICKED+=" $CHILD_PORT"
  CANNED_PORT=$(pick_port); PICKED+=" $CANNED_PORT"
  local p id; id=$(echo "$STATE" | md5sum | cut -c1-8)
  for p in $PICKED; do echo "$STATE" >"$CACHE/ports/$p.$id"; done
  echo "$PICKED" >"$STATE/ports"
  flock -u 9

  start_bg etcd "$ETCD_BIN/etcd" --name lab --data-dir "$STATE/etcd" \
    --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
    --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
    --initial-cluster "lab=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn \
    --quota-backend-bytes 1073741824 --unsafe-no-fsync
  wait_for etcd "/health" curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

  start_apiserver kube-apiserver "$APISERVER_PORT" true
  start_child_apiserver
  # The hub stand-in does not depend on the apiserver: start it now so that its
  # port is bound before the port lock's claims matter.
  start_hub
  write_kubeconfig "$STATE/admin.kubeconfig" lab-admin "$PKI/admin.crt" "$PKI/admin.key"
  write_kubeconfig "$STATE/kcm.kubeconfig" system:kube-controller-manager "$PKI/kcm.crt" "$PKI/kcm.key"
  wait_for kube-apiserver "/readyz" curl -fsS --cacert "$PKI/ca.crt" \
    --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$APISERVER_PORT/readyz"

  start_bg kube-controller-manager "$K8S_BIN/kube-controller-manager" \
    --kubeconfig "$STATE/kcm.kubeconfig" \
    --authentication-kubeconfig "$STATE/kcm.kubeconfig" --authorization-kubeconfig "$STATE/kcm.kubeconfig" \
    --secure-port "$KCM_PORT" --bind-address 127.0.0.1 \
    --service-account-private-key-file "$PKI/sa.key" --root-ca-file "$PKI/ca.crt" \
    --use-service-account-credentials=true --leader-elect=false \
    --controllers serviceaccount-token-controller,serviceaccount-controller,namespace-controller,root-ca-certificate-publisher-controller \
    --v 1
  wait_for hub-standin "its listening line" grep -q "hub-standin listening on" "$STATE/logs/hub-standin.log"
  echo "$HUB_PORT $CANNED_PORT $APISERVER_PORT" >"$STATE/hub-ports"
  write_kubeconfig "$STATE/child.kubeconfig" child-admin "$PKI/child-admin.crt" "$PKI/child-admin.key" \
    "$CHILD_PORT" "$PKI/child-ca.crt"
  wait_for kube-apiserver-child "/readyz" curl -fsS --cacert "$PKI/child-ca.crt" \
    --cert "$PKI/child-admin.crt" --key "$PKI/child-admin.key" "https://127.0.0.1:$CHILD_PORT/readyz"
  rm -f "$CACHE"/ports/*."$id"
  wait_for kube-controller-manager "/healthz" curl -fsk "https://127.0.0.1:$KCM_PORT/healthz"

  apply_clusternet
  seed_clusters
  configure_child
  register_apiservice
  write_env
  log "lab up in $((SECONDS - t0))s: $(grep LAB_SERVER= "$STATE/lab.env" | cut -d= -f2); \`source $STATE/lab.env\`"
}

apply_clusternet() {
  local src="" dir=""
  # Prefer upstream manifests from the Go module cache; they are not served by
  # every module proxy (not by the one this lab was built with).
  if dir=$(cd "$(mktemp -d)" && go mod download -json "github.com/clusternet/clusternet@$CLUSTERNET_VERSION" 2>/dev/null \
           | jq -er '.Dir // empty' 2>/dev/null) && [[ -d $dir/manifests/crds ]]; then
    src=upstream
  fi
  if [[ $src == upstream ]]; then
    log "NOTICE: Clusternet manifests: upstream github.com/clusternet/clusternet@$CLUSTERNET_VERSION ($dir)"
    kc apply -f "$dir/manifests/crds/" >/dev/null
    # Only the RBAC of deploy/hub: its Deployment/Service would clash with the
    # stand-in's ExternalName Service. lab/manifests/rbac.yaml is applied after it.
    local f; for f in "$dir"/deploy/hub/*rbac*.yaml; do [[ -e $f ]] && kc apply -f "$f" >/dev/null; done
  else
    log "NOTICE: Clusternet manifests: AUTHORED lab/manifests/ (github.com/clusternet/clusternet@$CLUSTERNET_VERSION is not served by the Go module proxy here)"
    kc apply -f "$LAB_DIR/manifests/crds.yaml" >/dev/null
  fi
  echo "${src:-authored}" >"$STATE/manifests-source"
  kc create namespace clusternet-system >/dev/null
  kc wait --for condition=Established --timeout 60s \
    crd/managedclusters.clusters.clusternet.io crd/clusterregistrationrequests.clusters.clusternet.io >/dev/null
  kc apply -f "$LAB_DIR/manifests/rbac.yaml" >/dev/null
  kc apply -f - >/dev/null <<'EOF'
apiVersion: v1
kind: ServiceAccount
metadata: {name: clusternet-hub-proxy, namespace: clusternet-system}
---
apiVersion: v1
kind: Secret
type: kubernetes.io/service-account-token
metadata:
  name: clusternet-hub-proxy
  namespace: clusternet-system
  annotations: {kubernetes.io/service-account.name: clusternet-hub-proxy}
EOF
  wait_for kube-controller-manager "the clusternet-hub-proxy token" \
    bash -c "[[ -n \$(kubectl --kubeconfig '$STATE/admin.kubeconfig' -n clusternet-system get secret clusternet-hub-proxy -o 'jsonpath={.data.token}') ]]"
}

seed_clusters() {
  local line name ns id sync list="" status
  for line in "${SEEDS[@]}"; do
    read -r name ns id sync <<<"$line"
    list+="
- apiVersion: v1
  kind: Namespace
  metadata: {name: $ns}
- apiVersion: clusters.clusternet.io/v1beta1
  kind: ManagedCluster
  metadata:
    name: $name
    namespace: $ns
    labels: {clusters.clusternet.io/cluster-id: $id}
  spec: {clusterId: $id, clusterType: EdgeCluster, syncMode: $sync}"
  done
  printf 'apiVersion: v1\nkind: List\nitems:%s\n' "$list" | kc apply -f - >/dev/null
  local now; now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
  for line in "${SEEDS[@]}"; do
    read -r name ns id sync <<<"$line"
    case $name in
      child-offline) status='{"status":{"apiserverURL":"https://10.0.0.41:6443","useSocket":true,"k8sVersion":"v1.32.13","readyz":false,"healthz":false,"livez":false,"conditions":[{"type":"Ready","status":"False","reason":"ClusterNotReady","message":"agent disconnected","lastTransitionTime":"'$now'"}]}}' ;;
      child-a|child-b|dup) status='{"status":{"apiserverURL":"https://127.0.0.1:'$CANNED_PORT'","useSocket":true,"k8sVersion":"v1.32.13","readyz":true,"healthz":true,"livez":true,"conditions":[{"type":"Ready","status":"True","reason":"ManagedClusterReady","message":"managed cluster is ready","lastTransitionTime":"'$now'"}]}}' ;;
      child-real) status='{"status":{"apiserverURL":"https://127.0.0.1:'$CHILD_PORT'","useSocket":true,"k8sVersion":"'$K8S_VERSION'","readyz":true,"healthz":true,"livez":true,"conditions":[{"type":"Ready","status":"True","reason":"ManagedClusterReady","message":"managed cluster is ready","lastTransitionTime":"'$now'"}]}}' ;;
      child-nourl) status='{"status":{"useSocket":true,"k8sVersion":"v1.32.13","readyz":true,"healthz":true,"livez":true,"conditions":[{"type":"Ready","status":"True","reason":"ManagedClusterReady","message":"managed cluster is ready","lastTransitionTime":"'$now'"}]}}' ;;
      *) status='{"status":{"apiserverURL":"https://'$name'.lab.invalid:6443","useSocket":true,"k8sVersion":"v1.32.13","readyz":true,"healthz":true,"livez":true,"conditions":[{"type":"Ready","status":"True","reason":"ManagedClusterReady","message":"managed cluster is ready","lastTransitionTime":"'$now'"}]}}' ;;
    esac
    kc -n "$ns" patch managedcluster "$name" --subresource=status --type=merge -p "$status" >/dev/null
  done
  log "seeded ${#SEEDS[@]} ManagedClusters"
}

register_apiservice() {
  local ca_b64; ca_b64=$(base64 -w0 <"$PKI/hub-ca.crt")
  kc apply -f - >/dev/null <<EOF
apiVersion: v1
kind: Service
metadata: {name: clusternet-hub, namespace: clusternet-system}
spec:
  type: ExternalName
  externalName: localhost
---
apiVersion: apiregistration.k8s.io/v1
kind: APIService
metadata: {name: v1alpha1.proxies.clusternet.io}
spec:
  group: proxies.clusternet.io
  version: v1alpha1
  service: {namespace: clusternet-system, name: clusternet-hub, port: $HUB_PORT}
  caBundle: $ca_b64
  groupPriorityMinimum: 1000
  versionPriority: 100
EOF
  if ! kc wait --for condition=Available --timeout "${READY_TIMEOUT}s" apiservice/v1alpha1.proxies.clusternet.io >/dev/null 2>&1; then
    kc get apiservice v1alpha1.proxies.clusternet.io -o jsonpath='{.status.conditions}' >&2 || true; echo >&2
    fail_component hub-standin "APIService v1alpha1.proxies.clusternet.io not Available within ${READY_TIMEOUT}s"
  fi
  log "APIService v1alpha1.proxies.clusternet.io Available (hub stand-in on 127.0.0.1:$HUB_PORT)"
}

# ------------------------------------------------------------------------ env
upper() { echo "$1" | tr 'a-z-' 'A-Z_'; }

write_env() {
  local f=$STATE/lab.env line name ns id sync key n=0
  {
    echo "# clusternet-kubeconfig lab ($(date -u +%FT%TZ)); source this file"
    echo "export LAB_STATE=$STATE"
    echo "export LAB_KUBECONFIG=$STATE/admin.kubeconfig"
    echo "export LAB_SERVER=https://127.0.0.1:$APISERVER_PORT"
    echo "export LAB_CA=$PKI/ca.crt"
    echo "export LAB_ADMIN_CERT=$PKI/admin.crt"
    echo "export LAB_ADMIN_KEY=$PKI/admin.key"
    echo "export LAB_HUB_RECORD=$STATE/hub-requests.jsonl"
    echo "export LAB_HUB_PORT=$HUB_PORT"
    echo "export LAB_HUB_CA=$PKI/hub-ca.crt"
    echo "export LAB_ETCD_PORT=$ETCD_PORT"
    echo "export LAB_KCM_PORT=$KCM_PORT"
    echo "export LAB_K8S_VERSION=$K8S_VERSION"
    echo "export LAB_ETCD_VERSION=$ETCD_VERSION"
    echo "export LAB_MANIFESTS=$(cat "$STATE/manifests-source")"
    for line in "${SEEDS[@]}"; do
      read -r name ns id sync <<<"$line"
      if [[ $name == dup ]]; then n=$((n + 1)); key=DUP_$n; else key=$(upper "$name"); fi
      echo "export LAB_${key}_NAME=$name"
      echo "export LAB_${key}_NS=$ns"
      echo "export LAB_${key}_ID=$id"
    done
    echo "export LAB_CANNED_CHILD_SERVER=https://127.0.0.1:$CANNED_PORT"
    # The real child behind child-real (LAB_CHILD_REAL_NAME/_NS/_ID above).
    echo "export LAB_CHILD_SERVER=https://127.0.0.1:$CHILD_PORT"
    echo "export LAB_CHILD_PORT=$CHILD_PORT"
    echo "export LAB_CHILD_CA=$PKI/child-ca.crt"
    echo "export LAB_CHILD_KUBECONFIG=$STATE/child.kubeconfig"
    echo "export LAB_CHILD_ONLY_NAMESPACE=$CHILD_ONLY_NS"
    echo "export LAB_CHILD_SA=$CHILD_ONLY_NS/$CHILD_SA"
    echo "export LAB_CHILD_TOKEN_FILE=$STATE/child/$CHILD_SA.token"
    echo "export LAB_CHILD_CERT_USER=$CHILD_CERT_USER"
    echo "export LAB_CHILD_CERT=$PKI/child-user.crt"
    echo "export LAB_CHILD_KEY=$PKI/child-user.key"
  } >"$f.tmp"
  mv "$f.tmp" "$f"
}

cmd_env() {
  [[ -f $STATE/lab.env ]] || die "no lab at $STATE (run \`$0 up\`)"
  grep '^export ' "$STATE/lab.env"
}

# ------------------------------------------------------------------ seed-many
cmd_seed_many() {
  local n=${1:?usage: seed-many N} i id ns
  [[ $n =~ ^[0-9]+$ ]] || die "seed-many: N must be a number"
  [[ -f $STATE/admin.kubeconfig ]] || die "no lab at $STATE (run \`$0 up\`)"
  local t0=$SECONDS tmp=$STATE/seed-many.yaml
  # ManagedCluster many-NNNNN in clusternet-mNNNNN with ID 5eed0000-0000-4000-8000-<NNNNN, 12 digits>.
  # Status is not set (one request per object would be needed); the spec and label are.
  {
    echo "apiVersion: v1"; echo "kind: List"; echo "items:"
    for ((i = 1; i <= n; i++)); do
      printf -v id '5eed0000-0000-4000-8000-%012d' "$i"
      printf -v ns 'clusternet-m%05d' "$i"
      printf -- '- {apiVersion: v1, kind: Namespace, metadata: {name: %s}}\n' "$ns"
      printf -- '- {apiVersion: clusters.clusternet.io/v1beta1, kind: ManagedCluster, metadata: {name: many-%05d, namespace: %s, labels: {clusters.clusternet.io/cluster-id: %s}}, spec: {clusterId: %s, clusterType: EdgeCluster, syncMode: Pull}}\n' "$i" "$ns" "$id" "$id"
    done
  } >"$tmp"
  kubectl --kubeconfig "$STATE/admin.kubeconfig" apply --server-side --field-manager lab -f "$tmp" >/dev/null
  log "seeded $n extra ManagedClusters (many-00001.. in clusternet-m00001..) in $((SECONDS - t0))s"
}

# ---------------------------------------------------------------- up-noanon
# A second kube-apiserver on the same etcd (so the same CRDs, RBAC, APIService
# and ManagedClusters) with --anonymous-auth=false: the parent of the
# "anonymous auth disabled" failure. Started on demand (tests call it); stopped
# by `down`. Prints and appends LAB_NOANON_SERVER / _KUBECONFIG / _AUDIT (its
# audit log, level Metadata).
cmd_up_noanon() {
  [[ -f $STATE/lab.env ]] || die "no lab at $STATE (run \`$0 up\`)"
  STATE=$(cd "$STATE" && pwd)
  exec 8>"$STATE/noanon.lock"
  flock 8
  # shellcheck disable=SC1091
  source "$STATE/lab.env"
  local name=kube-apiserver-noanon pid port id
  pid=$(cat "$STATE/pids/$name" 2>/dev/null || true)
  if [[ -n ${LAB_NOANON_SERVER:-} ]] && pid_alive "$pid"; then
    log "$name already up: $LAB_NOANON_SERVER"
  else
    PKI=$STATE/pki; ETCD_PORT=$LAB_ETCD_PORT
    mkdir -p "$CACHE/ports"
    exec 9>"$CACHE/ports.lock"
    flock 9
    PICKED=""; port=$(pick_port)
    id=$(echo "$STATE" | md5sum | cut -c1-8)
    echo "$STATE" >"$CACHE/ports/$port.$id"
    echo " $port" >>"$STATE/ports"
    flock -u 9
    # Its audit log (metadata of every request) lets tests count exactly the
    # requests a command made: nothing but the tests talks to this apiserver.
    printf 'apiVersion: audit.k8s.io/v1\nkind: Policy\nomitStages: [RequestReceived]\nrules:\n- level: Metadata\n' \
      >"$STATE/audit-policy.yaml"
    start_apiserver "$name" "$port" false --audit-policy-file "$STATE/audit-policy.yaml" \
      --audit-log-path "$STATE/logs/noanon-audit.log" --audit-log-mode blocking
    write_kubeconfig "$STATE/noanon.kubeconfig" lab-admin "$PKI/admin.crt" "$PKI/admin.key" "$port"
    wait_for "$name" "/readyz" curl -fsS --cacert "$PKI/ca.crt" \
      --cert "$PKI/admin.crt" --key "$PKI/admin.key" "https://127.0.0.1:$port/readyz"
    rm -f "$CACHE/ports/$port.$id"
    # The aggregator of this apiserver must see the APIService Available too.
    wait_for "$name" "APIService v1alpha1.proxies.clusternet.io through it" bash -c \
      "curl -fsS --cacert '$PKI/ca.crt' --cert '$PKI/admin.crt' --key '$PKI/admin.key' https://127.0.0.1:$port/apis/proxies.clusternet.io/v1alpha1 | grep -q sockets"
    grep -v '^export LAB_NOANON_' "$STATE/lab.env" >"$STATE/lab.env.tmp"
    {
      echo "export LAB_NOANON_SERVER=https://127.0.0.1:$port"
      echo "export LAB_NOANON_KUBECONFIG=$STATE/noanon.kubeconfig"
      echo "export LAB_NOANON_AUDIT=$STATE/logs/noanon-audit.log"
    } >>"$STATE/lab.env.tmp"
    mv "$STATE/lab.env.tmp" "$STATE/lab.env"
    log "$name up (--anonymous-auth=false): https://127.0.0.1:$port"
  fi
  grep '^export LAB_NOANON_' "$STATE/lab.env"
}

# ------------------------------------------------------------ hub-stop/start
# Stop the hub stand-in while its APIService stays registered (and, for a
# while, Available), or start it again, e.g. without the SocketConnection gate.
cmd_hub_stop() {
  [[ -f $STATE/lab.env ]] || die "no lab at $STATE (run \`$0 up\`)"
  local pid deadline
  pid=$(cat "$STATE/pids/hub-standin" 2>/dev/null || true)
  if pid_alive "$pid"; then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + 15))
    while pid_alive "$pid" && ((SECONDS < deadline)); do sleep 0.1; done
    pid_alive "$pid" && kill -KILL "$pid" 2>/dev/null
    log "hub-standin stopped ($pid)"
  else
    log "hub-standin is not running"
  fi
}

cmd_hub_start() { # [--feature-gates SocketConnection=true|false]
  [[ -f $STATE/lab.env ]] || die "no lab at $STATE (run \`$0 up\`)"
  STATE=$(cd "$STATE" && pwd)
  PKI=$STATE/pki
  read -r HUB_PORT CANNED_PORT APISERVER_PORT <"$STATE/hub-ports"
  cmd_hub_stop 2>/dev/null
  start_hub "$@"
  wait_for hub-standin "its listening line" grep -q "hub-standin listening on" "$STATE/logs/hub-standin.log"
  if ! kc wait --for condition=Available --timeout "${READY_TIMEOUT}s" apiservice/v1alpha1.proxies.clusternet.io >/dev/null 2>&1; then
    fail_component hub-standin "APIService v1alpha1.proxies.clusternet.io not Available within ${READY_TIMEOUT}s"
  fi
  log "hub-standin up: $(grep -o 'hub-standin listening on.*' "$STATE/logs/hub-standin.log")"
}

# ---------------------------------------------------------------------- down
cmd_down() {
  local f pid name deadline id
  if [[ -d $STATE/pids ]]; then
    # reverse start order: hub, second apiserver, child apiserver, kcm, apiserver, etcd
    for name in hub-standin kube-apiserver-noanon kube-apiserver-child kube-controller-manager kube-apiserver etcd; do
      f=$STATE/pids/$name; [[ -f $f ]] || continue
      pid=$(cat "$f")
      if pid_alive "$pid"; then log "stopping $name ($pid)"; kill -TERM "$pid" 2>/dev/null || true; fi
    done
    for name in hub-standin kube-apiserver-noanon kube-apiserver-child kube-controller-manager kube-apiserver etcd; do
      f=$STATE/pids/$name; [[ -f $f ]] || continue
      pid=$(cat "$f"); deadline=$((SECONDS + 15))
      while pid_alive "$pid" && (( SECONDS < deadline )); do sleep 0.2; done
      if pid_alive "$pid"; then log "killing $name ($pid)"; kill -KILL "$pid" 2>/dev/null || true; fi
    done
  fi
  if [[ -d $STATE ]]; then
    id=$(echo "$(cd "$STATE" && pwd)" | md5sum | cut -c1-8)
    rm -f "$CACHE"/ports/*."$id" 2>/dev/null || true
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
  for name in etcd kube-apiserver kube-controller-manager hub-standin kube-apiserver-child kube-apiserver-noanon; do
    pid=$(cat "$STATE/pids/$name" 2>/dev/null || echo -)
    if pid_alive "$pid"; then state=running; else state=stopped; fi
    printf '%-24s %-8s %s\n' "$name" "$pid" "$state"
  done
  echo "state:      $STATE"
  echo "apiserver:  ${LAB_SERVER:-?}"
  echo "etcd:       http://127.0.0.1:${LAB_ETCD_PORT:-?}"
  echo "kcm:        https://127.0.0.1:${LAB_KCM_PORT:-?}"
  echo "hub:        https://127.0.0.1:${LAB_HUB_PORT:-?}"
  echo "child:      ${LAB_CHILD_SERVER:-?} (child-real, ID ${LAB_CHILD_REAL_ID:-?}, reached through the hub stand-in)"
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
  *) sed -n '2,26p' "$0" | sed 's/^# \{0,1\}//'; exit 2 ;;
esac
