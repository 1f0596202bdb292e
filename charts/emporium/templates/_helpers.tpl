{{/*
Names. Every object is "<release>-<component>", e.g. emporium-catalog, emporium-edge.
Call with (dict "root" $ "name" "catalog").
*/}}
{{- define "emporium.fullname" -}}
{{- printf "%s-%s" .root.Release.Name .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* The in-cluster DNS name of a component's Service. */}}
{{- define "emporium.host" -}}
{{- printf "%s.%s.svc.%s" (include "emporium.fullname" .) .root.Release.Namespace .root.Values.clusterDomain -}}
{{- end -}}

{{/* The Istio (SPIFFE) principal of a component's ServiceAccount. */}}
{{- define "emporium.principal" -}}
{{- printf "%s/ns/%s/sa/%s" .root.Values.istio.trustDomain .root.Release.Namespace (include "emporium.fullname" .) -}}
{{- end -}}

{{/* The full gRPC service name of a context: emporium.catalog.v1.CatalogService. */}}
{{- define "emporium.grpcService" -}}
{{- printf "emporium.%s.v1.%sService" . (title .) -}}
{{- end -}}

{{/* Labels on every object. Call with the root context. */}}
{{- define "emporium.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: emporium
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Labels that pick a component's pods (every version). (dict "root" $ "name" n) */}}
{{- define "emporium.selectorLabels" -}}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
{{- end -}}

{{/* Labels of one component's objects. (dict "root" $ "name" n "component" service|edge) */}}
{{- define "emporium.componentLabels" -}}
{{ include "emporium.labels" .root }}
app.kubernetes.io/name: {{ .name }}
app.kubernetes.io/component: {{ .component }}
{{- end -}}

{{/*
Pod labels: `app` and `version` are the labels Istio's telemetry and the DestinationRule
subsets use. No chart version here, so upgrading the chart alone restarts no pod.
(dict "root" $ "name" n "component" c "version" v)
*/}}
{{- define "emporium.podLabels" -}}
{{ include "emporium.selectorLabels" . }}
app.kubernetes.io/part-of: emporium
app.kubernetes.io/component: {{ .component }}
app: {{ .name }}
version: {{ .version }}
{{- if and .root.Values.istio.enabled .root.Values.istio.injectSidecar }}
sidecar.istio.io/inject: "true"
{{- end }}
{{- end -}}

{{/* The services' image reference. Call with (dict "root" $ "tag" optional-tag). */}}
{{- define "emporium.image" -}}
{{- $image := .root.Values.image -}}
{{- if and $image.digest (not .tag) -}}
{{- printf "%s@%s" $image.repository $image.digest -}}
{{- else -}}
{{- printf "%s:%s" $image.repository (.tag | default $image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}
{{- end -}}

{{/*
A per-service settings block, or the default block when the service sets none.
(dict "root" $ "svc" $svc "key" "resources") -> YAML; use with fromYaml.
*/}}
{{- define "emporium.setting" -}}
{{- $value := get .svc .key | default (get .root.Values.defaults .key) -}}
{{- toYaml $value -}}
{{- end -}}

{{/* Services that call `name` (dict "root" $ "name" n) -> YAML list of names. */}}
{{- define "emporium.callers" -}}
{{- $callers := list -}}
{{- range $caller, $svc := .root.Values.services -}}
{{- if has $.name ($svc.calls | default list) -}}
{{- $callers = append $callers $caller -}}
{{- end -}}
{{- end -}}
{{- toYaml $callers -}}
{{- end -}}

{{/* Pod Security "restricted": the pod level. Call with the uid. */}}
{{- define "emporium.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ . }}
runAsGroup: {{ . }}
fsGroup: {{ . }}
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Pod Security "restricted": every container. */}}
{{- define "emporium.containerSecurityContext" -}}
allowPrivilegeEscalation: false
privileged: false
readOnlyRootFilesystem: true
runAsNonRoot: true
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{/* Scheduling settings shared by every pod. (dict "root" $ "name" n) */}}
{{- define "emporium.scheduling" -}}
{{- with .root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- if .root.Values.topologySpread }}
topologySpreadConstraints:
  {{- range $key := list "topology.kubernetes.io/zone" "kubernetes.io/hostname" }}
  - maxSkew: 1
    topologyKey: {{ $key }}
    whenUnsatisfiable: ScheduleAnyway
    labelSelector:
      matchLabels:
        {{- include "emporium.selectorLabels" $ | nindent 8 }}
    matchLabelKeys: [pod-template-hash]
  {{- end }}
{{- end }}
{{- end -}}

{{/* Variables that carry secrets: they come only from Secrets, never from values. */}}
{{- define "emporium.secretVariables" -}}
{{- list "DATABASE_URL" "REDIS_URL" "JWT_SIGNING_KEY_PEM" "SERVICE_CREDENTIALS" "BOOTSTRAP_ADMIN" | toJson -}}
{{- end -}}

{{/*
Every Deployment of the release with its autoscaling and disruption settings, as a YAML
list of {name, deployment, version, component, autoscaling, podDisruptionBudget}.
*/}}
{{- define "emporium.workloads" -}}
{{- $root := . -}}
{{- $workloads := list -}}
{{- range $name, $svc := .Values.services -}}
{{- $ctx := dict "root" $root "name" $name -}}
{{- $fullname := include "emporium.fullname" $ctx -}}
{{- $workloads = append $workloads (dict "name" $name "deployment" $fullname "version" "v1" "component" "service"
    "autoscaling" (fromYaml (include "emporium.setting" (dict "root" $root "svc" $svc "key" "autoscaling")))
    "podDisruptionBudget" (fromYaml (include "emporium.setting" (dict "root" $root "svc" $svc "key" "podDisruptionBudget")))) -}}
{{- if and $root.Values.canary.enabled (eq $name $root.Values.canary.service) -}}
{{- $workloads = append $workloads (dict "name" $name "deployment" (printf "%s-v2" $fullname) "version" "v2" "component" "service"
    "autoscaling" $root.Values.canary.autoscaling
    "podDisruptionBudget" (fromYaml (include "emporium.setting" (dict "root" $root "svc" $svc "key" "podDisruptionBudget")))) -}}
{{- end -}}
{{- end -}}
{{- $edge := .Values.edge -}}
{{- $workloads = append $workloads (dict "name" "edge" "deployment" (include "emporium.fullname" (dict "root" $root "name" "edge")) "version" "v1" "component" "edge"
    "autoscaling" $edge.autoscaling "podDisruptionBudget" $edge.podDisruptionBudget) -}}
{{- toYaml $workloads -}}
{{- end -}}
