// Package metrics is the bot's Prometheus instrumentation: one registry the server owns (never the global
// default), the metrics of docs/operations.md#metrics, and the adapters that feed them. The core never imports
// it: the intake, the apply sequence and the store expose small hooks or plain reads, and this package turns
// them into metrics (an executor and an HTTP transport that observe, a collector that reads the store at each
// scrape).
//
// Every label has a bounded set of values: forge names (the configured forges), event kinds (of verified
// deliveries only: the forge's own vocabulary), fixed reasons and outcomes, status classes. Repository names, PR
// numbers, users and environments are never labels: they grow without bound, and they would tell whoever reads
// /metrics what the bot works on.
package metrics

import (
	"context"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/webhook"
)

const namespace = "dagctl"

// Metrics are the bot's metrics and the registry that serves them.
type Metrics struct {
	registry *prometheus.Registry

	deliveriesReceived   *prometheus.CounterVec
	deliveriesDuplicate  *prometheus.CounterVec
	deliveriesRejected   *prometheus.CounterVec
	jobsStarted          *prometheus.CounterVec
	jobsFinished         *prometheus.CounterVec
	jobDuration          *prometheus.HistogramVec
	forgeCalls           *prometheus.CounterVec
	forgeRateLimitRemain *prometheus.GaugeVec
	lockWait             *prometheus.HistogramVec
}

// Gauger reads what the store holds now; *db.Store is one.
type Gauger interface {
	Gauges(ctx context.Context) (db.Gauges, error)
}

// New builds the metrics on a registry of their own, with the Go runtime's and the process's collectors.
func New() *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		deliveriesReceived: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deliveries_received_total",
			Help: "Webhook deliveries whose signature or token was verified, by forge and event kind (duplicates included).",
		}, []string{"forge", "event"}),
		deliveriesDuplicate: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deliveries_duplicate_total",
			Help: "Verified deliveries the queue already held (a forge's redelivery), answered 200 and not queued again.",
		}, []string{"forge"}),
		deliveriesRejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "deliveries_rejected_total",
			Help: "Webhook requests the intake refused, by forge and reason.",
		}, []string{"forge", "reason"}),
		jobsStarted: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_started_total",
			Help: "Jobs this process started, by kind (plan, apply, cleanup).",
		}, []string{"kind"}),
		jobsFinished: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "jobs_finished_total",
			Help: "Jobs that ended while this process followed them (started or re-attached after a restart), by kind and outcome.",
		}, []string{"kind", "outcome"}),
		jobDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "job_duration_seconds",
			Help: "How long finished jobs ran, by kind and outcome.",
			// Plans take seconds to minutes, applies up to hours.
			Buckets: []float64{1, 5, 15, 30, 60, 120, 300, 600, 1200, 1800, 3600, 7200, 14400},
		}, []string{"kind", "outcome"}),
		forgeCalls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "forge_requests_total",
			Help: "HTTP requests to a forge's API (each attempt, retries of a rate limit included), by forge and status class (2xx, 3xx, 4xx, 429, 5xx, error: no answer).",
		}, []string{"forge", "status_class"}),
		forgeRateLimitRemain: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace, Name: "forge_rate_limit_remaining",
			Help: "The requests left in the rate-limit window, as the forge's last answer that said so put it (GitHub: of the installation or app that made the request).",
		}, []string{"forge"}),
		lockWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "lock_wait_seconds",
			Help:    "How long applies waited for their environment's lock, by outcome (acquired, gave_up: cancelled, failed or the bot stopping).",
			Buckets: []float64{0.1, 0.5, 1, 5, 15, 30, 60, 300, 900, 1800, 3600, 7200},
		}, []string{"outcome"}),
	}
	m.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.deliveriesReceived, m.deliveriesDuplicate, m.deliveriesRejected,
		m.jobsStarted, m.jobsFinished, m.jobDuration,
		m.forgeCalls, m.forgeRateLimitRemain, m.lockWait,
	)
	return m
}

// CollectStore adds the store's gauges, read from store at each scrape; ages are measured on now, the clock
// the store stamps its rows with (nil: the wall clock). Call it once, when the store is open.
func (m *Metrics) CollectStore(store Gauger, now func() time.Time) {
	if now == nil {
		now = time.Now
	}
	m.registry.MustRegister(&storeCollector{store: store, now: now})
}

// Registry is where the metrics are registered (tests gather from it).
func (m *Metrics) Registry() *prometheus.Registry { return m.registry }

// Handler serves the registry in Prometheus's exposition formats (GET /metrics). A scrape during which the
// store cannot be read still serves every other metric; dagctl_store_up says 0 then.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry, ErrorHandling: promhttp.ContinueOnError})
}

// The intake's hook: webhook.Observer.
var _ webhook.Observer = (*Metrics)(nil)

// Received counts a verified delivery.
func (m *Metrics) Received(forge, event string) {
	m.deliveriesReceived.WithLabelValues(forge, event).Inc()
}

// Duplicate counts a verified delivery the queue already held.
func (m *Metrics) Duplicate(forge string) { m.deliveriesDuplicate.WithLabelValues(forge).Inc() }

// Rejected counts a refused request.
func (m *Metrics) Rejected(forge string, reason webhook.Rejection) {
	m.deliveriesRejected.WithLabelValues(forge, string(reason)).Inc()
}

// LockWaited observes an apply's wait for its environment's lock (apply.LockWaits).
func (m *Metrics) LockWaited(wait time.Duration, acquired bool) {
	outcome := "acquired"
	if !acquired {
		outcome = "gave_up"
	}
	m.lockWait.WithLabelValues(outcome).Observe(wait.Seconds())
}
