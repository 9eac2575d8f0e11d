#!/usr/bin/env bash
# Runs every cargo-fuzz target in fuzz/ for FUZZ_SECONDS seconds each (default 60).
# Needs a nightly toolchain; installs cargo-fuzz when it is missing.
# A crash stops the script with a non-zero status; the crashing input is saved under
# fuzz/artifacts/<target>/ and can be replayed with
#   cargo +nightly fuzz run <target> fuzz/artifacts/<target>/<file>
set -euo pipefail

FUZZ_SECONDS="${FUZZ_SECONDS:-60}"
TOOLCHAIN="${FUZZ_TOOLCHAIN:-nightly}"
cd "$(dirname "$0")/../fuzz"

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz.sh: installing cargo-fuzz" >&2
    cargo install --locked cargo-fuzz
fi

cargo "+${TOOLCHAIN}" fuzz build
targets=$(cargo "+${TOOLCHAIN}" fuzz list)
for target in ${targets}; do
    echo "fuzz.sh: ${target} for ${FUZZ_SECONDS}s" >&2
    mkdir -p "corpus/${target}"
    cargo "+${TOOLCHAIN}" fuzz run "${target}" -- -max_total_time="${FUZZ_SECONDS}" -print_final_stats=1
done
