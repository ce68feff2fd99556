package kube

import (
	"context"
	"fmt"
	"regexp"
	"slices"
	"strings"

	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// Why a Secret named in job.secrets is refused. The messages follow the quoted name in a config error.
const (
	refusedBotSecret  = "is one of the bot's own Secrets (DAGCTL_K8S_BOT_SECRETS, or a run's token Secret): jobs never get it"
	refusedNotAllowed = "is not allowed by the operator (DAGCTL_K8S_JOB_SECRETS, DAGCTL_K8S_JOB_SECRETS_SELECTOR)"
)

var _ jobs.SecretChecker = (*Executor)(nil)

// RefuseSecret says why jobs may not mount the Secret, or "" when they may: see checkSecret.
func (e *Executor) RefuseSecret(ctx context.Context, name string) (string, error) {
	why, _, err := e.checkSecret(ctx, name)
	return why, err
}

// checkSecret decides whether a job may mount the Secret with envFrom. The bot's own Secrets never, then those
// the operator named, then, with a selector, those whose labels match it; nothing else. Only the selector needs
// the Secret itself, read through the API: it is returned then, so that its values can be masked. A Secret that
// does not exist is refused like one that does not match, so that a config cannot probe the namespace.
func (e *Executor) checkSecret(ctx context.Context, name string) (why string, read *corev1.Secret, err error) {
	switch {
	case slices.Contains(e.cfg.BotSecrets, name) || isRunSecretName(name):
		return refusedBotSecret, nil, nil
	case slices.Contains(e.cfg.JobSecrets, name):
		return "", nil, nil
	case e.secretSelector == nil:
		return refusedNotAllowed, nil, nil
	}
	secret, err := e.client.CoreV1().Secrets(e.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return refusedNotAllowed, nil, nil
	case err != nil:
		return "", nil, fmt.Errorf("kube: reading Secret %s to check its labels: %w", name, err)
	case isRunSecret(secret):
		return refusedBotSecret, nil, nil
	case !e.secretSelector.Matches(labels.Set(secret.Labels)):
		return refusedNotAllowed, nil, nil
	}
	return "", secret, nil
}

// checkSecrets checks every Secret of a job and returns the values of those it read, to mask.
func (e *Executor) checkSecrets(ctx context.Context, runID string, names []string) (values []string, err error) {
	for _, name := range names {
		why, secret, err := e.checkSecret(ctx, name)
		if err != nil {
			return nil, err
		}
		if why != "" {
			return nil, fmt.Errorf("kube: run %s: job.secrets: %q %s", runID, name, why)
		}
		values = append(values, secretValues(secret)...)
	}
	return values, nil
}

// rereadSecrets reads again, for a Job started earlier, the Secrets its start read to check (those the selector
// allowed), so that their values are masked after a restart too.
func (e *Executor) rereadSecrets(ctx context.Context, runID string, job *batchv1.Job) []string {
	if e.secretSelector == nil {
		return nil
	}
	var values []string
	for _, name := range mountedSecrets(job.Spec.Template.Spec) {
		if slices.Contains(e.cfg.JobSecrets, name) {
			continue // allowed by name: never read
		}
		secret, err := e.client.CoreV1().Secrets(e.cfg.Namespace).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			e.cfg.Logger.Warn("a job's Secret cannot be read to mask its values", "run", runID, "secret", name, "err", err)
			continue
		}
		values = append(values, secretValues(secret)...)
	}
	return values
}

// maskValues masks a job's output of the values the executor read from its Secrets.
func maskValues(sink jobs.Sink, values []string) jobs.Sink {
	if len(values) == 0 || sink == nil {
		return sink
	}
	return jobs.NewRedactor(values...).Sink(sink)
}

func secretValues(s *corev1.Secret) []string {
	if s == nil {
		return nil
	}
	var values []string
	for _, v := range s.Data {
		values = append(values, string(v))
	}
	return values
}

// parseSecretSelector parses DAGCTL_K8S_JOB_SECRETS_SELECTOR; nil means none (not "everything").
func parseSecretSelector(s string) (labels.Selector, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	return labels.Parse(s)
}

// runSecretName matches jobName: "dagctl-", the kind, the run id, and the run id's hash. The executor names each
// run's token Secret so.
var runSecretName = regexp.MustCompile(`^dagctl-[a-z0-9-]+-[0-9a-f]{10}$`)

func isRunSecretName(name string) bool { return runSecretName.MatchString(name) }

// isRunSecret tells a token Secret of this or another installation by its labels.
func isRunSecret(s *corev1.Secret) bool {
	_, instance := s.Labels[LabelInstance]
	return instance || s.Labels[labelManagedBy] == managedBy
}

// mountedSecrets are the Secrets a Job's main container mounts with envFrom.
func mountedSecrets(podSpec corev1.PodSpec) []string {
	var names []string
	for _, c := range podSpec.Containers {
		if c.Name != mainContainerName {
			continue
		}
		for _, from := range c.EnvFrom {
			if from.SecretRef != nil {
				names = append(names, from.SecretRef.Name)
			}
		}
	}
	return names
}
