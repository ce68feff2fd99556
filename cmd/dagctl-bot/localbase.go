package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/gitignore"
	"github.com/go-git/go-git/v5/plumbing/object"

	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
)

// The CLI's side of a framework whose plans compare two commits (framework.Comparer, dbt): the working tree is
// the head, and the base is a commit of its git repository, as the bot would pick it for a PR from this branch
// (nothing is deployed from a working tree, so the merge base with the default branch).

// defaultBranches are tried in order for the repository's default branch: the remote's HEAD, then the usual names.
var defaultBranches = []plumbing.ReferenceName{
	"refs/remotes/origin/HEAD", "refs/heads/main", "refs/heads/master", "refs/remotes/origin/main", "refs/remotes/origin/master",
}

// findBase is the commit the working tree at repo is compared with: rev when given (any revision go-git
// resolves), else the merge base of HEAD and the default branch. nil, with no error, when repo is not a git
// repository or has no such commit (a first deploy: every file is new); rev that cannot be found is an error.
func findBase(repo, rev string) (*object.Commit, error) {
	r, err := git.PlainOpen(repo)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if rev != "" {
			return nil, fmt.Errorf("--base %s: %s is not a git repository", rev, repo)
		}
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	if rev != "" {
		h, err := r.ResolveRevision(plumbing.Revision(rev))
		if err != nil {
			return nil, fmt.Errorf("--base %s: %w", rev, err)
		}
		return r.CommitObject(*h)
	}
	head, err := r.Head()
	if err != nil {
		return nil, nil // no commit yet
	}
	headCommit, err := r.CommitObject(head.Hash())
	if err != nil {
		return nil, err
	}
	for _, name := range defaultBranches {
		ref, err := r.Reference(name, true)
		if err != nil {
			continue
		}
		branch, err := r.CommitObject(ref.Hash())
		if err != nil {
			return nil, err
		}
		bases, err := headCommit.MergeBase(branch)
		if err != nil {
			return nil, fmt.Errorf("the merge base of HEAD and %s: %w", name.Short(), err)
		}
		if len(bases) == 0 {
			return nil, nil
		}
		return bases[0], nil
	}
	return nil, nil
}

// treeOf maps every file of the commit to its blob hash, as the forge's tree would.
func treeOf(c *object.Commit) (map[string]string, error) {
	tree, err := c.Tree()
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	err = tree.Files().ForEach(func(f *object.File) error {
		out[f.Name] = f.Hash.String()
		return nil
	})
	return out, err
}

// writeCommit writes the commit's files under prefix (a project's path; "." for all) into dir, for the job.
func writeCommit(c *object.Commit, prefix, dir string) error {
	tree, err := c.Tree()
	if err != nil {
		return err
	}
	return tree.Files().ForEach(func(f *object.File) error {
		if !underPath(f.Name, prefix) || !f.Mode.IsFile() {
			return nil
		}
		content, err := f.Contents()
		if err != nil {
			return err
		}
		dst := filepath.Join(dir, filepath.FromSlash(f.Name))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			return err
		}
		return os.WriteFile(dst, []byte(content), 0o644)
	})
}

func underPath(name, prefix string) bool {
	prefix = path.Clean(prefix)
	return prefix == "." || name == prefix || strings.HasPrefix(name, prefix+"/")
}

// workingTree maps the working tree's files to the blob hash of their content, as a commit of it would: the
// repository's .gitignore patterns are left out, as .git is. Symbolic links are hashed by their target, as git
// stores them.
func workingTree(repo string) (map[string]string, error) {
	patterns, err := gitignore.ReadPatterns(osfs.New(repo), nil)
	if err != nil {
		return nil, err
	}
	ignored := gitignore.NewMatcher(patterns)
	out := map[string]string{}
	err = filepath.WalkDir(repo, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(repo, p)
		if err != nil || rel == "." {
			return err
		}
		parts := strings.Split(filepath.ToSlash(rel), "/")
		if d.IsDir() {
			if d.Name() == ".git" || ignored.Match(parts, true) {
				return filepath.SkipDir
			}
			return nil
		}
		if ignored.Match(parts, false) {
			return nil
		}
		var content []byte
		switch {
		case d.Type()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			content = []byte(target)
		case d.Type().IsRegular():
			if content, err = os.ReadFile(p); err != nil {
				return err
			}
		default:
			return nil
		}
		out[filepath.ToSlash(rel)] = plumbing.ComputeHash(plumbing.BlobObject, content).String()
		return nil
	})
	return out, err
}

// comparison is the working tree (the head) and the base commit as framework.CompletePlan reads them, with the
// files the comparer names read from each. Nothing was deployed from here: no production state.
func comparison(c framework.Comparer, repo string, project repoconfig.Project, env string, base *object.Commit) (framework.Comparison, error) {
	cmp := framework.Comparison{Project: project, Environment: env}
	tree, err := workingTree(repo)
	if err != nil {
		return cmp, fmt.Errorf("reading the working tree: %w", err)
	}
	cmp.Head = framework.Commit{SHA: "working tree", Tree: tree, Files: map[string][]byte{}}
	for _, p := range c.CommitFiles(project) {
		if data, err := os.ReadFile(filepath.Join(repo, filepath.FromSlash(p))); err == nil {
			cmp.Head.Files[p] = data
		}
	}
	if base == nil {
		return cmp, nil
	}
	baseTree, err := treeOf(base)
	if err != nil {
		return cmp, fmt.Errorf("reading the files of %s: %w", base.Hash, err)
	}
	cmp.Base = &framework.Commit{SHA: base.Hash.String(), Tree: baseTree, Files: map[string][]byte{}}
	for _, p := range c.CommitFiles(project) {
		f, err := base.File(p)
		if err != nil {
			continue // the base has no such file
		}
		content, err := f.Contents()
		if err != nil {
			return cmp, fmt.Errorf("reading %s at %s: %w", p, base.Hash, err)
		}
		cmp.Base.Files[p] = []byte(content)
	}
	return cmp, nil
}
