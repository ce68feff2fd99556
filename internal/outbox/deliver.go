package outbox

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/comments"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// errUnreadable marks a stored write that cannot be read: it never will be, so it is dropped like a refusal.
var errUnreadable = errors.New("unreadable outbox write")

// result is what a sent write leaves for later writes: a ref to record under refKey ("" ref: forget it), and
// more of them.
type result struct {
	refKey, ref string
	more        []db.OutboxRefValue
}

// deliver sends one write through f.
func (s *sender) deliver(ctx context.Context, f Forge, w db.OutboxWrite) (result, error) {
	var repo vcs.Repo
	if err := json.Unmarshal(w.Repo, &repo); err != nil {
		return result{}, fmt.Errorf("outbox: write %d: repo: %w: %w", w.ID, errUnreadable, err)
	}
	switch w.Kind {
	case kindStatus:
		var p statusPayload
		if err := decode(w, &p); err != nil {
			return result{}, err
		}
		return s.sendStatus(ctx, f, w, repo, p.Status)
	case kindRejoin:
		var p rejoinPayload
		if err := decode(w, &p); err != nil {
			return result{}, err
		}
		return result{}, s.rejoin(ctx, f, w, repo, p)
	case kindStickyPart:
		var p stickyPartPayload
		if err := decode(w, &p); err != nil {
			return result{}, err
		}
		return s.sendStickyPart(ctx, f, w, repo, p)
	case kindStickyTrim:
		var p stickyTrimPayload
		if err := decode(w, &p); err != nil {
			return result{}, err
		}
		return result{}, s.trimSticky(ctx, f, w, repo, p)
	case kindReply:
		var p replyPayload
		if err := decode(w, &p); err != nil {
			return result{}, err
		}
		return sentResult(w, sendReply(ctx, f, w, repo, p))
	case kindReaction:
		var p reactionPayload
		if err := decode(w, &p); err != nil {
			return result{}, err
		}
		return sentResult(w, f.React(ctx, repo, p.CommentID, p.Reaction))
	}
	return result{}, fmt.Errorf("outbox: write %d has unknown kind %q: %w", w.ID, w.Kind, errUnreadable)
}

// sentResult records that the write's effect reached the forge (a reply, a reaction: not idempotent on every
// forge), so that it is not enqueued again when asked for once more.
func sentResult(w db.OutboxWrite, err error) (result, error) {
	if err != nil {
		return result{}, err
	}
	return result{refKey: sentRefKey(w.Token), ref: "sent"}, nil
}

// decode reads a payload; one that cannot be read never will be, so it fails as permanent.
func decode(w db.OutboxWrite, v any) error {
	if err := json.Unmarshal(w.Payload, v); err != nil {
		return fmt.Errorf("outbox: write %d (%s): payload: %w: %w", w.ID, w.Kind, errUnreadable, err)
	}
	return nil
}

func (s *sender) sendStatus(ctx context.Context, f Forge, w db.OutboxWrite, repo vcs.Repo, st vcs.Status) (result, error) {
	ref, err := s.store.OutboxRef(ctx, w.Forge, w.Account, w.Key)
	if err != nil {
		return result{}, err
	}
	if ref == "" && w.Attempts > 0 {
		// A send began before without an answer (a crash, a timeout): the forge may have created the status.
		if finder, ok := f.(StatusFinder); ok {
			found, err := finder.FindStatus(ctx, repo, st)
			if err != nil {
				return result{}, err
			}
			ref = string(found)
		}
	}
	next, err := f.PutStatus(ctx, repo, st, vcs.StatusRef(ref))
	if err != nil {
		return result{}, err
	}
	res := result{refKey: w.Key, ref: string(next)}
	if st.Pipeline == "" && joinsPipelines(f) {
		// What the forge shows now, for a pipeline that starts later (RejoinSlot). The rich output is not kept:
		// forges that group statuses in pipelines (GitLab) show none.
		st.Output = nil
		shown, err := json.Marshal(st)
		if err != nil {
			return result{}, err
		}
		res.more = []db.OutboxRefValue{{Key: shownKey(w.Key), Ref: string(shown)}}
	}
	return res, nil
}

// rejoin writes the status its key last showed into the pipeline, with the key's ref; the forge's answer is
// not kept (the key's ref stays the status first written). A status no longer known (pruned) is not written.
func (s *sender) rejoin(ctx context.Context, f Forge, w db.OutboxWrite, repo vcs.Repo, p rejoinPayload) error {
	shown, err := s.store.OutboxRef(ctx, w.Forge, w.Account, shownKey(p.Key))
	if err != nil || shown == "" {
		return err
	}
	var st vcs.Status
	if err := json.Unmarshal([]byte(shown), &st); err != nil {
		return fmt.Errorf("outbox: write %d: the status shown of %s: %w: %w", w.ID, p.Key, errUnreadable, err)
	}
	ref, err := s.store.OutboxRef(ctx, w.Forge, w.Account, p.Key)
	if err != nil {
		return err
	}
	st.Pipeline = p.Pipeline
	_, err = f.PutStatus(ctx, repo, st, vcs.StatusRef(ref))
	return err
}

// A sticky part's ref is "<comment id> <sha256 of the body sent>": an unchanged part is not written again.
func stickyRef(id int64, body string) string {
	sum := sha256.Sum256([]byte(body))
	return strconv.FormatInt(id, 10) + " " + hex.EncodeToString(sum[:])
}

func parseStickyRef(ref string) (id int64, bodyHash string) {
	idText, hash, _ := strings.Cut(ref, " ")
	id, _ = strconv.ParseInt(idText, 10, 64)
	return id, hash
}

// sendStickyPart edits the part's comment in place; when the outbox knows no comment for it (or it was
// deleted), it adopts the bot's own comment that starts with the part's marker, and only then creates one.
// Creating is therefore safe to repeat after a crash: the comment created before is found by its marker.
func (s *sender) sendStickyPart(ctx context.Context, f Forge, w db.OutboxWrite, repo vcs.Repo, p stickyPartPayload) (result, error) {
	ref, err := s.store.OutboxRef(ctx, w.Forge, w.Account, w.Key)
	if err != nil {
		return result{}, err
	}
	want := stickyRef(0, p.Body)
	_, wantHash := parseStickyRef(want)
	if id, hash := parseStickyRef(ref); id != 0 {
		if hash == wantHash {
			return result{refKey: w.Key, ref: ref}, nil // the forge shows this body already
		}
		err := f.UpdateComment(ctx, repo, id, p.Body)
		if err == nil {
			return result{refKey: w.Key, ref: stickyRef(id, p.Body)}, nil
		}
		if !errors.Is(err, vcs.ErrNotFound) {
			return result{}, err
		}
		// Deleted meanwhile: find or create it below.
	}
	c, found, err := findBotComment(ctx, f, repo, p.PR, func(c vcs.Comment) bool {
		n, ok := comments.MarkerPart(c.Body)
		return ok && n == p.Part
	})
	if err != nil {
		return result{}, err
	}
	if found {
		if c.Body != p.Body {
			if err := f.UpdateComment(ctx, repo, c.ID, p.Body); err != nil {
				return result{}, err
			}
		}
		return result{refKey: w.Key, ref: stickyRef(c.ID, p.Body)}, nil
	}
	id, err := f.CreateComment(ctx, repo, p.PR, p.Body)
	if err != nil {
		return result{}, err
	}
	return result{refKey: w.Key, ref: stickyRef(id, p.Body)}, nil
}

// trimSticky deletes the bot's sticky parts beyond the ones the comment has now, and forgets them.
func (s *sender) trimSticky(ctx context.Context, f Forge, w db.OutboxWrite, repo vcs.Repo, p stickyTrimPayload) error {
	all, err := f.Comments(ctx, repo, p.PR)
	if err != nil {
		return err
	}
	for _, c := range all {
		n, ok := comments.MarkerPart(c.Body)
		if !c.ByBot || !ok || n <= p.Keep {
			continue
		}
		if err := f.DeleteComment(ctx, repo, c.ID); err != nil && !errors.Is(err, vcs.ErrNotFound) {
			return err
		}
	}
	known, err := s.store.OutboxRefKeys(ctx, w.Forge, w.Account, stickyPrefix(repo, p.PR))
	if err != nil {
		return err
	}
	for _, k := range known {
		if n, _ := strconv.Atoi(k[strings.LastIndex(k, "|")+1:]); n > p.Keep {
			if err := s.store.SetOutboxRef(ctx, w.Forge, w.Account, k, ""); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendReply posts a new comment that ends with the write's hidden marker. A write whose send began before (a
// crash, or an error after which the forge may have it anyway) is first looked for by its marker among the
// bot's own comments, so it is posted once.
func sendReply(ctx context.Context, f Forge, w db.OutboxWrite, repo vcs.Repo, p replyPayload) error {
	marker := writeMarker(w.Token)
	if w.Attempts > 0 {
		_, found, err := findBotComment(ctx, f, repo, p.PR, func(c vcs.Comment) bool {
			return strings.HasSuffix(c.Body, marker)
		})
		if err != nil || found {
			return err
		}
	}
	_, err := f.CreateComment(ctx, repo, p.PR, p.Body+"\n\n"+marker)
	return err
}

// findBotComment is the first of the bot's own comments on the PR that match: anyone can post a body that looks
// like the bot's, and adopting it would let its author edit what the bot says.
func findBotComment(ctx context.Context, f Forge, repo vcs.Repo, pr int, match func(vcs.Comment) bool) (vcs.Comment, bool, error) {
	all, err := f.Comments(ctx, repo, pr)
	if err != nil {
		return vcs.Comment{}, false, err
	}
	for _, c := range all {
		if c.ByBot && match(c) {
			return c, true, nil
		}
	}
	return vcs.Comment{}, false, nil
}
