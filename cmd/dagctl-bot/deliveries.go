package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/serverconfig"
)

const deliveriesUsage = `usage:
  dagctl-bot deliveries list [--dead] [-db FILE]        deliveries not done yet (or only the dead ones)
  dagctl-bot deliveries retry ID|--all-dead [-db FILE]  put dead deliveries back in the queue
The database is DAGCTL_DB's (as serve opens it); safe while the bot runs, which picks retried ones up.
`

// runDeliveries lists or retries the intake queue's deliveries in the database serve uses. It opens the same
// file (WAL, short transactions), so it is safe next to a running bot.
func runDeliveries(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "list" && args[0] != "retry") {
		fmt.Fprint(stderr, deliveriesUsage)
		return 2
	}
	verb := args[0]
	fs := flag.NewFlagSet("deliveries "+verb, flag.ContinueOnError)
	fs.SetOutput(stderr)
	path := fs.String("db", dbPathFromEnv(), "the bot's database (DAGCTL_DB)")
	dead := fs.Bool("dead", false, "list: only the dead deliveries")
	allDead := fs.Bool("all-dead", false, "retry: every dead delivery")
	if err := fs.Parse(reorderFlags(args[1:])); err != nil {
		return 2
	}
	var id int64
	if verb == "retry" {
		n, err := strconv.ParseInt(fs.Arg(0), 10, 64)
		if (err != nil) == !*allDead || fs.NArg() > 1 {
			fmt.Fprint(stderr, deliveriesUsage)
			return 2
		}
		id = n
	}
	if _, err := os.Stat(*path); err != nil {
		fmt.Fprintf(stderr, "dagctl-bot deliveries: the database %s: %v\n", *path, err)
		return 1
	}
	store, err := db.Open(*path)
	if err != nil {
		fmt.Fprintf(stderr, "dagctl-bot deliveries: %v\n", err)
		return 1
	}
	defer store.Close()
	if verb == "list" {
		err = listDeliveries(ctx, store, *dead, stdout)
	} else {
		err = retryDeliveries(ctx, store, id, *allDead, stdout)
	}
	if err != nil {
		fmt.Fprintf(stderr, "dagctl-bot deliveries %s: %v\n", verb, err)
		return 1
	}
	return 0
}

func dbPathFromEnv() string {
	if v := os.Getenv(serverconfig.EnvDB); v != "" {
		return v
	}
	return serverconfig.DefaultDB
}

// reorderFlags lets flags follow the positional argument (`retry 12 -db x`), as people type them.
func reorderFlags(args []string) []string {
	var flags, rest []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "-db" || a == "--db":
			flags = append(flags, a)
			if i+1 < len(args) {
				flags = append(flags, args[i+1])
				i++
			}
		case strings.HasPrefix(a, "-"):
			flags = append(flags, a)
		default:
			rest = append(rest, a)
		}
	}
	return append(flags, rest...)
}

func listDeliveries(ctx context.Context, store *db.Store, onlyDead bool, stdout io.Writer) error {
	ds, err := store.ListDeliveries(ctx, onlyDead)
	if err != nil {
		return err
	}
	if len(ds) == 0 {
		if onlyDead {
			fmt.Fprintln(stdout, "no dead deliveries")
		} else {
			fmt.Fprintln(stdout, "no deliveries waiting")
		}
		return nil
	}
	tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tFORGE\tDELIVERY\tEVENT\tKEY\tATTEMPTS\tRECEIVED\tLAST ERROR")
	for _, d := range ds {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\t%d\t%s\t%s\n", d.ID, d.Status, d.Forge, d.DeliveryID, d.Event, d.OrderingKey,
			d.Attempts, d.ReceivedAt.UTC().Format(time.RFC3339), oneLine(d.LastError))
	}
	return tw.Flush()
}

func retryDeliveries(ctx context.Context, store *db.Store, id int64, all bool, stdout io.Writer) error {
	if all {
		n, err := store.RetryDeadDeliveries(ctx)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "%d dead deliveries are pending again; the running bot takes them in their keys' order\n", n)
		return nil
	}
	if err := store.RetryDelivery(ctx, id); err != nil {
		if errors.Is(err, db.ErrNotFound) {
			return fmt.Errorf("delivery %d is not dead (see `dagctl-bot deliveries list --dead`)", id)
		}
		return err
	}
	fmt.Fprintf(stdout, "delivery %d is pending again; the running bot takes it in its key's order\n", id)
	return nil
}

// oneLine keeps a table row on one line, however the error was written.
func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
