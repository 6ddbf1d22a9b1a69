{{/* Names and labels; the same helpers in every Athena Serving chart. */}}
{{- define "asf.name" -}}{{ .Chart.Name }}{{- end -}}
{{- define "asf.fullname" -}}
{{- if .Values.fullnameOverride -}}{{ .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else -}}{{ printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" }}{{- end -}}
{{- end -}}
{{- define "asf.selector" -}}
app.kubernetes.io/name: {{ include "asf.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}
{{- define "asf.labels" -}}
{{ include "asf.selector" . }}
app.kubernetes.io/part-of: athena-serving
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}
{{- define "asf.image" -}}
{{- $g := .Values.global | default dict -}}
{{- $reg := $g.imageRegistry | default "" -}}
{{- $tag := .Values.image.tag | default $g.imageTag | default .Chart.AppVersion -}}
{{- if $reg }}{{ printf "%s/%s:%s" $reg .Values.image.repository $tag }}{{ else }}{{ printf "%s:%s" .Values.image.repository $tag }}{{ end -}}
{{- end -}}
{{/* The stop of a pod, as YAML (session, preStop, grace, in seconds). A terminating pod
  first waits preStop (the preStop sleep; it leaves the Service's endpoints meanwhile), which
  must outlast session, the longest session, so that sessions open when the stop began end on
  their own; then the service's shutdown runs, for drain.seconds but never less than
  drain.shutdownSeconds (the bound every service puts on its whole shutdown); grace must be
  longer than both together. session is drain.sessionTimeoutSeconds, or
  global.sessionTimeoutSeconds in the charts that carry sessions (a non-zero value of their
  own); an empty drain.preStopSeconds is session + 10 (5 without sessions), an empty
  terminationGracePeriodSeconds preStop + shutdown + 5. Values that break the order fail. */}}
{{- define "asf.stop" -}}
{{- $d := .Values.drain -}}
{{- $session := int ($d.sessionTimeoutSeconds | default 0) -}}
{{- $g := (.Values.global | default dict).sessionTimeoutSeconds -}}
{{- if and $session $g -}}{{- $session = int $g -}}{{- end -}}
{{- $shutdown := max (int ($d.seconds | default 0)) (int ($d.shutdownSeconds | default 0)) -}}
{{- $preStop := ternary (add $session 10) 5 (gt $session 0) -}}
{{- if not (or (kindIs "invalid" $d.preStopSeconds) (eq (toString $d.preStopSeconds) "")) -}}{{- $preStop = int $d.preStopSeconds -}}{{- end -}}
{{- $grace := add $preStop $shutdown 5 -}}
{{- if not (or (kindIs "invalid" .Values.terminationGracePeriodSeconds) (eq (toString .Values.terminationGracePeriodSeconds) "")) -}}{{- $grace = int .Values.terminationGracePeriodSeconds -}}{{- end -}}
{{- if and $session (le $preStop $session) -}}
{{- fail (printf "drain.preStopSeconds (%v) must be longer than drain.sessionTimeoutSeconds (%v)" $preStop $session) -}}
{{- end -}}
{{- if le $grace (add $preStop $shutdown) -}}
{{- fail (printf "terminationGracePeriodSeconds (%v) must be longer than drain.preStopSeconds + max(drain.seconds, drain.shutdownSeconds) (%v)" $grace (add $preStop $shutdown)) -}}
{{- end -}}
session: {{ $session }}
preStop: {{ $preStop }}
grace: {{ $grace }}
{{- end -}}
{{/* "true" when the service runs insecure (its insecure value or global.insecure): NATS
  without credentials, and plaintext gRPC without the TLS files. */}}
{{- define "asf.insecure" -}}
{{- if or .Values.insecure (.Values.global | default dict).insecure -}}true{{- end -}}
{{- end -}}
{{/* The NATS credentials mount of the charts whose values declare nats.credentials, as
  YAML (secret, key, env, path); empty when insecure or no Secret is named. */}}
{{- define "asf.natsCredentials" -}}
{{- $c := (.Values.nats | default dict).credentials -}}
{{- if and $c $c.existingSecret (not (include "asf.insecure" .)) -}}
{{- $env := get (dict "nkey" "NATS_NKEY_SEED_FILE" "creds" "NATS_CREDS") ($c.format | default "nkey") -}}
{{- if not $env -}}{{- fail (printf "nats.credentials.format %q: want nkey or creds" $c.format) -}}{{- end -}}
secret: {{ tpl $c.existingSecret . | quote }}
key: {{ $c.key | quote }}
env: {{ $env }}
path: {{ printf "%s/%s" .Values.nats.mountPath $c.key | quote }}
{{- end -}}
{{- end -}}
