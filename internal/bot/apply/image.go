package apply

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"strings"
	"time"

	"github.com/dagctl/dagctl-bot/internal/bot/jobrun"
	"github.com/dagctl/dagctl-bot/internal/bot/prstate"
	"github.com/dagctl/dagctl-bot/internal/db"
	"github.com/dagctl/dagctl-bot/internal/deploy"
	"github.com/dagctl/dagctl-bot/internal/framework"
	"github.com/dagctl/dagctl-bot/internal/image"
	"github.com/dagctl/dagctl-bot/internal/jobs"
	"github.com/dagctl/dagctl-bot/internal/plan"
	"github.com/dagctl/dagctl-bot/internal/repoconfig"
	"github.com/dagctl/dagctl-bot/internal/vcs"
)

// stepImage is the job that hands the project back for the deploy image (jobs.KindImage).
const stepImage = "image"

// NoImageNote is what an apply of a project without an image repository says it did.
const NoImageNote = "no image repository configured: ran in the checkout"

// deployImage is the image an apply built, or the note that it built none.
type deployImage struct {
	ref, tagged string // "" when none was built
	note        string // for the apply's check and reply
}

// imageBuild is what the image step decides, as plain data: whether the approved plan deploys with an image,
// and the settings it is built with.
type imageBuild struct {
	deploys bool                 // a dbt deploy that runs (scope all, selective or build_only)
	image   *repoconfig.DBTImage // nil or without repository: no image
}

// imageBuildOf reads the image step's inputs from the approved plan and the governing project (its image
// repository is the default branch's: repoconfig.Merge).
func imageBuildOf(approved *plan.Summary, project repoconfig.Project) imageBuild {
	if approved == nil || approved.DBT == nil || !approved.DBT.Deploy {
		return imageBuild{}
	}
	switch approved.DBT.Scope {
	case plan.ScopeAll, plan.ScopeSelective, plan.ScopeBuildOnly:
	default:
		return imageBuild{}
	}
	b := imageBuild{deploys: true}
	if project.DBT != nil && project.DBT.Image != nil && project.DBT.Image.Repository != "" {
		b.image = project.DBT.Image
	}
	return b
}

// buildImage builds and pushes the deploy image of an approved dbt deploy, under the lock and after the
// re-plan, before any dbt command runs: a job (which runs PR code, with no registry credentials) hands the
// project back with its dbt_packages/, the bot checks it against the forge's tree of the commit and builds and
// pushes with its keychain. It records the image with the run. A project without an image repository builds
// nothing (the apply runs in the checkout). It returns the ending when the apply stops here.
func (s *Sequence) buildImage(ctx context.Context, forge vcs.Forge, req Request, run db.Run, logw *db.RunLogWriter, job stepJob) (deployImage, *applyEnding) {
	b := imageBuildOf(req.Plan.Summary, req.Context.Project)
	if !b.deploys {
		return deployImage{}, nil
	}
	say := func(text string) { logw.Sink(jobs.Line{Stream: "stderr", Text: "dagctl: image: " + text}) }
	if b.image == nil {
		say(NoImageNote)
		return deployImage{note: NoImageNote}, nil
	}
	fail := func(title string, err error) (deployImage, *applyEnding) {
		say(title + ": " + err.Error())
		return deployImage{}, &applyEnding{conclusion: vcs.StatusFailure, title: title + ": nothing was applied",
			summary: fence(err.Error()), exitCode: -1, reason: title + ": " + err.Error()}
	}
	cfg := *b.image
	builder, ok := s.Images[cfg.Builder]
	if !ok {
		return fail("Could not build the image", fmt.Errorf("this bot has no %s image builder", cfg.Builder))
	}
	version := req.Plan.Summary.DBT.Version
	tag, err := image.Tag(version, req.SHA)
	if err != nil {
		return fail("Could not build the image", err)
	}
	ireq := image.Request{Base: cfg.Base, Repository: cfg.Repository, Tag: tag, ImagePath: image.DefaultImagePath,
		Labels: image.Labels(req.SHA, version, sourceURL(req.Context.PR.Repo.CloneURL))}
	_ = s.reportApply(ctx, forge, req, run.ID, vcs.StatusRunning, "Building the image", "Building the deploy image for "+
		prstate.Short(req.SHA)+", pushed to `"+cfg.Repository+"`, before any dbt command runs.")
	say(fmt.Sprintf("building %s:%s onto %s (%s)", cfg.Repository, tag, cfg.Base, cfg.Builder))

	switch cfg.Builder {
	case repoconfig.BuildDockerfile:
		src, err := s.Runner.CloneSource(ctx, forge, req.Context.PR.Repo, req.SHA, nil)
		if err != nil {
			return fail("Could not build the image", err)
		}
		// The build's Job puts the token into a Secret of its own; it is in no spec, argument or log.
		ireq.Source = image.Source{CloneURL: src.CloneURL, Commit: req.SHA, Subdir: req.Context.Project.Path,
			TokenUser: src.TokenUser, Token: src.Token}
		ireq.Dockerfile = cfg.Dockerfile
	default:
		dir, end := s.handedBackProject(ctx, forge, req, run, job)
		if end != nil {
			return deployImage{}, end
		}
		defer os.RemoveAll(dir)
		ireq.ProjectDir = dir
	}
	built, err := builder.Build(ctx, ireq)
	if err != nil {
		if ctx.Err() != nil {
			return deployImage{}, &applyEnding{conclusion: vcs.StatusCancelled, title: "Cancelled while building the image", exitCode: -1, reason: jobs.ReasonCancelled}
		}
		return fail("Building the image failed", err)
	}
	if err := s.Store.RecordApplyImage(context.WithoutCancel(ctx), db.ApplyImage{RunID: run.ID, PlanID: req.Plan.ID,
		Reference: built.Reference, Tagged: built.Tagged, BuiltAt: time.Now()}); err != nil {
		return fail("Could not record the image", err)
	}
	say("built " + built.Reference + " (" + built.Tagged + ")")
	return deployImage{ref: built.Reference, tagged: built.Tagged, note: "image built: `" + built.Reference + "`"}, nil
}

// handedBackProject runs the job that hands the project back (with its dbt_packages/) and extracts it into a
// directory of the bot's, checked against the forge's tree of the commit: every file the commit has, as it has
// it; what the job added outside dbt_packages/ is left out. The caller removes the directory.
func (s *Sequence) handedBackProject(ctx context.Context, forge vcs.Forge, req Request, run db.Run, job stepJob) (string, *applyEnding) {
	fail := func(title, msg string, code int) (string, *applyEnding) {
		return "", &applyEnding{conclusion: vcs.StatusFailure, title: title + ": nothing was applied", summary: fence(msg), exitCode: code, reason: title + ": " + msg}
	}
	fw, err := s.Runner.Jobs.Frameworks.For(req.Context.Project)
	if err != nil {
		return fail("Could not build the image", err.Error(), -1)
	}
	packager, ok := framework.ImagePackagerOf(fw)
	if !ok {
		return fail("Could not build the image", fmt.Sprintf("%s builds no image from a project", fw.Name()), -1)
	}
	res, err := job(ctx, jobrun.Step{Plan: req.Plan, Context: req.Context, RunID: run.ID, Kind: jobs.KindImage, Name: stepImage, SHA: req.SHA}, func(jobs.Line) {})
	switch {
	case s.Runner.Abandoned(run.ID, res, err):
		return "", &applyEnding{abandoned: true}
	case err != nil:
		return fail("Could not build the image", err.Error(), -1)
	case res.Reason == jobs.ReasonCancelled:
		return "", &applyEnding{conclusion: vcs.StatusCancelled, title: "Cancelled while building the image", exitCode: res.ExitCode, reason: jobs.ReasonCancelled}
	case !res.Succeeded():
		tail, _ := s.Store.RunLogTail(ctx, run.ID, 20)
		return fail("Packaging the project for the image failed", logText(tail), res.ExitCode)
	}
	tarball, ok := res.Artifacts[packager.PackageArtifact()]
	if !ok {
		why := res.ArtifactErrors[packager.PackageArtifact()]
		return fail("The job handed back no project for the image", firstNonEmpty(why, "no "+packager.PackageArtifact()), -1)
	}
	var tree vcs.Tree
	err = s.readWaiting(ctx, forge, req, run.ID)(func() (err error) {
		tree, err = forge.Tree(ctx, req.Context.PR.Repo, req.SHA)
		return err
	})
	switch {
	case err != nil:
		return fail("Could not read the commit's files", err.Error(), -1)
	case tree.Truncated:
		return fail("Could not check the project for the image", "the forge's file list of "+prstate.Short(req.SHA)+" is truncated", -1)
	}
	dir, err := os.MkdirTemp("", "dagctl-image-")
	if err != nil {
		return fail("Could not build the image", err.Error(), -1)
	}
	keep := false
	defer func() {
		if !keep {
			os.RemoveAll(dir)
		}
	}()
	ids, err := image.ExtractProject(bytes.NewReader(tarball), dir)
	if err != nil {
		return fail("The project the job handed back was refused", err.Error(), -1)
	}
	extra, err := image.CheckProject(projectFiles(req.Context.Project.Path, tree.Files), ids)
	if err != nil {
		return fail("The project the job handed back was refused", err.Error(), -1)
	}
	if err := removeAll(dir, extra); err != nil {
		return fail("Could not build the image", err.Error(), -1)
	}
	keep = true
	return dir, nil
}

// projectFiles are the tree's files of the project, by path relative to it.
func projectFiles(projectPath string, files map[string]string) map[string]string {
	out := map[string]string{}
	prefix := path.Clean(projectPath) + "/"
	for p, id := range files {
		if !deploy.InProject(projectPath, p) {
			continue
		}
		if prefix != "./" {
			p = strings.TrimPrefix(p, prefix)
		}
		out[p] = id
	}
	return out
}

// removeAll removes the named entries (relative to dir, none below a symlink: ExtractProject's) through an
// os.Root, so that nothing outside dir is touched.
func removeAll(dir string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	for _, n := range names {
		if err := root.RemoveAll(n); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}

// sourceURL is the repository's address for the image's source label: its clone URL without ".git" (never
// with credentials: the bot's clone URLs carry none).
func sourceURL(cloneURL string) string {
	if strings.Contains(cloneURL, "@") {
		return ""
	}
	return strings.TrimSuffix(cloneURL, ".git")
}
