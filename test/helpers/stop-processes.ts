/**
 * vitest setupFiles entry: every test file's processes (test/helpers/processes.ts)
 * stopped after each test and after the file. Registered before the file's
 * own hooks, these run after them (sequence.hooks "stack"): a test's
 * afterEach may still use what the test started.
 */
import { afterAll, afterEach, beforeEach } from "vitest";
import { beginTest, endTest, stopAll } from "./processes.ts";

beforeEach(beginTest);
afterEach(endTest);
afterAll(stopAll);
