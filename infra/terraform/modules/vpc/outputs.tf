output "vpc_id" {
  description = "The VPC."
  value       = aws_vpc.this.id
}

output "vpc_cidr" {
  description = "The VPC's address range."
  value       = aws_vpc.this.cidr_block
}

output "public_subnet_ids" {
  description = "Public subnets, one per AZ (ALB, NAT)."
  value       = aws_subnet.public[*].id
}

output "private_subnet_ids" {
  description = "Private subnets, one per AZ (nodes, pods, data stores)."
  value       = aws_subnet.private[*].id
}

output "nat_public_ips" {
  description = "Addresses the cluster's outbound traffic comes from (for allow-lists, e.g. SMTP)."
  value       = aws_eip.nat[*].public_ip
}
