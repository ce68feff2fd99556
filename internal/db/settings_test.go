package db

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testCredentials() AppCredentials {
	return AppCredentials{AppID: 123456, Slug: "dagctl-acme", ClientID: "Iv1.abc",
		ClientSecret: "client-secret-value", WebhookSecret: "webhook-secret-value",
		PrivateKeyPEM: "-----BEGIN RSA PRIVATE KEY-----\nsecret-key-material\n-----END RSA PRIVATE KEY-----\n"}
}

func TestAppCredentialsRoundTrip(t *testing.T) {
	ctx := context.Background()
	clk := newClock()
	s, path := openTemp(t, WithClock(clk.Now))

	_, err := s.AppCredentials(ctx, "github")
	assert.ErrorIs(t, err, ErrNotFound)
	assert.Error(t, s.SaveAppCredentials(ctx, "github", AppCredentials{AppID: 1}), "incomplete credentials are refused")

	c := testCredentials()
	require.NoError(t, s.SaveAppCredentials(ctx, "github", c))
	s = reopen(t, s, path)
	got, err := s.AppCredentials(ctx, "github")
	require.NoError(t, err)
	c.CreatedAt = clk.Now()
	assert.Equal(t, c, got)

	replaced := testCredentials()
	replaced.AppID = 999
	require.NoError(t, s.SaveAppCredentials(ctx, "github", replaced))
	got, err = s.AppCredentials(ctx, "github")
	require.NoError(t, err)
	assert.Equal(t, int64(999), got.AppID)
	_, err = s.AppCredentials(ctx, "github.example.com")
	assert.ErrorIs(t, err, ErrNotFound, "credentials are per forge")
}

func TestAppCredentialsNeverPrintTheirSecrets(t *testing.T) {
	c := testCredentials()
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("created app", "app", c)
	asJSON, err := json.Marshal(c)
	require.NoError(t, err)

	for name, out := range map[string]string{
		"%v": fmt.Sprintf("%v", c), "%+v": fmt.Sprintf("%+v", c), "%#v": fmt.Sprintf("%#v", c), "%s": fmt.Sprintf("%s", c),
		"pointer %+v": fmt.Sprintf("%+v", &c), "slog": logged.String(), "json": string(asJSON),
	} {
		assert.Contains(t, out, "123456", name)
		for _, secret := range []string{"client-secret-value", "webhook-secret-value", "secret-key-material"} {
			assert.NotContains(t, out, secret, name)
		}
	}
}
