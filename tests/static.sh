#!/usr/bin/env bash
# The release build for x86_64 Linux, as .github/workflows/release.yml makes it:
# a static musl binary. Builds it, checks that it needs no loader and no shared
# library, then runs the CLI test suite against it (CLUSTERNET_KUBECONFIG_BIN).
# Needs: rustup, and musl-gcc (Debian/Ubuntu: apt-get install musl-tools).
set -euo pipefail
cd "$(dirname "$0")/.."

target=x86_64-unknown-linux-musl
bin="$PWD/target/$target/release/clusternet-kubeconfig"

command -v musl-gcc >/dev/null || { echo "error: musl-gcc not found: apt-get install musl-tools" >&2; exit 1; }
rustup target list --installed | grep -qx "$target" || rustup target add "$target"

# ring compiles C: with the musl wrapper, not the glibc compiler.
CC_x86_64_unknown_linux_musl=musl-gcc cargo build --release --locked --target "$target" --bin clusternet-kubeconfig

file "$bin"
if readelf -l "$bin" | grep -q INTERP || readelf -d "$bin" | grep -q NEEDED; then
  echo "error: $bin is not statically linked" >&2
  exit 1
fi
echo "static: no program interpreter, no shared library; $(stat -c %s "$bin") bytes"

CLUSTERNET_KUBECONFIG_BIN="$bin" cargo test --locked --test cli

# ...and the suite did test that binary: a wrong path fails it loudly.
wrong=$(CLUSTERNET_KUBECONFIG_BIN=/nonexistent cargo test --locked --test cli -- --exact \
  secrets::verbose_trace_shows_steps_but_no_secret 2>&1 || true)
if grep -q 'CLUSTERNET_KUBECONFIG_BIN=/nonexistent is not a file' <<<"$wrong"; then
  echo "static binary: CLI suite passed against $bin"
else
  echo "error: the CLI tests do not honour CLUSTERNET_KUBECONFIG_BIN" >&2
  exit 1
fi
