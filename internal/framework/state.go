package framework

// StateKeeper is a framework whose successful apply leaves the environment's production state as a file (dbt:
// the manifest.json of what was deployed), which the bot stores and gives to the environment's next plans and
// applies as an input (jobs.Spec.Inputs). The bot stores it only from a job that succeeded, as the executor
// collected it (jobs.Spec.Collect), never from the job's printed output.
type StateKeeper interface {
	// StateArtifact is the path, relative to the project directory, an apply job leaves the state at.
	StateArtifact() string
	// StateInput is the input name the state is given as, and the variables that tell the job where it is.
	StateInput() (name string, env map[string]string)
}

// StateKeeperOf is fw's StateKeeper, when its applies leave a production state.
func StateKeeperOf(fw Framework) (StateKeeper, bool) {
	k, ok := fw.(StateKeeper)
	return k, ok
}
