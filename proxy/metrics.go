package proxy

import (
	"fmt"
	"strconv"
	"sync/atomic"

	"github.com/VictoriaMetrics/metrics"
)

// latencyBuckets are the request latency histogram bounds, in seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// proxyMetrics are the request path's counters. Counters for a status are
// created on first use by code; the set is bounded (statuses are 100-599).
type proxyMetrics struct {
	set           *metrics.Set
	latency       *metrics.PrometheusHistogram
	originLatency *metrics.PrometheusHistogram
	panics        *metrics.Counter
	shed          *metrics.Counter
	badRequests   *metrics.Counter
	// proxyHeaderErrors counts connections closed for a missing or
	// malformed PROXY protocol header.
	proxyHeaderErrors *metrics.Counter
	upgrades          *metrics.Counter
	rewriteSkipped    *metrics.Counter
	rewriteErrors     *metrics.Counter
	connsRefused      *metrics.Counter
	noBudget          *metrics.Counter
	cacheNoBudget     *metrics.Counter
	// unbuffered counts bodies within origin.buffer_bytes streamed for
	// want of room in the budget: each held its origin connection.
	unbuffered    *metrics.Counter
	streamedPages [2]*metrics.Counter // [filled]
	// byStatus caches the request counters: [status][personalized].
	byStatus [600][2]atomic.Pointer[metrics.Counter]
}

func newProxyMetrics(set *metrics.Set) *proxyMetrics {
	if set == nil {
		set = metrics.NewSet()
	}
	return &proxyMetrics{
		set:               set,
		latency:           set.GetOrCreatePrometheusHistogramExt("edgeseg_request_duration_seconds", latencyBuckets),
		originLatency:     set.GetOrCreatePrometheusHistogramExt("edgeseg_origin_duration_seconds", latencyBuckets),
		panics:            set.GetOrCreateCounter("edgeseg_panics_total"),
		shed:              set.GetOrCreateCounter("edgeseg_shed_total"),
		badRequests:       set.GetOrCreateCounter("edgeseg_bad_requests_total"),
		proxyHeaderErrors: set.GetOrCreateCounter("edgeseg_proxy_protocol_errors_total"),
		upgrades:          set.GetOrCreateCounter("edgeseg_upgrades_total"),
		rewriteSkipped:    set.GetOrCreateCounter(`edgeseg_rewrite_skipped_total{reason="too_large"}`),
		rewriteErrors:     set.GetOrCreateCounter("edgeseg_rewrite_errors_total"),
		connsRefused:      set.GetOrCreateCounter("edgeseg_connections_refused_total"),
		noBudget:          set.GetOrCreateCounter(`edgeseg_rewrite_skipped_total{reason="memory"}`),
		cacheNoBudget:     set.GetOrCreateCounter(`edgeseg_origin_cache_skipped_total{reason="memory"}`),
		unbuffered:        set.GetOrCreateCounter(`edgeseg_origin_unbuffered_total{reason="memory"}`),
		streamedPages: [2]*metrics.Counter{
			set.GetOrCreateCounter(`edgeseg_rewrite_streamed_total{filled="false"}`),
			set.GetOrCreateCounter(`edgeseg_rewrite_streamed_total{filled="true"}`),
		},
	}
}

// request counts one finished request by status class and whether it was
// personalized.
func (m *proxyMetrics) request(status int, personalized bool) {
	p := 0
	if personalized {
		p = 1
	}
	if status < 100 || status >= len(m.byStatus) {
		status = 599
	}
	c := m.byStatus[status][p].Load()
	if c == nil {
		c = m.set.GetOrCreateCounter(`edgeseg_requests_total{status="` + strconv.Itoa(status) + `",personalized="` + strconv.FormatBool(personalized) + `"}`)
		m.byStatus[status][p].Store(c)
	}
	c.Inc()
}

// originError counts an origin failure by cause.
func (m *proxyMetrics) originError(cause string) {
	m.set.GetOrCreateCounter(fmt.Sprintf(`edgeseg_origin_errors_total{cause=%q}`, cause)).Inc()
}

// streamed counts a streamed page rewritten as it was sent, by whether a
// slot was filled.
func (m *proxyMetrics) streamed(filled bool) {
	i := 0
	if filled {
		i = 1
	}
	m.streamedPages[i].Inc()
}
