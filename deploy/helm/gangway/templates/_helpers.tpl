{{/* Names and labels shared by every template. */}}
{{- define "gangway.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 50 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 50 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "gangway.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "gangway.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "gangway.image" -}}
{{- $img := .img | default (dict) -}}
{{- printf "%s:%s" ($img.repository | default .root.Values.image.repository) ($img.tag | default .root.Values.image.tag | default .root.Chart.AppVersion) -}}
{{- end -}}

{{- define "gangway.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- .Values.serviceAccount.name | default (include "gangway.fullname" .) -}}
{{- else -}}
{{- .Values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/* Environment every gangway process gets: Kafka, prefix, log level. */}}
{{- define "gangway.kafkaEnv" -}}
- name: GW_KAFKA_BROKERS
  value: {{ required "kafka.brokers is required" .Values.kafka.brokers | quote }}
- name: GW_TOPIC_PREFIX
  value: {{ .Values.kafka.topicPrefix | quote }}
- name: GW_LOG_LEVEL
  value: {{ .Values.logLevel | quote }}
{{- if .Values.secrets.kafkaProps.name }}
- name: GW_KAFKA_PROPS
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.kafkaProps.name }}
      key: {{ .Values.secrets.kafkaProps.key }}
{{- else if .Values.kafka.props }}
- name: GW_KAFKA_PROPS
  value: {{ .Values.kafka.props | quote }}
{{- end }}
{{- end -}}

{{- define "gangway.pgEnv" -}}
- name: GW_PG
  valueFrom:
    secretKeyRef:
      name: {{ required "secrets.pg.name is required" .Values.secrets.pg.name }}
      key: {{ .Values.secrets.pg.key }}
{{- end -}}

{{/* Configuration documents (policy, authConfig, actions) come either as
     YAML values (an object: written as JSON) or as a file's text, which is
     what `--set-file policy=policy.yaml` gives. values.schema.json checks
     the object form; the text form is parsed here so a file that is not
     YAML/JSON, not a mapping, lacks a required key or has an unknown one
     fails `helm lint`/`helm template` instead of rendering a policy the
     broker refuses at start. The text is mounted as written (the broker's
     YAML 1.2 reading, not Helm's, decides what `yes` means), as NAME.json
     when it starts with "{", otherwise NAME.yaml.
     Arguments: name (file name without extension, or with one for
     actions), what (for messages), value, required, allowed (key lists). */}}
{{- define "gangway.docIsJson" -}}
{{- if kindIs "string" .value -}}
{{- if hasPrefix "{" (trim .value) }}true{{ end -}}
{{- else -}}true{{- end -}}
{{- end -}}

{{- define "gangway.docFile" -}}
{{- if or (hasSuffix ".json" .name) (hasSuffix ".yaml" .name) (hasSuffix ".yml" .name) -}}
{{- .name -}}
{{- else -}}
{{- printf "%s.%s" .name (ternary "json" "yaml" (eq (include "gangway.docIsJson" .) "true")) -}}
{{- end -}}
{{- end -}}

{{- /* "" when the text form parses to a mapping with the required keys
       and no unknown one; otherwise why not. */}}
{{- define "gangway.docError" -}}
{{- if kindIs "string" .value -}}
{{- $json := or (eq (include "gangway.docIsJson" .) "true") (hasSuffix ".json" .name) -}}
{{- $doc := ternary (fromJson .value) (fromYaml .value) $json -}}
{{- if hasKey $doc "Error" -}}
{{- printf "%s: not a %s mapping: %s" .what (ternary "JSON" "YAML" $json) (get $doc "Error") -}}
{{- else -}}
{{- $missing := list -}}
{{- range .required -}}
{{- if not (hasKey $doc .) }}{{ $missing = append $missing . }}{{ end -}}
{{- end -}}
{{- $unknown := list -}}
{{- range $k, $v := $doc -}}
{{- if not (has $k $.allowed) }}{{ $unknown = append $unknown $k }}{{ end -}}
{{- end -}}
{{- if $missing -}}
{{- printf "%s: the required key %q is missing (keys: %s)" .what (first $missing) (keys $doc | sortAlpha | join ", ") -}}
{{- else if $unknown -}}
{{- printf "%s: unknown key %q (expected one of: %s)" .what (first $unknown) (join ", " .allowed) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- /* The document as mounted: the text as written, or the values as JSON. */}}
{{- define "gangway.docBody" -}}
{{- if kindIs "string" .value -}}
{{- .value -}}
{{- else -}}
{{- toPrettyJson .value -}}
{{- end -}}
{{- end -}}

{{- /* Refuses a bad document: `fail` stops helm template/install; helm lint
       only logs a `fail` and renders on, so a line that is not YAML follows
       (lint then reports the ConfigMap unparsable, beside the message). */}}
{{- define "gangway.docRefuse" -}}
{{- $err := include "gangway.docError" . -}}
{{- if $err -}}
{{- fail $err -}}
{{ $err | quote }}
{{- end -}}
{{- end -}}
