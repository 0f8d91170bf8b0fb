# The plugins sipedge.pkr.hcl needs on Packer 1.7 and later, where its builders
# and provisioner live outside Packer ("builder qemu is unknown" without them):
#
#   packer init packer/plugins.pkr.hcl    # once: installs them
#   packer build packer/                  # or -only=… packer/sipedge.pkr.hcl
#
# A file of its own because Debian's packer 1.6.6, which packer/build.sh runs
# with sipedge.pkr.hcl alone, refuses a required_plugins block
# ("Blocks of type required_plugins are not expected here"); its builders are built in.
packer {
  required_plugins {
    qemu = {
      source  = "github.com/hashicorp/qemu"
      version = ">= 1.1.0"
    }
    amazon = {
      source  = "github.com/hashicorp/amazon"
      version = ">= 1.2.0"
    }
    ansible = {
      source  = "github.com/hashicorp/ansible"
      version = ">= 1.1.0"
    }
  }
}
