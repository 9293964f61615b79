/** @module test/support/use-pebble — one Pebble (with its challtestsrv) for a test file, started before its tests. */
import { acme, CertManager } from '@autotls/core';
import { afterAll, beforeAll } from 'vitest';
import { type StartedCAs, startCAs } from './index.js';
import { type CapturedLogger, captureLogger } from './logs.js';
import { freePort } from './ports.js';

export interface PebbleForFile {
  readonly cas: StartedCAs<'ca'>;
  /** Where Pebble validates HTTP-01: the port the file's managers answer on. */
  readonly httpPort: number;
  /** newOrder requests Pebble has seen so far. */
  newOrders(): number;
  /** A manager on `storage` whose only CA is this Pebble, retrying after 300 ms, with every log line kept. */
  managerOn(storage: string, logger?: CapturedLogger): { manager: CertManager; logger: CapturedLogger };
}

/** Starts Pebble in `beforeAll` and stops it in `afterAll`; read its fields inside tests. */
export function usePebble(): PebbleForFile {
  let cas: StartedCAs<'ca'> | undefined;
  let httpPort = 0;
  beforeAll(async () => {
    httpPort = await freePort();
    cas = await startCAs({ names: ['ca'], httpPort });
  });
  afterAll(async () => {
    await cas?.stopAll();
  });
  const started = () => {
    if (!cas) throw new Error('Pebble is started in beforeAll: use it inside a test');
    return cas;
  };
  return {
    get cas() {
      return started();
    },
    get httpPort() {
      return httpPort;
    },
    newOrders: () =>
      started()
        .pebbles.ca.requestLog()
        .filter((line) => line.route.includes('order-plz')).length,
    managerOn(storage, logger = captureLogger()) {
      const { ca } = started().pebbles;
      const manager = new CertManager({
        issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem })],
        storage,
        retry: { intervalsMs: [300] },
        logger,
      });
      return { manager, logger };
    },
  };
}
