# Redis for revocations, rate limits and the edge's feed cache: TLS in transit, AUTH token,
# encrypted at rest with our key, a replica in another AZ with automatic failover.
# Cluster mode is off: the core and the edge use single-node commands and scripts; scale the node
# type first, shard later (the key layout in shared/ allows it).

module "cache_key" {
  source      = "../kms-key"
  description = "${var.name} ElastiCache and its connection secret"
  tags        = var.tags
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
  tags       = var.tags
}

resource "aws_security_group" "cache" {
  name        = "${var.name}-redis"
  description = "Redis: from the EKS cluster only"
  vpc_id      = var.vpc_id
  tags        = merge(var.tags, { Name = "${var.name}-redis" })
}

resource "aws_vpc_security_group_ingress_rule" "cache" {
  for_each                     = toset(var.allowed_security_group_ids)
  security_group_id            = aws_security_group.cache.id
  description                  = "Redis from ${each.value}"
  referenced_security_group_id = each.value
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "Heart to Heart cache, revocations and rate limits"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = "default.redis7"

  num_cache_clusters         = var.replicas + 1
  automatic_failover_enabled = true
  multi_az_enabled           = true

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.cache.id]

  at_rest_encryption_enabled = true
  kms_key_id                 = module.cache_key.arn
  transit_encryption_enabled = true
  auth_token                 = var.auth_token
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.snapshot_retention_days
  snapshot_window            = "01:00-02:00"
  maintenance_window         = "sun:04:30-sun:05:30"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  tags = var.tags
}

# The URL the core (HEART_REDIS_URL) and the edge (redis_url) use, kept encrypted for the operator
# to copy into the Kubernetes Secrets (docs/operations.md).
resource "aws_secretsmanager_secret" "redis_url" {
  name        = "${var.name}/redis-url"
  description = "rediss:// URL with the AUTH token of ${var.name}"
  kms_key_id  = module.cache_key.arn
  tags        = var.tags
  # checkov:skip=CKV2_AWS_57:the AUTH token is rotated by the documented procedure (ROTATE strategy), not by a Lambda
}

resource "aws_secretsmanager_secret_version" "redis_url" {
  secret_id     = aws_secretsmanager_secret.redis_url.id
  secret_string = "rediss://:${urlencode(var.auth_token)}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"
}
