#!/usr/bin/env bash
# The reference setup the performance targets were drawn from, reproduced
# as it was measured: one nginx as the origin (127.0.0.1:18080) serving the
# 43 KB product-grid page for every path, as proxy_pass (18081) and as
# proxy_pass + sub_filter making the three replacements (18082); wrk
# -t1 -c32 as the load. Beside them, on the same origin, edgeseg
# personalizing the same three slots (18083) and passing through (18084).
#
# Two kinds of visitor, each a wrk run per target per round:
#   new        no cookie: every request is a first-time visitor, whose
#              profile is made, and a cookie signed, from nothing
#   returning  one visitor's cookie on every request
# The targets take turns within a round, so a noisy neighbour hits them
# alike; the table gives medians over ROUNDS, and req/s as ratios to
# nginx+sub_filter and to edgeseg passing through. edgeseg's CPU per
# request is its process's; nginx's is not shown, since its one process
# group is also the origin.
#
#   bash bench/anchor.sh                 # 3 rounds of 6 s
#   ROUNDS=1 DURATION=3s bash bench/anchor.sh
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out/anchor
mkdir -p "$out/www"
DURATION=${DURATION:-6s}
ROUNDS=${ROUNDS:-3}
UA='Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36'

missing=()
command -v nginx >/dev/null || missing+=(nginx-light)
command -v wrk >/dev/null || missing+=(wrk)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq "${missing[@]}" >/dev/null
  else echo "need ${missing[*]} (apt-get install ${missing[*]})" >&2; exit 1; fi
fi
go build -o "$out/edgeseg" ./cmd/edgeseg
cp bench/testdata/page-43k.html "$out/www/index.html"

cat > "$out/nginx.conf" <<NGINX
worker_processes auto;
pid $out/nginx.pid;
error_log $out/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  geo \$dollar { default "\$"; }
  upstream origin { server 127.0.0.1:18080; keepalive 64; }
  server { listen 127.0.0.1:18080; root $out/www; location / { try_files /index.html =404; } }
  server { listen 127.0.0.1:18081; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:18082; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Accept-Encoding "";
     include $root/bench/nginx-subfilter.conf; } }
}
NGINX

pids=()
cleanup() {
  [ -f "$out/nginx.pid" ] && kill "$(cat "$out/nginx.pid")" 2>/dev/null || true
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
nginx -c "$out/nginx.conf"
(cd bench && exec "$out/edgeseg" serve --config edgeseg.yaml) 2>"$out/edgeseg.log" & pids+=($!); pers=$!
(cd bench && exec "$out/edgeseg" serve --config edgeseg-passthrough.yaml) 2>"$out/edgeseg-pass.log" & pids+=($!); pass=$!
for port in 18080 18081 18082 18083 18084; do
  for i in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/" && break; sleep 0.1; done
done

# Each proxy under test must make all three replacements.
all_three() {
  [[ $1 == *"Deals picked for you"* && $1 == *"Your sale alerts are on"* && $1 == *"Free shipping on all sale orders"* &&
     $1 != *"Great prices every day"* && $1 != *"Sign up for our newsletter"* && $1 != *"Free shipping over"* ]]
}
url=/?utm_campaign=promo
body=$(curl -s -A "$UA" -H 'Accept: text/html' "http://127.0.0.1:18083$url")
all_three "$body" || { echo "edgeseg is not filling the three slots; see $out/edgeseg.log" >&2; exit 1; }
body=$(curl -s "http://127.0.0.1:18082$url")
all_three "$body" || { echo "nginx sub_filter is not making the three replacements" >&2; exit 1; }
cookie=$(curl -s -o /dev/null -D - -A "$UA" -H 'Accept: text/html' "http://127.0.0.1:18083$url" |
  tr -d '\r' | sed -n 's/^[Ss]et-[Cc]ookie: \(edgeseg=[^;]*\).*/\1/p')
[ -n "$cookie" ] || { echo "edgeseg set no cookie" >&2; exit 1; }

cpu() { [ -n "$1" ] && awk '{print $14+$15}' "/proc/$1/stat" || echo 0; }
tick=$(getconf CLK_TCK)
: > "$out/results.tsv"
run() { # visitor target port pid
  local extra=() t0 t1 res
  [ "$1" = returning ] && extra=(-H "Cookie: $cookie")
  t0=$(cpu "$4")
  res=$(wrk -t1 -c32 -d"$DURATION" --latency -H "User-Agent: $UA" -H 'Accept: text/html' "${extra[@]}" "http://127.0.0.1:$3$url")
  t1=$(cpu "$4")
  echo "$res" | awk -v v="$1" -v t="$2" -v pid="$4" -v dt=$((t1 - t0)) -v tick="$tick" '
    function ms(x) { if (x ~ /us$/) return x/1000; if (x ~ /ms$/) return x+0; if (x ~ /s$/) return x*1000; return x }
    /requests in/ { n = $1 }
    /Requests\/sec/ { rps = $2 }
    $1 == "50%" { p50 = ms($2) } $1 == "99%" { p99 = ms($2) }
    /Non-2xx|Socket errors/ { err = 1 }
    END { printf "%s\t%s\t%s\t%.3f\t%.3f\t%s\t%d\n", v, t, rps, p50, p99, pid ? sprintf("%.1f", dt / tick * 1e6 / n) : "-", err }' \
    >> "$out/results.tsv"
}
for round in $(seq "$ROUNDS"); do
  for v in new returning; do
    echo "round $round of $ROUNDS: $v visitors"
    run "$v" nginx-proxy 18081 ""
    run "$v" nginx-subfilter 18082 ""
    run "$v" edgeseg-passthrough 18084 "$pass"
    run "$v" edgeseg 18083 "$pers"
  done
done

echo
awk -F'\t' '
  function med(a, k, n,   i, j, t, v) {
    n = cnt[k]; for (i = 1; i <= n; i++) v[i] = a[k, i]
    for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return n % 2 ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
  }
  { k = $1 SUBSEP $2; i = ++cnt[k]; rps[k, i] = $3; p50[k, i] = $4; p99[k, i] = $5; c[k, i] = $6; errs[k] += $7
    if (!(k in seen)) { seen[k] = 1; order[++m] = k } }
  END {
    printf "%-10s %-20s %8s %8s %8s %11s %16s %15s %6s\n", "visitors", "target", "req/s", "p50 ms", "p99 ms", "CPU µs/req", "vs nginx+sub", "vs passthrough", "errors"
    for (i = 1; i <= m; i++) { split(order[i], kk, SUBSEP); r[order[i]] = med(rps, order[i]) }
    for (i = 1; i <= m; i++) {
      k = order[i]; split(k, kk, SUBSEP)
      printf "%-10s %-20s %8.0f %8.2f %8.2f %11s %15.2fx %14.2fx %6d\n", kk[1], kk[2], r[k], med(p50, k), med(p99, k),
        c[k, 1] == "-" ? "-" : sprintf("%.1f", med(c, k)), r[k] / r[kk[1] SUBSEP "nginx-subfilter"], r[k] / r[kk[1] SUBSEP "edgeseg-passthrough"], errs[k]
    }
  }' "$out/results.tsv"
