#!/usr/bin/env bash
# The GitHub Action (action.yml): install the release this commit of the
# action pins (checksums.txt), write the dedicated kubeconfig 0600 under
# RUNNER_TEMP, add it to KUBECONFIG, set outputs.
#
# Inputs arrive as INPUT_* variables (see action.yml); the runner provides
# RUNNER_TEMP, RUNNER_OS, RUNNER_ARCH and the GITHUB_ENV, GITHUB_OUTPUT and
# GITHUB_PATH files. tests/cli/action.rs runs this script under a simulated
# runner. Secret inputs are masked (::add-mask::) before anything else
# happens, every credential the written kubeconfig holds right after it is
# written, and they reach the tool through its environment or 0600 files,
# never its argv.
set -euo pipefail
umask 077

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Workflow-command data: the runner decodes %25, %0D and %0A, so a value
# holding them (or a line break) must be encoded to stay one exact value.
command_data() {
  local s=${1//%/%25}
  s=${s//$'\r'/%0D}
  printf '%s' "${s//$'\n'/%0A}"
}

# The one line the step's failure annotation carries (secrets are masked by
# then; the tool never prints one).
fail() {
  echo "::error::$(command_data "$*")"
  exit 1
}

# Masks a value already encoded as command data: whole, and each of its lines
# apart (the runner matches masks within a line). PEM armour lines are not
# secret and stay readable.
mask_data() {
  local data=$1 part
  [[ -n ${data//[[:space:]]/} ]] || return 0
  printf '::add-mask::%s\n' "$data"
  [[ $data == *%0A* || $data == *%0D* ]] || return 0
  data="${data//%0D/%0A}%0A"
  while [[ -n $data ]]; do
    part=${data%%"%0A"*}
    data=${data#*"%0A"}
    [[ -z ${part//[[:space:]]/} || $part == -----* ]] || printf '::add-mask::%s\n' "$part"
  done
}

# Masks a secret value as given (trailing line breaks are not part of it).
mask() {
  local value=$1
  while [[ $value == *[$'\r\n'] ]]; do value=${value%[$'\r\n']}; done
  mask_data "$(command_data "$value")"
}

# Masks the credentials of a kubeconfig the tool printed as JSON (secrets.awk
# reads it as data); `$2`, when given, names a variable set to its current-context.
mask_kubeconfig() {
  local json=$1 kind data found_context="" broken=""
  while IFS=' ' read -r kind data; do
    case $kind in
      mask) mask_data "$data" ;;
      context) found_context=$data ;;
      *) broken=1 ;;
    esac
  done < <(awk -f "$here/secrets.awk" "$json" || echo "failed")
  [[ -z $broken ]] || fail "could not read the credentials of $json to mask them; nothing exported"
  if [[ -n ${2:-} ]]; then
    # Decoded back from command data: an output carries the value itself.
    [[ $found_context != *%0A* && $found_context != *%0D* ]] || fail "the context name has a line break"
    printf -v "$2" '%s' "${found_context//%25/%}"
  fi
}

# PEM text as given, ending in one line break: the kubeconfig carries the
# file's bytes (base64), which must be the form masked below.
pem_file() {
  printf '%s' "$1" >"$2"
  [[ $1 == *$'\n' ]] || echo >>"$2"
}

# A runner file entry that stays one entry whatever the value holds.
runner_file_entry() {
  local file=$1 name=$2 value=$3 delimiter
  delimiter="ghadelimiter_$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  printf '%s<<%s\n%s\n%s\n' "$name" "$delimiter" "$value" "$delimiter" >>"$file"
}

for var in RUNNER_TEMP GITHUB_ENV GITHUB_OUTPUT; do
  [[ -n ${!var:-} ]] || fail "$var is not set: run this as a GitHub Action step (action.yml)"
done

mask "${INPUT_CHILD_TOKEN:-}"
mask "${INPUT_CHILD_CLIENT_KEY:-}"
mask "${INPUT_PARENT_TOKEN:-}"
# The runner masks it too; it is the key to the job's OIDC tokens.
mask "${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-}"

# Credential files go when the step ends; the kubeconfig too, unless exported.
work=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig-work.XXXXXX")
out_dir="" exported=""
trap 'rm -rf "$work"; [[ -n $exported || -z $out_dir ]] || rm -rf "$out_dir"' EXIT

# --- the binary ------------------------------------------------------------

RELEASES=https://github.com/clusternet/clusternet-kubeconfig/releases
PINS="$here/checksums.txt"

sha256() {
  if command -v sha256sum >/dev/null; then sha256sum "$1"; else shasum -a 256 "$1"; fi | cut -d' ' -f1
}

# The release archive's target for this runner; empty when no archive is built for it.
runner_target() {
  case "${RUNNER_OS:-}/${RUNNER_ARCH:-}" in
    Linux/X64) echo x86_64-unknown-linux-musl ;;
    Linux/ARM64) echo aarch64-unknown-linux-musl ;;
    macOS/X64) echo x86_64-apple-darwin ;;
    macOS/ARM64) echo aarch64-apple-darwin ;;
  esac
}

download() {
  curl -fsSL --retry 3 --proto-redir =https -o "$2" "$1"
}

extract() {
  local archive=$1 into=$2
  tar -xzf "$archive" -C "$into"
}

# Sets `bin`. The version and the archive digests come from this commit of
# the action (checksums.txt, written by the release workflow into the commit
# it tags), never from the release itself: a release whose archive and
# SHA256SUMS were both replaced is refused, and `uses: ...@<commit>`,
# `@<tag>` and a runner that does not say which ref it checked out all install
# the same bytes. Another version needs its archive's digest as `sha256`.
install_binary() {
  local sha256_input pinned version releases=${INPUT_RELEASE_URL:-$RELEASES} target archive base dir expected actual
  sha256_input=$(printf '%s' "${INPUT_SHA256:-}" | tr '[:upper:]' '[:lower:]')
  pinned=$(awk '$1 == "version" { print $2; exit }' "$PINS" 2>/dev/null || true)
  version=${INPUT_VERSION:-$pinned}
  version=${version#v}
  [[ -n $version && $version != none ]] ||
    fail "this commit of the action pins no release ($PINS names none): use the action at a release tag or its commit, or give binary"
  target=$(runner_target)
  if [[ -n $target ]]; then
    archive="clusternet-kubeconfig-$target.tar.gz"
    if [[ $version == "${pinned#v}" ]]; then
      expected=$(awk -v f="$archive" '$2 == f { print $1 }' "$PINS")
      [[ -n $expected ]] || fail "$PINS has no digest for $archive of release $version"
      [[ -z $sha256_input || $sha256_input == "$expected" ]] ||
        fail "sha256 does not match the digest this action pins for $archive of release $version"
    else
      [[ -n $sha256_input ]] ||
        fail "version $version is not the release this commit of the action pins (${pinned:-none}): give the SHA-256 of $archive as sha256, or use the action at that release's tag or commit"
      expected=$sha256_input
      [[ $expected =~ ^[0-9a-f]{64}$ ]] || fail "sha256 is not a SHA-256 digest (64 hexadecimal digits)"
    fi
    if [[ $version == latest ]]; then
      base="$releases/latest/download"
    else
      base="$releases/download/v$version"
    fi
    # A failed download stops here: it is never a reason to build something else.
    download "$base/$archive" "$work/$archive" || fail "could not download $base/$archive"
    actual=$(sha256 "$work/$archive")
    [[ $actual == "$expected" ]] ||
      fail "checksum mismatch for $archive of release $version: this action expects $expected, the download is $actual; not installing it"
    echo "$archive: checksum OK ($actual)"
    dir=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig-bin.XXXXXX")
    extract "$work/$archive" "$dir"
    bin="$dir/clusternet-kubeconfig-$target/clusternet-kubeconfig"
    [[ -x $bin ]] || fail "$archive has no clusternet-kubeconfig-$target/clusternet-kubeconfig"
    echo "$dir/clusternet-kubeconfig-$target" >>"${GITHUB_PATH:-/dev/null}"
    return
  fi
  # No archive is built for this runner: the same version from crates.io,
  # whose download cargo checks against the registry index.
  [[ $version != latest ]] || fail "version latest needs a release archive, and none is built for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}: give a version"
  echo "::warning::no release archive for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}; building $version with cargo install"
  command -v cargo >/dev/null || fail "cargo is needed to build clusternet-kubeconfig on this runner: install Rust first"
  dir=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig-bin.XXXXXX")
  cargo install --locked --root "$dir" --version "=$version" clusternet-kubeconfig
  bin="$dir/bin/clusternet-kubeconfig"
  [[ -x $bin ]] || fail "cargo install did not produce $bin"
  echo "$dir/bin" >>"${GITHUB_PATH:-/dev/null}"
}

# The tool is built for Linux and macOS only (file modes, kubectl's lock, signals).
[[ ${RUNNER_OS:-} != Windows ]] ||
  fail "Windows runners are not supported: run this job on a Linux or macOS runner"

if [[ -n ${INPUT_BINARY:-} ]]; then
  bin=$INPUT_BINARY
  [[ -f $bin && -x $bin ]] || fail "binary: $bin is not an executable file"
else
  install_binary
fi

# --- the kubeconfig --------------------------------------------------------

args=(gen)

# Kubeconfig content from a secret is often stored base64-encoded: decoded
# when it is base64 of something kubeconfig-like.
decode_base64_kubeconfig() {
  local compact=${1//[[:space:]]/} decoded
  [[ $compact =~ ^[A-Za-z0-9+/]+=*$ ]] || return 1
  decoded=$( (printf '%s' "$compact" | base64 -d || printf '%s' "$compact" | base64 -D) 2>/dev/null) || return 1
  [[ $decoded == *apiVersion* || $decoded == *clusters* ]] || return 1
  printf '%s\n' "$decoded"
}

parent=${INPUT_PARENT_KUBECONFIG:-}
parent_content=""
# The parent's URL and CA alone (no secret): a kubeconfig with an empty user,
# for `parent-auth: oidc` (or anonymous).
write_parent_kubeconfig() {
  local ca=${INPUT_PARENT_CERTIFICATE_AUTHORITY:-}
  [[ -n $ca ]] || fail "parent-server needs parent-certificate-authority (the PEM of the parent apiserver's CA, or a file path)"
  [[ $INPUT_PARENT_SERVER == https://* ]] || fail "parent-server must be an https:// URL"
  [[ $INPUT_PARENT_SERVER != *[[:space:]\"\'\\]* ]] || fail "parent-server must be one URL, without spaces or quotes"
  if [[ -f $ca ]]; then cp "$ca" "$work/parent-ca.crt"; else pem_file "$ca" "$work/parent-ca.crt"; fi
  grep -q -- '-----BEGIN CERTIFICATE-----' "$work/parent-ca.crt" ||
    fail "parent-certificate-authority is neither a file nor PEM text (-----BEGIN CERTIFICATE-----)"
  {
    echo "apiVersion: v1"
    echo "kind: Config"
    echo "clusters: [{name: parent, cluster: {server: \"$INPUT_PARENT_SERVER\", certificate-authority-data: $(base64 <"$work/parent-ca.crt" | tr -d '\n')}}]"
    echo "users: [{name: ci, user: {}}]"
    echo "contexts: [{name: parent, context: {cluster: parent, user: ci}}]"
    echo "current-context: parent"
  } >"$work/parent.kubeconfig"
}

if [[ -n ${INPUT_PARENT_SERVER:-} ]]; then
  [[ -z $parent ]] || fail "give parent-kubeconfig or parent-server, not both"
  write_parent_kubeconfig
  args+=(--kubeconfig "$work/parent.kubeconfig")
elif [[ -n ${INPUT_PARENT_CERTIFICATE_AUTHORITY:-} ]]; then
  fail "parent-certificate-authority goes with parent-server"
elif [[ -z $parent ]]; then
  fail "parent-kubeconfig is required (a path, or the kubeconfig's content from a secret), or parent-server with parent-certificate-authority"
elif [[ -f $parent ]]; then
  args+=(--kubeconfig "$parent")
elif decode_base64_kubeconfig "$parent" >"$work/parent.kubeconfig"; then
  mask "$parent"
  mask "${parent//[[:space:]]/}"
  parent_content="$work/parent.kubeconfig"
elif [[ $parent == *$'\n'* || $parent == "{"* ]]; then
  printf '%s\n' "$parent" >"$work/parent.kubeconfig"
  parent_content="$work/parent.kubeconfig"
else
  # Not echoed: a mistaken input may be a secret.
  fail "parent-kubeconfig is neither a file (paths are relative to the workspace) nor kubeconfig content (YAML, JSON, or base64 of either)"
fi
[[ -z $parent_content ]] || args+=(--kubeconfig "$parent_content")
[[ -z ${INPUT_PARENT_CONTEXT:-} ]] || args+=(--context "$INPUT_PARENT_CONTEXT")

# The credentials of the parent context's user in content from a secret: the
# tool reads them (as kubectl would, whatever the YAML style) into a throwaway
# kubeconfig that keeps them, offline, and they are masked from there before
# the real run. A failure here is left to the real run to report.
if [[ -n $parent_content ]]; then
  env -u CLUSTERNET_PARENT_TOKEN -u KUBECONFIG CLUSTERNET_CHILD_TOKEN=mask-pass "$bin" gen --kubeconfig "$parent_content" \
    ${INPUT_PARENT_CONTEXT:+--context "$INPUT_PARENT_CONTEXT"} \
    --cluster-id 00000000-0000-4000-8000-000000000000 --parent-auth keep -o json \
    --output-file "$work/parent.json" 2>/dev/null || true
  [[ ! -s $work/parent.json ]] || mask_kubeconfig "$work/parent.json"
fi

if [[ -n ${INPUT_CLUSTER_ID:-} && -n ${INPUT_CLUSTER:-} ]]; then
  fail "give cluster-id or cluster, not both"
elif [[ -n ${INPUT_CLUSTER_ID:-} ]]; then
  args+=(--cluster-id "$INPUT_CLUSTER_ID")
elif [[ -n ${INPUT_CLUSTER:-} ]]; then
  args+=(--cluster "$INPUT_CLUSTER")
  [[ -z ${INPUT_NAMESPACE:-} ]] || args+=(--namespace "$INPUT_NAMESPACE")
else
  fail "cluster-id (a child cluster's UUID) or cluster (a ManagedCluster name) is required"
fi

# Child credentials: the tool's environment or 0600 files, never its argv.
child_env=()
sources=0
[[ -z ${INPUT_CHILD_TOKEN:-} ]] || sources=$((sources + 1))
[[ -z ${INPUT_CHILD_CLIENT_CERTIFICATE:-}${INPUT_CHILD_CLIENT_KEY:-} ]] || sources=$((sources + 1))
[[ -z ${INPUT_CHILD_CREDENTIALS:-} ]] || sources=$((sources + 1))
if ((sources > 1)); then
  fail "give one of child-token, child-client-certificate with child-client-key, or child-credentials: hub"
elif [[ -n ${INPUT_CHILD_TOKEN:-} ]]; then
  child_env=("CLUSTERNET_CHILD_TOKEN=$INPUT_CHILD_TOKEN")
elif [[ -n ${INPUT_CHILD_CLIENT_CERTIFICATE:-} && -n ${INPUT_CHILD_CLIENT_KEY:-} ]]; then
  pem_file "$INPUT_CHILD_CLIENT_CERTIFICATE" "$work/child.crt"
  pem_file "$INPUT_CHILD_CLIENT_KEY" "$work/child.key"
  # The kubeconfig carries the key as base64 of the PEM: masked now too.
  mask "$(base64 <"$work/child.key" | tr -d '\n')"
  args+=(--client-certificate "$work/child.crt" --client-key "$work/child.key")
elif [[ -n ${INPUT_CHILD_CLIENT_CERTIFICATE:-}${INPUT_CHILD_CLIENT_KEY:-} ]]; then
  fail "child-client-certificate and child-client-key go together"
elif [[ -n ${INPUT_CHILD_CREDENTIALS:-} ]]; then
  args+=(--child-credentials "$INPUT_CHILD_CREDENTIALS")
else
  fail "child credentials are required: child-token, child-client-certificate with child-client-key, or child-credentials: hub"
fi
[[ -z ${INPUT_CHILD_TOKEN_REQUEST:-} ]] || args+=(--child-token-request "$INPUT_CHILD_TOKEN_REQUEST")
[[ -z ${INPUT_CHILD_TOKEN_TTL:-} ]] || args+=(--child-token-ttl "$INPUT_CHILD_TOKEN_TTL")

[[ -z ${INPUT_CHILD_SERVER:-} ]] || args+=(--child-server "$INPUT_CHILD_SERVER")
args+=(--parent-auth "${INPUT_PARENT_AUTH:-anonymous}")
if [[ ${INPUT_PARENT_AUTH:-} == oidc ]]; then
  [[ -n ${INPUT_AUDIENCE:-} ]] || fail "parent-auth: oidc needs audience (the audience the parent's AuthenticationConfiguration expects)"
  # Checked here, not only when kubectl first runs the exec entry in a later step.
  [[ -n ${ACTIONS_ID_TOKEN_REQUEST_URL:-} && -n ${ACTIONS_ID_TOKEN_REQUEST_TOKEN:-} ]] ||
    fail "parent-auth: oidc needs the job's \`permissions: id-token: write\` (ACTIONS_ID_TOKEN_REQUEST_URL and ACTIONS_ID_TOKEN_REQUEST_TOKEN are not set)"
  args+=(--oidc-audience "$INPUT_AUDIENCE")
elif [[ -n ${INPUT_AUDIENCE:-} ]]; then
  fail "audience needs parent-auth: oidc"
fi
parent_env=()
if [[ -n ${INPUT_PARENT_TOKEN:-} ]]; then
  [[ ${INPUT_PARENT_AUTH:-} == token ]] || fail "parent-token needs parent-auth: token"
  parent_env=("CLUSTERNET_PARENT_TOKEN=$INPUT_PARENT_TOKEN")
fi
[[ -z ${INPUT_NAME:-} ]] || args+=(--name "$INPUT_NAME")

case ${INPUT_SET_CURRENT_CONTEXT:-false} in
  true | false) ;;
  *) fail "set-current-context is true or false" ;;
esac

# Kubeconfigs this action wrote in earlier steps of the job stay in
# KUBECONFIG (a list, which kubectl and client libraries merge); anything
# else there was not written for this job's child clusters and is dropped.
list_separator=:
earlier=()
if [[ -n ${KUBECONFIG:-} ]]; then
  IFS=$list_separator read -r -a entries <<<"$KUBECONFIG"
  for entry in ${entries[@]+"${entries[@]}"}; do
    if [[ $entry == "$RUNNER_TEMP"/clusternet-kubeconfig.*/kubeconfig && -f $entry ]]; then
      earlier+=("$entry")
    elif [[ -e $entry ]]; then
      echo "::notice::KUBECONFIG named $entry, which this action did not write: it is not kept"
    fi
  done
fi

# JSON: secrets.awk reads it back as data (kubectl reads JSON kubeconfigs).
out_dir=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig.XXXXXX")
out="$out_dir/kubeconfig"
args+=(-o json --output-file "$out")

# Only the credentials chosen above: none of the caller's CLUSTERNET_* or KUBECONFIG.
status=0
env -u CLUSTERNET_CHILD_TOKEN -u CLUSTERNET_PARENT_TOKEN -u KUBECONFIG \
  ${child_env[@]+"${child_env[@]}"} ${parent_env[@]+"${parent_env[@]}"} "$bin" "${args[@]}" 2>"$work/stderr" ||
  status=$?
cat "$work/stderr" >&2
if ((status != 0)); then
  reason=$(sed -n 's/^error: //p' "$work/stderr" | tail -n 1)
  fail "clusternet-kubeconfig gen failed (exit $status): ${reason:-see its output above}"
fi

context=""
mask_kubeconfig "$out" context
[[ -n $context ]] || fail "$out has no current-context"
# Each step's context name beside its kubeconfig: kubectl may since have
# rewritten that file (`kubectl config use-context` does), this stays as written.
for entry in ${earlier[@]+"${earlier[@]}"}; do
  if [[ $(cat "${entry%/kubeconfig}/context" 2>/dev/null) == "$context" ]]; then
    fail "context $context is already in KUBECONFIG from an earlier step: give this step another name"
  fi
done
printf '%s' "$context" >"$out_dir/context"

# kubectl takes current-context from the first file that sets one.
if [[ ${INPUT_SET_CURRENT_CONTEXT:-false} == true ]]; then
  list=("$out" ${earlier[@]+"${earlier[@]}"})
else
  list=(${earlier[@]+"${earlier[@]}"} "$out")
fi
joined=$(IFS=$list_separator && echo "${list[*]}")

exported=1
runner_file_entry "$GITHUB_ENV" KUBECONFIG "$joined"
runner_file_entry "$GITHUB_OUTPUT" kubeconfig "$out"
runner_file_entry "$GITHUB_OUTPUT" context "$context"
runner_file_entry "$GITHUB_OUTPUT" binary "$bin"
echo "KUBECONFIG=$joined (this step's context: $context)"
