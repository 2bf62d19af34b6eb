# Sourced by the benchmarks: installs wrk and nginx when missing, and starts nginx on a free
# loopback port serving a small static page. Sets NGINX_PORT and BENCH_WORK; stops on exit.
# It also serves the page over TLS 1.3 with HTTP/2 on NGINX_TLS_PORT, with a P-256 ECDSA
# certificate for "localhost" issued by a throw-away CA at $BENCH_WORK/ca.pem (NGINX_CA).
need=()
command -v wrk >/dev/null 2>&1 || need+=(wrk)
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
if [ ${#need[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
NGINX=$(command -v nginx || echo /usr/sbin/nginx)
BENCH_WORK=$(mktemp -d)
bench_cleanup() {
  [ -f "$BENCH_WORK/nginx.pid" ] && kill "$(cat "$BENCH_WORK/nginx.pid")" 2>/dev/null
  [ -n "${BENCH_PIDS:-}" ] && kill $BENCH_PIDS 2>/dev/null
  rm -rf "$BENCH_WORK"
}
trap bench_cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
NGINX_PORT=$(free_port)
NGINX_TLS_PORT=$(free_port)
NGINX_CA=$BENCH_WORK/ca.pem
(
  cd "$BENCH_WORK"
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=bench CA" \
    -keyout ca.key -out ca.pem 2>/dev/null
  openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "/CN=localhost" \
    -keyout leaf.key -out leaf.csr 2>/dev/null
  printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >leaf.ext
  openssl x509 -req -in leaf.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 30 -extfile leaf.ext \
    -out leaf.pem 2>/dev/null
  cat leaf.pem ca.pem >chain.pem
  chmod 644 leaf.key
)
mkdir -p "$BENCH_WORK/www" "$BENCH_WORK/tmp"
# nginx workers run as an unprivileged user and must be able to read the page.
chmod 755 "$BENCH_WORK" "$BENCH_WORK/www"
printf '<!doctype html><title>shipwatch bench</title><p>a small static page for load tests</p>\n' >"$BENCH_WORK/www/index.html"
cat >"$BENCH_WORK/nginx.conf" <<CONF
worker_processes auto;
pid $BENCH_WORK/nginx.pid;
error_log $BENCH_WORK/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  keepalive_requests 1000000;
  client_body_temp_path $BENCH_WORK/tmp; proxy_temp_path $BENCH_WORK/tmp; fastcgi_temp_path $BENCH_WORK/tmp;
  uwsgi_temp_path $BENCH_WORK/tmp; scgi_temp_path $BENCH_WORK/tmp;
  server { listen 127.0.0.1:$NGINX_PORT; root $BENCH_WORK/www; }
  server {
    listen 127.0.0.1:$NGINX_TLS_PORT ssl http2; root $BENCH_WORK/www;
    ssl_certificate $BENCH_WORK/chain.pem; ssl_certificate_key $BENCH_WORK/leaf.key;
    ssl_protocols TLSv1.3; ssl_session_tickets off;
    http2_max_concurrent_streams 256;
  }
}
CONF
"$NGINX" -c "$BENCH_WORK/nginx.conf" -p "$BENCH_WORK"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$NGINX_PORT/index.html" >/dev/null && break; sleep 0.1; done
curl -sf --cacert "$NGINX_CA" "https://localhost:$NGINX_TLS_PORT/index.html" >/dev/null ||
  { echo "nginx does not serve HTTPS on $NGINX_TLS_PORT: $(cat "$BENCH_WORK/error.log")" >&2; exit 1; }
