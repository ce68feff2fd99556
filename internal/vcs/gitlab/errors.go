package gitlab

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// mapError turns client-go's errors into the vcs sentinels, keeping the original in the chain.
func (f *Forge) mapError(op string, err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, gl.ErrNotFound) {
		return fmt.Errorf("gitlab: %s: %w: %w", op, vcs.ErrNotFound, err)
	}
	var resp *gl.ErrorResponse
	if !errors.As(err, &resp) || resp.Response == nil {
		return fmt.Errorf("gitlab: %s: %w", op, err)
	}
	switch code := resp.Response.StatusCode; {
	case code == http.StatusNotFound:
		return fmt.Errorf("gitlab: %s: %w: %w", op, vcs.ErrNotFound, err)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return fmt.Errorf("gitlab: %s: %w: %w", op, vcs.ErrPermission, err)
	case code == http.StatusBadRequest || code == http.StatusConflict || code == http.StatusUnprocessableEntity:
		return fmt.Errorf("gitlab: %s: %w: %w", op, vcs.ErrInvalid, err)
	case code == http.StatusTooManyRequests:
		return fmt.Errorf("gitlab: %s: %w", op, &vcs.RateLimited{Reset: f.rateLimitReset(resp.Response.Header), Err: err})
	}
	return fmt.Errorf("gitlab: %s: %w", op, err)
}

// rateLimitReset is when GitLab says a rate limit ends: RateLimit-Reset (epoch seconds), else Retry-After
// (seconds from now, on the adapter's clock); zero when it says neither. GitLab sends both on its 429s
// (docs.gitlab.com/ee/user/gitlab_com/index.html#gitlabcom-specific-rate-limits, "Retry later").
func (f *Forge) rateLimitReset(h http.Header) time.Time {
	if s, err := strconv.ParseInt(h.Get("RateLimit-Reset"), 10, 64); err == nil && s > 0 {
		return time.Unix(s, 0).UTC()
	}
	if s, err := strconv.Atoi(h.Get("Retry-After")); err == nil && s >= 0 {
		return f.now().Add(time.Duration(s) * time.Second)
	}
	return time.Time{}
}

// isStatus reports whether err is GitLab's answer with this HTTP status.
func isStatus(err error, code int) bool {
	var resp *gl.ErrorResponse
	return errors.As(err, &resp) && resp.HasStatusCode(code)
}

// message is the text of GitLab's error answer ("" for none).
func message(err error) string {
	var resp *gl.ErrorResponse
	if errors.As(err, &resp) {
		return resp.Message
	}
	return ""
}
