import { WebSocket } from "ws";

/** A raw WebSocket client (the `ws` package) to 127.0.0.1:port offering `protocols`; `ca` undefined: any certificate. */
export async function connectWs(port: number, protocols: string[], ca?: Buffer): Promise<WebSocket> {
  const ws = new WebSocket(
    `wss://127.0.0.1:${port}`,
    protocols,
    ca === undefined ? { rejectUnauthorized: false } : { ca },
  );
  await new Promise<void>((resolve, reject) => {
    ws.once("open", () => resolve());
    ws.once("error", reject);
  });
  return ws;
}

/** The next message the socket receives. */
export function nextMessage(ws: WebSocket, timeoutMs = 10_000): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no WebSocket message within ${timeoutMs} ms`)), timeoutMs);
    ws.once("message", (data: Buffer) => {
      clearTimeout(timer);
      resolve(data);
    });
  });
}
