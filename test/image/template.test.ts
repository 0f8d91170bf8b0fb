import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { BUILD_KEY, REPO, run } from "../helpers/vm.ts";

describe("the image definitions", () => {
  it("ansible-lint passes the role and both playbooks at the production profile", async () => {
    const r = await run("ansible-lint", ["--offline", "-p", "ansible/"], {
      ANSIBLE_CONFIG: `${REPO}/ansible/ansible.cfg`,
    });
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("packer validates the template, amazon-ebs source included", async () => {
    // base_checksum=none: the default checksum file is on the internet, out of reach here.
    const r = await run(
      "packer",
      [
        "validate",
        ...["-var", "bundle=x", "-var", "base_checksum=none", "-var", `ssh_private_key_file=${BUILD_KEY}`],
        ...["-var", `output_directory=${join(mkdtempSync(join(tmpdir(), "sipedge-packer-")), "image")}`],
        "packer/sipedge.pkr.hcl",
      ],
      { CHECKPOINT_DISABLE: "1" },
    );
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });
});
