/**
 * vitest globalSetup entry, the last resort of test/helpers/processes.ts: a
 * folder the workers record their process groups in (they inherit
 * SIPEDGE_TEST_PIDS), and at the run's end every group still recorded there
 * (its worker died before its hooks ran) is stopped.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { stopRecorded } from "./processes.ts";

export default function setup(): () => void {
  const dir = mkdtempSync(join(tmpdir(), "sipedge-test-pids-"));
  process.env.SIPEDGE_TEST_PIDS = dir;
  return () => {
    stopRecorded(dir);
    rmSync(dir, { recursive: true, force: true });
  };
}
