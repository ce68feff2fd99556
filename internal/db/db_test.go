package db

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenAppliesEveryMigrationAndReopenIsIdempotent(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	want, err := loadMigrations(migrationsFS)
	require.NoError(t, err)
	require.NotEmpty(t, want)

	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, len(want), v)

	s = reopen(t, s, path)
	var rows int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&rows))
	assert.Equal(t, len(want), rows, "a reopen must not apply anything twice")
}

func TestOpenConfiguresTheConnection(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	var mode string
	var fk, busy int
	require.NoError(t, s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode))
	require.NoError(t, s.db.QueryRowContext(ctx, `PRAGMA foreign_keys`).Scan(&fk))
	require.NoError(t, s.db.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy))
	assert.Equal(t, "wal", mode)
	assert.Equal(t, 1, fk)
	assert.Equal(t, int(busyTimeout.Milliseconds()), busy)

	info, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o600), info.Mode().Perm(), "the file holds credentials")
}

func TestOpenRejectsPathsThatAreNotFiles(t *testing.T) {
	for _, p := range []string{"", ":memory:", "file:x.db", "x.db?mode=memory"} {
		_, err := Open(p)
		assert.Error(t, err, p)
	}
}

func TestOpenRefusesASchemaNewerThanTheBinary(t *testing.T) {
	ctx := context.Background()
	s, path := openTemp(t)
	_, err := s.db.ExecContext(ctx, `INSERT INTO schema_migrations (version, name, applied_at) VALUES (999, '0999_future.sql', 0)`)
	require.NoError(t, err)
	require.NoError(t, s.Close())
	_, err = Open(path)
	assert.ErrorContains(t, err, "newer than this binary")
}

func TestLoadMigrationsValidatesNames(t *testing.T) {
	file := func(s string) *fstest.MapFile { return &fstest.MapFile{Data: []byte(s)} }
	for name, fsys := range map[string]fstest.MapFS{
		"bad name":  {"migrations/1_init.sql": file("")},
		"gap":       {"migrations/0001_a.sql": file(""), "migrations/0003_c.sql": file("")},
		"duplicate": {"migrations/0001_a.sql": file(""), "migrations/0001_b.sql": file("")},
		"no first":  {"migrations/0002_b.sql": file("")},
	} {
		_, err := loadMigrations(fsys)
		assert.Error(t, err, name)
	}
	ms, err := loadMigrations(fstest.MapFS{"migrations/0002_b.sql": file("B"), "migrations/0001_a.sql": file("A")})
	require.NoError(t, err)
	assert.Equal(t, []migration{{1, "0001_a.sql", "A"}, {2, "0002_b.sql", "B"}}, ms)
}

func TestAFailingMigrationLeavesNothingBehind(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	base, err := s.SchemaVersion(ctx)
	require.NoError(t, err)

	fsys := fstest.MapFS{}
	for i := 1; i <= base; i++ {
		fsys[fmt.Sprintf("migrations/%04d_old.sql", i)] = &fstest.MapFile{Data: []byte("this is never run again")}
	}
	fsys[fmt.Sprintf("migrations/%04d_broken.sql", base+1)] = &fstest.MapFile{
		Data: []byte("CREATE TABLE half (x INTEGER); INSERT INTO nowhere VALUES (1);"),
	}
	require.Error(t, s.migrate(ctx, fsys))

	v, err := s.SchemaVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, base, v)
	var tables int
	require.NoError(t, s.db.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE name = 'half'`).Scan(&tables))
	assert.Zero(t, tables, "the migration's transaction must roll back entirely")

	fsys[fmt.Sprintf("migrations/%04d_broken.sql", base+1)] = &fstest.MapFile{Data: []byte("CREATE TABLE half (x INTEGER);")}
	require.NoError(t, s.migrate(ctx, fsys))
	v, err = s.SchemaVersion(ctx)
	require.NoError(t, err)
	assert.Equal(t, base+1, v)
}

// Two stores on one file stand for two processes (the bot and a CLI): each serialises its own writes, and
// BEGIN IMMEDIATE with the busy timeout must make them wait for each other instead of failing with
// SQLITE_BUSY. Many goroutines per store write, and read, at the same time.
func TestConcurrentWritersNeverSeeBusy(t *testing.T) {
	ctx := context.Background()
	a, path := openTemp(t)
	b, err := Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })

	const goroutines, writes = 6, 20
	var wg sync.WaitGroup
	errs := make(chan error, 2*2*goroutines*writes) // two stores, a write and a read each
	for _, s := range []*Store{a, b} {
		for g := 0; g < goroutines; g++ {
			wg.Add(1)
			go func(s *Store, g int) {
				defer wg.Done()
				for i := 0; i < writes; i++ {
					// A read followed by a write in one transaction: the pattern that fails with SQLITE_BUSY
					// under deferred transactions, because the read lock cannot be upgraded.
					errs <- s.write(ctx, func(tx *sql.Tx) error {
						var n int
						if err := tx.QueryRowContext(ctx, `SELECT count(*) FROM installations`).Scan(&n); err != nil {
							return err
						}
						_, err := tx.ExecContext(ctx, `INSERT INTO installations (forge, account, owner, created_at, updated_at)
							VALUES ('github', CAST(? AS TEXT), 'acct', 0, 0)`, n+1)
						return err
					})
					_, err := s.ListInstallations(ctx)
					errs <- err
				}
			}(s, g)
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	var n, distinct int
	require.NoError(t, a.db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT account) FROM installations`).Scan(&n, &distinct))
	assert.Equal(t, 2*goroutines*writes, n)
	assert.Equal(t, n, distinct, "every read-then-write saw the previous writes: the transactions were serial")
}

func TestMigrationsOnOneFileFromTwoStoresAtOnce(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dagctl.db")
	var wg sync.WaitGroup
	stores := make([]*Store, 4)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			stores[i], errs[i] = Open(path)
		}(i)
	}
	wg.Wait()
	for i, s := range stores {
		require.NoError(t, errs[i])
		defer s.Close()
	}
	var n int
	require.NoError(t, stores[0].db.QueryRow(`SELECT count(*) FROM schema_migrations`).Scan(&n))
	want, _ := loadMigrations(migrationsFS)
	assert.Equal(t, len(want), n)
}
