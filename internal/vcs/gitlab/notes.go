package gitlab

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// A comment id (vcs.Comment.ID) names the merge request and the note: GitLab edits, deletes and awards a note
// only through its merge request, and the port passes the id alone. The note id takes the low 40 bits (GitLab's
// note ids are about 2^31 on gitlab.com), the merge request's iid the 23 above.
const (
	noteBits = 40
	maxNote  = 1<<noteBits - 1
	maxIID   = 1<<(63-noteBits) - 1
)

// CommentID is the port's id of note noteID on merge request iid; the webhook parser names notes the same way.
func CommentID(iid, noteID int64) (int64, error) {
	if iid <= 0 || iid > maxIID || noteID <= 0 || noteID > maxNote {
		return 0, fmt.Errorf("gitlab: note %d of merge request !%d does not fit a comment id", noteID, iid)
	}
	return iid<<noteBits | noteID, nil
}

// SplitCommentID reads a comment id back as the merge request's iid and the note's id.
func SplitCommentID(id int64) (iid, noteID int64, err error) {
	iid, noteID = id>>noteBits, id&maxNote
	if id <= 0 || iid == 0 || noteID == 0 {
		return 0, 0, fmt.Errorf("gitlab: comment id %d names no merge request note", id)
	}
	return iid, noteID, nil
}

// Comments lists the merge request's notes, oldest first, without system notes (GitLab's own "added 1 commit");
// ByBot marks those of the token's user, by id.
func (f *Forge) Comments(ctx context.Context, repo vcs.Repo, number int) ([]vcs.Comment, error) {
	id, err := pid(repo)
	if err != nil {
		return nil, err
	}
	bot, err := f.Bot(ctx)
	if err != nil {
		return nil, err
	}
	asc, by := "asc", "created_at"
	opts := &gl.ListMergeRequestNotesOptions{ListOptions: gl.ListOptions{PerPage: perPage}, Sort: &asc, OrderBy: &by}
	var out []vcs.Comment
	for {
		page, resp, err := f.client.Notes.ListMergeRequestNotes(id, int64(number), opts, gl.WithContext(ctx))
		if err != nil {
			return nil, f.mapError(fmt.Sprintf("notes of %s!%d", id, number), err)
		}
		for _, n := range page {
			if n.System {
				continue
			}
			cid, err := CommentID(int64(number), n.ID)
			if err != nil {
				return nil, err
			}
			out = append(out, vcs.Comment{ID: cid, Author: n.Author.Username, Body: n.Body, ByBot: n.Author.ID == bot.ID})
		}
		if resp.NextPage == 0 {
			return out, nil
		}
		opts.Page = resp.NextPage
	}
}

// CreateComment adds a note to the merge request. A body over MaxNoteChars is refused by GitLab (400): size it
// before.
func (f *Forge) CreateComment(ctx context.Context, repo vcs.Repo, number int, body string) (int64, error) {
	id, err := pid(repo)
	if err != nil {
		return 0, err
	}
	n, _, err := f.client.Notes.CreateMergeRequestNote(id, int64(number), &gl.CreateMergeRequestNoteOptions{Body: &body}, gl.WithContext(ctx))
	if err != nil {
		return 0, f.mapError(fmt.Sprintf("note on %s!%d", id, number), err)
	}
	return CommentID(int64(number), n.ID)
}

// UpdateComment replaces a note's body; GitLab lets only its author edit it.
func (f *Forge) UpdateComment(ctx context.Context, repo vcs.Repo, commentID int64, body string) error {
	id, err := pid(repo)
	if err != nil {
		return err
	}
	iid, note, err := SplitCommentID(commentID)
	if err != nil {
		return err
	}
	if _, _, err := f.client.Notes.UpdateMergeRequestNote(id, iid, note, &gl.UpdateMergeRequestNoteOptions{Body: &body}, gl.WithContext(ctx)); err != nil {
		return f.mapError(fmt.Sprintf("update note %d on %s!%d", note, id, iid), err)
	}
	return nil
}

// DeleteComment deletes a note; vcs.ErrNotFound when it is gone.
func (f *Forge) DeleteComment(ctx context.Context, repo vcs.Repo, commentID int64) error {
	id, err := pid(repo)
	if err != nil {
		return err
	}
	iid, note, err := SplitCommentID(commentID)
	if err != nil {
		return err
	}
	if _, err := f.client.Notes.DeleteMergeRequestNote(id, iid, note, gl.WithContext(ctx)); err != nil {
		return f.mapError(fmt.Sprintf("delete note %d on %s!%d", note, id, iid), err)
	}
	return nil
}

// emoji are GitLab's award emoji names for the port's reactions.
var emoji = map[vcs.Reaction]string{vcs.ReactionEyes: "eyes", vcs.ReactionRocket: "rocket", vcs.ReactionConfused: "confused"}

// React awards an emoji to a note. GitLab refuses an emoji the user awarded already with a 404 ("has already
// been taken"), which client-go cannot tell from a missing note: the note's awards are read to tell.
func (f *Forge) React(ctx context.Context, repo vcs.Repo, commentID int64, reaction vcs.Reaction) error {
	id, err := pid(repo)
	if err != nil {
		return err
	}
	name, ok := emoji[reaction]
	if !ok {
		return fmt.Errorf("gitlab: no award emoji for reaction %q", reaction)
	}
	iid, note, err := SplitCommentID(commentID)
	if err != nil {
		return err
	}
	op := fmt.Sprintf("award %s to note %d on %s!%d", name, note, id, iid)
	_, _, err = f.client.AwardEmoji.CreateMergeRequestAwardEmojiOnNote(id, iid, note, &gl.CreateAwardEmojiOptions{Name: name}, gl.WithContext(ctx))
	if err == nil || !errors.Is(f.mapError(op, err), vcs.ErrNotFound) {
		return f.mapError(op, err)
	}
	bot, botErr := f.Bot(ctx)
	if botErr != nil {
		return botErr
	}
	awards, _, listErr := f.client.AwardEmoji.ListMergeRequestAwardEmojiOnNote(id, iid, note, &gl.ListAwardEmojiOptions{ListOptions: gl.ListOptions{PerPage: perPage}}, gl.WithContext(ctx))
	if listErr != nil {
		return f.mapError(op, listErr)
	}
	for _, a := range awards {
		if a.Name == name && a.User.ID == bot.ID {
			return nil
		}
	}
	return f.mapError(op, err)
}

// noReply is GitLab's private commit email, <id>-<username>@users.noreply.<host>: it names its account.
var noReply = regexp.MustCompile(`^(\d+)-([A-Za-z0-9_.\-]+)@users\.noreply\.`)

// CommitAuthors are the accounts of the merge request's commits' authors and committers, in order of first
// appearance. GitLab's commits carry names and emails, not accounts, so each email is resolved: GitLab's private
// commit email names its user; any other is looked up (GET /users?search=) and counts for the user whose public
// email (or email, which an admin token sees) is exactly it. An email no visible account has names no one, as on
// GitHub: git lets a committer write any email, so this list can add exclusions, never remove one, and the
// merge request's author is excluded by the rules anyway. A failed lookup fails the whole call: an author left
// out could approve their own change.
func (f *Forge) CommitAuthors(ctx context.Context, repo vcs.Repo, number int) ([]string, error) {
	id, err := pid(repo)
	if err != nil {
		return nil, err
	}
	var emails []string
	seenEmail := map[string]bool{}
	opts := &gl.GetMergeRequestCommitsOptions{ListOptions: gl.ListOptions{PerPage: perPage}}
	var commits []*gl.Commit
	for {
		page, resp, err := f.client.MergeRequests.GetMergeRequestCommits(id, int64(number), opts, gl.WithContext(ctx))
		if err != nil {
			return nil, f.mapError(fmt.Sprintf("commits of %s!%d", id, number), err)
		}
		commits = append(commits, page...)
		if resp.NextPage == 0 {
			break
		}
		opts.Page = resp.NextPage
	}
	for i := len(commits) - 1; i >= 0; i-- { // GitLab lists them newest first
		for _, e := range []string{commits[i].AuthorEmail, commits[i].CommitterEmail} {
			e = strings.ToLower(strings.TrimSpace(e))
			if e != "" && !seenEmail[e] {
				seenEmail[e] = true
				emails = append(emails, e)
			}
		}
	}
	var out []string
	seen := map[string]bool{}
	for _, e := range emails {
		users, err := f.usersOfEmail(ctx, e)
		if err != nil {
			return nil, err
		}
		for _, u := range users {
			if !seen[strings.ToLower(u)] {
				seen[strings.ToLower(u)] = true
				out = append(out, u)
			}
		}
	}
	return out, nil
}

func (f *Forge) usersOfEmail(ctx context.Context, email string) ([]string, error) {
	if m := noReply.FindStringSubmatch(email); m != nil {
		if uid, err := strconv.ParseInt(m[1], 10, 64); err == nil && uid > 0 {
			return []string{m[2]}, nil
		}
	}
	users, _, err := f.client.Users.ListUsers(&gl.ListUsersOptions{Search: &email, ListOptions: gl.ListOptions{PerPage: perPage}}, gl.WithContext(ctx))
	if err != nil {
		return nil, f.mapError("users of a commit email", err)
	}
	var out []string
	for _, u := range users {
		if strings.EqualFold(u.PublicEmail, email) || strings.EqualFold(u.Email, email) {
			out = append(out, u.Username)
		}
	}
	return out, nil
}
