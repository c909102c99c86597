// Command edgeseg-bench is the load generator of bench/run.sh: many
// distinct visitors, each keeping the cookies it is given, at the highest
// rate the target sustains (-rate 0) or at a fixed rate, with latency
// measured from the intended send time so a stalled server is not hidden
// (no coordinated omission). It prints one JSON line of results.
package main

import (
	"crypto/tls"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/valyala/fasthttp"
)

// result is what one run measured.
type result struct {
	Target   string  `json:"target"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Non2xx   int64   `json:"non_2xx"`
	Seconds  float64 `json:"seconds"`
	RPS      float64 `json:"rps"`
	P50ms    float64 `json:"p50_ms"`
	P99ms    float64 `json:"p99_ms"`
	P999ms   float64 `json:"p999_ms"`
	Bytes    int64   `json:"bytes"`
	Rate     float64 `json:"rate,omitempty"`
	// CPU is the target processes' CPU time per request, in microseconds.
	CPUus float64 `json:"cpu_us_per_req"`
	// RSSMB is the target processes' resident memory at the end, in MiB.
	RSSMB float64 `json:"rss_mb"`
	Page  string  `json:"page,omitempty"`
}

func main() {
	addr := flag.String("addr", "127.0.0.1:18083", "target host:port")
	path := flag.String("path", "/", "request path")
	name := flag.String("name", "", "target name for the output")
	dur := flag.Duration("d", 6*time.Second, "duration")
	conns := flag.Int("c", 32, "connections (and workers)")
	rate := flag.Float64("rate", 0, "requests per second in all; 0 for as many as possible")
	visitors := flag.Int("visitors", 10000, "distinct visitors; each keeps its cookie (0: every request a new visitor)")
	pidList := flag.String("pids", "", "comma-separated PIDs of the target's processes, for CPU and RSS")
	page := flag.String("page", "", "page label for the output")
	limit := flag.Int64("n", 0, "stop after this many requests (0: run for -d)")
	table := flag.String("table", "", "print the comparison table of a results file (JSON lines) and exit")
	tail := flag.String("tail", "", "print, from a results file of bench/run.sh tail, each round's p99 and what personalizing adds beside what a second pass-through adds, and exit")
	idle := flag.Int("idle", 0, "open this many keep-alive connections, fetch -path once on each, and report the targets' RSS with them idle")
	acceptEncoding := flag.String("encoding", "identity", "the Accept-Encoding requests send (gzip: pages come compressed, as browsers get them)")
	useTLS := flag.Bool("tls", false, "speak HTTPS to the target (its certificate not checked), on connections kept alive as the others")
	slowAt := flag.Duration("slow", 0, "also print to stderr, by 100 ms of the run, how many requests took longer than this and the slowest: whether slow requests come spread out or in bursts")
	flag.Parse()
	if *table != "" {
		if err := printTable(*table, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	if *tail != "" {
		if err := printTail(*tail, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	pids := parsePIDs(*pidList)
	if *idle > 0 {
		if err := holdIdle(*addr, *path, *idle, pids, 3*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		return
	}
	cpu0 := cpuTicks(pids)

	client := &fasthttp.HostClient{Addr: *addr, MaxConns: *conns, ReadTimeout: 10 * time.Second, WriteTimeout: 10 * time.Second,
		MaxIdemponentCallAttempts: 1, ReadBufferSize: 64 << 10}
	if *useTLS {
		client.IsTLS = true
		client.TLSConfig = &tls.Config{InsecureSkipVerify: true} // the bench's own certificate, on loopback
	}
	cookies := make([]atomic.Pointer[[]byte], max(*visitors, 1))
	var reqs, errs, non2xx, bytesIn atomic.Int64
	lat := make([][]time.Duration, *conns)
	slow := make([][]slowRequest, *conns)
	deadline := time.Now().Add(*dur)
	start := time.Now()
	var wg sync.WaitGroup
	for w := 0; w < *conns; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			req, resp := fasthttp.AcquireRequest(), fasthttp.AcquireResponse()
			var interval time.Duration
			next := time.Now()
			if *rate > 0 {
				interval = time.Duration(float64(time.Second) * float64(*conns) / *rate)
				next = next.Add(time.Duration(w) * interval / time.Duration(*conns))
			}
			samples := make([]time.Duration, 0, 1<<16)
			for i := w; ; i += *conns {
				if interval > 0 {
					if d := time.Until(next); d > 0 {
						time.Sleep(d)
					}
				} else {
					next = time.Now()
				}
				if next.After(deadline) || *limit > 0 && reqs.Load() >= *limit {
					break
				}
				req.Reset()
				req.SetRequestURI(*path)
				req.Header.SetHost("shop.test")
				if *useTLS {
					req.URI().SetScheme("https") // the client refuses a request for another scheme than its own
				}
				req.Header.Set("Accept", "text/html")
				req.Header.Set("Sec-Fetch-Dest", "document")
				req.Header.Set("Accept-Encoding", *acceptEncoding)
				req.Header.Set("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0.0.0 Safari/537.36")
				v := -1
				if *visitors > 0 {
					v = i % *visitors
					if c := cookies[v].Load(); c != nil {
						req.Header.SetCookieBytesKV([]byte("edgeseg"), *c)
					}
				}
				err := client.Do(req, resp)
				took := time.Since(next)
				reqs.Add(1)
				if err != nil {
					errs.Add(1)
				} else {
					if resp.StatusCode() < 200 || resp.StatusCode() > 299 {
						non2xx.Add(1)
					}
					bytesIn.Add(int64(len(resp.Body())))
					if v >= 0 {
						if c := resp.Header.PeekCookie("edgeseg"); len(c) > 0 {
							ck := fasthttp.AcquireCookie()
							if ck.ParseBytes(c) == nil {
								val := append([]byte(nil), ck.Value()...)
								cookies[v].Store(&val)
							}
							fasthttp.ReleaseCookie(ck)
						}
					}
				}
				samples = append(samples, took)
				if *slowAt > 0 && took > *slowAt {
					slow[w] = append(slow[w], slowRequest{at: next.Sub(start), took: took})
				}
				if interval > 0 {
					next = next.Add(interval)
				}
			}
			lat[w] = samples
		}(w)
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	var all []time.Duration
	for _, s := range lat {
		all = append(all, s...)
	}
	sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
	q := func(p float64) float64 {
		if len(all) == 0 {
			return 0
		}
		return float64(all[min(len(all)-1, int(p*float64(len(all))))].Microseconds()) / 1000
	}
	r := result{Target: *name, Requests: reqs.Load(), Errors: errs.Load(), Non2xx: non2xx.Load(), Seconds: elapsed,
		RPS: float64(reqs.Load()) / elapsed, P50ms: q(0.50), P99ms: q(0.99), P999ms: q(0.999), Bytes: bytesIn.Load(), Rate: *rate, Page: *page}
	if len(pids) > 0 && r.Requests > 0 {
		r.CPUus = float64(cpuTicks(pids)-cpu0) * 1e6 / float64(clockTicks) / float64(r.Requests)
		r.RSSMB = rssMB(pids)
	}
	if err := json.NewEncoder(os.Stdout).Encode(r); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if *slowAt > 0 {
		printSlow(os.Stderr, slow, *slowAt)
	}
}

// slowRequest is a request that took longer than -slow: when it was meant
// to be sent, from the start of the run, and how long it took.
type slowRequest struct{ at, took time.Duration }

// printSlow prints, for each 100 ms of the run with a slow request, how
// many there were and the slowest.
func printSlow(w io.Writer, slow [][]slowRequest, limit time.Duration) {
	const window = 100 * time.Millisecond
	count := map[time.Duration]int{}
	worst := map[time.Duration]time.Duration{}
	for _, s := range slow {
		for _, r := range s {
			k := r.at.Truncate(window)
			count[k]++
			worst[k] = max(worst[k], r.took)
		}
	}
	keys := make([]time.Duration, 0, len(count))
	for k := range count {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	fmt.Fprintf(w, "requests slower than %v, by %v of the run:\n", limit, window)
	for _, k := range keys {
		fmt.Fprintf(w, "  %6.1fs  %5d  slowest %v\n", k.Seconds(), count[k], worst[k].Round(100*time.Microsecond))
	}
}
