#!/usr/bin/env bash
# The agent history's figures against their targets: write throughput (≥ 20,000 results/s), disk
# growth per day for 1,000 checks at one run a minute, and a 30-day uptime query (< 10 ms).
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example history_bench
./target/release/examples/history_bench
