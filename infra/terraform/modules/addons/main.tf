# Everything the cluster runs besides the app, as Helm releases with pinned chart versions:
# ingress (AWS Load Balancer Controller), scaling (cluster autoscaler, metrics-server), SpinKube
# for the edge (cert-manager, kwasm operator with the Spin shim, spin-operator), monitoring
# (kube-prometheus-stack), logging (Elasticsearch, Kibana, Fluent Bit) and GitOps (Argo CD plus the
# environment's root Application, which deploys heart-core and heart-edge).

resource "helm_release" "aws_load_balancer_controller" {
  name       = "aws-load-balancer-controller"
  namespace  = "kube-system"
  repository = "https://aws.github.io/eks-charts"
  chart      = "aws-load-balancer-controller"
  version    = var.chart_versions.aws_load_balancer_controller
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
  version    = var.chart_versions.metrics_server
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
  version    = var.chart_versions.cluster_autoscaler
  values = [yamlencode({
    cloudProvider = "aws"
    awsRegion     = var.region
    # Managed node groups tag their Auto Scaling groups for discovery.
    autoDiscovery = { clusterName = var.cluster_name }
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
  version          = var.chart_versions.cert_manager
  values           = [yamlencode({ crds = { enabled = true } })]
}

resource "helm_release" "kwasm_operator" {
  name             = "kwasm-operator"
  namespace        = "kwasm"
  create_namespace = true
  repository       = "https://kwasm.sh/kwasm-operator/"
  chart            = "kwasm-operator"
  version          = var.chart_versions.kwasm_operator
  values = [yamlencode({
    kwasmOperator = {
      installerImage = var.spin_shim_installer_image
      # Every node (new ones from the autoscaler too) gets the shim.
      autoProvision = true
    }
  })]
}

resource "helm_release" "spin_operator" {
  name             = "spin-operator"
  namespace        = "spin-operator"
  create_namespace = true
  repository       = "oci://ghcr.io/spinkube/charts"
  chart            = "spin-operator"
  version          = var.chart_versions.spin_operator
  # The SpinApp and SpinAppExecutor CRDs are applied before this release (docs/operations.md).
  depends_on = [helm_release.cert_manager, helm_release.kwasm_operator]
}

# --- monitoring ---

resource "helm_release" "kube_prometheus_stack" {
  name             = "kube-prometheus-stack"
  namespace        = "monitoring"
  create_namespace = true
  repository       = "https://prometheus-community.github.io/helm-charts"
  chart            = "kube-prometheus-stack"
  version          = var.chart_versions.kube_prometheus_stack
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
  version          = var.chart_versions.elasticsearch
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
  version    = var.chart_versions.kibana
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
  version    = var.chart_versions.fluent_bit
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
  version          = var.chart_versions.argo_cd
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
  version    = var.chart_versions.argocd_apps
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
