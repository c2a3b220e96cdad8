# Image repositories: immutable tags (a tag is a commit, forever), scanned on push, KMS-encrypted,
# and the role GitHub Actions assumes through OIDC to push to them (no long-lived keys).

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

module "ecr_key" {
  source              = "../kms-key"
  description         = "${var.name} ECR repositories"
  service_policy_json = length(var.pull_principal_arns) == 0 ? null : data.aws_iam_policy_document.key_for_pullers[0].json
  tags                = var.tags
}

# Another account's CD role (production's) pulls the images tested here: the key lets it decrypt
# the layers, the repository policy lets it read them.
data "aws_iam_policy_document" "key_for_pullers" {
  # checkov:skip=CKV_AWS_111:a key policy's Resource "*" is this key alone; the principals are production's CD role only
  # checkov:skip=CKV_AWS_356:a key policy's Resource "*" is this key alone; the principals are production's CD role only
  count = length(var.pull_principal_arns) == 0 ? 0 : 1
  statement {
    sid       = "PromotionPullers"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = var.pull_principal_arns
    }
  }
}

data "aws_iam_policy_document" "pull" {
  count = length(var.pull_principal_arns) == 0 ? 0 : 1
  statement {
    sid     = "PromotionPull"
    actions = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability", "ecr:DescribeImages"]
    principals {
      type        = "AWS"
      identifiers = var.pull_principal_arns
    }
  }
}

resource "aws_ecr_repository_policy" "pull" {
  for_each   = length(var.pull_principal_arns) == 0 ? toset([]) : toset(var.repositories)
  repository = aws_ecr_repository.this[each.value].name
  policy     = data.aws_iam_policy_document.pull[0].json
}

resource "aws_ecr_repository" "this" {
  for_each             = toset(var.repositories)
  name                 = each.value
  image_tag_mutability = "IMMUTABLE"

  image_scanning_configuration {
    scan_on_push = true
  }

  encryption_configuration {
    encryption_type = "KMS"
    kms_key         = module.ecr_key.arn
  }

  tags = var.tags
}

resource "aws_ecr_lifecycle_policy" "this" {
  for_each   = aws_ecr_repository.this
  repository = each.value.name
  policy = jsonencode({
    rules = [{
      rulePriority = 1
      description  = "Keep the last ${var.keep_images} images"
      selection = {
        tagStatus   = "any"
        countType   = "imageCountMoreThan"
        countNumber = var.keep_images
      }
      action = { type = "expire" }
    }]
  })
}

# --- the CD workflow's push role ---

resource "aws_iam_openid_connect_provider" "github" {
  count          = var.create_github_oidc_provider ? 1 : 0
  url            = "https://token.actions.githubusercontent.com"
  client_id_list = ["sts.amazonaws.com"]
  tags           = var.tags
}

locals {
  github_provider_arn = var.create_github_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:oidc-provider/token.actions.githubusercontent.com"
}

data "aws_iam_policy_document" "cd_assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]
    principals {
      type        = "Federated"
      identifiers = [local.github_provider_arn]
    }
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }
    # Only jobs of this repository that run in this environment's GitHub environment (whose
    # protection rules decide which branches may deploy). A job with `environment:` sends
    # sub = repo:<owner>/<name>:environment:<name>, never a ref; infra/check.sh renders this list
    # and compares it with what every workflow job that assumes the role sends.
    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = [for e in var.github_environments : "repo:${var.github_repository}:environment:${e}"]
    }
  }
}

resource "aws_iam_role" "cd" {
  name               = "${var.name}-github-cd"
  assume_role_policy = data.aws_iam_policy_document.cd_assume.json
  tags               = var.tags
}

data "aws_iam_policy_document" "cd_push" {
  statement {
    sid       = "Login"
    actions   = ["ecr:GetAuthorizationToken"]
    resources = ["*"]
  }
  statement {
    sid = "PushPull"
    actions = [
      "ecr:BatchCheckLayerAvailability",
      "ecr:BatchGetImage",
      "ecr:CompleteLayerUpload",
      "ecr:DescribeImages",
      "ecr:GetDownloadUrlForLayer",
      "ecr:InitiateLayerUpload",
      "ecr:PutImage",
      "ecr:UploadLayerPart",
    ]
    resources = [for r in aws_ecr_repository.this : r.arn]
  }
  statement {
    sid       = "EncryptLayers"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [module.ecr_key.arn]
  }
  # Production: read the staging images it promotes (copied by digest, never rebuilt).
  dynamic "statement" {
    for_each = var.promote_from == null ? [] : [var.promote_from]
    content {
      sid       = "PullFromStaging"
      actions   = ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer", "ecr:BatchCheckLayerAvailability", "ecr:DescribeImages"]
      resources = statement.value.repository_arns
    }
  }
  dynamic "statement" {
    for_each = var.promote_from == null ? [] : [var.promote_from]
    content {
      sid       = "DecryptStagingLayers"
      actions   = ["kms:Decrypt"]
      resources = [statement.value.kms_key_arn]
    }
  }
}

resource "aws_iam_role_policy" "cd" {
  name   = "ecr-push"
  role   = aws_iam_role.cd.id
  policy = data.aws_iam_policy_document.cd_push.json
}
