package prstate

import (
	"context"
	"strconv"
	"sync/atomic"
)

// Delivery is the forge's delivery a handler acts on (GitHub's X-GitHub-Delivery, GitLab's Idempotency-Key).
// A delivery is handled again when the bot was killed after acting on it and before marking it done, or when
// it failed after acting and is retried: the effects it made are keyed by it, so the second handling finds
// them instead of making them again.
type Delivery struct {
	Forge, ID string
	replies   *atomic.Int64
}

type deliveryKey struct{}

// WithDelivery is ctx for handling the forge's delivery id ("": ctx as it is). Work a handler leaves running
// in the background has a context of its own, and its effects are not the delivery's.
func WithDelivery(ctx context.Context, forge, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, deliveryKey{}, Delivery{Forge: forge, ID: id, replies: new(atomic.Int64)})
}

// DeliveryOf is the delivery ctx handles, if any.
func DeliveryOf(ctx context.Context) (Delivery, bool) {
	d, ok := ctx.Value(deliveryKey{}).(Delivery)
	return d, ok
}

// Key names the delivery across forges.
func (d Delivery) Key() string { return d.Forge + "|" + d.ID }

// NextReply names the next reply the handler makes: the delivery's n-th, in the order they are made, which a
// replay repeats.
func (d Delivery) NextReply() string {
	return "delivery|" + d.Key() + "|reply|" + strconv.FormatInt(d.replies.Add(1), 10)
}
