{{/* The operator's image: image.repository:image.tag, the tag defaulting to the chart's appVersion. */}}
{{- define "stashplan.image" -}}
{{- printf "%s:%s" .Values.image.repository (.Values.image.tag | default .Chart.AppVersion) -}}
{{- end -}}

{{/* Where the Jobs push their metrics: the bundled Pushgateway's Service, the external url, or nothing. */}}
{{- define "stashplan.pushgatewayURL" -}}
{{- if and .Values.pushgateway.enabled .Values.pushgateway.url -}}
{{- fail "pushgateway: set url (an external Pushgateway) or enabled (the bundled one), not both" -}}
{{- else if .Values.pushgateway.enabled -}}
{{- printf "http://stashplan-pushgateway.%s.svc:9091" .Release.Namespace -}}
{{- else -}}
{{- .Values.pushgateway.url -}}
{{- end -}}
{{- end -}}

{{/* The operator pods' labels (its Deployment's selector). */}}
{{- define "stashplan.operatorLabels" -}}
app.kubernetes.io/name: stashplan
app.kubernetes.io/component: operator
{{- end -}}

{{/* The bundled Pushgateway's labels (its Deployment's selector). */}}
{{- define "stashplan.pushgatewayLabels" -}}
app.kubernetes.io/name: pushgateway
app.kubernetes.io/part-of: stashplan
{{- end -}}
