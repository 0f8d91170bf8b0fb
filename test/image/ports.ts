/** The ports a sipedge config serves, as the role reserves and firewalls them. */

interface RawConfig {
  io?: { threads?: number; backendPort?: number };
  listen: { port: number }[];
  admin?: { listen?: string };
}

/**
 * Every listener's port, the admin API's, and the IO workers' backend-side
 * ports (io.backendPort + i for each worker: io.threads of them, or 1 024,
 * the most, when it is 0 and the count is the host's cores).
 */
export function servicePorts(config: RawConfig): number[] {
  const ports = config.listen.map((l) => l.port).filter((p) => p > 0);
  ports.push(Number((config.admin?.listen ?? "127.0.0.1:9091").replace(/^.*:/, "")));
  const first = config.io?.backendPort ?? 0;
  const workers = config.io?.threads || 1024;
  if (first > 0) for (let i = 0; i < workers; i++) ports.push(first + i);
  return [...new Set(ports)].sort((a, b) => a - b);
}

/** "5060-5061,8443" (the kernel's list of ports and ranges) as the set of ports. */
export function expandPorts(list: string): Set<number> {
  const ports = new Set<number>();
  for (const item of list.split(",").map((s) => s.trim())) {
    if (item === "") continue;
    const [from, to = from] = item.split("-").map(Number) as [number, number?];
    for (let p = from; p <= to; p++) ports.add(p);
  }
  return ports;
}
