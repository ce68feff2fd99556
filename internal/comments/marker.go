package comments

import (
	"strconv"
	"strings"
)

// Size limits of the forges, with sources in ../shared/forge-limits.md ("GitHub: REST API limits used by the
// bot", "GitLab: REST API limits used by the bot"). Numbers change: adapters pass them in, these are defaults.
const (
	// GitHubCommentLimit is GitHub's issue/PR comment body limit: 65,536 characters ("Body is too long (maximum is
	// 65536 characters)"). Comment counts characters as Unicode code points; GitHub's byte ceiling for comments
	// is reported as 4×65,536 bytes, which a body of 65,536 code points never exceeds.
	GitHubCommentLimit = 65536
	// GitLabNoteLimit is GitLab's MR note limit: 1,000,000 characters (MAX_TEXT_SIZE_LIMIT).
	GitLabNoteLimit = 1_000_000
	// CheckOutputLimit is GitHub's limit on a check run's output.summary and output.text: 65,535 characters each.
	// CheckOutput applies it as bytes, the stricter reading.
	CheckOutputLimit = 65535
	// MinCommentLimit is the smallest limit Comment accepts: below it the headings and table headers a part
	// repeats would leave no room for content.
	MinCommentLimit = 4096
	// MaxParts caps how many comments one plan uses. A plan bigger than that is cut with a pointer to the full
	// logs: a PR thread with dozens of bot comments helps nobody, and every comment costs a rate-limited write.
	MaxParts = 10
)

// Marker is the hidden first line of the sticky comment's first body. The forge adapters find the existing
// comment of a PR by it, so it must stay byte-for-byte stable: changing it makes the bot post a second sticky
// comment on every open PR.
const Marker = "<!-- dagctl-bot:sticky -->"

// partMarkerPrefix starts the markers of continuation bodies (part 2, 3, …). Also stable, for the same reason:
// the adapter edits continuation comments in place by it and deletes the ones a shrinking plan no longer needs.
const partMarkerPrefix = "<!-- dagctl-bot:sticky:part="

// PartMarker is the marker of body number part (1-based): Marker for the first body,
// "<!-- dagctl-bot:sticky:part=N -->" for the continuations.
func PartMarker(part int) string {
	if part <= 1 {
		return Marker
	}
	return partMarkerPrefix + strconv.Itoa(part) + " -->"
}

// MarkerPart reads which part of the sticky comment a comment body is, from its first line. ok is false for
// bodies that are not the bot's sticky comment (a user quoting it does not count: the marker must start the
// body).
func MarkerPart(body string) (part int, ok bool) {
	first, _, _ := strings.Cut(body, "\n")
	if first == Marker {
		return 1, true
	}
	rest, found := strings.CutPrefix(first, partMarkerPrefix)
	if !found {
		return 0, false
	}
	digits, found := strings.CutSuffix(rest, " -->")
	if !found {
		return 0, false
	}
	n, err := strconv.Atoi(digits)
	if err != nil || n < 2 || strconv.Itoa(n) != digits {
		return 0, false
	}
	return n, true
}
