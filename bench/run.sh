#!/usr/bin/env bash
# Side-by-side performance run on one machine, in one go:
#   nginx as the origin (127.0.0.1:18080, its own nginx, so each proxy's
#   CPU time is its own), nginx proxy_pass (18081),
#   nginx proxy_pass + sub_filter doing the three slot replacements (18082),
#   edgeseg personalizing the same three slots (18083),
#   edgeseg with nothing to personalize (18084), and a second one alike
#   (18088) run only at the fixed rate: what a p99 moves by with nothing
#   changed, beside what personalizing adds to it.
# With CACHE=1, the same three again with each keeping the origin's pages in
# memory (nginx proxy_cache 18085, edgeseg's cache.origin 18086 and 18087),
# compared with each other: what the origin cache buys when pages allow it.
# For each page (5k, 60k, 500k; 60k-chunked: 60k sent chunked, as an
# application server sends its pages; 60k-dyn: that, and different on
# every request; 500k-chunked, not run by default: the 500 KB page sent
# chunked, larger than what can have arrived whole when its head is read;
# 60k-state, not run by default: 60k-dyn with its token in the state an
# inline script starts from, as server-rendered apps send it; 60k-dyn-gz:
# 60k-dyn gzipped by the origin, asked for with Accept-Encoding: gzip as
# browsers ask, so each proxy decompresses, rewrites and compresses it
# again on every request, nginx's sub_filter at its default gzip level 1),
# ROUNDS
# rounds each give every proxy a max-rate run, in turn, so a noisy
# neighbour hits them all alike; then
# both edgeseg pass-throughs and personalizing get fixed-rate runs at half
# of edgeseg's median max, for added latency. Results: bench/out/results.jsonl,
# and a table of medians with ratios measured in this run.
#
#   bash bench/run.sh              # all pages, 3 rounds of 6 s per run
#   DURATION=3s ROUNDS=1 PAGES=60k bash bench/run.sh
#   PAGES=500k-chunked bash bench/run.sh
#   CACHE=1 bash bench/run.sh      # also the origin-cache variants
#   GOMAXPROCS=1 bash bench/run.sh # passed to the edgeseg processes (GOGC too)
#   ASK_UNCOMPRESSED=false bash bench/run.sh # the personalizing edgesegs ask the origin for
#                                  # compressed pages as visitors ask (true by default here, as
#                                  # sub_filter asks for them uncompressed; only -gz pages differ)
#   bash bench/run.sh soak         # RSS while 1M distinct visitors arrive
#   SOAK_PAGE=60k-dyn bash bench/run.sh soak   # the same on another page
#   bash bench/run.sh idle         # RSS with IDLE (8000) idle keep-alive connections
#   bash bench/run.sh tail         # added p99 at half load against its noise: two pass-through
#                                  # edgesegs (A/A) and the personalizing one, alternated, for
#                                  # each of PAGES (TAIL_ROUNDS rounds, 6 by default)
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
out=$root/bench/out
mkdir -p "$out/www" "$out/nginx"
DURATION=${DURATION:-6s}
ROUNDS=${ROUNDS:-3}
CONNS=${CONNS:-32}
PAGES=${PAGES:-"5k 60k 500k 60k-chunked 60k-dyn 60k-dyn-gz"}
CACHE=${CACHE:-0}
ASK_UNCOMPRESSED=${ASK_UNCOMPRESSED:-true}

if ! command -v nginx >/dev/null; then
  if [ "$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq nginx-light >/dev/null; else echo "need nginx (apt-get install nginx-light)" >&2; exit 1; fi
fi
go build -o "$out/edgeseg" ./cmd/edgeseg
go build -o "$out/edgeseg-bench" ./cmd/edgeseg-bench
for p in 5k 60k 500k; do cp "bench/testdata/page-$p.html" "$out/www/page-$p.html"; done
# 60k-dyn: the 60 KB page as an application server sends it, different on
# every request (a CSRF token from nginx's SSI) and chunked, without a
# Content-Length: no proxy can reuse its work on it from one request to the
# next, and edgeseg streams it.
sed 's|<head>|<head><meta name="csrf-token" content="<!--# echo var="request_id" -->">|' \
  bench/testdata/page-60k.html > "$out/www/page-60k-dyn.html"
cp "$out/www/page-60k-dyn.html" "$out/www/page-60k-dyn-gz.html"
sed 's|<head>|<head><script>window.__STATE__={"csrf":"<!--# echo var="request_id" -->","cart":[]}</script>|' \
  bench/testdata/page-60k.html > "$out/www/page-60k-state.html"
# 60k-chunked: the 60 KB page as an application server sends a page that
# does not change from one request to the next: chunked (nginx's SSI
# drops the length; there is nothing to include), the same bytes each time.
cp bench/testdata/page-60k.html "$out/www/page-60k-chunked.html"
cp bench/testdata/page-500k.html "$out/www/page-500k-chunked.html"

cat > "$out/nginx/origin.conf" <<NGINX
worker_processes auto;
pid $out/nginx/origin.pid;
error_log $out/nginx/origin-error.log;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/html;
  server { listen 127.0.0.1:18080; root $out/www; location / { try_files \$uri =404; }
    location = /page-60k-dyn.html { ssi on; } location = /page-60k-chunked.html { ssi on; }
    location = /page-60k-state.html { ssi on; }
    location = /page-60k-dyn-gz.html { ssi on; gzip on; }
    location = /page-500k-chunked.html { ssi on; } }
}
NGINX
cat > "$out/nginx/nginx.conf" <<NGINX
worker_processes auto;
pid $out/nginx/nginx.pid;
error_log $out/nginx/error.log;
events { worker_connections 4096; }
http {
  access_log off;
  default_type text/html;
  gzip on; # sub_filter's pages, to visitors who accept gzip (the bench's -gz pages)
  geo \$dollar { default "\$"; }
  upstream origin { server 127.0.0.1:18080; keepalive 64; }
  server { listen 127.0.0.1:18081; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; } }
  server { listen 127.0.0.1:18082; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Accept-Encoding "";
     include $root/bench/nginx-subfilter.conf; } }
  proxy_cache_path $out/nginx/cache keys_zone=pages:10m max_size=256m;
  server { listen 127.0.0.1:18085; location / { proxy_pass http://origin; proxy_http_version 1.1; proxy_set_header Connection ""; proxy_set_header Accept-Encoding "";
     proxy_cache pages; proxy_cache_valid 200 10m; proxy_cache_lock on;
     include $root/bench/nginx-subfilter.conf; } }
}
NGINX
# The origin-cache variants: the same configs, on other ports, with the
# bench pages cached (nginx's origin sends no freshness: a default TTL).
# (read, not set --: the script's own arguments, soak or idle, must survive.)
for v in "edgeseg.yaml 18083 18086" "edgeseg-passthrough.yaml 18084 18087"; do
  read -r conf port cport <<< "$v"
  { sed -e "s/:$port\"/:$cport\"/" -e "s|dir: templates|dir: $root/bench/templates|" "bench/$conf"
    printf 'cache:\n  origin:\n    paths: ["/page-*"]\n    default_ttl: 10m\n'; } > "$out/cache-$conf"
done

pids=()
cleanup() {
  for f in nginx origin; do
    [ -f "$out/nginx/$f.pid" ] && kill "$(cat "$out/nginx/$f.pid")" 2>/dev/null || true
  done
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
nginx -c "$out/nginx/origin.conf"
nginx -c "$out/nginx/nginx.conf"
(cd bench && exec env GOGC=${GOGC:-100} ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS} EDGESEG_REWRITE_ASK_UNCOMPRESSED=$ASK_UNCOMPRESSED "$out/edgeseg" serve --config edgeseg.yaml) 2>"$out/edgeseg.log" & pids+=($!); pers=$!
(cd bench && exec env GOGC=${GOGC:-100} ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS} "$out/edgeseg" serve --config edgeseg-passthrough.yaml) 2>"$out/edgeseg-pass.log" & pids+=($!); pass=$!
sed 's/:18084"/:18088"/' bench/edgeseg-passthrough.yaml > "$out/passthrough-b.yaml"
(cd bench && exec env GOGC=${GOGC:-100} ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS} "$out/edgeseg" serve --config "$out/passthrough-b.yaml") 2>"$out/edgeseg-pass-b.log" & pids+=($!); passb=$!
ports="18080 18081 18082 18083 18084 18088"
if [ "$CACHE" = 1 ]; then
  (cd bench && exec env GOGC=${GOGC:-100} ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS} EDGESEG_REWRITE_ASK_UNCOMPRESSED=$ASK_UNCOMPRESSED "$out/edgeseg" serve --config "$out/cache-edgeseg.yaml") 2>"$out/edgeseg-cache.log" & pids+=($!); persc=$!
  (cd bench && exec env GOGC=${GOGC:-100} ${GOMAXPROCS:+GOMAXPROCS=$GOMAXPROCS} "$out/edgeseg" serve --config "$out/cache-edgeseg-passthrough.yaml") 2>"$out/edgeseg-pass-cache.log" & pids+=($!); passc=$!
  ports="$ports 18085 18086 18087"
fi
for port in $ports; do
  for i in $(seq 50); do curl -s -o /dev/null "http://127.0.0.1:$port/page-5k.html" && break; sleep 0.1; done
done
# Each proxy under test must make all three replacements.
all_three() {
  [[ $1 == *"Deals picked for you"* && $1 == *"Your sale alerts are on"* && $1 == *"Free shipping on all sale orders"* &&
     $1 != *"Great prices every day"* && $1 != *"Sign up for our newsletter"* && $1 != *"Free shipping over"* ]]
}
# The personalizing edgeseg must really personalize.
# (Bodies are captured first: grep -q closing a pipe early fails it under pipefail.)
body=$(curl -s -H 'Accept: text/html' -A 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36' "http://127.0.0.1:18083/page-60k.html?utm_campaign=promo")
all_three "$body" || { echo "edgeseg is not filling the three slots; see $out/edgeseg.log" >&2; exit 1; }
body=$(curl -s "http://127.0.0.1:18082/page-60k.html")
all_three "$body" || { echo "nginx sub_filter is not making the three replacements" >&2; exit 1; }
if [[ " $PAGES " == *" 60k-dyn-gz "* ]]; then
  # Both must fill the compressed page, and send it compressed.
  for port in 18083 18082; do
    enc=$(curl -s -o /dev/null -w '%header{content-encoding}' -H 'Accept-Encoding: gzip' -H 'Accept: text/html' -A 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36' "http://127.0.0.1:$port/page-60k-dyn-gz.html?utm_campaign=promo")
    body=$(curl -s --compressed -H 'Accept: text/html' -A 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36' "http://127.0.0.1:$port/page-60k-dyn-gz.html?utm_campaign=promo")
    [ "$enc" = gzip ] && all_three "$body" || { echo "the proxy on $port does not fill the gzip page (Content-Encoding: $enc)" >&2; exit 1; }
  done
fi
if [ "$CACHE" = 1 ]; then
  for port in 18086 18085; do
    body=$(curl -s -H 'Accept: text/html' -A 'Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0 Safari/537.36' "http://127.0.0.1:$port/page-60k.html?utm_campaign=promo")
    all_three "$body" || { echo "the cached proxy on $port is not personalizing" >&2; exit 1; }
  done
fi

# The proxies' own processes: nginx's master and workers, not the origin's.
nginx_pids=$(pgrep -P "$(cat "$out/nginx/nginx.pid")" | paste -sd, -),$(cat "$out/nginx/nginx.pid")
encoding() { [[ $1 == *-gz ]] && echo gzip || echo identity; }
run() { # name port page pids [rate]
  "$out/edgeseg-bench" -name "$1" -addr "127.0.0.1:$2" -path "/page-$3.html?utm_campaign=promo" -page "$3" \
    -encoding "$(encoding "$3")" -pids "$4" -d "$DURATION" -c "$CONNS" -rate "${5:-0}" | tee -a "$out/results.jsonl" >/dev/null
}

if [ "${1:-}" = tail ]; then
  # The p99 target compares two processes at one rate, and a p99 moves
  # between runs of the same build: the second pass-through edgeseg, run in
  # turn with the other two, shows how far it moves with nothing changed.
  : > "$out/tail.jsonl"
  for page in $PAGES; do
    for port in 18083 18084 18088; do "$out/edgeseg-bench" -addr 127.0.0.1:$port -path "/page-$page.html?utm_campaign=promo" -encoding "$(encoding "$page")" -d 1s -c "$CONNS" >/dev/null; done
    max=$("$out/edgeseg-bench" -addr 127.0.0.1:18083 -path "/page-$page.html?utm_campaign=promo" -encoding "$(encoding "$page")" -d "$DURATION" -c "$CONNS" | sed 's/.*"rps":\([0-9.]*\).*/\1/')
    half=$(awk "BEGIN{print int($max/2)}")
    echo "page $page: edgeseg's max $max req/s; ${TAIL_ROUNDS:-6} rounds at $half req/s"
    for round in $(seq "${TAIL_ROUNDS:-6}"); do
      for t in "edgeseg-passthrough 18084 $pass" "edgeseg-passthrough-b 18088 $passb" "edgeseg 18083 $pers"; do
        read -r name port pid <<< "$t"
        "$out/edgeseg-bench" -name "$name" -addr "127.0.0.1:$port" -path "/page-$page.html?utm_campaign=promo" -page "$page" \
          -encoding "$(encoding "$page")" -pids "$pid" -d "$DURATION" -c "$CONNS" -rate "$half" >> "$out/tail.jsonl"
      done
    done
  done
  "$out/edgeseg-bench" -tail "$out/tail.jsonl"
  exit 0
fi

if [ "${1:-}" = idle ]; then
  N=${IDLE:-8000}
  echo "idle: $N keep-alive connections, each served the 60 KB page once, left open"
  ulimit -n $((N + 4096)) 2>/dev/null || true
  for t in "edgeseg 18083 $pers" "edgeseg-passthrough 18084 $pass" "nginx-subfilter 18082 $nginx_pids"; do
    set -- $t
    printf '%-20s ' "$1"; "$out/edgeseg-bench" -addr "127.0.0.1:$2" -path "/page-60k.html?utm_campaign=promo" -pids "$3" -idle "$N"
  done
  exit 0
fi

if [ "${1:-}" = soak ]; then
  N=${VISITORS:-1000000}
  page=${SOAK_PAGE:-5k}
  echo "soak: $N distinct visitors through edgeseg on the $page page (RSS sampled every 10%)"
  for i in $(seq 10); do
    "$out/edgeseg-bench" -name soak -addr 127.0.0.1:18083 -path "/page-$page.html?utm_campaign=promo" -visitors 0 \
      -c "$CONNS" -d 600s -pids "$pers" -page soak -rate 0 -n $((N/10)) 2>/dev/null | sed "s/^/$((i*10))%: /"
  done
  exit 0
fi

: > "$out/results.jsonl"
median_rps() { # target page
  grep "\"target\":\"$1\"" "$out/results.jsonl" | grep "\"page\":\"$2\"" | grep -v '"rate"' |
    sed 's/.*"rps":\([0-9.]*\).*/\1/' | sort -n | awk '{v[NR]=$1} END{print (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2)}'
}
for page in $PAGES; do
  echo "page $page: warm-up"
  for port in ${ports#18080 }; do "$out/edgeseg-bench" -addr 127.0.0.1:$port -path "/page-$page.html?utm_campaign=promo" -encoding "$(encoding "$page")" -d 1s -c "$CONNS" >/dev/null; done
  for round in $(seq "$ROUNDS"); do
    echo "page $page: round $round of $ROUNDS at max rate"
    run nginx-proxy 18081 "$page" "$nginx_pids"
    run nginx-subfilter 18082 "$page" "$nginx_pids"
    run edgeseg-passthrough 18084 "$page" "$pass"
    run edgeseg 18083 "$page" "$pers"
    if [ "$CACHE" = 1 ]; then
      run nginx-subfilter+cache 18085 "$page" "$nginx_pids"
      run edgeseg-passthrough+cache 18087 "$page" "$passc"
      run edgeseg+cache 18086 "$page" "$persc"
    fi
  done
  half=$(awk "BEGIN{print int($(median_rps edgeseg "$page")/2)}")
  [ "$CACHE" = 1 ] && halfc=$(awk "BEGIN{print int($(median_rps edgeseg+cache "$page")/2)}")
  for round in $(seq "$ROUNDS"); do
    echo "page $page: round $round of $ROUNDS at half of edgeseg's max"
    run edgeseg-passthrough 18084 "$page" "$pass" "$half"
    run edgeseg-passthrough-b 18088 "$page" "$passb" "$half"
    run edgeseg 18083 "$page" "$pers" "$half"
    if [ "$CACHE" = 1 ]; then
      run edgeseg-passthrough+cache 18087 "$page" "$passc" "$halfc"
      run edgeseg+cache 18086 "$page" "$persc" "$halfc"
    fi
  done
done
echo
"$out/edgeseg-bench" -table "$out/results.jsonl"
