package image

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"
)

// DefaultBuildKitImage is the rootless BuildKit image a Dockerfile build runs, pinned (moby/buildkit v0.32.2).
const DefaultBuildKitImage = "moby/buildkit:v0.32.2-rootless"

// DefaultDockerfileTimeout bounds a Dockerfile build when the operator sets none.
const DefaultDockerfileTimeout = 30 * time.Minute

// buildkitUser is the user the rootless image is made for: "To change UID/GID, you need to rebuild the
// image" (moby/buildkit examples/kubernetes/job.rootless.yaml).
const buildkitUser = 1000

// Where things are in the build's pod.
const (
	workspaceMount    = "/workspace"
	checkoutDir       = workspaceMount + "/src"
	dockerConfigMount = "/home/user/.docker"               // $DOCKER_CONFIG: config.json from the operator's Secret
	buildkitStateDir  = "/home/user/.local/share/buildkit" // an emptyDir: the image's VOLUME fails on some nodes
	cloneTokenMount   = "/var/run/dagctl/clone"
	cloneTokenKey     = "token"
	terminationLog    = "/dev/termination-log"
)

// DockerfileSettings are the operator's settings of Dockerfile builds; nothing here comes from a PR.
type DockerfileSettings struct {
	Namespace string
	// BuildKitImage is the rootless BuildKit image (DefaultBuildKitImage when empty); pin it by digest.
	BuildKitImage string
	// GitImage is the image of the init container that checks the commit out: any image with sh and git
	// (required; pin it).
	GitImage string
	// RegistrySecret is the kubernetes.io/dockerconfigjson Secret with the push credentials of the
	// repository (required). It is mounted as the build's docker config, never put in the environment.
	RegistrySecret     string
	ServiceAccountName string
	Timeout            time.Duration // DefaultDockerfileTimeout when 0
	TTLAfterFinished   time.Duration // 0: the Job is kept until deleted
	Resources          corev1.ResourceRequirements
	// NodeSelector, Tolerations and RuntimeClassName put builds on nodes of their own or under a sandboxed
	// runtime (gVisor): the build runs the PR's Dockerfile with relaxed seccomp and AppArmor.
	NodeSelector     map[string]string
	Tolerations      []corev1.Toleration
	RuntimeClassName string
	// Labels are added to the Job and its pod (kubebuild adds its own instance label; never the executor's
	// dagctl.dev/instance, whose orphan sweep deletes every Job of it that no run owns).
	Labels map[string]string
}

// Source is the commit a Dockerfile build checks out as its context.
type Source struct {
	CloneURL string // https://…; credentials never in it
	Commit   string // the full SHA
	// Subdir is the project's directory in the repository ("" the root).
	Subdir string
	// TokenUser and TokenSecret authenticate the clone: the user (`x-access-token`, `oauth2`) and a Secret in
	// the namespace with the token under the key "token", mounted into the checkout alone. Both empty: a
	// public repository.
	TokenUser, TokenSecret string
	// Token is the clone token itself, for a builder that puts it into a Secret of its own and names that
	// Secret in TokenSecret (kubebuild: a Secret per build, owned by its Job). DockerfileJob never reads it.
	Token string
}

var (
	commitSHA = regexp.MustCompile(`^([0-9a-f]{40}|[0-9a-f]{64})$`)
	labelKey  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._/-]*$`)
)

// checkoutScript fetches exactly the commit into the context directory. The values come from the
// environment, never spliced into the script; the token is read from its mounted file by a credential helper,
// so it is in no argument, variable or URL.
const checkoutScript = `set -eu
git init -q "$CHECKOUT"
cd "$CHECKOUT"
git -c credential.helper= -c credential.helper='!f() { test "$1" = get || exit 0; test -r "$TOKEN_FILE" || exit 0; echo "username=$CLONE_USER"; printf "password="; cat "$TOKEN_FILE"; echo; }; f' fetch -q --depth 1 "$CLONE_URL" "$COMMIT"
git checkout -q --detach FETCH_HEAD
test "$(git rev-parse HEAD)" = "$COMMIT"
`

// DockerfileJob is the Kubernetes Job that builds the project's Dockerfile with rootless BuildKit and pushes
// it, from the request's Source, Dockerfile, Repository, Tag and Labels (Base and ProjectDir are the layer
// builder's): an init container checks the commit out into an emptyDir, then `buildctl-daemonless.sh` builds
// it and writes its metadata (the pushed digest: ResultFromMetadata) to the termination log. Pure: it reads
// and creates nothing.
//
// The build container follows BuildKit's rootless example (moby/buildkit examples/kubernetes/job.rootless.yaml
// and docs/rootless.md): user 1000, not privileged, but seccomp and AppArmor Unconfined ("seccomp=unconfined:
// for allowing several syscalls such as unshare (used by runc) and mount (used by snapshotters)";
// "apparmor=unconfined: for allowing mounting filesystems") and BUILDKITD_FLAGS=--oci-worker-no-process-sandbox,
// since Kubernetes has no systempaths=unconfined. Privilege escalation stays allowed: rootlesskit maps its
// user namespace with the setuid newuidmap/newgidmap. The Dockerfile's RUN steps are the PR's code and run in
// that container, where the push credentials are mounted: give the Secret push rights to this one repository
// only, and build only what the bot would apply.
func DockerfileJob(s DockerfileSettings, req Request) (*batchv1.Job, error) {
	if s.GitImage == "" {
		return nil, errors.New("image: Dockerfile builds need an image with git for the checkout")
	}
	if s.RegistrySecret == "" {
		return nil, errors.New("image: Dockerfile builds need the registry credentials' Secret")
	}
	src := req.Source
	if !strings.HasPrefix(src.CloneURL, "https://") && !strings.HasPrefix(src.CloneURL, "http://") {
		return nil, fmt.Errorf("image: clone URL %q is not http(s)", src.CloneURL)
	}
	if !commitSHA.MatchString(src.Commit) {
		return nil, fmt.Errorf("image: %q is not a full commit SHA", src.Commit)
	}
	if (src.TokenUser == "") != (src.TokenSecret == "") {
		return nil, errors.New("image: a clone token needs both its user and its Secret")
	}
	subdir, err := inside("project directory", src.Subdir, ".")
	if err != nil {
		return nil, err
	}
	dockerfile, err := inside("Dockerfile", req.Dockerfile, "Dockerfile")
	if err != nil {
		return nil, err
	}
	if dockerfile == "." {
		return nil, errors.New("image: the Dockerfile names the project's directory")
	}
	repo, err := name.NewRepository(req.Repository, name.StrictValidation)
	if err != nil {
		return nil, fmt.Errorf("image: repository %q: %w", req.Repository, err)
	}
	if !validTag.MatchString(req.Tag) {
		return nil, fmt.Errorf("image: tag %q is not a valid tag", req.Tag)
	}
	target := repo.Name() + ":" + req.Tag

	contextDir := path.Join(checkoutDir, subdir)
	dockerfilePath := path.Join(contextDir, dockerfile)
	args := []string{
		"build",
		"--frontend", "dockerfile.v0",
		"--local", "context=" + contextDir,
		"--local", "dockerfile=" + path.Dir(dockerfilePath),
		"--opt", "filename=" + path.Base(dockerfilePath),
	}
	keys := make([]string, 0, len(req.Labels))
	for k := range req.Labels {
		if !labelKey.MatchString(k) {
			return nil, fmt.Errorf("image: label %q is not a label key", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		args = append(args, "--opt", "label:"+k+"="+req.Labels[k])
	}
	args = append(args,
		"--output", "type=image,name="+target+",push=true",
		"--metadata-file", terminationLog,
	)

	image := s.BuildKitImage
	if image == "" {
		image = DefaultBuildKitImage
	}
	timeout := s.Timeout
	if timeout <= 0 {
		timeout = DefaultDockerfileTimeout
	}
	labels := map[string]string{
		"app.kubernetes.io/managed-by": "dagctl-bot",
		"app.kubernetes.io/component":  "image-build",
	}
	for k, v := range s.Labels {
		labels[k] = v
	}
	annotations := map[string]string{
		"dagctl.dev/image":  target,
		"dagctl.dev/commit": src.Commit,
	}
	user := int64(buildkitUser)

	checkoutEnv := []corev1.EnvVar{
		{Name: "CHECKOUT", Value: checkoutDir},
		{Name: "CLONE_URL", Value: src.CloneURL},
		{Name: "COMMIT", Value: src.Commit},
		{Name: "CLONE_USER", Value: src.TokenUser},
		{Name: "TOKEN_FILE", Value: cloneTokenMount + "/" + cloneTokenKey},
		{Name: "HOME", Value: workspaceMount + "/.home"}, // the root file system is read-only
		{Name: "GIT_TERMINAL_PROMPT", Value: "0"},
	}
	checkoutMounts := []corev1.VolumeMount{{Name: "workspace", MountPath: workspaceMount}}
	volumes := []corev1.Volume{
		emptyDirVolume("workspace"),
		emptyDirVolume("buildkitd"),
		{Name: "docker-config", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  s.RegistrySecret,
			Items:       []corev1.KeyToPath{{Key: corev1.DockerConfigJsonKey, Path: "config.json"}},
			DefaultMode: ptr.To[int32](0o440),
		}}},
	}
	if src.TokenSecret != "" {
		checkoutMounts = append(checkoutMounts, corev1.VolumeMount{Name: "clone-token", MountPath: cloneTokenMount, ReadOnly: true})
		volumes = append(volumes, corev1.Volume{Name: "clone-token", VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{
			SecretName:  src.TokenSecret,
			Items:       []corev1.KeyToPath{{Key: cloneTokenKey, Path: cloneTokenKey}},
			DefaultMode: ptr.To[int32](0o440),
		}}})
	}

	checkout := corev1.Container{
		Name:         "checkout",
		Image:        s.GitImage,
		Command:      []string{"sh", "-c", checkoutScript},
		Env:          checkoutEnv,
		VolumeMounts: checkoutMounts,
		Resources:    s.Resources,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:             ptr.To(true),
			RunAsUser:                ptr.To(user),
			RunAsGroup:               ptr.To(user),
			Privileged:               ptr.To(false),
			AllowPrivilegeEscalation: ptr.To(false),
			ReadOnlyRootFilesystem:   ptr.To(true),
			Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
			SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
		},
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}
	build := corev1.Container{
		Name:    "buildkit",
		Image:   image,
		Command: []string{"buildctl-daemonless.sh"},
		Args:    args,
		Env: []corev1.EnvVar{
			{Name: "BUILDKITD_FLAGS", Value: "--oci-worker-no-process-sandbox"},
			{Name: "DOCKER_CONFIG", Value: dockerConfigMount},
		},
		VolumeMounts: []corev1.VolumeMount{
			{Name: "workspace", MountPath: workspaceMount, ReadOnly: true},
			{Name: "buildkitd", MountPath: buildkitStateDir},
			{Name: "docker-config", MountPath: dockerConfigMount, ReadOnly: true},
		},
		Resources: s.Resources,
		SecurityContext: &corev1.SecurityContext{
			RunAsNonRoot:    ptr.To(true),
			RunAsUser:       ptr.To(user),
			RunAsGroup:      ptr.To(user),
			Privileged:      ptr.To(false),
			SeccompProfile:  &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeUnconfined},
			AppArmorProfile: &corev1.AppArmorProfile{Type: corev1.AppArmorProfileTypeUnconfined},
		},
		TerminationMessagePath: terminationLog,
		// A build that pushed leaves its metadata there; one that failed wrote none, so Kubernetes puts the
		// log's tail there instead (at most 80 lines, 2048 bytes): the failing step's output, for the error.
		TerminationMessagePolicy: corev1.TerminationMessageFallbackToLogsOnError,
	}

	var runtimeClass *string
	if s.RuntimeClassName != "" {
		runtimeClass = ptr.To(s.RuntimeClassName)
	}
	job := &batchv1.Job{
		ObjectMeta: metav1.ObjectMeta{
			Name:        buildJobName(target, src.Commit),
			Namespace:   s.Namespace,
			Labels:      labels,
			Annotations: annotations,
		},
		Spec: batchv1.JobSpec{
			BackoffLimit:          ptr.To[int32](0), // a failed build is a result; the apply says so
			Completions:           ptr.To[int32](1),
			Parallelism:           ptr.To[int32](1),
			ActiveDeadlineSeconds: ptr.To(int64(math.Ceil(timeout.Seconds()))),
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels, Annotations: annotations},
				Spec: corev1.PodSpec{
					RestartPolicy:                corev1.RestartPolicyNever,
					ServiceAccountName:           s.ServiceAccountName,
					AutomountServiceAccountToken: ptr.To(false), // the PR's Dockerfile gets no API credentials
					EnableServiceLinks:           ptr.To(false),
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot: ptr.To(true),
						RunAsUser:    ptr.To(user),
						RunAsGroup:   ptr.To(user),
						FSGroup:      ptr.To(user), // the Secrets' files (0440) are readable by the build's group
					},
					InitContainers:   []corev1.Container{checkout},
					Containers:       []corev1.Container{build},
					Volumes:          volumes,
					NodeSelector:     s.NodeSelector,
					Tolerations:      s.Tolerations,
					RuntimeClassName: runtimeClass,
				},
			},
		},
	}
	if s.TTLAfterFinished > 0 {
		job.Spec.TTLSecondsAfterFinished = ptr.To(int32(s.TTLAfterFinished.Seconds()))
	}
	return job, nil
}

// inside cleans a relative path that must stay in the checkout (it comes from the PR's config).
func inside(what, p, def string) (string, error) {
	if p == "" {
		p = def
	}
	if path.IsAbs(p) || strings.Contains(p, `\`) {
		return "", fmt.Errorf("image: %s %q is not a relative path", what, p)
	}
	c := path.Clean(p)
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("image: %s %q leaves the repository", what, p)
	}
	return c, nil
}

func emptyDirVolume(name string) corev1.Volume {
	return corev1.Volume{Name: name, VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
}

// buildJobName is one name per image and commit: creating it again is a conflict, not a second build.
func buildJobName(target, commit string) string {
	sum := sha256.Sum256([]byte(target + "\x00" + commit))
	return "dagctl-image-" + hex.EncodeToString(sum[:])[:16]
}

// ResultFromMetadata is the image a Dockerfile build pushed, from its metadata.
func ResultFromMetadata(req Request, metadata string) (Result, error) {
	digest, err := DigestFromMetadata(metadata)
	if err != nil {
		return Result{}, err
	}
	repo, err := name.NewRepository(req.Repository, name.StrictValidation)
	if err != nil {
		return Result{}, fmt.Errorf("image: repository %q: %w", req.Repository, err)
	}
	return Result{Reference: repo.Digest(digest).String(), Digest: digest, Tagged: repo.Tag(req.Tag).String()}, nil
}

// DigestFromMetadata reads the pushed image's digest from buildctl's metadata file (the build container's
// termination message).
func DigestFromMetadata(metadata string) (string, error) {
	var m struct {
		Digest string `json:"containerimage.digest"`
	}
	if err := json.Unmarshal([]byte(metadata), &m); err != nil {
		return "", fmt.Errorf("image: the build's metadata: %w", err)
	}
	if m.Digest == "" {
		return "", errors.New("image: the build's metadata has no containerimage.digest")
	}
	h, err := v1.NewHash(m.Digest)
	if err != nil {
		return "", fmt.Errorf("image: the build's digest: %w", err)
	}
	return h.String(), nil
}
