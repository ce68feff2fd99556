package gitlab

import (
	"context"
	"errors"
	"fmt"

	gl "gitlab.com/gitlab-org/api/client-go"

	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// ReadAccess is what the web pages' read rule needs of a project, asked with the bot's token: the access level
// of the user with this numeric id (inherited from groups included; 0 when not an active member), and whether
// the project is public. The id, not the username, is asked about: a username can change hands.
func (f *Forge) ReadAccess(ctx context.Context, repo vcs.Repo, userID int64) (level int, public bool, err error) {
	id, err := pid(repo)
	if err != nil {
		return 0, false, err
	}
	p, _, err := f.client.Projects.GetProject(id, nil, gl.WithContext(ctx))
	if err != nil {
		return 0, false, f.mapError("project "+id, err)
	}
	public = p.Visibility == gl.PublicVisibility
	m, _, err := f.client.ProjectMembers.GetInheritedProjectMember(id, userID, gl.WithContext(ctx))
	if err != nil {
		err = f.mapError(fmt.Sprintf("membership of user %d in %s", userID, id), err)
		if errors.Is(err, vcs.ErrNotFound) {
			return 0, public, nil
		}
		return 0, public, err
	}
	if m.State != "" && m.State != "active" {
		return 0, public, nil
	}
	return int(m.AccessLevel), public, nil
}
