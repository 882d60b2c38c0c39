{{/* Names and labels shared by every object. */}}
{{- define "twinhub.labels" -}}
app.kubernetes.io/name: twinhub
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "twinhub.selector" -}}
app.kubernetes.io/name: twinhub
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "twinhub.name" -}}
{{ printf "%s-%s" .root.Release.Name .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* A container that cannot gain anything: non-root, read-only root, no capabilities. */}}
{{- define "twinhub.containerSecurity" -}}
securityContext:
  runAsNonRoot: true
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
  seccompProfile: {type: RuntimeDefault}
{{- end }}

{{- define "twinhub.podSecurity" -}}
securityContext:
  runAsNonRoot: true
  runAsUser: {{ .uid }}
  runAsGroup: {{ .uid }}
  seccompProfile: {type: RuntimeDefault}
{{- end }}

{{- define "twinhub.secretName" -}}
{{ .Values.secrets.existingSecret | default (printf "%s-hub-secrets" .Release.Name) }}
{{- end }}

{{/* The database URL the hub and its leader lock use (password from a file). */}}
{{- define "twinhub.dbUrl" -}}
{{- if .Values.database.bundled.enabled -}}
postgresql://jupyterhub@{{ .Release.Name }}-db:5432/jupyterhub
{{- else -}}
{{ .Values.database.url }}
{{- end -}}
{{- end }}

{{- define "twinhub.dbPasswordSecret" -}}
{{- if .Values.database.bundled.enabled -}}
{{ printf "%s-db" .Release.Name }}
{{- else -}}
{{ .Values.database.passwordSecret.name }}
{{- end -}}
{{- end }}
