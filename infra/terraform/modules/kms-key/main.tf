# A customer-managed KMS key with yearly rotation and an explicit key policy: the account
# administers it through IAM (as AWS's default policy does), plus whatever services the caller
# lets use it (CloudWatch Logs, CloudFront...).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "this" {
  source_policy_documents = var.service_policy_json == null ? [] : [var.service_policy_json]

  statement {
    sid       = "AccountAdministersThroughIam"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
  # checkov:skip=CKV_AWS_109:a key policy's Resource "*" is this key alone; the root statement is AWS's default key policy (delegation to IAM)
  # checkov:skip=CKV_AWS_111:a key policy's Resource "*" is this key alone; the root statement is AWS's default key policy (delegation to IAM)
  # checkov:skip=CKV_AWS_356:a key policy's Resource "*" is this key alone; the root statement is AWS's default key policy (delegation to IAM)
}

resource "aws_kms_key" "this" {
  description         = var.description
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.this.json
  tags                = var.tags
}

resource "aws_kms_alias" "this" {
  count         = var.alias == null ? 0 : 1
  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}
