# Everything the cluster runs besides the app, as Helm releases whose versions all come from
# infra/versions/versions.yaml (var.versions): ingress (AWS Load Balancer Controller), scaling
# (cluster autoscaler, metrics-server), SpinKube for the edge (cert-manager, runtime-class-manager
# with the Spin shim, spin-operator), secrets (External Secrets Operator), monitoring
# (kube-prometheus-stack with Alertmanager → Slack), logging (Elasticsearch, Kibana, Fluent Bit)
# and GitOps (Argo CD plus the environment's root Application, which deploys heart-core and
# heart-edge). helm/heart-platform holds the cluster-wide resources of ours (the Shim, the secret
# stores, Alertmanager's webhook secret, the OpenTelemetry Collector for the edge's telemetry).

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  namespace  = "kube-system"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = var.versions.charts.aws_load_balancer_controller
  values = [yamlencode({
    clusterName  = var.cluster_name
    region       = var.region
    vpcId        = var.vpc_id
    replicaCount = 2
    serviceAccount = {
      name        = "aws-load-balancer-controller"
      annotations = { "eks.amazonaws.com/role-arn" = var.lb_controller_role_arn }
    }
    # Only Ingresses (the app's ALB) are ours; leave Services of type LoadBalancer alone.
    enableServiceMutatorWebhook = false
  })]
}

resource "helm_release" "metrics_server" {
  name       = "metrics-server"
  namespace  = "kube-system"
  repository = "https://kubernetes-sigs.github.io/metrics-server/"
  chart      = "metrics-server"
  version    = var.versions.charts.metrics_server
  values = [yamlencode({
    replicas = 2
    podDisruptionBudget = {
      enabled      = true
      minAvailable = 1
    }
  })]
}

resource "helm_release" "cluster_autoscaler" {
  name       = "cluster-autoscaler"
  namespace  = "kube-system"
  repository = "https://kubernetes.github.io/autoscaler"
  chart      = "cluster-autoscaler"
  version    = var.versions.charts.cluster_autoscaler
  values = [yamlencode({
    cloudProvider = "aws"
    awsRegion     = var.region
    # Managed node groups tag their Auto Scaling groups for discovery.
    autoDiscovery = { clusterName = var.cluster_name }
    # The autoscaler supports exactly one Kubernetes minor: the cluster's (checked by infra/check.sh).
    image = { tag = var.versions.image_tags.cluster_autoscaler }
    rbac = {
      serviceAccount = {
        name        = "cluster-autoscaler"
        annotations = { "eks.amazonaws.com/role-arn" = var.cluster_autoscaler_role_arn }
      }
    }
    extraArgs = {
      "balance-similar-node-groups"   = true
      "skip-nodes-with-system-pods"   = false
      "expander"                      = "least-waste"
      "scale-down-unneeded-time"      = "10m"
      "skip-nodes-with-local-storage" = false
    }
  })]
}

# --- SpinKube: runs the edge (SpinApp) on the Spin containerd shim ---

resource "helm_release" "cert_manager" {
  name             = "cert-manager"
  namespace        = "cert-manager"
  create_namespace = true
  repository       = "https://charts.jetstack.io"
  chart            = "cert-manager"
  version          = var.versions.charts.cert_manager
  values           = [yamlencode({ crds = { enabled = true } })]
}

# runtime-class-manager (successor of the archived kwasm operator) installs containerd-shim-spin on
# the nodes labelled spin=true and makes the RuntimeClass whose nodeSelector keeps Spin pods on them
# (the Shim resource is in helm/heart-platform).
resource "helm_release" "runtime_class_manager" {
  name             = "runtime-class-manager"
  namespace        = "runtime-class-manager"
  create_namespace = true
  repository       = "oci://ghcr.io/spinframework/charts"
  chart            = "runtime-class-manager"
  version          = var.versions.charts.runtime_class_manager
  values = [yamlencode({
    image = { tag = "v${var.versions.charts.runtime_class_manager}" }
    rcm = {
      shimDownloaderImage = { tag = "v${var.versions.charts.runtime_class_manager}" }
      nodeInstallerImage  = { tag = "v${var.versions.charts.runtime_class_manager}" }
    }
  })]
  depends_on = [helm_release.cert_manager]
}

resource "helm_release" "spin_operator" {
  name             = "spin-operator"
  namespace        = "spin-operator"
  create_namespace = true
  repository       = "oci://ghcr.io/spinframework/charts"
  chart            = "spin-operator"
  version          = var.versions.charts.spin_operator
  # The SpinApp and SpinAppExecutor CRDs of the same release are applied first (docs/operations.md);
  # infra/checks/crds holds them for the offline check.
  depends_on = [helm_release.cert_manager, helm_release.runtime_class_manager]
}

# --- secrets: AWS Secrets Manager → Kubernetes Secrets ---

resource "helm_release" "external_secrets" {
  name             = "external-secrets"
  namespace        = "external-secrets"
  create_namespace = true
  repository       = "https://charts.external-secrets.io"
  chart            = "external-secrets"
  version          = var.versions.charts.external_secrets
  values = [yamlencode({
    installCRDs = true
    serviceAccount = {
      name        = "external-secrets"
      annotations = { "eks.amazonaws.com/role-arn" = var.external_secrets_role_arn }
    }
  })]
}

# Ours, cluster-wide: the Spin Shim, the secret stores, Alertmanager's Slack webhook secret and the
# OpenTelemetry Collector (in monitoring, after kube-prometheus-stack: its ServiceMonitor CRD).
resource "helm_release" "heart_platform" {
  name      = "heart-platform"
  namespace = "kube-system"
  chart     = "${path.module}/../../../../helm/heart-platform"
  values = [yamlencode({
    environment = var.environment
    region      = var.region
    spinShim    = var.versions.spin_shim
  })]
  depends_on = [helm_release.runtime_class_manager, helm_release.external_secrets, helm_release.kube_prometheus_stack]
}

# --- monitoring ---

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  namespace        = "monitoring"
  create_namespace = true
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.versions.charts.kube_prometheus_stack
  values = [yamlencode({
    prometheus = {
      prometheusSpec = {
        # Pick up the ServiceMonitors, PodMonitors and PrometheusRules of every chart, not only this release's.
        serviceMonitorSelectorNilUsesHelmValues = false
        podMonitorSelectorNilUsesHelmValues     = false
        ruleSelectorNilUsesHelmValues           = false
        retention                               = var.prometheus_retention
        storageSpec = {
          volumeClaimTemplate = {
            spec = {
              accessModes = ["ReadWriteOnce"]
              resources   = { requests = { storage = var.prometheus_storage } }
            }
          }
        }
      }
    }
    # Alerts go to Slack; the webhook URL is a file from the Secret External Secrets makes
    # (helm/heart-platform: alertmanager-slack), never a value in this configuration.
    alertmanager = {
      alertmanagerSpec = { secrets = ["alertmanager-slack"] }
      config = {
        route = {
          receiver        = "slack"
          group_by        = ["alertname", "namespace"]
          group_wait      = "30s"
          group_interval  = "5m"
          repeat_interval = "4h"
          routes          = [{ receiver = "null", matchers = ["alertname = Watchdog"] }]
        }
        receivers = [
          { name = "null" },
          {
            name = "slack"
            slack_configs = [{
              api_url_file  = "/etc/alertmanager/secrets/alertmanager-slack/webhook-url"
              channel       = var.alert_slack_channel
              send_resolved = true
              title         = "[{{ .Status | toUpper }}] {{ .CommonLabels.alertname }} ({{ .CommonLabels.severity }})"
              text          = "{{ range .Alerts }}{{ .Annotations.summary }}: {{ .Annotations.description }}\n{{ end }}"
            }]
          },
        ]
      }
    }
    grafana = {
      sidecar = {
        # Dashboards are ConfigMaps labelled grafana_dashboard: "1" in any namespace (heart-core ships one).
        dashboards = {
          enabled         = true
          label           = "grafana_dashboard"
          labelValue      = "1"
          searchNamespace = "ALL"
        }
      }
    }
  })]
  set_sensitive {
    name  = "grafana.adminPassword"
    value = var.grafana_admin_password
  }
}

# --- logging: Fluent Bit → Elasticsearch → Kibana ---

resource "helm_release" "elasticsearch" {
  name             = "elasticsearch"
  namespace        = "logging"
  create_namespace = true
  repository       = "https://helm.elastic.co"
  chart            = "elasticsearch"
  version          = var.versions.charts.elasticsearch
  # The chart generates the elastic user's password (Secret elasticsearch-master-credentials) and
  # the TLS certificates (Secret elasticsearch-master-certs); Kibana and Fluent Bit use both.
  values = [yamlencode({
    replicas           = var.elasticsearch_replicas
    minimumMasterNodes = var.elasticsearch_replicas > 2 ? 2 : 1
    esJavaOpts         = "-Xms1g -Xmx1g"
    resources = {
      requests = { cpu = "500m", memory = "2Gi" }
      limits   = { cpu = "1", memory = "2Gi" }
    }
    volumeClaimTemplate = {
      accessModes = ["ReadWriteOnce"]
      resources   = { requests = { storage = var.elasticsearch_storage } }
    }
  })]
}

resource "helm_release" "kibana" {
  name       = "kibana"
  namespace  = "logging"
  repository = "https://helm.elastic.co"
  chart      = "kibana"
  version    = var.versions.charts.kibana
  values = [yamlencode({
    elasticsearchHosts = "https://elasticsearch-master:9200"
    resources = {
      requests = { cpu = "250m", memory = "1Gi" }
      limits   = { cpu = "1", memory = "1Gi" }
    }
  })]
  depends_on = [helm_release.elasticsearch]
}

resource "helm_release" "fluent_bit" {
  name       = "fluent-bit"
  namespace  = "logging"
  repository = "https://fluent.github.io/helm-charts"
  chart      = "fluent-bit"
  version    = var.versions.charts.fluent_bit
  values     = [var.fluent_bit_values]
  depends_on = [helm_release.elasticsearch]
}

# --- GitOps ---

resource "helm_release" "argo_cd" {
  name             = "argo-cd"
  namespace        = "argocd"
  create_namespace = true
  repository       = "https://argoproj.github.io/argo-helm"
  chart            = "argo-cd"
  version          = var.versions.charts.argo_cd
  values = [yamlencode({
    configs = {
      params = {
        # Reach the UI with kubectl port-forward; it is not exposed.
        "server.insecure" = false
      }
    }
    server         = { replicas = 2 }
    repoServer     = { replicas = 2 }
    applicationSet = { replicas = 2 }
  })]
}

# The app of apps: the environment's root Application (deploy/argocd/root/<environment>.yaml),
# which deploys the Application manifests of deploy/argocd/<environment> (heart-core, heart-edge).
resource "helm_release" "argocd_root" {
  name       = "argocd-root"
  namespace  = "argocd"
  repository = "https://argoproj.github.io/argo-helm"
  chart      = "argocd-apps"
  version    = var.versions.charts.argocd_apps
  values = [yamlencode({
    applications = {
      (var.root_application.metadata.name) = merge(var.root_application.spec, {
        namespace  = var.root_application.metadata.namespace
        finalizers = var.root_application.metadata.finalizers
      })
    }
  })]
  depends_on = [helm_release.argo_cd]
}
