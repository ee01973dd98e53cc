{{/* Release name is the resource name: ArgoCD sets it to serving-<stage>. */}}
{{- define "serving.fullname" -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "serving.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "serving.labels" -}}
{{ include "serving.selectorLabels" . }}
app.kubernetes.io/version: {{ .Values.image.tag | quote }}
app.kubernetes.io/component: inference-server
app.kubernetes.io/part-of: kiosk-pipelines
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
kiosk.io/stage: {{ .Values.stage }}
kiosk.io/track: {{ .Values.track }}
kiosk.io/serving-group: {{ .Values.servingGroup }}
{{- end -}}

{{/* Pods of every release in one serving group: what the group's Service sends traffic to. */}}
{{- define "serving.groupSelector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
kiosk.io/serving-group: {{ .Values.servingGroup }}
{{- end -}}

{{- define "serving.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ .Values.image.tag }}
{{- end -}}
{{- end -}}

{{/* Stated in values rather than left to the caller: a render without --namespace (checkov's helm
scan, a bare `helm template`) must not land in `default`. */}}
{{- define "serving.namespace" -}}
{{- .Values.namespace | default .Release.Namespace -}}
{{- end -}}
