#!/usr/bin/env bash
# The manual procedure of the original how-to ("Visiting Child Clusters with
# Dedicated KubeConfig"), scripted for the benchmark: kubectl minifies the
# parent, kubectl rewrites the server, then the user entry is edited by hand
# (here: a small text edit standing in for vim).
# Usage: seed-procedure.sh PARENT_KUBECONFIG CLUSTER_ID CHILD_TOKEN_FILE OUT
set -euo pipefail
parent=$1 id=$2 token_file=$3 out=$4

# Step 1: minify, then append the socket-proxy path to the server.
kubectl config view --kubeconfig="$parent" --minify=true --raw=true > "$out"
export KUBECONFIG=$out
cluster=$(kubectl config get-clusters | grep -v NAME)
server=$(kubectl config view -o jsonpath='{.clusters[0].cluster.server}')
kubectl config set-cluster "$cluster" \
  --server="${server%/}/apis/proxies.clusternet.io/v1alpha1/sockets/$id/proxy/direct" > /dev/null

# Step 2: "modify user part" -- replace the credentials with the impersonation.
user=$(kubectl config view -o jsonpath='{.users[0].name}')
token=$(cat "$token_file")
python3 - "$out" "$user" "$token" <<'PY'
import sys
path, user, token = sys.argv[1:]
text = open(path).read()
head, _, _ = text.partition("users:\n")
open(path, "w").write(head + f"""users:
- name: {user}
  user:
    username: system:anonymous
    as: clusternet
    as-user-extra:
      clusternet-token:
      - {token}
""")
PY
