{{/*
The pod template shared by the Deployment (shards: 1) and the StatefulSet (shards > 1).
*/}}
{{- define "sigma-exporter.podTemplate" -}}
{{- $credential := splitList " " (include "sigma-exporter.credential" .) }}
{{- $sharded := include "sigma-exporter.sharded" . }}
{{- $scheme := include "sigma-exporter.scheme" . -}}
metadata:
  labels:
    {{- include "sigma-exporter.selectorLabels" . | nindent 4 }}
    {{- with .Values.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  annotations:
    checksum/config: {{ include (print $.Template.BasePath "/configmap.yaml") . | sha256sum }}
    {{- if not .Values.sigma.auth.existingSecret }}
    checksum/secret: {{ include (print $.Template.BasePath "/secret.yaml") . | sha256sum }}
    {{- end }}
    {{- if and .Values.webConfig.enabled (not .Values.webConfig.existingSecret) }}
    checksum/web-config: {{ include (print $.Template.BasePath "/web-config-secret.yaml") . | sha256sum }}
    {{- end }}
    {{- with .Values.podAnnotations }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
spec:
  serviceAccountName: {{ include "sigma-exporter.serviceAccountName" . }}
  automountServiceAccountToken: {{ .Values.serviceAccount.automountServiceAccountToken }}
  {{- with .Values.imagePullSecrets }}
  imagePullSecrets:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.priorityClassName }}
  priorityClassName: {{ . }}
  {{- end }}
  {{- with .Values.podSecurityContext }}
  securityContext:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  containers:
    - name: sigma-exporter
      image: {{ include "sigma-exporter.image" . | quote }}
      imagePullPolicy: {{ .Values.image.pullPolicy }}
      args:
        - --config.file={{ include "sigma-exporter.configPath" . }}
        - --web.listen-address=:{{ .Values.service.port }}
        - --log.level={{ .Values.log.level }}
        - --log.format={{ .Values.log.format }}
        {{- with .Values.externalUrl }}
        - {{ printf "--web.external-url=%s" . | quote }}
        {{- end }}
        {{- if .Values.webConfig.enabled }}
        - --web.config.file={{ include "sigma-exporter.webDir" . }}/web-config.yml
        {{- if .Values.webConfig.openHealthEndpoints }}
        - --web.open-health-endpoints
        {{- end }}
        {{- end }}
        {{- range .Values.extraArgs }}
        - {{ . | quote }}
        {{- end }}
      env:
        - name: SIGMA_EXPORTER_SHARD_COUNT
          value: {{ int .Values.shards | quote }}
        - name: SIGMA_EXPORTER_SHARD_INDEX
          {{- if $sharded }}
          valueFrom:
            fieldRef:
              fieldPath: metadata.labels['apps.kubernetes.io/pod-index']
          {{- else }}
          value: "0"
          {{- end }}
        {{- with .Values.extraEnv }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
      ports:
        - name: http
          containerPort: {{ .Values.service.port }}
          protocol: TCP
      livenessProbe:
        httpGet:
          path: /-/healthy
          port: http
          scheme: {{ $scheme }}
        {{- toYaml .Values.livenessProbe | nindent 8 }}
      readinessProbe:
        httpGet:
          path: /-/ready
          port: http
          scheme: {{ $scheme }}
        {{- toYaml .Values.readinessProbe | nindent 8 }}
      {{- with .Values.securityContext }}
      securityContext:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      {{- with .Values.resources }}
      resources:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      volumeMounts:
        - name: config
          mountPath: {{ include "sigma-exporter.configPath" . }}
          subPath: config.yml
          readOnly: true
        - name: credentials
          mountPath: {{ include "sigma-exporter.secretsDir" . }}
          readOnly: true
        - name: references
          mountPath: {{ include "sigma-exporter.referencesDir" . }}
          readOnly: true
        {{- if .Values.webConfig.enabled }}
        - name: web-config
          mountPath: {{ include "sigma-exporter.webDir" . }}
          readOnly: true
        {{- if .Values.webConfig.tlsSecretName }}
        - name: tls
          mountPath: {{ include "sigma-exporter.configDir" . }}/tls
          readOnly: true
        {{- end }}
        {{- end }}
        - name: tmp
          mountPath: /tmp
        - name: state
          mountPath: /data
        {{- if and .Values.state.postgresql.enabled .Values.state.postgresql.existingSecret }}
        - name: state-password
          mountPath: {{ include "sigma-exporter.configDir" . }}/state
          readOnly: true
        {{- end }}
        {{- if .Values.api.token.existingSecret }}
        - name: api-token
          mountPath: {{ include "sigma-exporter.configDir" . }}/api
          readOnly: true
        {{- end }}
        {{- with .Values.extraVolumeMounts }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
  {{- /* Secret volumes state optional: false (Kubernetes' default): the pod must not start without them. */}}
  volumes:
    - name: config
      configMap:
        name: {{ include "sigma-exporter.fullname" . }}
    - name: credentials
      secret:
        secretName: {{ include "sigma-exporter.credentialSecretName" . }}
        defaultMode: 0440
        optional: false
        items:
          {{- if .Values.sigma.auth.existingSecret }}
          - key: {{ get .Values.sigma.auth.secretKeys (index $credential 0) | quote }}
          {{- else }}
          - key: {{ index $credential 1 | quote }}
          {{- end }}
            path: {{ index $credential 1 | quote }}
    - name: references
      {{- if .Values.references.existingConfigMap }}
      configMap:
        name: {{ .Values.references.existingConfigMap }}
      {{- else if .Values.references.files }}
      configMap:
        name: {{ include "sigma-exporter.fullname" . }}-references
      {{- else }}
      emptyDir:
        sizeLimit: 1Mi
      {{- end }}
    {{- if .Values.webConfig.enabled }}
    - name: web-config
      secret:
        secretName: {{ include "sigma-exporter.webConfigSecretName" . }}
        defaultMode: 0440
        optional: false
        items:
          - key: web-config.yml
            path: web-config.yml
    {{- if .Values.webConfig.tlsSecretName }}
    - name: tls
      secret:
        secretName: {{ .Values.webConfig.tlsSecretName }}
        defaultMode: 0440
        optional: false
    {{- end }}
    {{- end }}
    - name: tmp
      emptyDir:
        sizeLimit: 16Mi
    {{- if not (and .Values.state.persistence.enabled $sharded) }}
    - name: state
      {{- if .Values.state.persistence.enabled }}
      persistentVolumeClaim:
        claimName: {{ .Values.state.persistence.existingClaim | default (printf "%s-state" (include "sigma-exporter.fullname" .)) }}
      {{- else }}
      emptyDir:
        sizeLimit: {{ .Values.state.emptyDir.sizeLimit }}
      {{- end }}
    {{- end }}
    {{- if and .Values.state.postgresql.enabled .Values.state.postgresql.existingSecret }}
    - name: state-password
      secret:
        secretName: {{ .Values.state.postgresql.existingSecret }}
        defaultMode: 0440
        optional: false
        items:
          - key: {{ .Values.state.postgresql.secretKey | quote }}
            path: password
    {{- end }}
    {{- if .Values.api.token.existingSecret }}
    - name: api-token
      secret:
        secretName: {{ .Values.api.token.existingSecret }}
        defaultMode: 0440
        optional: false
        items:
          - key: {{ .Values.api.token.secretKey | quote }}
            path: token
    {{- end }}
    {{- with .Values.extraVolumes }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with .Values.nodeSelector }}
  nodeSelector:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.affinity }}
  affinity:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.tolerations }}
  tolerations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
  {{- with .Values.topologySpreadConstraints }}
  topologySpreadConstraints:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
