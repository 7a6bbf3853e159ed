{{/*
Names, labels and the paths the exporter reads inside the pod.
*/}}

{{- define "sigma-exporter.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/*
Fully qualified app name, truncated to 63 characters (some Kubernetes name fields are DNS labels).
*/}}
{{- define "sigma-exporter.fullname" -}}
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

{{- define "sigma-exporter.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "sigma-exporter.selectorLabels" -}}
app.kubernetes.io/name: {{ include "sigma-exporter.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "sigma-exporter.labels" -}}
helm.sh/chart: {{ include "sigma-exporter.chart" . }}
{{ include "sigma-exporter.selectorLabels" . }}
app.kubernetes.io/version: {{ include "sigma-exporter.imageTag" . | trunc 63 | trimSuffix "-" | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: sigma-exporter
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{- define "sigma-exporter.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "sigma-exporter.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "sigma-exporter.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "sigma-exporter.image" -}}
{{- $repository := .Values.image.repository }}
{{- if .Values.image.registry }}
{{- $repository = printf "%s/%s" .Values.image.registry .Values.image.repository }}
{{- end }}
{{- if .Values.image.digest }}
{{- printf "%s@%s" $repository .Values.image.digest }}
{{- else }}
{{- printf "%s:%s" $repository (include "sigma-exporter.imageTag" .) }}
{{- end }}
{{- end }}

{{/* Sharded (shards > 1): a StatefulSet behind a headless Service instead of a Deployment. */}}
{{- define "sigma-exporter.sharded" -}}
{{- if gt (int .Values.shards) 1 }}true{{ end }}
{{- end }}

{{/* The one Service the chart renders: <fullname>, or <fullname>-headless when sharded. */}}
{{- define "sigma-exporter.serviceName" -}}
{{- if include "sigma-exporter.sharded" . }}
{{- printf "%s-headless" (include "sigma-exporter.fullname" . | trunc 54 | trimSuffix "-") }}
{{- else }}
{{- include "sigma-exporter.fullname" . }}
{{- end }}
{{- end }}

{{/* Paths inside the pod. The Dockerfile's CMD uses the same config path. */}}
{{- define "sigma-exporter.configDir" -}}/etc/sigma-exporter{{- end }}
{{- define "sigma-exporter.configPath" -}}{{ include "sigma-exporter.configDir" . }}/config.yml{{- end }}
{{- define "sigma-exporter.secretsDir" -}}{{ include "sigma-exporter.configDir" . }}/secrets{{- end }}
{{- define "sigma-exporter.referencesDir" -}}{{ include "sigma-exporter.configDir" . }}/references.d{{- end }}
{{- define "sigma-exporter.webDir" -}}{{ include "sigma-exporter.configDir" . }}/web{{- end }}

{{/*
The Sigma credential the configured auth type needs, as "valuesKey fileName configKey":
apikey -> clientToken, basic -> password, token -> token.
*/}}
{{- define "sigma-exporter.authType" -}}
{{- $config := .Values.config | default dict }}
{{- $sigma := $config.sigma | default dict }}
{{- $auth := $sigma.auth | default dict }}
{{- $auth.type | default "apikey" }}
{{- end }}

{{- define "sigma-exporter.credential" -}}
{{- $type := include "sigma-exporter.authType" . }}
{{- if eq $type "apikey" }}clientToken client-token client_token_file
{{- else if eq $type "basic" }}password password password_file
{{- else if eq $type "token" }}token token token_file
{{- else }}{{ fail (printf "config.sigma.auth.type must be apikey, basic or token, got %q" $type) }}
{{- end }}
{{- end }}

{{- define "sigma-exporter.credentialSecretName" -}}
{{- .Values.sigma.auth.existingSecret | default (printf "%s-credentials" (include "sigma-exporter.fullname" . | trunc 51 | trimSuffix "-")) }}
{{- end }}

{{/*
The exporter's config.yml: .Values.config with the credential file path pointing into the secret mount and
the reference-files directory added to references.files. Plain credentials in .Values.config are refused:
they would land in a ConfigMap.
*/}}
{{- define "sigma-exporter.config" -}}
{{- $config := deepCopy (.Values.config | default dict) }}
{{- if not (kindIs "map" (get $config "sigma")) }}{{ $_ := set $config "sigma" dict }}{{ end }}
{{- $sigma := get $config "sigma" }}
{{- if not (kindIs "map" (get $sigma "auth")) }}{{ $_ := set $sigma "auth" dict }}{{ end }}
{{- $auth := get $sigma "auth" }}
{{- range $key := list "client_token" "password" "token" "client_token_file" "password_file" "token_file" }}
{{- if hasKey $auth $key }}
{{- fail (printf "config.sigma.auth.%s must not be set: put the credential in sigma.auth (or sigma.auth.existingSecret); the chart mounts it as a file" $key) }}
{{- end }}
{{- end }}
{{- $credential := splitList " " (include "sigma-exporter.credential" .) }}
{{- $_ := set $auth "type" (include "sigma-exporter.authType" .) }}
{{- $_ := set $auth (index $credential 2) (printf "%s/%s" (include "sigma-exporter.secretsDir" .) (index $credential 1)) }}
{{- if not (kindIs "map" (get $config "references")) }}{{ $_ := set $config "references" dict }}{{ end }}
{{- $references := get $config "references" }}
{{- $glob := printf "%s/*.yml" (include "sigma-exporter.referencesDir" .) }}
{{- $files := get $references "files" | default list }}
{{- if not (has $glob $files) }}
{{- $_ := set $references "files" (append $files $glob) }}
{{- end }}
{{- range $section, $key := dict "state" "password" "api" "token" }}
{{- $values := get $config $section | default dict }}
{{- if and (kindIs "map" $values) (or (hasKey $values $key) (hasKey $values (printf "%s_file" $key))) }}
{{- fail (printf "config.%s.%s must not be set: the chart mounts it from a Secret (%s)" $section $key (ternary "state.postgresql.existingSecret" "api.token.existingSecret" (eq $section "state"))) }}
{{- end }}
{{- end }}
{{- if .Values.state.postgresql.enabled }}
{{- if not .Values.state.postgresql.url }}
{{- fail "state.postgresql.enabled needs state.postgresql.url (postgresql://USER@HOST:PORT/DATABASE)" }}
{{- end }}
{{- $state := dict "url" .Values.state.postgresql.url }}
{{- if .Values.state.postgresql.existingSecret }}
{{- $_ := set $state "password_file" (printf "%s/state/password" (include "sigma-exporter.configDir" .)) }}
{{- end }}
{{- $_ := set $config "state" $state }}
{{- end }}
{{- if .Values.api.token.existingSecret }}
{{- $api := get $config "api" | default dict }}
{{- $_ := set $api "token_file" (printf "%s/api/token" (include "sigma-exporter.configDir" .)) }}
{{- $_ := set $config "api" $api }}
{{- end }}
{{- toYaml $config }}
{{- end }}

{{/*
"true" when runs can be registered through the API: a token Secret, or basic-auth users in the web config.
*/}}
{{- define "sigma-exporter.apiOn" -}}
{{- if or .Values.api.token.existingSecret (and .Values.webConfig.enabled (hasKey (.Values.webConfig.config | default dict) "basic_auth_users")) }}true{{- end }}
{{- end }}

{{/*
Shards each poll their share of the runs, and a registration may arrive at any shard: with the API on they
must share one database.
*/}}
{{- define "sigma-exporter.checkState" -}}
{{- if and (include "sigma-exporter.sharded" .) (include "sigma-exporter.apiOn" .) (not .Values.state.postgresql.enabled) }}
{{- fail (printf "shards: %d with the API on (api.token or basic_auth_users) needs state.postgresql: a registration may arrive at any shard and each shard polls its share, so all shards must share one PostgreSQL database (SQLite is a file per pod)" (int .Values.shards)) }}
{{- end }}
{{- if and (include "sigma-exporter.sharded" .) (or .Values.config.schedules .Values.config.expectations) (not .Values.state.postgresql.enabled) }}
{{- fail (printf "shards: %d with schedules or expectations needs state.postgresql: the shard that judges an expectation learns of runs other shards started through the shared database (SQLite is a file per pod)" (int .Values.shards)) }}
{{- end }}
{{- if and (include "sigma-exporter.sharded" .) .Values.state.persistence.existingClaim }}
{{- fail "state.persistence.existingClaim works with shards: 1 only; with more, each shard gets a claim from a volumeClaimTemplate" }}
{{- end }}
{{- end }}

{{/* URL scheme of the exporter's endpoints: HTTPS when the web config has a tls_server_config. */}}
{{- define "sigma-exporter.scheme" -}}
{{- if .Values.webConfig.scheme }}
{{- .Values.webConfig.scheme | upper }}
{{- else if and .Values.webConfig.enabled (hasKey (.Values.webConfig.config | default dict) "tls_server_config") }}HTTPS
{{- else }}HTTP
{{- end }}
{{- end }}

{{- define "sigma-exporter.webConfigSecretName" -}}
{{- .Values.webConfig.existingSecret | default (printf "%s-web-config" (include "sigma-exporter.fullname" . | trunc 52 | trimSuffix "-")) }}
{{- end }}
