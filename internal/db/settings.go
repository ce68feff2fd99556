package db

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// AppCredentials are what GitHub's app manifest flow returns. They are secrets: String, GoString, LogValue
// and MarshalJSON show only the app's identity, so that printing or logging them leaks nothing.
type AppCredentials struct {
	AppID         int64
	Slug          string
	ClientID      string
	ClientSecret  string
	WebhookSecret string
	PrivateKeyPEM string
	CreatedAt     time.Time // set by the store
}

func (c AppCredentials) String() string {
	return fmt.Sprintf("app %d (%s, client %s, secrets redacted)", c.AppID, c.Slug, c.ClientID)
}

// GoString keeps %#v from printing the secrets.
func (c AppCredentials) GoString() string { return "db.AppCredentials{" + c.String() + "}" }

// LogValue keeps slog from printing the secrets.
func (c AppCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.Int64("app_id", c.AppID), slog.String("slug", c.Slug), slog.String("client_id", c.ClientID))
}

// MarshalJSON keeps a JSON encoder (a debug endpoint, a structured log) from writing the secrets.
func (c AppCredentials) MarshalJSON() ([]byte, error) {
	return json.Marshal(struct {
		AppID    int64  `json:"app_id"`
		Slug     string `json:"slug"`
		ClientID string `json:"client_id"`
	}{c.AppID, c.Slug, c.ClientID})
}

// storedCredentials is the stored form; it is never logged.
type storedCredentials struct {
	AppID         int64  `json:"app_id"`
	Slug          string `json:"slug"`
	ClientID      string `json:"client_id"`
	ClientSecret  string `json:"client_secret"`
	WebhookSecret string `json:"webhook_secret"`
	PrivateKeyPEM string `json:"private_key_pem"`
}

func appCredentialsKey(forge string) string { return "app_credentials/" + forge }

// SaveAppCredentials stores the app credentials for a forge, replacing earlier ones.
func (s *Store) SaveAppCredentials(ctx context.Context, forge string, c AppCredentials) error {
	if c.AppID == 0 || c.PrivateKeyPEM == "" || c.WebhookSecret == "" {
		return fmt.Errorf("save app credentials: app id, private key and webhook secret are required")
	}
	value, err := json.Marshal(storedCredentials{c.AppID, c.Slug, c.ClientID, c.ClientSecret, c.WebhookSecret, c.PrivateKeyPEM})
	if err != nil {
		return err
	}
	return s.write(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at`,
			appCredentialsKey(forge), value, s.nowMillis())
		return err
	})
}

// AppCredentials returns the stored app credentials for a forge, or ErrNotFound before the app was created.
func (s *Store) AppCredentials(ctx context.Context, forge string) (AppCredentials, error) {
	var value []byte
	var at int64
	err := s.db.QueryRowContext(ctx, `SELECT value, updated_at FROM settings WHERE key = ?`, appCredentialsKey(forge)).Scan(&value, &at)
	if _, err := one(0, err, "app credentials for "+forge); err != nil {
		return AppCredentials{}, err
	}
	var sc storedCredentials
	if err := json.Unmarshal(value, &sc); err != nil {
		return AppCredentials{}, fmt.Errorf("app credentials for %s: stored value is not valid", forge) // never echo the value
	}
	return AppCredentials{AppID: sc.AppID, Slug: sc.Slug, ClientID: sc.ClientID, ClientSecret: sc.ClientSecret,
		WebhookSecret: sc.WebhookSecret, PrivateKeyPEM: sc.PrivateKeyPEM, CreatedAt: fromMillis(at)}, nil
}

// SigningKey returns the bot's random key for a purpose (e.g. "log-links"), creating it on first use. It is
// stored so that what it signed stays valid across restarts.
func (s *Store) SigningKey(ctx context.Context, purpose string) ([]byte, error) {
	key := "signing_key/" + purpose
	var value []byte
	err := s.write(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT value FROM settings WHERE key = ?`, key).Scan(&value)
		if err == nil {
			return nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		value = make([]byte, 32)
		if _, err := rand.Read(value); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO settings (key, value, updated_at) VALUES (?, ?, ?)`, key, value, s.nowMillis())
		return err
	})
	return value, err
}
