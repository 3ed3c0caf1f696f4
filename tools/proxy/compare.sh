#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# conpool-proxy against HAProxy and nginx as reverse proxies, in front of the same origin.
#
#   tools/proxy/compare.sh [BUILD_DIR] [ROUNDS] [SECONDS]     (defaults: build-release 3 5)
#
# The origin is nginx (1 worker, `return 200`). Each proxy keeps 32 connections to it:
#   haproxy 2.6   nbthread 1, http-reuse always, server maxconn 32
#   nginx         1 worker, upstream keepalive 32 (it caps idle connections only)
#   conpool-proxy --upstream-connections 32, with 1 and 2 shards
# and wrk (-t1 -c50, SECONDS each) measures each in turn, ROUNDS times, alternating; the
# table gives medians: requests per second, p50 / p99 latency, the proxy's CPU per request
# (user + system time of its processes over the run, from /proc) and the connections the
# origin accepted during the run (stub_status). "direct" is wrk straight to the origin.
# "floor" rows are conpool-io-floor, an io_uring responder doing one receive and one send a
# request and nothing else (single: a receive armed after each send, as conpool's flow does;
# multishot: one receive for the connection's life into a provided buffer ring): a proxy does
# that twice a request, so twice the floor's CPU is the least any proxy can spend here.
# Everything listens on 127.0.0.1; nothing is left running at the end.
set -euo pipefail

build=${1:-build-release}
rounds=${2:-3}
seconds=${3:-5}
root=$(cd "$(dirname "$0")/../.." && pwd)
proxy_bin=$root/$build/tools/proxy/conpool-proxy
floor_bin=$root/$build/tools/proxy/conpool-io-floor
for p in nginx haproxy wrk; do
  command -v "$p" >/dev/null || [ -x "/usr/sbin/$p" ] || { echo "compare: $p is not installed (tools/run deps)" >&2; exit 1; }
done
[ -x "$floor_bin" ] || { echo "compare: $floor_bin is not built" >&2; exit 1; }
[ -x "$proxy_bin" ] || { echo "compare: $proxy_bin is not built (meson setup $build && ninja -C $build)" >&2; exit 1; }
nginx_bin=$(command -v nginx || echo /usr/sbin/nginx)
haproxy_bin=$(command -v haproxy || echo /usr/sbin/haproxy)

dir=$(mktemp -d /tmp/conpool-compare-XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

base=$((20000 + RANDOM % 20000))
origin_port=$base
haproxy_port=$((base + 1))
nginx_port=$((base + 2))
proxy1_port=$((base + 3))
proxy2_port=$((base + 4))
floor1_port=$((base + 5))
floor2_port=$((base + 6))

wait_port() {  # wait_port PORT: until 127.0.0.1:PORT accepts (5 s at most)
  for _ in $(seq 1 250); do
    (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0
    sleep 0.02
  done
  echo "compare: nothing listens on port $1" >&2
  exit 1
}

nginx_common="daemon off; master_process off; worker_processes 1; error_log $dir/error.log;
events { worker_connections 8192; }"
temp_paths="client_body_temp_path $dir; proxy_temp_path $dir; fastcgi_temp_path $dir;
  uwsgi_temp_path $dir; scgi_temp_path $dir; access_log off;"

mkdir -p "$dir/origin" "$dir/nginxproxy"
cat >"$dir/origin/nginx.conf" <<EOF
$nginx_common
pid $dir/origin/nginx.pid;
http { $temp_paths keepalive_requests 1000000;
  server { listen 127.0.0.1:$origin_port;
    location = /status { stub_status; }
    location / { return 200 "hello from nginx\n"; } } }
EOF
cat >"$dir/nginxproxy/nginx.conf" <<EOF
$nginx_common
pid $dir/nginxproxy/nginx.pid;
http { $temp_paths keepalive_requests 1000000;
  upstream origin { server 127.0.0.1:$origin_port; keepalive 32; }
  server { listen 127.0.0.1:$nginx_port;
    location / { proxy_pass http://origin; proxy_http_version 1.1;
                 proxy_set_header Connection ""; } } }
EOF
cat >"$dir/haproxy.cfg" <<EOF
global
  nbthread 1
  maxconn 4000
defaults
  mode http
  timeout connect 5s
  timeout client 30s
  timeout server 30s
  http-reuse always
frontend in
  bind 127.0.0.1:$haproxy_port
  default_backend origin
backend origin
  server origin 127.0.0.1:$origin_port maxconn 32
EOF

"$nginx_bin" -e "$dir/error.log" -p "$dir/origin" -c "$dir/origin/nginx.conf" &
pids+=($!)
wait_port "$origin_port"
"$nginx_bin" -e "$dir/error.log" -p "$dir/nginxproxy" -c "$dir/nginxproxy/nginx.conf" &
pids+=($!); nginx_pid=$!
"$haproxy_bin" -f "$dir/haproxy.cfg" -q &
pids+=($!); haproxy_pid=$!
"$proxy_bin" --listen "127.0.0.1:$proxy1_port" --upstream "http://127.0.0.1:$origin_port" \
  --upstream-connections 32 --shards 1 --quiet &
pids+=($!); proxy1_pid=$!
"$proxy_bin" --listen "127.0.0.1:$proxy2_port" --upstream "http://127.0.0.1:$origin_port" \
  --upstream-connections 32 --shards 2 --quiet &
pids+=($!); proxy2_pid=$!
"$floor_bin" "$floor1_port" single &
pids+=($!); floor1_pid=$!
"$floor_bin" "$floor2_port" multishot &
pids+=($!); floor2_pid=$!
for p in "$nginx_port" "$haproxy_port" "$proxy1_port" "$proxy2_port" "$floor1_port" "$floor2_port"; do
  wait_port "$p"
done

ticks=$(getconf CLK_TCK)
cpu_ticks() {  # cpu_ticks PID: user + system clock ticks of the process (all its threads)
  [ -z "$1" ] && { echo 0; return; }
  awk '{print $14 + $15}' "/proc/$1/stat"
}
accepted() {  # connections the origin accepted so far (its own status query included)
  local s
  s=$(exec 3<>"/dev/tcp/127.0.0.1/$origin_port" && printf 'GET /status HTTP/1.0\r\n\r\n' >&3 && cat <&3)
  echo "$s" | awk 'f {print $1; exit} /server accepts/ {f = 1}'
}
to_us() {  # wrk's "1.23ms" / "456.00us" / "1.2s" -> microseconds
  awk -v v="$1" 'BEGIN { n = v + 0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n * 1000;
                         else if (v ~ /s$/) print n * 1000000; else print n }'
}

declare -A results
run_one() {  # run_one NAME PORT PID
  local name=$1 port=$2 pid=$3
  local cpu0 acc0 out cpu1 acc1
  cpu0=$(cpu_ticks "$pid"); acc0=$(accepted)
  out=$(wrk -t1 -c50 -d"${seconds}s" --latency "http://127.0.0.1:$port/")
  cpu1=$(cpu_ticks "$pid"); acc1=$(accepted)
  local rps reqs p50 p99 errors
  rps=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  reqs=$(echo "$out" | awk '/requests in/ {print $1}')
  p50=$(to_us "$(echo "$out" | awk '$1 == "50%" {print $2}')")
  p99=$(to_us "$(echo "$out" | awk '$1 == "99%" {print $2}')")
  errors=$(echo "$out" | awk '/Non-2xx|Socket errors/ {print}' | tr '\n' ' ')
  local cpu_us=0
  [ -n "$pid" ] && cpu_us=$(awk -v t="$((cpu1 - cpu0))" -v hz="$ticks" -v n="$reqs" 'BEGIN { printf "%.1f", t / hz * 1e6 / n }')
  local conns=$((acc1 - acc0 - 1))
  results[$name]+="$rps $p50 $p99 $cpu_us $conns;"
  printf '  %-22s %9s req/s  p50 %7s us  p99 %7s us  cpu %6s us/req  origin conns %5s %s\n' \
    "$name" "$rps" "$p50" "$p99" "$cpu_us" "$conns" "$errors" >&2
}

nginx_worker=$(pgrep -P "$nginx_pid" || echo "$nginx_pid")  # master_process off: itself
echo "compare: $rounds rounds of ${seconds}s, wrk -t1 -c50, $(nproc) CPUs" >&2
for r in $(seq 1 "$rounds"); do
  echo "round $r" >&2
  run_one "direct" "$origin_port" ""
  run_one "haproxy" "$haproxy_port" "$haproxy_pid"
  run_one "nginx" "$nginx_port" "$nginx_worker"
  run_one "conpool-proxy x1" "$proxy1_port" "$proxy1_pid"
  run_one "conpool-proxy x2" "$proxy2_port" "$proxy2_pid"
  run_one "floor, single" "$floor1_port" "$floor1_pid"
  run_one "floor, multishot" "$floor2_port" "$floor2_pid"
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
column_of() {  # column_of NAME INDEX: that figure of every round
  echo "${results[$1]}" | tr ';' '\n' | grep -v '^$' | awk -v i="$2" '{print $i}' | tr '\n' ' '
}
echo
echo "| proxy | req/s | p50 | p99 | proxy CPU / request | origin connections |"
echo "|---|---|---|---|---|---|"
for name in "direct" "haproxy" "nginx" "conpool-proxy x1" "conpool-proxy x2" "floor, single" \
  "floor, multishot"; do
  rps=$(column_of "$name" 1 | median)
  p50=$(column_of "$name" 2 | median)
  p99=$(column_of "$name" 3 | median)
  cpu=$(column_of "$name" 4 | median)
  conns=$(column_of "$name" 5 | median)
  [ "$name" = direct ] && cpu="-"
  [ "${name#floor}" != "$name" ] && conns="-"  # the floor has no origin
  printf '| %s | %s | %s us | %s us | %s us | %s |\n' "$name" "$rps" "$p50" "$p99" "$cpu" "$conns"
done
