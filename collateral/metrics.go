package collateral

import "github.com/prometheus/client_golang/prometheus"

// Metrics of the online collateral path, labelled by upstream host. Register
// them with Collectors on the registry a service exposes at /metrics.
var (
	cacheEvents = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cloister", Subsystem: "collateral", Name: "cache_events_total",
		Help: "Collateral cache lookups by result: hit, miss, refresh, stale (served within the grace while the upstream failed).",
	}, []string{"host", "result"})
	upstreamErrors = prometheus.NewCounterVec(prometheus.CounterOpts{
		Namespace: "cloister", Subsystem: "collateral", Name: "upstream_errors_total",
		Help: "Failed HTTP attempts against collateral services, including retried ones.",
	}, []string{"host"})
	fetchLatency = prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "cloister", Subsystem: "collateral", Name: "fetch_seconds",
		Help:    "Latency of one HTTP attempt against a collateral service.",
		Buckets: prometheus.ExponentialBuckets(0.01, 2, 12),
	}, []string{"host"})
)

// Collectors returns the collateral metrics for registration.
func Collectors() []prometheus.Collector {
	return []prometheus.Collector{cacheEvents, upstreamErrors, fetchLatency}
}
