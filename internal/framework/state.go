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

// ImagePackager is a framework whose deploy image is built by the bot from the project a job hands back (dbt:
// the checkout with the dbt_packages/ `dbt deps` installed): the job runs PR code and gets no registry
// credentials; the bot, which holds them, builds and pushes (internal/image).
type ImagePackager interface {
	// PackageCommand is the argv of the job (jobs.KindImage) that leaves the project as a tar at
	// PackageArtifact, at most maxBytes.
	PackageCommand(req CommandRequest, maxBytes int) []string
	// PackageArtifact is the tar's path, relative to the project directory.
	PackageArtifact() string
	// ImageEnv are the variables of an apply job that runs on the deploy image, whose project is at imagePath
	// in it.
	ImageEnv(imagePath string) map[string]string
}

// ImagePackagerOf is fw's ImagePackager, when its deploys build an image from a handed-back project.
func ImagePackagerOf(fw Framework) (ImagePackager, bool) {
	p, ok := fw.(ImagePackager)
	return p, ok
}
