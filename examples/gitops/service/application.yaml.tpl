apiVersion: argoproj.io/v1alpha1
kind: Application
metadata:
  name: {{ inputs.name | slug }}
  namespace: argocd
  labels:
    team: {{ inputs.team | slug | yaml_string }}
    gangway.dev/run: {{ run_id | yaml_string }}
spec:
  project: default
  source:
    repoURL: https://git.example.com/platform/config.git
    path: charts/service
    targetRevision: main
    helm:
      valueFiles:
        - ../../apps/{{ inputs.name | slug }}/values.yaml
  destination:
    server: https://kubernetes.default.svc
    namespace: {{ inputs.name | slug }}
  syncPolicy:
    automated: {}
