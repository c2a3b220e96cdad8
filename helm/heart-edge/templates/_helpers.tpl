{{/* The SpinApp's name; SpinKube names its Deployment and Service the same. */}}
{{- define "heart-edge.fullname" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "heart-edge.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Values.image.tag | default .Chart.AppVersion | quote }}
app.kubernetes.io/component: edge
app.kubernetes.io/part-of: heart-to-heart
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The label SpinKube puts on the app's pods. */}}
{{- define "heart-edge.selectorLabels" -}}
core.spinkube.dev/app-name: {{ include "heart-edge.fullname" . }}
{{- end -}}

{{- define "heart-edge.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ required "image.tag is required (CD writes it)" .Values.image.tag }}
{{- end -}}
{{- end -}}
