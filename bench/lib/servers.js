/** @module bench/lib/servers — listen and close helpers for the loopback servers the scenarios start. */

/** Listens on 127.0.0.1 (`port` 0 = any free port); resolves with the port. */
export function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}

/** Closes the listener and any connections still open. */
export function close(server) {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections?.();
  });
}

/** Requests to the CA during `run`, from Pebble's request log: total and per route. */
export async function pebbleRequestsDuring(pebble, run) {
  const before = pebble.requestLog().length;
  const result = await run();
  const lines = pebble.requestLog().slice(before);
  const byRoute = {};
  for (const { method, route } of lines) {
    const key = `${method} ${route}`;
    byRoute[key] = (byRoute[key] ?? 0) + 1;
  }
  return { result, total: lines.length, byRoute };
}
