// Package outbox is the bot's durable queue of writes to the forge. The core enqueues what the forge should show
// (a status, a part of the sticky comment, a reply, a reaction) and returns at once; a sender drains each account
// one write at a time, spaced as the forge asks, by priority and then in order, sending only the newest state of
// each key. Writes live in the database until the forge has them, so a restart loses none and a SIGKILL repeats
// none: upserts are idempotent, and a created comment carries a hidden per-write marker by which it is found
// among the bot's own comments before it is created again.
//
// The outbox keeps what later writes need from the forge (a status's StatusRef, a sticky part's comment id), so
// the core never handles forge ids.
package outbox

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// Account is who a write is sent as: the forge and a forge-neutral identity (GitHub: the installation id in
// decimal; GitLab: the token's user). The forge's limits on writes apply per account.
type Account struct {
	Forge string
	ID    string
}

// AccountOf is the account the bot writes to repo as: its forge and vcs.Repo.Account ("" on a forge with one
// token).
func AccountOf(repo vcs.Repo) Account { return Account{Forge: repo.Forge, ID: repo.Account} }

// GitHubAccount is the account of a GitHub App installation.
func GitHubAccount(installationID int64) Account {
	return Account{Forge: "github", ID: strconv.FormatInt(installationID, 10)}
}

// Priority orders an account's writes: lower first, then first in first out.
type Priority int

const (
	// PriorityComment is what a person reads first: the sticky comment, which shows every plan's result. Sent
	// ahead of the statuses that say the same, it comes one write sooner after the last plan ends (BENCHMARKS.md
	// §6); branch protection waits a second longer, which nobody sees.
	PriorityComment Priority = -1
	// PriorityResult is what a person waits for next: a plan's final status, replies.
	PriorityResult Priority = 0
	// PriorityProgress is intermediate state: queued and running statuses, progress in the sticky comment.
	PriorityProgress Priority = 1
	// PriorityOther is the rest: reactions, acknowledgements.
	PriorityOther Priority = 2
)

// The kinds of write, as stored.
const (
	kindStatus     = "status"
	kindRejoin     = "status_rejoin"
	kindStickyPart = "sticky_part"
	kindStickyTrim = "sticky_trim"
	kindReply      = "reply"
	kindReaction   = "reaction"
)

type statusPayload struct {
	Status vcs.Status `json:"status"`
	// Slot is the key's run part when the caller chose it (StatusSlot); "" means the status's ExternalID.
	Slot string `json:"slot,omitempty"`
}

// rejoinPayload writes the status of a key, as last shown, into a pipeline (vcs.Status.Pipeline).
type rejoinPayload struct {
	Key      string `json:"key"`
	Pipeline string `json:"pipeline"`
}

type stickyPartPayload struct {
	PR   int    `json:"pr"`
	Part int    `json:"part"`
	Body string `json:"body"`
}

type stickyTrimPayload struct {
	PR   int `json:"pr"`
	Keep int `json:"keep"`
}

type replyPayload struct {
	PR   int    `json:"pr"`
	Body string `json:"body"`
}

type reactionPayload struct {
	CommentID int64        `json:"comment_id"`
	Reaction  vcs.Reaction `json:"reaction"`
}

// Outbox enqueues writes and, with Run or Drain, sends them.
type Outbox struct {
	store *db.Store
	*sender
}

// New is the outbox over the bot's store; forges gives the forge to send an account's writes through.
func New(store *db.Store, forges func(Account) (Forge, error), cfg Config) *Outbox {
	return &Outbox{store: store, sender: newSender(store, forges, cfg)}
}

// Wake makes a running sender look at the queue now, not at its next poll: a caller that moved the clock
// (a test) or knows writes fell due.
func (o *Outbox) Wake() { o.notify() }

// Keys. Repository names are case-insensitive on the forges, so keys use the lower-cased full name.
func repoKey(repo vcs.Repo) string { return strings.ToLower(repo.FullName()) }

// statusKey identifies one status: the commit and name, and the run of the bot it reports (ExternalID). A
// status of another run on the same commit and name (a plan run again) is another key: on GitHub it is another
// check run, and the earlier run's final state must still reach its own.
func statusKey(repo vcs.Repo, st vcs.Status) string { return slotKey(repo, st, st.ExternalID) }

// slotKey is statusKey with the run part given: a caller whose status keeps one forge status while its
// ExternalID changes (a blocked "not applied yet" that an apply run later completes) names the slot itself.
func slotKey(repo vcs.Repo, st vcs.Status, slot string) string {
	return strings.Join([]string{kindStatus, repoKey(repo), st.CommitSHA, st.Name, slot}, "|")
}

func stickyPrefix(repo vcs.Repo, pr int) string {
	return "sticky|" + repoKey(repo) + "|" + strconv.Itoa(pr) + "|"
}

func stickyPartKey(repo vcs.Repo, pr, part int) string {
	return stickyPrefix(repo, pr) + strconv.Itoa(part)
}

func stickyTrimKey(repo vcs.Repo, pr int) string {
	return "sticky-trim|" + repoKey(repo) + "|" + strconv.Itoa(pr)
}

// PutStatus enqueues a status: only the newest state of (commit, name, run) is sent.
func (o *Outbox) PutStatus(ctx context.Context, acct Account, repo vcs.Repo, st vcs.Status, prio Priority) error {
	if st.Name == "" || st.CommitSHA == "" || st.State == "" {
		return fmt.Errorf("outbox: a status needs a name, a commit and a state (got %q on %q: %q)", st.Name, st.CommitSHA, st.State)
	}
	return o.enqueue(ctx, acct, repo, kindStatus, statusKey(repo, st), "", prio, statusPayload{Status: st})
}

// PutStatusSlot is PutStatus with the key's run part given instead of the status's ExternalID: every write of
// one (commit, name, slot) is one status on the forge, whatever its ExternalID says.
func (o *Outbox) PutStatusSlot(ctx context.Context, acct Account, repo vcs.Repo, st vcs.Status, slot string, prio Priority) error {
	if st.Name == "" || st.CommitSHA == "" || st.State == "" || slot == "" {
		return fmt.Errorf("outbox: a slotted status needs a name, a commit, a state and a slot (got %q on %q: %q, %q)", st.Name, st.CommitSHA, st.State, slot)
	}
	return o.enqueue(ctx, acct, repo, kindStatus, slotKey(repo, st, slot), "", prio, statusPayload{Status: st, Slot: slot})
}

// SlotRef is the forge's ref of the status of (commit, name, slot) ("" while none was sent).
func (o *Outbox) SlotRef(ctx context.Context, acct Account, repo vcs.Repo, sha, name, slot string) (vcs.StatusRef, error) {
	ref, err := o.store.OutboxRef(ctx, acct.Forge, acct.ID, slotKey(repo, vcs.Status{CommitSHA: sha, Name: name}, slot))
	return vcs.StatusRef(ref), err
}

// shownKey is where the outbox keeps the status a key last showed on the forge (written with no pipeline
// named, without its Output), for RejoinSlot.
func shownKey(key string) string { return "shown|" + key }

// RejoinSlot writes the status of (commit, name, slot) again, as the forge last showed it, into a pipeline of
// the forge's (vcs.Status.Pipeline): a pipeline that started after the status was written, which a merge waits
// for. It enqueues nothing when the status was never shown (a write still waiting joins the commit's newest
// pipeline anyway). The status is read when the write is sent, not now, so that a write of the key sent in
// between is what is written; the key's ref stays the status first written (when it was posted does not move).
// Each pipeline's rejoin is its own write, never coalesced with the key's states.
func (o *Outbox) RejoinSlot(ctx context.Context, acct Account, repo vcs.Repo, sha, name, slot, pipeline string, prio Priority) (bool, error) {
	if sha == "" || name == "" || slot == "" || pipeline == "" {
		return false, fmt.Errorf("outbox: a rejoin needs a commit, a name, a slot and a pipeline (got %q, %q, %q, %q)", sha, name, slot, pipeline)
	}
	key := slotKey(repo, vcs.Status{CommitSHA: sha, Name: name}, slot)
	shown, err := o.store.OutboxRef(ctx, acct.Forge, acct.ID, shownKey(key))
	if err != nil || shown == "" {
		return false, err
	}
	err = o.enqueue(ctx, acct, repo, kindRejoin, kindRejoin+"|"+key+"|"+pipeline, "", prio, rejoinPayload{Key: key, Pipeline: pipeline})
	return err == nil, err
}

// AdoptSlotRef records a ref the forge gave before the outbox kept refs (a check run id an earlier version
// stored), so that the slot's next write updates that status instead of creating a second one. A ref the
// outbox has already is kept.
func (o *Outbox) AdoptSlotRef(ctx context.Context, acct Account, repo vcs.Repo, sha, name, slot string, ref vcs.StatusRef) error {
	key := slotKey(repo, vcs.Status{CommitSHA: sha, Name: name}, slot)
	have, err := o.store.OutboxRef(ctx, acct.Forge, acct.ID, key)
	if err != nil || have != "" || ref == "" {
		return err
	}
	return o.store.SetOutboxRef(ctx, acct.Forge, acct.ID, key, string(ref))
}

// Idle reports whether no write is waiting (due or not).
func (o *Outbox) Idle(ctx context.Context) (bool, error) {
	accounts, err := o.store.OutboxAccounts(ctx)
	return len(accounts) == 0, err
}

// StatusRef is the forge's ref of a status the outbox has sent ("" while none was), opaque, for port calls that
// read the status back (when GitHub says a plan's check completed: the approval rules' clock).
func (o *Outbox) StatusRef(ctx context.Context, acct Account, repo vcs.Repo, st vcs.Status) (vcs.StatusRef, error) {
	ref, err := o.store.OutboxRef(ctx, acct.Forge, acct.ID, statusKey(repo, st))
	return vcs.StatusRef(ref), err
}

// PutSticky enqueues the PR's sticky comment as rendered (comments.Comment: part 1 first). Each part is its
// own key, so an unchanged part that was sent is not sent again. Parts a longer earlier version had are
// deleted by a trim write, enqueued when the outbox knows of such parts or has never written this PR's sticky
// (it may then adopt parts written before the outbox existed).
func (o *Outbox) PutSticky(ctx context.Context, acct Account, repo vcs.Repo, pr int, parts []string, prio Priority) error {
	if pr <= 0 || len(parts) == 0 {
		return fmt.Errorf("outbox: a sticky comment needs a pull request and at least one part")
	}
	for i, body := range parts {
		if n, ok := comments.MarkerPart(body); !ok || n != i+1 {
			return fmt.Errorf("outbox: sticky part %d does not start with its marker", i+1)
		}
		p := stickyPartPayload{PR: pr, Part: i + 1, Body: body}
		if err := o.enqueue(ctx, acct, repo, kindStickyPart, stickyPartKey(repo, pr, i+1), "", prio, p); err != nil {
			return err
		}
	}
	known, err := o.store.OutboxRefKeys(ctx, acct.Forge, acct.ID, stickyPrefix(repo, pr))
	if err != nil {
		return err
	}
	trim := len(known) == 0
	for _, k := range known {
		if n, _ := strconv.Atoi(k[strings.LastIndex(k, "|")+1:]); n > len(parts) {
			trim = true
		}
	}
	if !trim {
		return nil
	}
	return o.enqueue(ctx, acct, repo, kindStickyTrim, stickyTrimKey(repo, pr), "", prio, stickyTrimPayload{PR: pr, Keep: len(parts)})
}

// Reply enqueues a new comment on the PR. Replies never coalesce: each one is posted, once.
func (o *Outbox) Reply(ctx context.Context, acct Account, repo vcs.Repo, pr int, body string, prio Priority) error {
	return o.ReplyOnce(ctx, acct, repo, pr, "", body, prio)
}

// ReplyOnce is Reply for the effect named by effect (the bot names a delivery and which of its replies this
// is): asked for again, while it waits or after it was sent, it is not enqueued a second time, and its marker,
// derived from the effect, finds the comment a send cut short created. effect "" is a reply of its own.
func (o *Outbox) ReplyOnce(ctx context.Context, acct Account, repo vcs.Repo, pr int, effect, body string, prio Priority) error {
	if pr <= 0 || body == "" {
		return fmt.Errorf("outbox: a reply needs a pull request and a body")
	}
	return o.enqueue(ctx, acct, repo, kindReply, "", effect, prio, replyPayload{PR: pr, Body: body})
}

// React enqueues a reaction to a comment, once: a reaction sent (or waiting) is not enqueued again, so a
// replayed command adds none on a forge that would count it twice.
func (o *Outbox) React(ctx context.Context, acct Account, repo vcs.Repo, commentID int64, reaction vcs.Reaction, prio Priority) error {
	key := strings.Join([]string{kindReaction, repoKey(repo), strconv.FormatInt(commentID, 10), string(reaction)}, "|")
	return o.enqueue(ctx, acct, repo, kindReaction, key, key, prio, reactionPayload{CommentID: commentID, Reaction: reaction})
}

// enqueue stores a write; effect, when set, makes it a write of that effect that happens at most once.
func (o *Outbox) enqueue(ctx context.Context, acct Account, repo vcs.Repo, kind, key, effect string, prio Priority, payload any) error {
	if acct.Forge == "" {
		return fmt.Errorf("outbox: a write needs an account's forge (got %+v)", acct) // the ID may be "": one token
	}
	p, err := json.Marshal(payload)
	if err != nil {
		return err
	}
	r, err := json.Marshal(repo)
	if err != nil {
		return err
	}
	token, onceRef := effectToken(acct, repo, effect), ""
	if effect != "" {
		onceRef = sentRefKey(token)
	} else if token, err = newToken(); err != nil {
		return err
	}
	_, _, err = o.store.EnqueueOutbox(ctx, db.OutboxWrite{
		Forge: acct.Forge, Account: acct.ID, Kind: kind, Key: key, Priority: int(prio), Repo: r, Payload: p, Token: token,
		OnceRef: onceRef, NotBefore: o.cfg.Now(),
	})
	if err != nil {
		return fmt.Errorf("outbox: enqueue %s: %w", kind, err)
	}
	o.notify()
	return nil
}

// newToken is a write's marker: random, so that it cannot match a comment of an earlier database.
func newToken() (string, error) {
	b := make([]byte, 12)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return hex.EncodeToString(b), nil
}

// effectToken is the marker of a write of a named effect: the same for every request of it, as long as a
// random token, and different across repositories and accounts.
func effectToken(acct Account, repo vcs.Repo, effect string) string {
	sum := sha256.Sum256([]byte(strings.Join([]string{acct.Forge, acct.ID, repoKey(repo), effect}, "\x00")))
	return hex.EncodeToString(sum[:12])
}

// sentRefKey is the ref the sender records once a write with this token is sent (kept and pruned as the
// other refs are): the record by which a write asked for again after it was sent is not enqueued.
func sentRefKey(token string) string { return "sent|" + token }

// ReplyOverhead is how many characters the outbox adds to a reply (its marker): the core sizes replies to the
// forge's comment limit less this.
const ReplyOverhead = len("\n\n<!-- dagctl-bot:write=") + 24 + len(" -->")

// writeMarker is the hidden line a reply ends with, so that after a crash the reply is found among the bot's
// comments instead of being posted twice.
func writeMarker(token string) string { return "<!-- dagctl-bot:write=" + token + " -->" }

// WithoutWriteMarker is a comment's body without the hidden marker the outbox ended it with (a reply), as a
// person reads it; other bodies are returned as they are.
func WithoutWriteMarker(body string) string {
	i := strings.LastIndex(body, "\n\n<!-- dagctl-bot:write=")
	if i < 0 || !strings.HasSuffix(body, " -->") || len(body)-i != ReplyOverhead {
		return body
	}
	return body[:i]
}
