/**
 * Instances on one file store SIGKILLed at random moments while they obtain and renew: no record is ever
 * corrupt, a fresh manager loads every stored name without ordering, and no temp file survives its start.
 */

import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { acme, CertManager, silentLogger } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Balancer, startBalancer } from './support/balancer.js';
import { startInstance } from './support/cluster.js';
import { type StartedCAs, startCAs } from './support/index.js';
import { freePort } from './support/ports.js';
import { delay, waitFor } from './support/processes.js';
import { tempDir } from './support/servers.js';

const KILLS = 30;
const PARALLEL = 2;
const NAMES = Array.from({ length: 12 }, (_, index) => `kill${index}.file.test`);

let cas: StartedCAs<'ca'>;
let balancer: Balancer;
const backends: number[] = [];

beforeAll(async () => {
  const httpPort = await freePort();
  cas = await startCAs({ names: ['ca'], httpPort, common: { certificateValidityPeriodSeconds: 3600 } });
  balancer = await startBalancer(httpPort, backends);
});

afterAll(async () => {
  await balancer?.close();
  await cas?.stopAll();
});

const newOrders = () => cas.pebbles.ca.requestLog().filter((line) => line.route.includes('order-plz')).length;

async function filesBelow(directory: string): Promise<string[]> {
  return (await readdir(directory, { recursive: true })).map((entry) => path.join(directory, entry));
}

/** One instance that manages every name and renews each certificate as soon as it has one, killed at random. */
async function runAndKill(storage: string, random: () => number): Promise<number> {
  const { ca } = cas.pebbles;
  const instance = await startInstance(
    {
      storage: { directory: storage },
      directoryUrl: ca.directoryUrl,
      caPem: ca.caPem,
      retryIntervalsMs: [200],
      locks: { leaseMs: 600, pollMs: 50 },
      // Every certificate is due at once: renewals write records all the time.
      renewal: { windowRatio: 0.9999, checkIntervalMs: 100 },
    },
    'killed-instance',
  );
  backends.push(instance.httpPort);
  try {
    void instance.manage(NAMES).catch(() => {});
    await delay(150 + random() * 1_200);
    process.kill(instance.process.pid, 'SIGKILL');
    await instance.process.exited;
    // What this kill left (the other instance may remove it at its next start).
    return (await filesBelow(storage)).filter((file) => file.endsWith('.tmp')).length;
  } finally {
    backends.splice(backends.indexOf(instance.httpPort), 1);
  }
}

describe('a file store under SIGKILLs', () => {
  it('keeps every record whole, loads them all without an order, and leaves no temp file after a start', async () => {
    const storage = await tempDir();
    let seed = 7;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    let tempFilesSeenAfterKills = 0;
    await Promise.all(
      Array.from({ length: PARALLEL }, async () => {
        for (let kill = 0; kill < KILLS / PARALLEL; kill++) {
          tempFilesSeenAfterKills += await runAndKill(storage, random);
        }
      }),
    );
    const ordersAfterKills = newOrders();
    const files = await filesBelow(storage);
    const tempFilesLeft = files.filter((file) => path.basename(file).endsWith('.tmp'));

    const certificates = path.join(storage, 'autotls', 'certificates');
    const records = (await filesBelow(certificates).catch(() => [])).filter(
      (file) => !path.basename(file).startsWith('.') && !files.includes(`${file}/`),
    );
    const stored: string[] = [];
    for (const file of records) {
      const text = await readFile(file, 'utf8').catch(() => undefined);
      if (text === undefined) continue; // a folder
      const { value } = JSON.parse(text) as { value: { certificatePem: string; privateKeyPem: string } };
      const certificate = new X509Certificate(value.certificatePem);
      expect(certificate.checkPrivateKey(createPrivateKey(value.privateKeyPem))).toBe(true);
      stored.push(path.basename(file));
    }
    expect(stored.length).toBeGreaterThan(0);

    const { ca } = cas.pebbles;
    const fresh = new CertManager({
      issuers: [acme({ directoryUrl: ca.directoryUrl, ca: ca.caPem })],
      storage,
      logger: silentLogger,
    });
    try {
      await fresh.manage(stored);
      for (const name of stored) expect(fresh.getCertificate(name)).toBeDefined();
      expect(newOrders()).toBe(ordersAfterKills);
      await waitFor(
        async () => (await filesBelow(storage)).every((file) => !path.basename(file).endsWith('.tmp')),
        { timeoutMs: 3_000, description: 'no temp file left after a manager started' },
      );
    } finally {
      await fresh.close();
    }
    console.log(
      'file-store kills',
      JSON.stringify({
        kills: KILLS,
        orders: ordersAfterKills,
        records: stored.length,
        tempFilesSeenAfterKills,
        tempFilesLeft: tempFilesLeft.length,
      }),
    );
  });
});
