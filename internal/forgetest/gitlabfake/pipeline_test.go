package gitlabfake

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// A pipeline succeeds only when every latest job of it (its own and the external statuses) succeeded or was
// skipped: what "Pipelines must succeed" waits for.
func TestAPipelineSucceedsOnlyWhenNothingInItWaitsOrFailed(t *testing.T) {
	cases := []struct {
		jobs     map[string]string
		statuses []*CommitStatus
		want     string
	}{
		{map[string]string{"test": "success"}, nil, "success"},
		{map[string]string{"test": "success", "lint": "skipped"}, nil, "success"},
		{map[string]string{"test": "skipped"}, nil, "skipped"},
		{map[string]string{"test": "success"}, []*CommitStatus{{Status: "pending"}}, "pending"},
		{map[string]string{"test": "success"}, []*CommitStatus{{Status: "running"}}, "running"},
		{map[string]string{"test": "created"}, nil, "pending"},
		{map[string]string{"test": "success"}, []*CommitStatus{{Status: "failed"}}, "failed"},
		{map[string]string{"test": "canceled"}, []*CommitStatus{{Status: "success"}}, "canceled"},
		// A retried status is history: the newer one of its name counts.
		{map[string]string{"test": "success"}, []*CommitStatus{{Status: "pending", Retried: true}, {Status: "success"}}, "success"},
	}
	for _, c := range cases {
		p := &Project{f: &Fake{}}
		pl := &pipeline{id: 7, jobs: c.jobs}
		for _, s := range c.statuses {
			s.PipelineID = 7
		}
		p.statuses = append(c.statuses, &CommitStatus{PipelineID: 8, Status: "failed"}) // another pipeline's
		assert.Equal(t, c.want, p.pipelineStatus(pl), "%v %v", c.jobs, c.statuses)
	}
}
