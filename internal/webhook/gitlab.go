package webhook

import (
	gladapter "github.com/dagctl/dagctl-bot/internal/vcs/gitlab"
)

// GitLabSource is GitLab's part of the intake: X-Gitlab-Event; the delivery id from Idempotency-Key (the same
// across GitLab's retries of one event, 17.4+), else X-Gitlab-Event-UUID; X-Gitlab-Token, the secret itself
// (GitLab signs nothing), compared in constant time; deliveries of one merge request in order.
func GitLabSource(secret func() []byte) Source {
	return Source{
		Forge:           gladapter.Name,
		EventHeader:     gladapter.EventHeader,
		DeliveryHeaders: []string{gladapter.IdempotencyHeader, gladapter.EventUUIDHeader},
		AuthHeader:      gladapter.TokenHeader,
		Secret:          secret,
		SetupHint:       "set DAGCTL_GITLAB_WEBHOOK_SECRET",
		Verify:          VerifyToken,
		OrderingKey:     gladapter.OrderingKey,
	}
}
