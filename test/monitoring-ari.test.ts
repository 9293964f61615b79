import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { acme } from '@autotls/core';
import { registerMetrics } from '@autotls/core/prometheus';
import { Registry } from 'prom-client';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type AriStandIn, startCaBehindAriStandIn } from './support/ari-stand-in.js';
import { renewingManager, type ShortLivedCA, waitUntil } from './support/lifecycle.js';
import { serve, tempDir } from './support/servers.js';

const MINUTE = 60_000;
const cli = fileURLToPath(new URL('../packages/core/dist/cli/main.js', import.meta.url));

let ca: ShortLivedCA;
let standIn: AriStandIn;
let stop: (() => Promise<void>) | undefined;

beforeAll(async () => {
  ({ ca, standIn, stop } = await startCaBehindAriStandIn());
});

afterAll(() => stop?.());

function statusJson(storage: string) {
  return new Promise<Array<Record<string, unknown>>>((resolve, reject) => {
    execFile(process.execPath, [cli, 'status', '--json', '--storage', storage], (error, stdout) =>
      error ? reject(error) : resolve(JSON.parse(stdout)),
    );
  });
}

describe('the renewal time a CA suggests (ARI), as monitoring shows it', () => {
  it('the renewal metric and `autotls status` give the ARI selected time, inside its window, when earlier than the ratio', async () => {
    const name = 'ari-metrics.example.test';
    // The certificate lives an hour; the lifetime ratio would renew at 40 minutes, the CA asks for 10–12.
    const window = { start: new Date(Date.now() + 10 * MINUTE), end: new Date(Date.now() + 12 * MINUTE) };
    standIn.answerWith(() => window);
    const storage = await tempDir();
    const manager = await renewingManager({
      issuers: [acme({ directoryUrl: standIn.directoryUrl, ca: standIn.caPem })],
      storage,
    });
    const registry = new Registry();
    const metrics = registerMetrics(manager, { registry });
    const server = await serve(manager, ca.httpPort);
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      await waitUntil(() => manager.renewalAt(name) !== undefined, 'a maintenance pass saw the ARI window');
      const metricLine = (await registry.metrics())
        .split('\n')
        .find((line) => line.startsWith('autotls_certificate_renewal_timestamp_seconds{'));
      const renewalMs = Number(metricLine?.split(' ').at(-1)) * 1000;
      expect(renewalMs).toBeGreaterThanOrEqual(window.start.getTime());
      expect(renewalMs).toBeLessThanOrEqual(window.end.getTime());

      const [row] = await statusJson(storage);
      expect(row).toMatchObject({
        name,
        renewalAt: new Date(renewalMs).toISOString(),
        ariWindow: { start: window.start.toISOString(), end: window.end.toISOString() },
      });
    } finally {
      metrics.unregister();
      await server.close();
      await manager.close();
    }
  });
});
