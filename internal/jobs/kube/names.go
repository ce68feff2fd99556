package kube

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"regexp"
	"sort"
	"strings"

	"github.com/dagctl/dagctl-bot/internal/jobs"
)

// Label and annotation keys on every Job, its Pod and its Secret. Labels are for selection and for operators
// (`kubectl get jobs -l dagctl.dev/pr=42`); the annotations keep the exact values, which labels may only
// approximate (63 characters, a restricted alphabet).
const (
	labelPrefix = "dagctl.dev/"
	// LabelInstance marks the Jobs of one bot installation; the watcher follows only those.
	LabelInstance = labelPrefix + "instance"
	LabelRunID    = labelPrefix + "run-id"
	LabelKind     = labelPrefix + "kind"
	// AnnotationRunID holds the run id exactly; a label may have been shortened.
	AnnotationRunID = labelPrefix + "run-id"
	// AnnotationCollect holds the run's Spec.Collect (a JSON list), so that a bot that attaches after a restart
	// takes the same artifacts and no others.
	AnnotationCollect = labelPrefix + "collect"

	labelManagedBy = "app.kubernetes.io/managed-by"
	managedBy      = "dagctl-bot"
)

// labelValueMax is the longest label value Kubernetes accepts.
const labelValueMax = 63

var notLabelChars = regexp.MustCompile(`[^A-Za-z0-9._-]+`)

// labelValue turns any string into a valid label value: invalid characters become "-", the value starts and
// ends with an alphanumeric, and a value that had to be shortened ends with a hash of the original so that
// different long values stay different.
func labelValue(s string) string {
	v := notLabelChars.ReplaceAllString(s, "-")
	v = strings.Trim(v, "._-")
	if len(v) <= labelValueMax {
		return v
	}
	h := shortHash(s, 10)
	v = strings.TrimRight(v[:labelValueMax-len(h)-1], "._-")
	return v + "-" + h
}

var notLabelKeyChars = regexp.MustCompile(`[^a-z0-9._-]+`)

// labelKey makes a key under dagctl.dev/ from a jobs.Spec label name such as "repo" or "environment".
func labelKey(name string) string {
	k := strings.Trim(notLabelKeyChars.ReplaceAllString(strings.ToLower(name), "-"), "._-")
	if k == "" {
		k = "x-" + shortHash(name, 8)
	}
	if len(k) > labelValueMax {
		k = strings.TrimRight(k[:labelValueMax-11], "._-") + "-" + shortHash(name, 10)
	}
	return labelPrefix + k
}

func shortHash(s string, n int) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])[:n]
}

var notDNSChars = regexp.MustCompile(`[^a-z0-9-]+`)

// jobName is the Job's name: readable, valid as a DNS label (the Job controller copies it into a Pod label),
// and unique per run id through the hash.
func jobName(spec jobs.Spec) string {
	kind := notDNSChars.ReplaceAllString(strings.ToLower(string(spec.Kind)), "-")
	if kind == "" {
		kind = "job"
	}
	id := strings.Trim(notDNSChars.ReplaceAllString(strings.ToLower(spec.RunID), "-"), "-")
	// Room for "dagctl-", the kind, two dashes and the hash, within the 52 characters that leave the Pod's
	// generated suffix inside 63.
	room := 52 - len("dagctl-") - len(kind) - 2 - 10
	if len(id) > room {
		id = strings.Trim(id[:room], "-")
	}
	name := "dagctl-" + kind
	if id != "" {
		name += "-" + id
	}
	return name + "-" + shortHash(spec.RunID, 10)
}

// jobLabels are the labels of a run's Job, Pod and Secret.
func jobLabels(instance string, spec jobs.Spec) map[string]string {
	labels := map[string]string{
		labelManagedBy: managedBy,
		LabelInstance:  labelValue(instance),
		LabelRunID:     labelValue(spec.RunID),
		LabelKind:      labelValue(string(spec.Kind)),
	}
	names := make([]string, 0, len(spec.Labels))
	for name := range spec.Labels {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		key := labelKey(name)
		if _, taken := labels[key]; taken {
			continue // the executor's own labels cannot be overridden
		}
		labels[key] = labelValue(spec.Labels[name])
	}
	return labels
}

// jobAnnotations keep the exact values behind the labels.
func jobAnnotations(spec jobs.Spec) map[string]string {
	annotations := map[string]string{AnnotationRunID: spec.RunID}
	for name, value := range spec.Labels {
		key := labelKey(name)
		if key == AnnotationRunID || key == AnnotationCollect {
			continue
		}
		annotations[key] = value
	}
	if len(spec.Collect) > 0 {
		collect, _ := json.Marshal(spec.Collect) // a list of strings always marshals
		annotations[AnnotationCollect] = string(collect)
	}
	return annotations
}

// RunToken is the bearer token a run's pod presents when it reports: HMAC-SHA256 of the run id under the
// executor's key. The bot recomputes it on every request, so nothing per run has to be stored, and a token is
// worthless for any other run.
func RunToken(key []byte, runID string) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(runID))
	return hex.EncodeToString(mac.Sum(nil))
}

// validToken compares in constant time.
func validToken(key []byte, runID, token string) bool {
	want := RunToken(key, runID)
	return hmac.Equal([]byte(want), []byte(token))
}
