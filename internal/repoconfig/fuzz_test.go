package repoconfig

import (
	"errors"
	"testing"
)

// FuzzParse checks that Parse never panics and always returns either a Config or a *Error with located
// problems. `go test` runs it over the seed corpus; `go test -fuzz FuzzParse ./internal/repoconfig` explores.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"",
		"version: 1\n",
		fullExample,
		"version: 1\nenvironments:\n  - name: prod\n    protectd: true\n",
		"version: 1\nprojects:\n  - path: [a\n",
		"a: &a [*a]\n",
		"a: &x 1\n<<: *x\n",
		"version: 1\n---\n",
		"version: 1\njob:\n  env: {? [a]: b}\n",
		"version: 1\nenvironments: [&e {name: a}, *e]\n",
		"version: !!binary aGVsbG8=\n",
		"{version: 1, job: {timeout: 9999999999h}}",
		"version: 0x1\nprojects: [{path: \"\\0\"}]\n",
		"\xff\xfe",
		dbtExample,
		"version: 1\nprojects: [{framework: dbt, target: {? [a]: b}, image: [x], pr_environment: 1}]\n",
		"version: 1\nprojects: [{version: 1, framework: nope, commands: dbt}]\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := Parse(Path, data)
		if err == nil {
			if cfg.Version != Version || len(cfg.Environments) == 0 || len(cfg.Projects) == 0 || cfg.Job.Timeout <= 0 {
				t.Fatalf("Parse accepted an incomplete config: %+v", cfg)
			}
			for _, p := range cfg.Projects {
				if (p.Framework == DBT) != (p.DBT != nil) || p.DBT != nil && len(p.DBT.Commands) == 0 {
					t.Fatalf("Parse accepted a project with dbt settings out of place: %+v", p)
				}
			}
			return
		}
		var cfgErr *Error
		if !errors.As(err, &cfgErr) || len(cfgErr.Problems) == 0 {
			t.Fatalf("Parse returned %T %v, want *Error with problems", err, err)
		}
		for _, p := range cfgErr.Problems {
			if p.File != Path || p.Msg == "" {
				t.Fatalf("problem without file or message: %+v", p)
			}
		}
	})
}
