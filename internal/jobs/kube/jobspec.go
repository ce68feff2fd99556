package kube

import (
	"encoding/json"
	"fmt"
	"math"
	"path"
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/jobs"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// The contract between the Job the bot creates and RunInPod inside it: container names, mount paths and the
// runner's environment variables. Variables starting with runnerEnvPrefix are the runner's own and are removed
// before the job's command starts.
const (
	initContainerName = "checkout"
	mainContainerName = "job"

	binMount       = "/dagctl/bin"
	workspaceMount = "/dagctl/workspace"
	baseMount      = "/dagctl/base"   // the base commit's checkout (Source.BaseSHA), read-only in the job container
	inputsMount    = "/dagctl/inputs" // the job's inputs (Spec.Inputs), fetched from the bot, read-only in the job container
	tmpMount       = "/tmp"

	runnerEnvPrefix = "DAGCTL_JOB_"
	envReportURL    = "DAGCTL_JOB_REPORT_URL"
	envReportToken  = "DAGCTL_JOB_REPORT_TOKEN"
	envCloneURL     = "DAGCTL_JOB_CLONE_URL"
	envCloneSHA     = "DAGCTL_JOB_SHA"
	envCloneUser    = "DAGCTL_JOB_CLONE_USER"
	envCloneToken   = "DAGCTL_JOB_CLONE_TOKEN"
	envBaseSHA      = "DAGCTL_JOB_BASE_SHA"
	envBaseCheckout = "DAGCTL_JOB_BASE_CHECKOUT"
	// envCollect lists the paths of Spec.Collect (JSON) for the runner to read once the command has ended.
	envCollect = "DAGCTL_JOB_COLLECT"
	// envInputsDir tells the init container to fetch the run's inputs from the bot into that directory.
	envInputsDir   = "DAGCTL_JOB_INPUTS_DIR"
	envWorkspace   = "DAGCTL_JOB_WORKSPACE"
	envBinDir      = "DAGCTL_JOB_BIN_DIR"
	envSubdir      = "DAGCTL_JOB_SUBDIR"
	envReportGrace = "DAGCTL_JOB_REPORT_GRACE"
	// envSetup holds the job's setup steps (jobs.Spec.Setup) as a JSON list of argvs.
	envSetup = "DAGCTL_JOB_SETUP_STEPS"
	// EnvTerminationLog overrides /dev/termination-log (for tests that play the node).
	EnvTerminationLog = "DAGCTL_JOB_TERMINATION_LOG"

	secretKeyReportToken = "report-token"
	secretKeyCloneToken  = "clone-token"

	// runnerBinary is the copied dagctl-bot inside the Pod.
	runnerBinary = binMount + "/dagctl-bot"
)

// buildJob makes the Job of one run, suspended: Start creates its token Secret, owned by the Job, before it lets
// the Job controller create the Pod, so the Pod never waits for a missing Secret.
// It is long because it is one Job object, field by field, with the reason for each security setting beside it.
func (e *Executor) buildJob(spec jobs.Spec) (*batchv1.Job, error) {
	if spec.Source.Dir != "" {
		return nil, fmt.Errorf("kube: a job cannot run in a local directory (%s); give a clone URL and SHA", spec.Source.Dir)
	}
	if spec.Source.CloneURL == "" || spec.Source.SHA == "" {
		return nil, fmt.Errorf("kube: run %s has no clone URL or SHA", spec.RunID)
	}
	if len(spec.Command) == 0 {
		return nil, fmt.Errorf("kube: run %s has no command", spec.RunID)
	}
	if base := spec.Source.BaseSHA; base != "" && !jobs.ValidSHA(base) {
		return nil, fmt.Errorf("kube: run %s: the base must be a full lower-case commit SHA, not %q", spec.RunID, base)
	}
	if err := jobs.CheckInputs(spec.Inputs); err != nil {
		return nil, fmt.Errorf("kube: run %s: %w", spec.RunID, err)
	}
	if err := jobs.CheckCollect(spec.Collect); err != nil {
		return nil, fmt.Errorf("kube: run %s: %w", spec.RunID, err)
	}
	subdir := path.Clean("/" + spec.Subdir)[1:] // no escaping the checkout
	image := spec.Image
	if image == "" {
		image = e.cfg.Image
	}
	if image == "" {
		return nil, fmt.Errorf("kube: run %s has no image and the server has no default (DAGCTL_K8S_IMAGE)", spec.RunID)
	}
	timeout := spec.Timeout
	if timeout <= 0 {
		timeout = e.cfg.DefaultTimeout
	}

	name := jobName(spec)
	labels := jobLabels(e.cfg.Instance, spec)
	secretName := name // the Job and its Secret share the name; the Secret is owned by the Job
	fromSecret := func(env, key string, optional bool) corev1.EnvVar {
		return corev1.EnvVar{Name: env, ValueFrom: &corev1.EnvVarSource{SecretKeyRef: &corev1.SecretKeySelector{
			LocalObjectReference: corev1.LocalObjectReference{Name: secretName}, Key: key, Optional: ptr.To(optional),
		}}}
	}
	reportURL := e.cfg.PublicURL + "/jobs/" + pathEscape(spec.RunID)
	mounts := []corev1.VolumeMount{
		{Name: "bin", MountPath: binMount},
		{Name: "workspace", MountPath: workspaceMount},
		{Name: "tmp", MountPath: tmpMount},
	}
	volumes := []corev1.Volume{emptyDir("bin"), emptyDir("workspace"), emptyDir("tmp")}
	// The init container writes what the job only reads; the job container mounts it read-only.
	checkoutMounts := append([]corev1.VolumeMount(nil), mounts...)
	jobMounts := append([]corev1.VolumeMount(nil), mounts...)
	var checkoutEnv, jobEnv []corev1.EnvVar
	if base := spec.Source.BaseSHA; base != "" {
		volumes = append(volumes, emptyDir("base"))
		checkoutMounts = append(checkoutMounts, corev1.VolumeMount{Name: "base", MountPath: baseMount})
		jobMounts = append(jobMounts, corev1.VolumeMount{Name: "base", MountPath: baseMount, ReadOnly: true})
		checkoutEnv = append(checkoutEnv, corev1.EnvVar{Name: envBaseSHA, Value: base}, corev1.EnvVar{Name: envBaseCheckout, Value: baseMount})
		jobEnv = append(jobEnv, corev1.EnvVar{Name: jobs.EnvBaseDir, Value: path.Join(baseMount, subdir)})
	}
	if len(spec.Inputs) > 0 {
		volumes = append(volumes, emptyDir("inputs"))
		checkoutMounts = append(checkoutMounts, corev1.VolumeMount{Name: "inputs", MountPath: inputsMount})
		jobMounts = append(jobMounts, corev1.VolumeMount{Name: "inputs", MountPath: inputsMount, ReadOnly: true})
		checkoutEnv = append(checkoutEnv, corev1.EnvVar{Name: envInputsDir, Value: inputsMount})
		jobEnv = append(jobEnv, corev1.EnvVar{Name: jobs.EnvInputDir, Value: inputsMount})
	}
	containerSecurity := &corev1.SecurityContext{
		RunAsNonRoot:             ptr.To(true),
		RunAsUser:                ptr.To(e.cfg.RunAsUser),
		RunAsGroup:               ptr.To(e.cfg.RunAsUser),
		AllowPrivilegeEscalation: ptr.To(false),
		ReadOnlyRootFilesystem:   ptr.To(true),
		Privileged:               ptr.To(false),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}

	checkout := corev1.Container{
		Name:    initContainerName,
		Image:   e.cfg.RunnerImage,
		Command: []string{e.cfg.RunnerPath, "job-run", "checkout"},
		Env: append([]corev1.EnvVar{
			{Name: envCloneURL, Value: spec.Source.CloneURL},
			{Name: envCloneSHA, Value: spec.Source.SHA},
			{Name: envCloneUser, Value: spec.Source.TokenUser},
			fromSecret(envCloneToken, secretKeyCloneToken, true),
			{Name: envReportURL, Value: reportURL},
			fromSecret(envReportToken, secretKeyReportToken, false),
			{Name: envWorkspace, Value: workspaceMount},
			{Name: envBinDir, Value: binMount},
			{Name: envReportGrace, Value: e.cfg.ReportGrace.String()},
			{Name: "HOME", Value: tmpMount},
		}, checkoutEnv...),
		VolumeMounts:             checkoutMounts,
		Resources:                e.cfg.Resources,
		SecurityContext:          containerSecurity,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}

	env := make([]corev1.EnvVar, 0, len(spec.Env)+4)
	names := make([]string, 0, len(spec.Env))
	for name := range spec.Env {
		// PATH is the image's: the bot's own PATH says nothing about where the image installed its tools.
		if !strings.HasPrefix(name, runnerEnvPrefix) && name != "PATH" && !executorVariable[name] {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	for _, name := range names {
		env = append(env, corev1.EnvVar{Name: name, Value: spec.Env[name]})
	}
	if _, ok := spec.Env["HOME"]; !ok {
		env = append(env, corev1.EnvVar{Name: "HOME", Value: tmpMount}) // the root file system is read-only
	}
	env = append(env, jobEnv...)
	env = append(env,
		corev1.EnvVar{Name: envReportURL, Value: reportURL},
		fromSecret(envReportToken, secretKeyReportToken, false),
		corev1.EnvVar{Name: envWorkspace, Value: workspaceMount},
		corev1.EnvVar{Name: envBinDir, Value: binMount},
		corev1.EnvVar{Name: envSubdir, Value: subdir},
		corev1.EnvVar{Name: envReportGrace, Value: e.cfg.ReportGrace.String()},
	)
	if len(spec.Collect) > 0 {
		collect, err := json.Marshal(spec.Collect)
		if err != nil {
			return nil, fmt.Errorf("kube: run %s: artifacts: %w", spec.RunID, err)
		}
		env = append(env, corev1.EnvVar{Name: envCollect, Value: string(collect)})
	}
	if len(spec.Setup) > 0 {
		steps, err := json.Marshal(spec.Setup)
		if err != nil {
			return nil, fmt.Errorf("kube: run %s: setup steps: %w", spec.RunID, err)
		}
		env = append(env, corev1.EnvVar{Name: envSetup, Value: string(steps)})
	}
	var envFrom []corev1.EnvFromSource
	for _, s := range spec.Secrets {
		envFrom = append(envFrom, corev1.EnvFromSource{SecretRef: &corev1.SecretEnvSource{
			LocalObjectReference: corev1.LocalObjectReference{Name: s},
		}})
	}
	main := corev1.Container{
		Name:                     mainContainerName,
		Image:                    image,
		Command:                  append([]string{runnerBinary, "job-run", "run", "--"}, spec.Command...),
		WorkingDir:               path.Join(workspaceMount, subdir),
		Env:                      env,
		EnvFrom:                  envFrom,
		VolumeMounts:             jobMounts,
		Resources:                e.cfg.Resources,
		SecurityContext:          containerSecurity,
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}

	var pullSecrets []corev1.LocalObjectReference
	for _, s := range e.cfg.ImagePullSecrets {
		pullSecrets = append(pullSecrets, corev1.LocalObjectReference{Name: s})
	}

	return &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        name,
			Namespace:   e.cfg.Namespace,
			Labels:      labels,
			Annotations: jobAnnotations(spec),
		},
		Spec: batchv1.JobSpec{
			Suspend:                 ptr.To(true),
			BackoffLimit:            ptr.To[int32](0), // a failed plan is a result, not something to retry
			Completions:             ptr.To[int32](1),
			Parallelism:             ptr.To[int32](1),
			ActiveDeadlineSeconds:   ptr.To(int64(math.Ceil(timeout.Seconds()))),
			TTLSecondsAfterFinished: ptr.To(int32(e.cfg.TTLAfterFinished.Seconds())),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: jobAnnotations(spec)},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           e.cfg.ServiceAccountName,
					AutomountServiceAccountToken: ptr.To(false), // PR code gets no API credentials
					EnableServiceLinks:           ptr.To(false),
					ImagePullSecrets:             pullSecrets,
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr.To(true),
						RunAsUser:      ptr.To(e.cfg.RunAsUser),
						RunAsGroup:     ptr.To(e.cfg.RunAsUser),
						FSGroup:        ptr.To(e.cfg.RunAsUser),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					InitContainers: []corev1.Container{checkout},
					Containers:     []corev1.Container{main},
					Volumes:        volumes,
				},
			},
		},
	}, nil
}

func emptyDir(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}

// executorVariable names the job variables the executor sets itself; the spec's values of them are dropped.
var executorVariable = map[string]bool{jobs.EnvBaseDir: true, jobs.EnvInputDir: true}

// buildSecret holds the run's tokens. It is owned by the Job, so the garbage collector deletes it with the Job
// (after a cancel, or when the TTL controller removes the finished Job).
func (e *Executor) buildSecret(job *batchv1.Job, spec jobs.Spec) *corev1.Secret {
	data := map[string][]byte{secretKeyReportToken: []byte(RunToken(e.cfg.TokenKey, spec.RunID))}
	if spec.Source.Token != "" {
		data[secretKeyCloneToken] = []byte(spec.Source.Token)
	}
	return &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name:        job.Name,
			Namespace:   job.Namespace,
			Labels:      job.Labels,
			Annotations: map[string]string{AnnotationRunID: spec.RunID},
			OwnerReferences: []metav1.OwnerReference{{
				APIVersion: "batch/v1",
				Kind:       "Job",
				Name:       job.Name,
				UID:        job.UID,
			}},
		},
		Type:      corev1.SecretTypeOpaque,
		Immutable: ptr.To(true),
		Data:      data,
	}
}
