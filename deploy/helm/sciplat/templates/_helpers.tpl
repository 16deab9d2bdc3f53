{{/* Names: <release>-sciplat, or the release name when it already contains "sciplat". */}}
{{- define "sciplat.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "sciplat.labels" -}}
app.kubernetes.io/name: sciplat
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* Selector labels of one component: include "sciplat.selector" (list $ "hub") */}}
{{- define "sciplat.selector" -}}
{{- $root := index . 0 -}}
app.kubernetes.io/name: sciplat
app.kubernetes.io/instance: {{ $root.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end -}}

{{- define "sciplat.serviceAccountName" -}}
{{- .Values.serviceAccount.name | default (printf "%s-hub" (include "sciplat.fullname" .)) -}}
{{- end -}}

{{- define "sciplat.image" -}}
{{- if hasPrefix "@" .tag -}}{{ .repository }}{{ .tag }}{{- else -}}{{ .repository }}:{{ .tag }}{{- end -}}
{{- end -}}

{{/* Ports come from the config document, with the config model's defaults. */}}
{{- define "sciplat.hubPort" -}}{{ dig "hub" "hub_port" 8081 .Values.config }}{{- end -}}
{{- define "sciplat.proxyPort" -}}{{ dig "hub" "port" 8000 .Values.config }}{{- end -}}
{{- define "sciplat.proxyApiPort" -}}{{ dig "hub" "proxy_api_port" 8001 .Values.config }}{{- end -}}
{{- define "sciplat.tapPort" -}}{{ dig "services" "tap" "port" 8090 .Values.config }}{{- end -}}
{{- define "sciplat.tapPrefix" -}}{{ dig "services" "tap" "prefix" "/api/tap" .Values.config }}{{- end -}}
{{- define "sciplat.tapEnabled" -}}{{ dig "services" "tap" "enabled" true .Values.config }}{{- end -}}

{{/* Every pod: not root, the runtime's seccomp profile. */}}
{{- define "sciplat.podSecurity" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Every container: no capabilities, no privilege escalation, read-only root. */}}
{{- define "sciplat.containerSecurity" -}}
runAsNonRoot: true
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
privileged: false
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "sciplat.placement" -}}
{{- with .nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* The database URLs, from the Secret named in hub.database (hub and TAP). */}}
{{- define "sciplat.databaseEnv" -}}
{{- $db := .Values.hub.database -}}
- name: SCIPLAT_STATE_URL
  valueFrom:
    secretKeyRef: {name: {{ $db.urlSecret.name }}, key: {{ $db.urlSecret.key }}}
- name: SCIPLAT_HUB_DB_URL
  valueFrom:
    {{- with $db.hubUrlSecret }}
    secretKeyRef: {name: {{ .name }}, key: {{ .key }}}
    {{- else }}
    secretKeyRef: {name: {{ $db.urlSecret.name }}, key: {{ $db.urlSecret.key }}}
    {{- end }}
{{- end -}}

{{- define "sciplat.jobsPort" -}}{{ dig "services" "jobs" "port" 8091 .Values.config }}{{- end -}}
{{- define "sciplat.jobsPrefix" -}}{{ dig "services" "jobs" "prefix" "/api/jobs" .Values.config }}{{- end -}}
{{- define "sciplat.jobsEnabled" -}}{{ dig "services" "jobs" "enabled" true .Values.config }}{{- end -}}
