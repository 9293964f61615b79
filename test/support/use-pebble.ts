/** @module test/support/use-pebble — one Pebble (with its challtestsrv) for a test file, started before its tests. */
import { afterAll, beforeAll } from 'vitest';
import { type StartedCAs, startCAs } from './index.js';
import { freePort } from './ports.js';

export interface PebbleForFile {
  readonly cas: StartedCAs<'ca'>;
  /** Where Pebble validates HTTP-01: the port the file's managers answer on. */
  readonly httpPort: number;
  /** newOrder requests Pebble has seen so far. */
  newOrders(): number;
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
  };
}
