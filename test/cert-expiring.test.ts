import { acme } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testClock } from './support/clock.js';
import { recordEvents } from './support/events.js';
import {
  CERTIFICATE_LIFETIME_MS,
  pause,
  renewingManager,
  type ShortLivedCA,
  startShortLivedCA,
  waitUntil,
} from './support/lifecycle.js';
import { captureLogger } from './support/logs.js';
import { serve } from './support/servers.js';

let ca: ShortLivedCA;

beforeAll(async () => {
  ca = await startShortLivedCA();
});

afterAll(async () => {
  await ca?.stop();
});

describe('cert_expiring', () => {
  it('fires, with its fields, once per hour, when a served certificate is past 9/10 of its lifetime and the CA is down', async () => {
    const clock = testClock();
    const logger = captureLogger();
    const manager = await renewingManager({
      issuers: [acme({ directoryUrl: ca.pebble.directoryUrl, ca: ca.pebble.caPem })],
      clock,
      logger,
      retry: { intervalsMs: [200] },
    });
    const events = recordEvents(manager);
    const server = await serve(manager, ca.httpPort);
    const name = 'expiring.example.test';
    try {
      await manager.manage([name]);
      await manager.ready([name]);
      const certificate = manager.getCertificate(name);
      expect(events.of('cert_expiring')).toEqual([]);
      await ca.pebble.stop();
      clock.offsetMs = 0.92 * CERTIFICATE_LIFETIME_MS;
      await waitUntil(() => events.of('cert_expiring').length > 0, 'cert_expiring is emitted');
      const [warning] = events.of('cert_expiring');
      expect(warning?.identifier).toBe(name);
      expect(warning?.notAfter).toBe(new Date(certificate?.notAfter ?? 0).toISOString());
      const remaining = warning?.remaining_seconds ?? 0;
      expect(remaining).toBeGreaterThan(0);
      expect(remaining).toBeLessThan(CERTIFICATE_LIFETIME_MS / 10 / 1000);
      expect(Math.abs(remaining - ((certificate?.notAfter ?? 0) - clock.now()) / 1000)).toBeLessThan(5);
      const errorLines = logger.lines.filter((line) => line.level === 'error' && line.identifier === name);
      expect(errorLines).toContainEqual(expect.objectContaining({ notAfter: warning?.notAfter }));

      await pause(1_000); // ten more passes within the same (clock) hour: no second warning
      expect(events.of('cert_expiring')).toHaveLength(1);
      expect(events.of('cert_failed', name).length).toBeGreaterThan(0); // the renewal is failing meanwhile
      clock.offsetMs += 61 * 60_000; // an hour on, still served (now expired): warned again
      await waitUntil(() => events.of('cert_expiring').length === 2, 'a second cert_expiring an hour later');
      expect(events.of('cert_expiring')[1]?.remaining_seconds).toBeLessThan(0);
    } finally {
      await server.close();
      await manager.close();
    }
  });
});
