# Sourced by the benchmarks: installs wrk and nginx when missing, and starts nginx on a free
# loopback port serving a small static page. Sets NGINX_PORT and BENCH_WORK; stops on exit.
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
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
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
}
CONF
"$NGINX" -c "$BENCH_WORK/nginx.conf" -p "$BENCH_WORK"
for _ in $(seq 1 50); do curl -sf "http://127.0.0.1:$NGINX_PORT/index.html" >/dev/null && break; sleep 0.1; done
