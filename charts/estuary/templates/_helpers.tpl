{{/* Chart name, truncated to the 63 characters of a DNS label. */}}
{{- define "estuary.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Name prefix of every object: the release name, plus the chart name unless it contains it.
Truncated to 45 characters so that "-operator-metrics" still fits in 63. */}}
{{- define "estuary.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 45 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "estuary.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels of every object. */}}
{{- define "estuary.labels" -}}
helm.sh/chart: {{ include "estuary.chart" . }}
app.kubernetes.io/name: {{ include "estuary.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: estuary
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* Selector labels of one component: call with (dict "root" $ "component" "operator"). */}}
{{- define "estuary.selectorLabels" -}}
app.kubernetes.io/name: {{ include "estuary.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Labels of one component's objects: call with (dict "root" $ "component" "operator"). */}}
{{- define "estuary.componentLabels" -}}
{{ include "estuary.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/* Argo CD sync wave of the chart's own objects. */}}
{{- define "estuary.syncWave" -}}
argocd.argoproj.io/sync-wave: {{ .Values.argocd.syncWave | quote }}
{{- end -}}

{{- define "estuary.operatorServiceAccount" -}}
{{- if .Values.operator.serviceAccount.create -}}
{{- default (printf "%s-operator" (include "estuary.fullname" .)) .Values.operator.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.operator.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{- define "estuary.agentServiceAccount" -}}
{{- if .Values.agent.serviceAccount.create -}}
{{- default (printf "%s-agent" (include "estuary.fullname" .)) .Values.agent.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.agent.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The image reference: repository@digest, else repository:tag (tag defaults to appVersion). */}}
{{- define "estuary.image" -}}
{{- if .Values.image.digest -}}
{{- printf "%s@%s" .Values.image.repository .Values.image.digest -}}
{{- else -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}
{{- end -}}

{{/* Where the extra vendor-profile files are mounted, and the value of ESTUARY_VENDOR_PROFILES. */}}
{{- define "estuary.vendorProfilesDir" -}}/etc/estuary/vendors{{- end -}}
{{- define "estuary.vendorProfilesEnv" -}}
{{- $dir := include "estuary.vendorProfilesDir" . -}}
{{- $paths := list -}}
{{- range $file := keys .Values.vendorProfiles.files | sortAlpha -}}
{{- $paths = append $paths (printf "%s/%s" $dir $file) -}}
{{- end -}}
{{- join "," $paths -}}
{{- end -}}

{{- define "estuary.portalServiceAccount" -}}
{{- if .Values.portal.serviceAccount.create -}}
{{- default (printf "%s-portal" (include "estuary.fullname" .)) .Values.portal.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.portal.serviceAccount.name -}}
{{- end -}}
{{- end -}}
