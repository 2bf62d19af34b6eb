#!/usr/bin/env bash
# How long `check --baseline` takes to compare two latency checks of 10,000 samples each
# (decoding both HDR histograms and running the Mann-Whitney U test). Target: under 20 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet --example compare_bench
./target/release/examples/compare_bench
