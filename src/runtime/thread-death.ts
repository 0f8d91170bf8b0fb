import { errorText } from "../log/log.ts";

/** Why a thread ended: the error it threw, if any (the exit event follows an error event), and its exit code. */
export class Death {
  #error: string | undefined;

  error(e: Error): void {
    this.#error = errorText(e);
  }

  /** ": the error", for a message; empty when the thread threw nothing. */
  get because(): string {
    return this.#error === undefined ? "" : `: ${this.#error.split("\n")[0]}`;
  }

  fields(exitCode: number): { exitCode: number; error: string | undefined } {
    return { exitCode, error: this.#error };
  }
}
