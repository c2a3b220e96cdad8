{{/* The release's resource name: the chart name unless overridden. */}}
{{- define "heart-core.fullname" -}}
{{- default .Chart.Name .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every resource. */}}
{{- define "heart-core.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: api
app.kubernetes.io/part-of: heart-to-heart
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The pods' identity: stable across upgrades, so it can select. */}}
{{- define "heart-core.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "heart-core.serviceAccountName" -}}
{{- default (include "heart-core.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{/* The image reference: a digest wins over a tag. */}}
{{- define "heart-core.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ required "image.tag is required (CD writes it)" .Values.image.tag }}
{{- end -}}
{{- end -}}
