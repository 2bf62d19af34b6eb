#!/usr/bin/env bash
# The whole test suite, end-to-end tests included, from a clean checkout.
# Installs what the tests need (OpenSSL's command-line tool serves the weak-key and TLS 1.0
# targets; Prometheus and promtool run the end-to-end metrics test; Alertmanager receives alerts),
# then checks formatting and lints, and runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v openssl >/dev/null 2>&1 || need+=(openssl)
# The end-to-end test scrapes the agent with a real Prometheus and lints with promtool.
{ command -v prometheus && command -v promtool; } >/dev/null 2>&1 || need+=(prometheus)
# The alerting tests deliver to a real Alertmanager.
command -v prometheus-alertmanager >/dev/null 2>&1 || command -v alertmanager >/dev/null 2>&1 || need+=(prometheus-alertmanager)
# The dns kind's tests ask a real dnsmasq; the tcp kind's STARTTLS tests talk to Dovecot's IMAP
# and POP3 and to a PostgreSQL server.
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
[ -x /usr/sbin/dovecot ] || need+=(dovecot-imapd dovecot-pop3d)
ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1 || need+=(postgresql)
# The status page is checked in a real browser.
command -v chromium >/dev/null 2>&1 || need+=(chromium)
if [ ${#need[@]} -gt 0 ]; then
  echo "installing: ${need[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi

# The packaging test reads the YAML files with PyYAML; the email tests run aiosmtpd.
python3 -c 'import yaml' 2>/dev/null || python3 -m pip install --quiet pyyaml
python3 -c 'import aiosmtpd' 2>/dev/null || python3 -m pip install --quiet aiosmtpd
# The grpc kind's tests run grpcio's server with the standard health service; the websocket
# kind's run the websockets library's server.
python3 -c 'import grpc_health' 2>/dev/null || python3 -m pip install --quiet grpcio grpcio-health-checking
python3 -c 'import websockets' 2>/dev/null || python3 -m pip install --quiet websockets
# The Kubernetes manifests are checked against the Kubernetes OpenAPI schema, offline.
command -v kubernetes-validate >/dev/null 2>&1 || python3 -m pip install --quiet kubernetes-validate

cargo fmt --check
cargo clippy --all-targets --quiet -- -D warnings
cargo build --examples --quiet
log=$(mktemp)
trap 'rm -f "$log"' EXIT
cargo test --lib --bins --tests 2>&1 | tee "$log"
passed=$(grep -Eo '[0-9]+ passed' "$log" | awk '{s+=$1} END {print s+0}')
failed=$(grep -Eo '[0-9]+ failed' "$log" | awk '{s+=$1} END {print s+0}')
echo
echo "tests: $passed passed, $failed failed"
