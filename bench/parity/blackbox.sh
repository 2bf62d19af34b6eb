#!/usr/bin/env bash
# Verdict parity with Prometheus' blackbox_exporter (Debian's prometheus-blackbox-exporter) for
# the kinds both have: dns, tcp, tcp with SMTP STARTTLS, and grpc.
#
# Starts real servers on loopback (dnsmasq, aiosmtpd with and without STARTTLS, grpcio's health
# service, and two misbehaving SMTP servers), probes each case with blackbox_exporter's matching
# module and with `shipwatch check`, and prints the agreement: blackbox's probe_success against
# shipwatch's status (pass and warn count as success). Every difference is listed with both sides.
set -euo pipefail
cd "$(dirname "$0")/../.."
WORK=$(mktemp -d)
chmod 755 "$WORK"
trap 'kill $(jobs -p) 2>/dev/null || true; pkill -f "$WORK" 2>/dev/null || true; rm -rf "$WORK"' EXIT
need=()
command -v prometheus-blackbox-exporter >/dev/null 2>&1 || need+=(prometheus-blackbox-exporter)
command -v dnsmasq >/dev/null 2>&1 || need+=(dnsmasq-base)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
python3 -c 'import aiosmtpd, grpc_health' 2>/dev/null || python3 -m pip install --quiet aiosmtpd grpcio grpcio-health-checking
cargo build --release --quiet --bin shipwatch
exec python3 bench/parity/blackbox_cases.py "$WORK"
