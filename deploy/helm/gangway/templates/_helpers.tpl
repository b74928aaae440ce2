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
