output "argocd_namespace" {
  description = "Where Argo CD runs (kubectl -n argocd port-forward svc/argo-cd-server 8080:443)."
  value       = helm_release.argo_cd.namespace
}

output "grafana_service" {
  description = "Grafana (kubectl -n monitoring port-forward svc/kube-prometheus-stack-grafana 3000:80)."
  value       = "${helm_release.kube_prometheus_stack.namespace}/kube-prometheus-stack-grafana"
}

output "kibana_service" {
  description = "Kibana (kubectl -n logging port-forward svc/kibana-kibana 5601)."
  value       = "${helm_release.kibana.namespace}/kibana-kibana"
}
