/**
 * What sipedge's exit status says. 2 for a command line that makes no
 * command is older than the rest and kept (scripts test for it); the others
 * are sysexits.h's, so the journal and scripts tell the causes apart.
 */
export const EXIT = {
  ok: 0,
  /** A failure the command reports itself: a message that did not parse, a start that failed, a reload refused. */
  failed: 1,
  usage: 2,
  /**
   * EX_UNAVAILABLE: the admin API could not be reached (sipedge not
   * running, or not on the address the config names).
   */
  unavailable: 69,
  /** EX_NOPERM: the admin API refused the token. */
  noPermission: 77,
  /**
   * EX_CONFIG: the config is wrong. The unit's RestartPreventExitStatus=78
   * keeps systemd from restarting a process that would only refuse the same file again.
   */
  config: 78,
} as const;
