package server

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/cloister-dev/cloister/collateral"
)

// metrics are the service's Prometheus collectors, registered on a
// registry of their own so that several servers can run in one process.
type metrics struct {
	registry       *prometheus.Registry
	attestations   *prometheus.CounterVec
	attestLatency  *prometheus.HistogramVec
	verifyLatency  prometheus.Histogram
	releases       *prometheus.CounterVec
	releaseLatency prometheus.Histogram
	requests       *prometheus.CounterVec
	requestLatency *prometheus.HistogramVec
	commitWrites   prometheus.Histogram
	commitLatency  prometheus.Histogram
	commitFailures prometheus.Counter
	unopenable     prometheus.Gauge
}

func newMetrics() *metrics {
	buckets := prometheus.ExponentialBuckets(0.0005, 2, 14) // 0.5 ms to about 4 s
	m := &metrics{
		registry: prometheus.NewRegistry(),
		attestations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloister_attestations_total",
			Help: "KBS attestations by TEE and EAR status (error when no token was issued).",
		}, []string{"tee", "status"}),
		attestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cloister_attestation_duration_seconds", Help: "Duration of /kbs/v0/attest requests.", Buckets: buckets,
		}, []string{"tee"}),
		verifyLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cloister_verification_duration_seconds", Help: "Duration of evidence verification alone.", Buckets: buckets,
		}),
		releases: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloister_resource_requests_total",
			Help: "KBS resource requests by outcome: released, or the reason for the denial.",
		}, []string{"outcome"}),
		releaseLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: "cloister_resource_duration_seconds", Help: "Duration of /kbs/v0/resource requests.", Buckets: buckets,
		}),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "cloister_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		requestLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "cloister_http_request_duration_seconds", Help: "HTTP request duration by route.", Buckets: buckets,
		}, []string{"route"}),
		commitWrites: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cloister_kbs_commit_writes",
			Help:    "KBS writes (a session write, an audit record, or both) per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 8), // 1 to 128, the largest batch
		}),
		commitLatency: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "cloister_kbs_commit_duration_seconds",
			Help:    "Duration of KBS group-commit transactions, sync included.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14), // 0.1 ms to about 0.8 s
		}),
		commitFailures: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "cloister_kbs_commit_failures_total",
			Help: "KBS group-commit transactions that rolled back. The writes of a failed batch of several are retried one by one and counted again.",
		}),
		unopenable: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "cloister_secrets_unopenable",
			Help: "Stored secrets sealed under a master key that this service does not hold, which it cannot release. Checked at start and every minute.",
		}),
	}
	m.registry.MustRegister(m.attestations, m.attestLatency, m.verifyLatency, m.releases, m.releaseLatency,
		m.requests, m.requestLatency, m.commitWrites, m.commitLatency, m.commitFailures, m.unopenable,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.registry.MustRegister(collateral.Collectors()...)
	return m
}

// Attestation implements kbs.Observer.
func (m *metrics) Attestation(tee, status string, d time.Duration) {
	m.attestations.WithLabelValues(tee, status).Inc()
	m.attestLatency.WithLabelValues(tee).Observe(d.Seconds())
}

// Release implements kbs.Observer.
func (m *metrics) Release(outcome string, d time.Duration) {
	m.releases.WithLabelValues(outcome).Inc()
	m.releaseLatency.Observe(d.Seconds())
}

// Commit implements kbs.CommitObserver.
func (m *metrics) Commit(writes int, d time.Duration, committed bool) {
	m.commitWrites.Observe(float64(writes))
	m.commitLatency.Observe(d.Seconds())
	if !committed {
		m.commitFailures.Inc()
	}
}
