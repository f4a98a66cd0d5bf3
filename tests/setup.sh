#!/usr/bin/env bash
# Installs what the tests need and is not there yet; tests/run.sh (the README's
# test command) calls it first, so a fresh machine needs nothing but this
# checkout, Rust (cargo) and Go. Idempotent: when everything is present it only
# checks, in well under a second (plus the pinned clients' own check).
#
# Debian/Ubuntu packages come from apt-get: as root directly, otherwise through
# sudo when it is there; without either it names the packages and stops.
set -euo pipefail
cd "$(dirname "$0")/.."

# Each line: a check that passes when the tool is there, and the package that brings it.
# Why each is needed is said beside it; tests/README.md has the long form.
need=()
want() { # <package> <check...>
  local package=$1; shift
  "$@" >/dev/null 2>&1 || need+=("$package")
}
want kubernetes-client command -v kubectl        # the oracle (fallback when no Google Cloud CLI kubectl)
want openssl           command -v openssl        # X.509 v1 certificates made as users make them
want coreutils         command -v mkfifo
want time              test -x /usr/bin/time     # GNU time: peak-memory bounds in the hostile tests
want bsdutils          command -v script         # a terminal for the argv-secret warning test
want util-linux        command -v setpriv        # unreadable-file tests as an unprivileged user
want zsh               command -v zsh            # the completion tests run the real shells
want fish              command -v fish
want curl              command -v curl           # the Action's download (file:// in its tests)
want shellcheck        command -v shellcheck     # the Action's script and the test scripts
want bc                command -v bc             # tests/lab-env/test.sh's timings
want nodejs            command -v node           # the JavaScript client the proxy lab tests drive
want npm               command -v npm
want python3-venv      python3 -m venv --help    # the Python client, in a virtual environment
want ca-certificates   test -d /etc/ssl/certs

if ((${#need[@]})); then
  if ((EUID == 0)); then
    apt=(apt-get)
  elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then
    apt=(sudo -n apt-get)
  else
    echo "error: the tests need these Debian/Ubuntu packages: ${need[*]}" >&2
    echo "       install them (sudo apt-get install ${need[*]}) or run this as root" >&2
    exit 1
  fi
  echo "setup: installing ${need[*]}"
  "${apt[@]}" update -qq
  DEBIAN_FRONTEND=noninteractive "${apt[@]}" install -y -qq "${need[@]}" >/dev/null
fi

# What apt cannot bring (or brings too old): said plainly, never a test failure to decode.
for tool in cargo go kubectl openssl zsh fish node npm; do
  command -v "$tool" >/dev/null || { echo "error: $tool is required by the tests and could not be installed" >&2; exit 1; }
done
go_minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
((go_minor >= 23)) || { echo "error: the lab builds Kubernetes v1.32 and needs Go >= 1.23 (found $(go env GOVERSION))" >&2; exit 1; }

# The Python and JavaScript Kubernetes clients (pinned) the proxy lab tests drive.
bash tests/lab-env/clients.sh
