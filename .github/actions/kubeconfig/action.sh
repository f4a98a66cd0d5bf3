#!/usr/bin/env bash
# The GitHub Action (action.yml): install clusternet-kubeconfig, write the
# dedicated kubeconfig 0600 under RUNNER_TEMP, export KUBECONFIG, set outputs.
#
# Inputs arrive as INPUT_* variables (see action.yml); the runner provides
# RUNNER_TEMP, RUNNER_OS, RUNNER_ARCH and the GITHUB_ENV, GITHUB_OUTPUT and
# GITHUB_PATH files. tests/cli/action.rs runs this script under a simulated
# runner. Secrets are masked (::add-mask::) before anything else happens and
# reach the tool through its environment or 0600 files, never its argv.
set -euo pipefail
umask 077

fail() {
  echo "::error::$*"
  exit 1
}

# Every non-blank line of a secret value: the runner masks line by line.
# PEM armour lines are not secret and stay readable.
mask() {
  local line
  while IFS= read -r line || [[ -n $line ]]; do
    line=${line%$'\r'}
    [[ -z ${line//[[:space:]]/} || $line == -----* ]] && continue
    printf '::add-mask::%s\n' "$line"
  done <<<"$1"
}

# The credential values inside kubeconfig content (YAML or JSON): only those,
# since masking every line would also blank `kind: Config` in every log.
mask_kubeconfig_secrets() {
  local keys='token|client-key-data|password|id-token|refresh-token|access-token|client-secret'
  local value
  while IFS= read -r value; do
    value=${value#*:}
    value=${value#"${value%%[![:space:]]*}"}
    value=${value#[\"\']}
    value=${value%%[\"\',]*}
    value=${value%$'\r'}
    [[ -n $value ]] && mask "$value"
  done < <(grep -oE "[\"']?($keys)[\"']?[[:space:]]*:[[:space:]]*[^[:space:],}]+" <<<"$1" || true)
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

work=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig-work.XXXXXX")
trap 'rm -rf "$work"' EXIT

# --- the binary ------------------------------------------------------------

RELEASES=https://github.com/clusternet/clusternet-kubeconfig/releases

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
    Windows/X64) echo x86_64-pc-windows-msvc ;;
  esac
}

download() {
  curl -fsSL --retry 3 --proto-redir =https -o "$2" "$1"
}

extract() {
  local archive=$1 into=$2
  case "$archive" in
    *.zip)
      if command -v unzip >/dev/null; then
        unzip -q "$archive" -d "$into"
      else
        # shellcheck disable=SC2016 # PowerShell expands $env:..., not bash
        ARCHIVE=$archive INTO=$into \
          pwsh -NoProfile -Command 'Expand-Archive -LiteralPath $env:ARCHIVE -DestinationPath $env:INTO'
      fi
      ;;
    *) tar -xzf "$archive" -C "$into" ;;
  esac
}

# Sets `bin`: the release archive for this runner, checked against the
# release's SHA256SUMS; `cargo install` when the release has no such archive.
# A checksum that does not match stops here: it is never a reason to fall back.
install_binary() {
  # Default: the action's own tag when it is a version (uses: ...@v0.1.0).
  local version=${INPUT_VERSION:-} releases=${INPUT_RELEASE_URL:-$RELEASES} target exe="" archive base dir
  if [[ -z $version ]]; then
    version=latest
    [[ ${ACTION_REF:-} =~ ^v[0-9]+\.[0-9]+\.[0-9]+$ ]] && version=$ACTION_REF
  fi
  version=${version#v}
  target=$(runner_target)
  [[ $target == *windows* ]] && exe=.exe
  if [[ -n $target ]]; then
    archive="clusternet-kubeconfig-$target.tar.gz"
    [[ $target == *windows* ]] && archive="clusternet-kubeconfig-$target.zip"
    if [[ $version == latest ]]; then
      base="$releases/latest/download"
    else
      base="$releases/download/v$version"
    fi
    if download "$base/$archive" "$work/$archive" && download "$base/SHA256SUMS" "$work/SHA256SUMS"; then
      local expected actual
      expected=$(awk -v f="$archive" '$2 == f || $2 == "*" f { print $1 }' "$work/SHA256SUMS")
      [[ -n $expected ]] || fail "SHA256SUMS of release $version has no line for $archive"
      actual=$(sha256 "$work/$archive")
      [[ $actual == "$expected" ]] ||
        fail "checksum mismatch for $archive of release $version: SHA256SUMS says $expected, the download is $actual; not installing it"
      echo "$archive: checksum OK ($actual)"
      dir=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig-bin.XXXXXX")
      extract "$work/$archive" "$dir"
      bin="$dir/clusternet-kubeconfig-$target/clusternet-kubeconfig$exe"
      [[ -x $bin ]] || fail "$archive has no clusternet-kubeconfig-$target/clusternet-kubeconfig$exe"
      echo "$dir/clusternet-kubeconfig-$target" >>"${GITHUB_PATH:-/dev/null}"
      return
    fi
    echo "::warning::no $archive in release $version at $releases; building it with cargo install"
  else
    echo "::warning::no release archive for ${RUNNER_OS:-?}/${RUNNER_ARCH:-?}; building it with cargo install"
  fi
  command -v cargo >/dev/null || fail "cargo is needed to build clusternet-kubeconfig on this runner: install Rust first"
  local versioned=()
  dir=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig-bin.XXXXXX")
  [[ $version == latest ]] || versioned=(--version "$version")
  # ${a[@]+...}: an empty array is "unbound" to the bash 3.2 of macOS.
  cargo install --locked --root "$dir" ${versioned[@]+"${versioned[@]}"} clusternet-kubeconfig
  bin="$dir/bin/clusternet-kubeconfig$exe"
  [[ -x $bin ]] || fail "cargo install did not produce $bin"
  echo "$dir/bin" >>"${GITHUB_PATH:-/dev/null}"
}

if [[ -n ${INPUT_BINARY:-} ]]; then
  bin=$INPUT_BINARY
  [[ -f $bin && -x $bin ]] || fail "binary: $bin is not an executable file"
else
  install_binary
fi

# --- the kubeconfig --------------------------------------------------------

args=(gen)

parent=${INPUT_PARENT_KUBECONFIG:-}
if [[ -z $parent ]]; then
  fail "parent-kubeconfig is required: a path, or the kubeconfig's content (from a secret)"
elif [[ -f $parent ]]; then
  args+=(--kubeconfig "$parent")
elif [[ $parent == *$'\n'* || $parent == "{"* ]]; then
  mask_kubeconfig_secrets "$parent"
  printf '%s\n' "$parent" >"$work/parent.kubeconfig"
  args+=(--kubeconfig "$work/parent.kubeconfig")
else
  # Not echoed: a mistaken input may be a secret.
  fail "parent-kubeconfig is neither a file (paths are relative to the workspace) nor kubeconfig content"
fi
[[ -z ${INPUT_PARENT_CONTEXT:-} ]] || args+=(--context "$INPUT_PARENT_CONTEXT")

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
if [[ -n ${INPUT_CHILD_TOKEN:-} ]]; then
  [[ -z ${INPUT_CHILD_CLIENT_CERTIFICATE:-}${INPUT_CHILD_CLIENT_KEY:-} ]] ||
    fail "give child-token or child-client-certificate with child-client-key, not both"
  child_env=("CLUSTERNET_CHILD_TOKEN=$INPUT_CHILD_TOKEN")
elif [[ -n ${INPUT_CHILD_CLIENT_CERTIFICATE:-} && -n ${INPUT_CHILD_CLIENT_KEY:-} ]]; then
  pem_file "$INPUT_CHILD_CLIENT_CERTIFICATE" "$work/child.crt"
  pem_file "$INPUT_CHILD_CLIENT_KEY" "$work/child.key"
  # The kubeconfig carries the key as base64 of the PEM: mask that form too.
  mask "$(base64 <"$work/child.key" | tr -d '\n')"
  args+=(--client-certificate "$work/child.crt" --client-key "$work/child.key")
elif [[ -n ${INPUT_CHILD_CLIENT_CERTIFICATE:-}${INPUT_CHILD_CLIENT_KEY:-} ]]; then
  fail "child-client-certificate and child-client-key go together"
else
  fail "child credentials are required: child-token, or child-client-certificate with child-client-key"
fi

[[ -z ${INPUT_CHILD_SERVER:-} ]] || args+=(--child-server "$INPUT_CHILD_SERVER")
args+=(--parent-auth "${INPUT_PARENT_AUTH:-anonymous}")
parent_env=()
if [[ -n ${INPUT_PARENT_TOKEN:-} ]]; then
  [[ ${INPUT_PARENT_AUTH:-} == token ]] || fail "parent-token needs parent-auth: token"
  parent_env=("CLUSTERNET_PARENT_TOKEN=$INPUT_PARENT_TOKEN")
fi
[[ -z ${INPUT_NAME:-} ]] || args+=(--name "$INPUT_NAME")

out_dir=$(mktemp -d "$RUNNER_TEMP/clusternet-kubeconfig.XXXXXX")
out="$out_dir/kubeconfig"
args+=(--output-file "$out")

# Only the credentials chosen above: none of the caller's CLUSTERNET_* or KUBECONFIG.
status=0
env -u CLUSTERNET_CHILD_TOKEN -u CLUSTERNET_PARENT_TOKEN -u KUBECONFIG \
  ${child_env[@]+"${child_env[@]}"} ${parent_env[@]+"${parent_env[@]}"} "$bin" "${args[@]}" || status=$?
if ((status != 0)); then
  rm -rf "$out_dir"
  fail "clusternet-kubeconfig gen failed (exit $status): see its error line above"
fi

context=$(sed -n 's/^current-context: //p' "$out")
context=${context#\"}
context=${context%\"}
[[ -n $context ]] || fail "$out has no current-context"

runner_file_entry "$GITHUB_ENV" KUBECONFIG "$out"
runner_file_entry "$GITHUB_OUTPUT" kubeconfig "$out"
runner_file_entry "$GITHUB_OUTPUT" context "$context"
runner_file_entry "$GITHUB_OUTPUT" binary "$bin"
echo "KUBECONFIG=$out (context $context)"
