# The sipedge appliance image. Written for Debian's packer 1.6.6 (no
# templatefile(); -var-file JSON), and for current Packer with the plugins
# that plugins.pkr.hcl pins (`packer init packer/plugins.pkr.hcl` once): 1.6.6
# refuses that file's block, so it is a file of its own, never given to 1.6.6.
#
#   packer/build.sh                        # offline: local base, qcow2 in packer/out/image
#   packer build -only=qemu.sipedge -var-file=vars.json packer/sipedge.pkr.hcl
#   packer build -only=amazon-ebs.sipedge -var aws_region=eu-west-1 packer/sipedge.pkr.hcl

variable "version" {
  type        = string
  description = "sipedge version, as in package.json (names the image)"
  default     = "0.1.0"
}

variable "bundle" {
  type        = string
  description = "Release bundle made on the build host by packer/release-bundle.sh"
}

variable "base_image" {
  type        = string
  description = "Base disk image for the qemu source: Debian 12 genericcloud by default, or the offline base that packer/offline-base.sh makes"
  default     = "https://cloud.debian.org/images/cloud/bookworm/latest/debian-12-genericcloud-amd64.qcow2"
}

variable "base_checksum" {
  type        = string
  description = "Checksum of base_image (\"sha512:…\", \"file:URL\" or \"none\")"
  default     = "file:https://cloud.debian.org/images/cloud/bookworm/latest/SHA512SUMS"
}

variable "cloud_init" {
  type        = bool
  description = "The base image runs cloud-init (genericcloud): serve it user-data from http_directory (packer/build.sh writes one with the build key)"
  default     = true
}

variable "seed_iso" {
  type        = string
  description = "NoCloud seed ISO (label cidata, packer/nocloud-seed.sh makes one) attached as a CD-ROM: how the offline base, which authorises no key, gets the build key"
  default     = ""
}

variable "http_directory" {
  type        = string
  description = "NoCloud seed (user-data, meta-data) served to cloud-init"
  default     = "packer/out/http"
}

variable "ssh_username" {
  type        = string
  description = "Login on the base image: root on the offline base, debian on genericcloud"
  default     = "debian"
}

variable "ssh_private_key_file" {
  type        = string
  description = "Build key whose public half the base image (or the cloud-init seed) authorises"
}

variable "output_directory" {
  type    = string
  default = "packer/out/image"
}

variable "accelerator" {
  type        = string
  description = "qemu accelerator: tcg (pure emulation, works everywhere) or kvm"
  default     = "tcg"
}

variable "manifest" {
  type        = string
  description = "JSON record of every build's artifacts (the AMI's ID for amazon-ebs); its folder must exist (release-bundle.sh makes packer/out)"
  default     = "packer/out/manifest.json"
}

variable "aws_region" {
  type    = string
  default = "eu-central-1"
}

variable "aws_instance_type" {
  type    = string
  default = "c6i.large"
}

locals {
  # Packer's own forward would listen on every interface: bind SSH to loopback only.
  net_args = [
    ["-netdev", "user,id=user.0,hostfwd=tcp:127.0.0.1:{{ .SSHHostPort }}-:22"],
    ["-device", "virtio-net,netdev=user.0"],
  ]
  cloud_init_args = [
    ["-smbios", "type=1,serial=ds=nocloud-net;s=http://{{ .HTTPIP }}:{{ .HTTPPort }}/"],
  ]
  seed_args = var.seed_iso == "" ? [] : [["-cdrom", var.seed_iso]]
}

source "qemu" "sipedge" {
  iso_url          = var.base_image
  iso_checksum     = var.base_checksum
  disk_image       = true
  use_backing_file = false
  format           = "qcow2"
  disk_interface   = "virtio"
  disk_size        = "4096M"
  accelerator      = var.accelerator
  memory           = 1024
  cpus             = 2
  headless         = true
  vnc_bind_address = "127.0.0.1"
  qemuargs         = concat(local.net_args, var.cloud_init ? local.cloud_init_args : [], local.seed_args)

  http_directory    = var.cloud_init ? var.http_directory : ""
  http_bind_address = "127.0.0.1"

  ssh_username         = var.ssh_username
  ssh_private_key_file = var.ssh_private_key_file
  ssh_timeout          = "10m"
  shutdown_command     = "sudo shutdown -P now"

  output_directory = var.output_directory
  vm_name          = "sipedge-${var.version}.qcow2"
}

# For operators who build AMIs: defined and validated here, not built.
source "amazon-ebs" "sipedge" {
  region        = var.aws_region
  instance_type = var.aws_instance_type
  ami_name      = "sipedge-${var.version}-{{ timestamp }}"
  ssh_username  = "admin"
  ena_support   = true

  source_ami_filter {
    filters = {
      name                = "debian-12-amd64-*"
      architecture        = "x86_64"
      virtualization-type = "hvm"
      root-device-type    = "ebs"
    }
    owners      = ["136693071363"] # Debian's official AWS account
    most_recent = true
  }
}

build {
  sources = ["source.qemu.sipedge", "source.amazon-ebs.sipedge"]

  provisioner "ansible" {
    playbook_file = "ansible/image.yml"
    user          = build.User
    # Packer's SSH proxy fails against OpenSSH 9: Ansible connects directly.
    use_proxy        = false
    ansible_env_vars = ["ANSIBLE_CONFIG=ansible/ansible.cfg", "ANSIBLE_HOST_KEY_CHECKING=False"]
    extra_arguments  = ["--extra-vars", "sipedge_bundle=${var.bundle}"]
  }

  # Beside the qcow2, as `sha256sum -c` reads it, for whoever copies the image on.
  post-processor "checksum" {
    only           = ["qemu.sipedge"]
    checksum_types = ["sha256"]
    output         = "${var.output_directory}/sipedge-${var.version}.qcow2.sha256"
  }

  post-processor "manifest" {
    output     = var.manifest
    strip_path = true
  }
}
