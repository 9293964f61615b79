/**
 * @module bench/scenarios/handshake-client — the load generator for the handshake scenario, in its own
 * process so the server under test has a core to itself. Each round: keep `concurrency` fresh TLS
 * connections in flight (no session reuse: no `session` is ever passed), count completed handshakes.
 */
import tls from 'node:tls';

/** One client context for all connections: building one per connection (the default) costs more than the handshake. */
const secureContext = tls.createSecureContext();

function round({ port, servername, durationMs, concurrency }) {
  return new Promise((resolve) => {
    let handshakes = 0;
    let errors = 0;
    let open = 0;
    const startedAt = performance.now();
    const cpuBefore = process.cpuUsage();
    const deadline = startedAt + durationMs;
    const finish = () => {
      if (open > 0) return;
      const cpu = process.cpuUsage(cpuBefore);
      resolve({
        handshakes,
        errors,
        elapsedMs: performance.now() - startedAt,
        cpuMs: (cpu.user + cpu.system) / 1000,
      });
    };
    const connect = () => {
      if (performance.now() >= deadline) return finish();
      open++;
      let done = false;
      const socket = tls.connect({
        host: '127.0.0.1',
        port,
        servername,
        secureContext,
        rejectUnauthorized: false,
      });
      const settle = (ok) => {
        if (done) return;
        done = true;
        if (ok && performance.now() <= deadline) handshakes++;
        else if (!ok) errors++;
        socket.destroy();
        open--;
        setImmediate(connect);
      };
      socket.once('secureConnect', () => settle(true));
      socket.once('error', () => settle(false));
    };
    for (let i = 0; i < concurrency; i++) connect();
  });
}

process.on('message', async (message) => {
  if (message === 'exit') process.exit(0);
  process.send(await round(message));
});
