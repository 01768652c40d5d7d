{{/* The chart's name. */}}
{{- define "byok.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The objects' name: the release's, with the chart's name unless it holds it already. */}}
{{- define "byok.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "byok.selectorLabels" -}}
app.kubernetes.io/name: {{ include "byok.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "byok.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{ include "byok.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "byok.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "byok.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- required "serviceAccount.name: name the existing ServiceAccount (annotated azure.workload.identity/client-id) when serviceAccount.create is false" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{/* The port byok listens on: the digits at the end of config.listen. */}}
{{- define "byok.port" -}}
{{- $port := regexFind "[0-9]+$" .Values.config.listen }}
{{- if not $port }}
{{- fail (printf "config.listen is %q; give host:port or :port, e.g. \":8080\"" .Values.config.listen) }}
{{- end }}
{{- $port }}
{{- end }}

{{- define "byok.clientId" -}}
{{- required "workloadIdentity.clientId: the client id of the Azure identity the pods federate to (a user-assigned managed identity or an app registration)" .Values.workloadIdentity.clientId }}
{{- end }}

{{/* The byok configuration file (config.Parse reads it strictly): no secret in it. */}}
{{- define "byok.config" -}}
{{- $c := .Values.config -}}
{{- $tenant := required "config.azure.tenantId: the platform's Entra tenant id" $c.azure.tenantId -}}
version: v1
listen: {{ $c.listen | quote }}
store:
  postgres: {{ required "config.store.postgres: a PostgreSQL connection string without password, e.g. \"host=db dbname=byok user=byok sslmode=verify-full\"" $c.store.postgres | quote }}
platform_key:
  azure:
    key_id: {{ required "config.platformKey.keyId: the platform root key's id, e.g. https://NAME.managedhsm.azure.net/keys/platform-root" $c.platformKey.azure.keyId | quote }}
    tenant_id: {{ default $tenant $c.platformKey.azure.tenantId | quote }}
    credential:
      workload_identity:
        client_id: {{ include "byok.clientId" . | quote }}
        token_file: {{ .Values.workloadIdentity.tokenFile | quote }}
azure:
  tenant_id: {{ $tenant | quote }}
  client_id: {{ default (include "byok.clientId" .) $c.azure.clientId | quote }}
  credential:
    workload_identity:
      token_file: {{ .Values.workloadIdentity.tokenFile | quote }}
{{- with $c.azure.workloadIdentityIssuer }}
  workload_identity:
    token_file: {{ $.Values.workloadIdentity.tokenFile | quote }}
    issuer: {{ . | quote }}
    subject: {{ printf "system:serviceaccount:%s:%s" $.Release.Namespace (include "byok.serviceAccountName" $) | quote }}
{{- end }}
{{- with $c.keyring }}
keyring:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $c.jobs }}
jobs:
  {{- toYaml . | nindent 2 }}
{{- end }}
console:
  secure_cookies: {{ $c.console.secureCookies }}
log:
  level: {{ $c.log.level | quote }}
  format: {{ $c.log.format | quote }}
{{- end }}
