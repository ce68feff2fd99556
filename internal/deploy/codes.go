package deploy

// Code names a rule of the deploy decision. Codes are stable: logs and tests key on them, while the messages may
// be reworded.
type Code string

const (
	CodePRClosed        Code = "pr_closed"
	CodeConflicts       Code = "pr_conflicts"
	CodeEnvUnnamed      Code = "env_unnamed"        // --accept on a merged PR must name the environment
	CodeNotAdmin        Code = "not_admin"          // only admins may --accept
	CodeNotOnTrigger    Code = "env_not_on_trigger" // the environment is not applied this way
	CodeNotApplier      Code = "not_applier"
	CodeNotDeployBranch Code = "not_deploy_branch" // the trust root: the PR targets a branch that does not deploy
	CodeBehind          Code = "behind_deploy_branch"
	CodeNoPlan          Code = "no_plan"
	CodePlanNotReady    Code = "plan_not_ready" // failed, stale, cancelled, still running
	CodePlanRunning     Code = "plan_running"   // a merge's apply waits for the merged head's plan to end
	CodeNoSummary       Code = "no_summary"
	CodeUncategorized   Code = "uncategorized"
	CodeApplyRunning    Code = "apply_running"
	CodeApplied         Code = "applied_already"
	CodeNoChanges       Code = "no_changes"
	CodeNotApproved     Code = "not_approved"
	CodeLocked          Code = "locked"
	CodeUnreviewed      Code = "unreviewed_content"
	CodeContentAccepted Code = "content_accepted" // not a refusal: an admin accepted the content
	CodeScopeChanged    Code = "scope_changed"
)

// AboutRequest reports whether the code refuses the request as a whole (the PR, the command, the user), so that
// it is answered alone rather than listed per environment.
func (c Code) AboutRequest() bool {
	switch c {
	case CodePRClosed, CodeConflicts, CodeEnvUnnamed, CodeNotAdmin, CodeNotOnTrigger:
		return true
	}
	return false
}

// AboutEnvironment reports whether the code refuses the environment itself (who may apply it, the branch it is
// applied from, divergence from that branch): the same for each of its projects.
func (c Code) AboutEnvironment() bool {
	switch c {
	case CodeNotApplier, CodeNotDeployBranch, CodeBehind:
		return true
	}
	return false
}
