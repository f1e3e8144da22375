#!/usr/bin/env bash
# Run the real spec-kitty-orchestrator test-suite (its e2e tests included) with this spec-kitty
# as the host. Not part of CI: it needs a checkout of the client.
#
#   bench/real_orchestrator_e2e.sh /path/to/spec-kitty-orchestrator
#
# Measured 2026-11-25 against orch@5b51905 (contract 1.3.0): 149 passed, 4 skipped (real-agent
# tests) in 28 s; tests/e2e alone: 10 passed, 4 skipped in 26 s.
set -euo pipefail
client=${1:?usage: $0 /path/to/spec-kitty-orchestrator}
here=$(cd "$(dirname "$0")/.." && pwd)
cargo build --release --locked --manifest-path "$here/Cargo.toml"
venv=$(mktemp -d)/venv
python3 -m venv "$venv"
"$venv/bin/pip" install -q filelock typer rich pydantic pytest pytest-asyncio pytest-mock
cd "$client"
SK_ORCH_E2E_SPEC_KITTY_BIN="$here/target/release/spec-kitty" "$venv/bin/python" -m pytest tests -q -p no:cacheprovider
