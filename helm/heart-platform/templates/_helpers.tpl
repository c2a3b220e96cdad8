{{/* Labels of the OpenTelemetry Collector's resources. */}}
{{- define "heart-platform.collector.labels" -}}
app.kubernetes.io/name: {{ .Values.otelCollector.name }}
app.kubernetes.io/component: telemetry
app.kubernetes.io/version: {{ .Values.otelCollector.image.tag | quote }}
app.kubernetes.io/part-of: heart-to-heart
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* The collector pods' identity (selects them). */}}
{{- define "heart-platform.collector.selectorLabels" -}}
app.kubernetes.io/name: {{ .Values.otelCollector.name }}
app.kubernetes.io/component: telemetry
{{- end -}}
