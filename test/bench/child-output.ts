/** Reading what a benchmark's child processes print. */
import type { ChildProcess } from "node:child_process";

/** The first match of `pattern` in what `child` prints from now on; rejects after `ms`. */
export function lineFrom(child: ChildProcess, pattern: RegExp, ms: number): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    let out = "";
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = pattern.exec(out);
      if (m === null) return;
      done();
      resolve(m);
    };
    const done = () => {
      clearTimeout(timer);
      child.stdout?.off("data", onData);
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`no ${pattern} within ${ms} ms: ${out.slice(-200)}`));
    }, ms);
    child.stdout?.on("data", onData);
  });
}
