import { isIPv6 } from "node:net";
import { hostPort, isWildcard } from "../config/addresses.ts";
import type { AdminAccess } from "../config/load.ts";
import { EXIT } from "./exit-codes.ts";

/** An answer of the admin API other than 401: the command decides what it means. */
export interface Answer {
  readonly status: number;
  readonly body: string;
}

/** Why a command could not get an answer: one line to print, and the exit status to leave with. */
export interface Failure {
  readonly exit: number;
  readonly message: string;
}

/**
 * The base URL the admin API of `admin.listen` answers on from this host:
 * a wildcard listener is reached over loopback of its family.
 */
export function adminUrl(listen: string): string | undefined {
  const at = hostPort(listen);
  if (at === undefined) return undefined;
  const host = isWildcard(at.host) ? (isIPv6(at.host) ? "::1" : "127.0.0.1") : at.host;
  return `http://${isIPv6(host) ? `[${host}]` : host}:${at.port}`;
}

/**
 * One request to the admin API, with the token the config names. A POST
 * says it is JSON, as the API demands of every POST (admin/guards.ts).
 * Not reached, timed out, or refused the token: a Failure.
 */
export async function ask(
  access: AdminAccess,
  method: "GET" | "POST",
  path: string,
  timeoutMs: number,
): Promise<Answer | Failure> {
  const base = adminUrl(access.admin.listen);
  if (base === undefined) return { exit: EXIT.config, message: `admin.listen: cannot use ${access.admin.listen}` };
  const headers: Record<string, string> = {};
  if (access.token !== undefined) headers.authorization = `Bearer ${access.token}`;
  if (method === "POST") headers["content-type"] = "application/json";
  let res: Response;
  try {
    res = await fetch(`${base}${path}`, { method, headers, signal: AbortSignal.timeout(timeoutMs) });
  } catch (e) {
    return { exit: EXIT.unavailable, message: `admin API at ${base} not reachable: ${why(e)}` };
  }
  if (res.status === 401) {
    const { tokenFile } = access.admin;
    const which = tokenFile === undefined ? "no token (admin.tokenFile is not set)" : `the token in ${tokenFile}`;
    return { exit: EXIT.noPermission, message: `admin API at ${base} refused ${which} (401)` };
  }
  return { status: res.status, body: await res.text() };
}

/** fetch's "fetch failed" hides the reason in its cause: ECONNREFUSED, a timeout. */
function why(e: unknown): string {
  const error = e as Error & { cause?: { code?: string; message?: string } };
  if (error.name === "TimeoutError") return "no answer in time";
  return error.cause?.code ?? error.cause?.message ?? error.message;
}

export function isFailure(a: Answer | Failure): a is Failure {
  return "exit" in a;
}
