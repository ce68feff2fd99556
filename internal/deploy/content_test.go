package deploy

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestInProject(t *testing.T) {
	assert.True(t, InProject(".", "README.md"))
	assert.True(t, InProject("warehouse", "warehouse/models/a.sql"))
	assert.True(t, InProject("./warehouse/", "warehouse/models/a.sql"))
	assert.False(t, InProject("warehouse", "warehouse2/models/a.sql"))
	assert.False(t, InProject("warehouse", "README.md"))
}

func TestTouchesProject(t *testing.T) {
	tests := []struct {
		name      string
		path      string
		changed   []string
		truncated bool
		want      bool
	}{
		{"a model", "w", []string{"README.md", "w/models/a.sql"}, false, true},
		{"outside the project", "w", []string{"README.md", "other/x.sql"}, false, false},
		{"nothing", ".", nil, false, false},
		{"anything under the root project", ".", []string{"docs/notes.md"}, false, true},
		{"a truncated list of other files", "w", []string{"README.md"}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, TouchesProject(tt.path, tt.changed, tt.truncated))
		})
	}
}

func TestContentHashIsAboutTheProjectsContentOnly(t *testing.T) {
	a := Files{"w/models/a.sql": "1", "w/models/b.sql": "2", "README.md": "x"}
	b := Files{"w/models/b.sql": "2", "w/models/a.sql": "1", "README.md": "y"} // another commit, same project content
	assert.Equal(t, ContentHash("w", a), ContentHash("w", b))
	assert.NotEqual(t, ContentHash(".", a), ContentHash(".", b))
	c := Files{"w/models/a.sql": "1", "w/models/b.sql": "3"}
	assert.NotEqual(t, ContentHash("w", a), ContentHash("w", c))
	// A file moved keeps its content id but not its path.
	d := Files{"w/models/a.sql": "1", "w/models/c.sql": "2"}
	assert.NotEqual(t, ContentHash("w", a), ContentHash("w", d))
}

func TestUnreviewedFiles(t *testing.T) {
	last := Files{"m/a.sql": "a1", "m/b.sql": "b1", "m/c.sql": "c1", "other/x": "x1"}
	tests := []struct {
		name string
		c    Content
		want []string
	}{
		{"the reviewed change, merged", Content{ProjectPath: "m", LastApplied: last,
			ForkPoint: last,
			Planned:   Files{"m/a.sql": "a2", "m/b.sql": "b1", "m/c.sql": "c1"},
			Target:    Files{"m/a.sql": "a2", "m/b.sql": "b1", "m/c.sql": "c1", "other/x": "x2"}}, nil},
		{"a squash merge of the same content", Content{ProjectPath: "m", LastApplied: last, ForkPoint: last,
			Planned: Files{"m/a.sql": "a2", "m/b.sql": "b1", "m/c.sql": "c1", "m/new.sql": "n"},
			Target:  Files{"m/a.sql": "a2", "m/b.sql": "b1", "m/c.sql": "c1", "m/new.sql": "n"}}, nil},
		{"a deletion the PR made", Content{ProjectPath: "m", LastApplied: last, ForkPoint: last,
			Planned: Files{"m/a.sql": "a1", "m/b.sql": "b1"},
			Target:  Files{"m/a.sql": "a1", "m/b.sql": "b1"}}, nil},
		{"another PR merged without approval", Content{ProjectPath: "m", LastApplied: last,
			// main moved on (b changed by someone else) before this PR forked; the PR changed only a.
			ForkPoint: Files{"m/a.sql": "a1", "m/b.sql": "b2", "m/c.sql": "c1"},
			Planned:   Files{"m/a.sql": "a2", "m/b.sql": "b2", "m/c.sql": "c1"},
			Target:    Files{"m/a.sql": "a2", "m/b.sql": "b2", "m/c.sql": "c1"}}, []string{"m/b.sql"}},
		{"merged after the PR forked, and a deletion nobody reviewed", Content{ProjectPath: "m", LastApplied: last, ForkPoint: last,
			Planned: Files{"m/a.sql": "a2", "m/b.sql": "b1", "m/c.sql": "c1"},
			Target:  Files{"m/a.sql": "a2", "m/b.sql": "b9", "m/evil.sql": "e"}}, []string{"m/b.sql", "m/c.sql", "m/evil.sql"}},
		{"a merge resolution differs from the reviewed file", Content{ProjectPath: "m", LastApplied: last, ForkPoint: last,
			Planned: Files{"m/a.sql": "a2", "m/b.sql": "b1", "m/c.sql": "c1"},
			Target:  Files{"m/a.sql": "a3", "m/b.sql": "b1", "m/c.sql": "c1"}}, []string{"m/a.sql"}},
		{"a file the PR did not change but holds at another content", Content{ProjectPath: "m", LastApplied: last, ForkPoint: last,
			Planned: Files{"m/a.sql": "a1", "m/b.sql": "b1", "m/c.sql": "c1"},
			Target:  Files{"m/a.sql": "a1", "m/b.sql": "b1", "m/c.sql": "c2"}}, []string{"m/c.sql"}},
		{"nothing changed since the last apply", Content{ProjectPath: "m", LastApplied: last, Target: last}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			assert.Equal(t, tt.want, UnreviewedFiles(tt.c))
		})
	}
}
