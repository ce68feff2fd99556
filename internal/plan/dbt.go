package plan

// Scope is what a dbt deploy runs (dagctl's three scopes, plus none for a PR that is not a deploy).
type Scope string

const (
	// ScopeSelective: model files changed; only the changed models and their downstream run
	// (`dbt build --select state:modified+ ...`).
	ScopeSelective Scope = "selective"
	// ScopeAll: other dbt files changed (macros, dbt_project.yml, packages, seeds' and properties' YAML): a full
	// `dbt build`.
	ScopeAll Scope = "all"
	// ScopeBuildOnly: only infra changed (Dockerfile, requirements, .dagctl/config.yaml apart from the
	// version): the image is rebuilt, no dbt command runs.
	ScopeBuildOnly Scope = "build_only"
	// ScopeNone: nothing to deploy (no version bump, or nothing changed since the last deploy).
	ScopeNone Scope = "none"
)

// FileType is what a changed file is to dbt, by the project's own dbt_project.yml paths.
type FileType string

const (
	FileModel      FileType = "model"
	FileProperties FileType = "properties" // a YAML file under model/seed/snapshot paths (schema.yml, ...)
	FileTest       FileType = "test"
	FileMacro      FileType = "macro"
	FileSeed       FileType = "seed"
	FileSnapshot   FileType = "snapshot"
	FileAnalysis   FileType = "analysis"
	FileDocs       FileType = "docs"
	FileProject    FileType = "project"  // dbt_project.yml, vars.yml, selectors.yml
	FilePackages   FileType = "packages" // packages.yml, dependencies.yml, package-lock.yml
	FileInfra      FileType = "infra"    // Dockerfile, requirements*.txt, .dagctl/config.yaml (not the version)
	FileOther      FileType = "other"
)

// FileChange is one file changed between the base commit and the head.
type FileChange struct {
	Path   string   `json:"path"`
	Type   FileType `json:"type"`
	Change string   `json:"change"` // "added", "modified", "removed"
}

// NodeReason is why dbt's state comparison sees a node as changed.
type NodeReason string

const (
	ReasonNew      NodeReason = "new"
	ReasonRemoved  NodeReason = "removed" // a rename is removed + new
	ReasonBody     NodeReason = "body"
	ReasonConfig   NodeReason = "config"
	ReasonRelation NodeReason = "relation"
	ReasonMacro    NodeReason = "macro"
	ReasonContract NodeReason = "contract"
	// ReasonDescription: a description dbt persists to the warehouse (persist_docs) changed.
	ReasonDescription NodeReason = "description"
	ReasonOther       NodeReason = "other" // state:modified with none of the sub-selectors above (fqn, access, ...)
)

// Node is one dbt node (model, seed, snapshot, test, source, ...) that changed.
type Node struct {
	UniqueID     string       `json:"unique_id"` // model.warehouse.stg_orders
	Name         string       `json:"name"`
	ResourceType string       `json:"resource_type"`
	Path         string       `json:"path,omitempty"` // original_file_path at the head (at the base for removed nodes)
	Reasons      []NodeReason `json:"reasons"`
}

// DBT is a dbt plan's own view: the deploy version, the files and nodes that changed since the base commit,
// the scope both rules decide, which one decides, and the exact command the apply runs. dbt has no change
// categories: the Summary's lists carry NoCategory.
type DBT struct {
	Version         string `json:"version"`                    // the project's version at the head
	PreviousVersion string `json:"previous_version,omitempty"` // at the base commit ("" for a first deploy)
	// Deploy: the version changed, so merging (or applying) deploys; otherwise the plan is informational.
	Deploy bool `json:"deploy"`
	// BaseCommit is what the head is compared with: the commit last applied to the environment, or the merge
	// base when none was (BaseIsDeployed false).
	BaseCommit     string `json:"base_commit"`
	BaseIsDeployed bool   `json:"base_is_deployed,omitempty"`

	Files []FileChange `json:"files,omitempty"`
	// FileScope is the scope the changed files decide (dagctl's rules); ManifestScope the one dbt's state
	// comparison decides ("" when no manifest diff was made). Scope is the one that decides, DecidedBy says which
	// ("manifest" or "files").
	FileScope     Scope  `json:"file_scope"`
	ManifestScope Scope  `json:"manifest_scope,omitempty"`
	Scope         Scope  `json:"scope"`
	DecidedBy     string `json:"decided_by"`
	// ScopeReason says, in words, why that rule decides ("no production manifest yet: ...").
	ScopeReason string `json:"scope_reason,omitempty"`

	Nodes []Node `json:"nodes,omitempty"` // state:modified, plus removed nodes (which state never selects)
	// Downstream are the unique ids state:modified+ selects beyond Nodes.
	Downstream []string `json:"downstream,omitempty"`
	// Commands are the exact dbt commands the apply runs, in order (none for build_only or none).
	Commands []string `json:"commands,omitempty"`
	// ImageRepository is where the apply pushes the deploy image it builds, from the governing config (the
	// default branch's for a project it has); "" when none is configured: the apply builds no image and runs in
	// the checkout.
	ImageRepository string `json:"image_repository,omitempty"`
	// PRBuild is the build of a PR's own environment (pr_environment, Slim CI); nil for any other plan. Such a
	// plan deploys nothing: its job built the PR's schema already.
	PRBuild *PRBuild `json:"pr_build,omitempty"`
}

// PRBuild is what a PR environment's job built: `dbt build --select state:modified+ --defer --state <production
// manifest>` into the PR's schema, or every node when there is no production manifest.
type PRBuild struct {
	// Schema is the PR's schema, from the default branch's pr_environment (the bot's, not the job's word).
	Schema string `json:"schema"`
	Target string `json:"target,omitempty"` // the dbt target it ran with
	// Deferred: built state:modified+, deferring the rest to the production manifest; false: every node.
	Deferred bool        `json:"deferred"`
	Nodes    []BuiltNode `json:"nodes,omitempty"`
	// Outside are the nodes left out because they would write outside the PR's schema (a snapshot's
	// target_schema, a configured database); Status is empty and Message says where they write.
	Outside []BuiltNode `json:"outside,omitempty"`
}

// BuiltNode is one node of a PR build and what became of it, in dbt's words (success, pass, error, fail, warn,
// skipped, ...).
type BuiltNode struct {
	UniqueID     string `json:"unique_id"`
	Name         string `json:"name"`
	ResourceType string `json:"resource_type"`
	Path         string `json:"path,omitempty"`
	Status       string `json:"status,omitempty"`
	Message      string `json:"message,omitempty"` // dbt's message for a node that did not succeed
}

// Failed reports whether dbt counts the node's status as a failure.
func (n BuiltNode) Failed() bool {
	switch n.Status {
	case "error", "fail", "runtime error":
		return true
	}
	return false
}

// Counts are the build's nodes: built (every node dbt ran), passed, failed and skipped.
func (b PRBuild) Counts() (built, passed, failed, skipped int) {
	for _, n := range b.Nodes {
		switch {
		case n.Failed():
			failed++
		case n.Status == "skipped":
			skipped++
		default:
			passed++
		}
	}
	return len(b.Nodes), passed, failed, skipped
}

// Disagree reports whether the file rules and the manifest decide different scopes.
func (d DBT) Disagree() bool {
	return d.ManifestScope != "" && d.ManifestScope != d.FileScope
}

// Removed lists the nodes that are gone at the head.
func (d DBT) Removed() []Node {
	var out []Node
	for _, n := range d.Nodes {
		for _, r := range n.Reasons {
			if r == ReasonRemoved {
				out = append(out, n)
				break
			}
		}
	}
	return out
}
