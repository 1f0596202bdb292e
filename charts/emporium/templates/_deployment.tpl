{{/*
A service's Deployment. (dict "root" $ "name" n "svc" $svc "version" v1|v2); v2 is the
canary: `<release>-<name>-v2`, its own replicas, autoscaling and image tag.
*/}}
{{- define "emporium.serviceDeployment" -}}
{{- $root := .root -}}
{{- $values := $root.Values -}}
{{- $name := .name -}}
{{- $svc := .svc -}}
{{- $canary := eq .version "v2" -}}
{{- $ctx := dict "root" $root "name" $name "component" "service" "version" .version -}}
{{- $fullname := include "emporium.fullname" $ctx -}}
{{- $autoscaling := fromYaml (include "emporium.setting" (dict "root" $root "svc" $svc "key" "autoscaling")) -}}
{{- $replicas := $svc.replicas | default $values.defaults.replicas -}}
{{- if $canary -}}
{{- $autoscaling = $values.canary.autoscaling -}}
{{- $replicas = $values.canary.replicas -}}
{{- end -}}
{{- $forbidden := include "emporium.secretVariables" $root | fromJsonArray -}}
{{- range $key, $_ := $svc.env | default dict -}}
{{- if has $key $forbidden -}}
{{- fail (printf "services.%s.env.%s: secrets come from Secrets (see `secrets` and `services.%s.database`), never from values" $name $key $name) -}}
{{- end -}}
{{- end }}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ $fullname }}{{ if $canary }}-v2{{ end }}
  namespace: {{ $root.Release.Namespace }}
  labels:
    {{- include "emporium.componentLabels" $ctx | nindent 4 }}
    version: {{ .version }}
spec:
  {{- if not $autoscaling.enabled }}
  replicas: {{ $replicas }}
  {{- end }}
  revisionHistoryLimit: 5
  strategy:
    type: RollingUpdate
    rollingUpdate:
      maxSurge: 25%
      maxUnavailable: 0
  selector:
    matchLabels:
      {{- include "emporium.selectorLabels" $ctx | nindent 6 }}
      version: {{ .version }}
  template:
    metadata:
      labels:
        {{- include "emporium.podLabels" $ctx | nindent 8 }}
      annotations:
        prometheus.io/scrape: "true"
        prometheus.io/port: {{ $values.metrics.port | quote }}
        prometheus.io/path: /metrics
        {{- with $values.podAnnotations }}
        {{- toYaml . | nindent 8 }}
        {{- end }}
    spec:
      serviceAccountName: {{ $fullname }}
      automountServiceAccountToken: false
      enableServiceLinks: false
      terminationGracePeriodSeconds: 30
      securityContext:
        {{- include "emporium.podSecurityContext" 10001 | nindent 8 }}
      {{- with include "emporium.scheduling" $ctx | trim }}
      {{- . | nindent 6 }}
      {{- end }}
      containers:
        - name: {{ $name }}
          image: {{ include "emporium.image" (dict "root" $root "tag" (ternary $values.canary.tag "" $canary)) }}
          imagePullPolicy: {{ $values.image.pullPolicy }}
          args: [{{ $name }}]
          ports:
            - name: grpc
              containerPort: 50051
              protocol: TCP
            - name: metrics
              containerPort: {{ $values.metrics.port }}
              protocol: TCP
          env:
            - name: EMPORIUM_SERVICE
              value: {{ $name }}
            - name: SERVICE_VERSION
              value: {{ .version }}
            - name: GRPC_HOST
              value: 0.0.0.0
            - name: GRPC_PORT
              value: "50051"
            - name: METRICS_PORT
              value: {{ $values.metrics.port | quote }}
            - name: DATA_DIR
              value: /tmp/emporium
            - name: HOME
              value: /tmp
            - name: LOG_LEVEL
              value: {{ $values.logLevel | quote }}
            - name: JWT_ISSUER
              value: {{ $values.jwt.issuer | quote }}
            - name: JWT_AUDIENCE
              value: {{ $values.jwt.audience | quote }}
            {{- with $values.otlpEndpoint }}
            - name: OTEL_EXPORTER_OTLP_ENDPOINT
              value: {{ . | quote }}
            {{- end }}
            - name: BREAKER_FAILURE_THRESHOLD
              value: {{ $values.resilience.breaker.failureThreshold | quote }}
            - name: BREAKER_RESET_TIMEOUT_SECONDS
              value: {{ $values.resilience.breaker.resetTimeoutSeconds | quote }}
            - name: BULKHEAD_MAX_CONCURRENT
              value: {{ $values.resilience.breaker.maxConcurrent | quote }}
            {{- range $callee := $svc.calls | default list }}
            - name: {{ upper $callee }}_TARGET
              value: {{ printf "%s:50051" (include "emporium.fullname" (dict "root" $root "name" $callee)) }}
            {{- end }}
            - name: DATABASE_URL
              valueFrom:
                secretKeyRef:
                  name: {{ $svc.database.secretName }}
                  key: {{ $svc.database.secretKey }}
            {{- range $id := prepend ($svc.extraSecrets | default list) "redis" }}
            {{- $secret := get $values.secrets $id }}
            - name: {{ $secret.env }}
              valueFrom:
                secretKeyRef:
                  name: {{ $secret.secretName }}
                  key: {{ $secret.secretKey }}
                  {{- if $secret.optional }}
                  optional: true
                  {{- end }}
            {{- end }}
            {{- range $key, $value := $svc.env | default dict }}
            - name: {{ $key }}
              value: {{ $value | quote }}
            {{- end }}
          startupProbe:
            grpc:
              port: 50051
            periodSeconds: 2
            failureThreshold: 60
          readinessProbe:
            grpc:
              port: 50051
            periodSeconds: 5
            failureThreshold: 2
          livenessProbe:
            grpc:
              port: 50051
            periodSeconds: 10
            timeoutSeconds: 2
            failureThreshold: 6
          resources:
            {{- include "emporium.setting" (dict "root" $root "svc" $svc "key" "resources") | nindent 12 }}
          securityContext:
            {{- include "emporium.containerSecurityContext" $root | nindent 12 }}
          volumeMounts:
            - name: tmp
              mountPath: /tmp
      volumes:
        - name: tmp
          emptyDir:
            sizeLimit: {{ $svc.tmpSizeLimit | default $values.defaults.tmpSizeLimit }}
{{- end -}}
