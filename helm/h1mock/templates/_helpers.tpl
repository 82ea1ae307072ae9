{{/*
Named templates of the h1mock chart. As a dependency with an alias, the
chart's name is the alias, so labels keep the aliases apart.
*/}}

{{- define "h1mock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "h1mock.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "h1mock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "h1mock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "h1mock.labels" -}}
helm.sh/chart: {{ include "h1mock.chart" . }}
{{ include "h1mock.selectorLabels" . }}
{{- if .Chart.AppVersion }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end -}}

{{/*
Names that a parent chart must be able to compute too. They take the
chart's values, not the context: a parent sees them as .Values.<alias>.
  h1mock.nameOf              Deployment and Service: service.name (as in the
                             Flask-based chart), made a valid Kubernetes name
  h1mock.provisionsConfigMapNameOf   <name>-provision-config
  h1mock.adminTokenSecretNameOf      the existing Secret, or <name>-admin-token
  h1mock.adminTokenSecretKeyOf       its key
*/}}
{{- define "h1mock.nameOf" -}}
{{- required "h1mock: service.name must be set" .service.name | lower | replace "_" "-" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "h1mock.provisionsConfigMapNameOf" -}}
{{- printf "%s-provision-config" (include "h1mock.nameOf" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "h1mock.adminTokenSecretNameOf" -}}
{{- if .service.adminToken.existingSecret -}}
{{- .service.adminToken.existingSecret -}}
{{- else -}}
{{- printf "%s-admin-token" (include "h1mock.nameOf" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "h1mock.adminTokenSecretKeyOf" -}}
{{- if .service.adminToken.existingSecret -}}
{{- .service.adminToken.existingSecretKey | default "token" -}}
{{- else -}}
token
{{- end -}}
{{- end -}}

{{/* True (non-empty) when an admin token is configured. */}}
{{- define "h1mock.hasAdminTokenOf" -}}
{{- if or .service.adminToken.existingSecret .service.adminToken.value -}}true{{- end -}}
{{- end -}}

{{/*
h1mock.configmap: the provisions ConfigMap, built from a folder of the chart
that calls it. In the parent chart, one template file per dependency (alias):

  {{- include "h1mock.configmap" ( list $ $.Values.<alias> ) }}

with <alias>.service.provisionsDir naming the folder (relative to the
parent chart; its files, not sub-folders, become the provisions: keep
'initial.lua' there for the one served at start). The Deployment of that
alias mounts the ConfigMap at /config, and h1mock serves it directly:
changing a file and upgrading the release changes the served provision
without a pod restart (after the kubelet's sync, about a minute).
*/}}
{{- define "h1mock.configmap" -}}
{{- $root := first . -}}
{{- $scope := last . -}}
{{- $service := required "h1mock.configmap: the values given have no 'service'; call it as ( list $ $.Values.<alias> )" $scope.service -}}
{{- $dir := trimSuffix "/" ($service.provisionsDir | default "") -}}
{{- if $dir }}
{{- $files := $root.Files.Glob (printf "%s/*" $dir) }}
{{- if not $files }}
{{- fail (printf "h1mock.configmap: no files in '%s' of chart '%s' (service.provisionsDir of '%s')" $dir $root.Chart.Name $service.name) }}
{{- end }}
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "h1mock.provisionsConfigMapNameOf" $scope }}
  labels:
    app.kubernetes.io/part-of: {{ include "h1mock.nameOf" $scope }}
    app.kubernetes.io/instance: {{ $root.Release.Name }}
    app.kubernetes.io/component: provisions
    app.kubernetes.io/managed-by: {{ $root.Release.Service }}
    helm.sh/chart: {{ printf "%s-%s" $root.Chart.Name $root.Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
data:
  {{- $files.AsConfig | nindent 2 }}
{{- end }}
{{- end -}}
