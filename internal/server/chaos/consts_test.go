package chaos_test

import "github.com/dagctl/dagctl-bot/internal/forgetest/e2e"

const (
	appID         = e2e.AppID
	webhookSecret = e2e.WebhookSecret
	publicURL     = "https://bot.test"
	executionTime = e2e.ExecutionTime
)
