package metrics

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// storeTimeout bounds a scrape's read of the store: a scrape that waits behind a slow disk says so (store_up 0)
// rather than piling up.
const storeTimeout = 5 * time.Second

var (
	descStoreUp = prometheus.NewDesc(namespace+"_store_up",
		"1 when the store's gauges below were read at this scrape, 0 when the store could not be read.", nil, nil)
	descQueued = prometheus.NewDesc(namespace+"_deliveries_queued",
		"Deliveries stored and not handled yet (pending, backing off before a retry, or in flight), by forge.", []string{"forge"}, nil)
	descOldestQueued = prometheus.NewDesc(namespace+"_deliveries_oldest_queued_age_seconds",
		"How long ago the oldest delivery not handled yet was received, by forge (absent when none waits).", []string{"forge"}, nil)
	descDead = prometheus.NewDesc(namespace+"_deliveries_dead",
		"Deliveries given up on after the retry window, kept for `dagctl-bot deliveries retry`, by forge.", []string{"forge"}, nil)
	descOutbox = prometheus.NewDesc(namespace+"_outbox_pending_writes",
		"Forge writes (statuses, comments, replies, reactions) in the outbox, not sent yet, by forge.", []string{"forge"}, nil)
	descOldestOutbox = prometheus.NewDesc(namespace+"_outbox_oldest_pending_age_seconds",
		"How long ago the oldest unsent forge write was enqueued, by forge (absent when none waits).", []string{"forge"}, nil)
	descAwaiting = prometheus.NewDesc(namespace+"_plans_awaiting_approval",
		"Ready plans, the newest of their PR's project and environment, whose last approval evaluation was not satisfied and that were not applied, by forge.", []string{"forge"}, nil)
)

// storeCollector reads the gauges from the store at each scrape: they are the store's word, and a restart or a
// retry by hand (`dagctl-bot deliveries retry`) cannot make them drift.
type storeCollector struct {
	store Gauger
	now   func() time.Time
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descStoreUp, descQueued, descOldestQueued, descDead, descOutbox, descOldestOutbox, descAwaiting} {
		ch <- d
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), storeTimeout)
	defer cancel()
	g, err := c.store.Gauges(ctx)
	if err != nil {
		ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 0)
		return
	}
	ch <- prometheus.MustNewConstMetric(descStoreUp, prometheus.GaugeValue, 1)
	now := c.now()
	counts := func(d *prometheus.Desc, byForge map[string]int) {
		for forge, n := range byForge {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, float64(n), forge)
		}
	}
	ages := func(d *prometheus.Desc, byForge map[string]time.Time) {
		for forge, at := range byForge {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, max(now.Sub(at).Seconds(), 0), forge)
		}
	}
	counts(descQueued, g.Queued)
	ages(descOldestQueued, g.OldestQueued)
	counts(descDead, g.Dead)
	counts(descOutbox, g.OutboxPending)
	ages(descOldestOutbox, g.OldestOutbox)
	counts(descAwaiting, g.AwaitingApproval)
}
