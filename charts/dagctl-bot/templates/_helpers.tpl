{{- define "dagctl-bot.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "dagctl-bot.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "dagctl-bot.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "dagctl-bot.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{- define "dagctl-bot.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dagctl-bot.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "dagctl-bot.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "dagctl-bot.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "dagctl-bot.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "dagctl-bot.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "dagctl-bot.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{- define "dagctl-bot.jobsNamespace" -}}
{{- default .Release.Namespace .Values.jobs.namespace }}
{{- end }}

{{- define "dagctl-bot.buildsNamespace" -}}
{{- default (include "dagctl-bot.jobsNamespace" .) .Values.builds.namespace }}
{{- end }}

{{- define "dagctl-bot.appSecretName" -}}
{{- default (include "dagctl-bot.fullname" .) .Values.secrets.existingSecret }}
{{- end }}

{{- define "dagctl-bot.tokenSecretName" -}}
{{- printf "%s-job-token-key" (include "dagctl-bot.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
