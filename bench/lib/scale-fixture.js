/**
 * @module bench/lib/scale-fixture — up to 100,000 stored certificates (file store or Redis), made fast. The internal issuer signs
 * about one leaf per 6 ms (pure-JS ASN.1), too slow for 10,000 in a benchmark; so it makes one template
 * leaf, and every other leaf is that template with its name, serial and public key swapped (same lengths,
 * so the DER structure holds) and re-signed by the same root with node:crypto. Records are written as the
 * manager writes them (`StoredCertificate` under `storageKeys.certificate`, Keyv envelope), with the shared
 * renewal schedule a previous run would have left.
 */
import {
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  randomBytes,
  sign,
  X509Certificate,
} from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import KeyvRedis from '@keyv/redis';
import { Keyv } from 'keyv';
import { internal, readCertificateInfo, Storage, silentLogger } from '../../packages/core/dist/index.js';
import { encodePathSegment } from '../../packages/core/dist/storage/file-store.js';
import { storageKeys } from '../../packages/core/dist/storage/keys.js';
import { FileScheduleIndex } from '../../packages/core/dist/storage/schedule-file.js';
import { openScheduleIndex } from '../../packages/core/dist/storage/schedule-for-storage.js';

/** Long enough that no renewal is due while the bench runs (renewal starts with a third left). */
const LEAF_LIFETIME_MS = 90 * 24 * 60 * 60_000;
/** Parallel file writes while seeding. */
const WRITE_CONCURRENCY = 64;
/**
 * Leaf keys are drawn from a pool: generating and PEM-encoding a key costs more than everything else here,
 * and the manager parses each record's key on its own anyway (one key object per cached certificate).
 */
const KEY_POOL_SIZE = 256;

export { scaleNames } from './scale-names.js';

/** Names made and written per round: bounds the parent's memory at 100,000 names. */
const SEED_CHUNK = 2_000;

/**
 * Writes a usable certificate for each name into the store, and each name's renewal time into the shared
 * renewal schedule beside it, as a previous run of the manager would have left them (`schedule: false`
 * leaves the schedule out: a first start, or an older version's records). `target` is `{ directory }`
 * for the file store or `{ redisUrl }` for Redis. Returns phase timings (ms).
 */
export async function seedStore(target, names, { schedule = true } = {}) {
  const startMs = performance.now();
  const issuer = internal({ leafLifetimeMs: LEAF_LIFETIME_MS });
  const memory = new Storage(new Keyv());
  const context = { storage: memory, logger: silentLogger, clock: { now: () => Date.now() } };
  const templateName = 's000000.scale.bench.test';
  const template = await issuer.issue({ names: [templateName], keyType: 'ecdsa-p256' }, context);
  const root = await memory.get(storageKeys.localCA());
  const makeLeaf = leafFactory(template.certificatePem, templateName, createPrivateKey(root.privateKeyPem));
  const sink = target.redisUrl ? await redisSink(target.redisUrl) : fileSink(target.directory);
  const times = new Map();
  let signingMs = 0;
  let writingMs = 0;
  const obtainedAt = Date.now();
  try {
    for (let from = 0; from < names.length; from += SEED_CHUNK) {
      const signingStartMs = performance.now();
      const records = [];
      for (const name of names.slice(from, from + SEED_CHUNK)) {
        const { certificatePem, privateKeyPem } = makeLeaf(name);
        const info = readCertificateInfo(certificatePem); // as the manager writes it
        const record = {
          certificatePem,
          privateKeyPem,
          issuerKey: issuer.key,
          ca: 'internal',
          obtainedAt,
          info,
        };
        records.push([storageKeys.certificate(issuer.key, name), record]);
        const lifetimeMs = info.notAfter - info.notBefore;
        times.set(name, { atMs: info.notAfter - lifetimeMs / 3, serial: info.serialNumber });
      }
      if (from === 0) {
        const check = new X509Certificate(records[0][1].certificatePem);
        if (!check.verify(createPublicKey(root.privateKeyPem)))
          throw new Error('scale fixture: a patched leaf does not verify');
      }
      const writingStartMs = performance.now();
      signingMs += writingStartMs - signingStartMs;
      await sink.write(records);
      writingMs += performance.now() - writingStartMs;
    }
    const scheduleStartMs = performance.now();
    if (schedule) await sink.writeSchedule(times);
    writingMs += performance.now() - scheduleStartMs;
  } finally {
    await sink.close();
  }
  return { templateMs: 0, signingMs, writingMs, totalMs: performance.now() - startMs };
}

/** Records as the default file store writes them: Keyv's envelope, one file per key. */
function fileSink(directory) {
  const envelopes = new Map();
  const keyv = new Keyv({ store: envelopes, namespace: 'autotls' });
  const folders = new Set();
  return {
    async write(records) {
      envelopes.clear();
      for (const [key, record] of records) await keyv.set(key, record);
      const files = [...envelopes].map(([key, value]) => {
        const segments = key
          .replace(/^autotls:/, '')
          .split('/')
          .map(encodePathSegment);
        return [path.join(directory, encodePathSegment('autotls'), ...segments), value];
      });
      for (const folder of new Set(files.map(([file]) => path.dirname(file)))) {
        if (folders.has(folder)) continue;
        await mkdir(folder, { recursive: true, mode: 0o700 });
        folders.add(folder);
      }
      let next = 0;
      const writer = async () => {
        while (next < files.length) {
          const [file, value] = files[next++];
          await writeFile(file, value, { mode: 0o600 });
        }
      };
      await Promise.all(Array.from({ length: WRITE_CONCURRENCY }, writer));
    },
    writeSchedule: (times) => new FileScheduleIndex(directory).write(times),
    async close() {},
  };
}

/** Records through Keyv on @keyv/redis, namespace `autotls`, as a manager on that Keyv writes them. */
async function redisSink(url) {
  const keyv = new Keyv({ store: new KeyvRedis(url), namespace: 'autotls' });
  return {
    write: (records) => keyv.setMany(records.map(([key, value]) => ({ key, value }))),
    async writeSchedule(times) {
      const index = openScheduleIndex(new Storage(keyv));
      await index.write(times);
      await index.close();
    },
    close: () => keyv.disconnect(),
  };
}

/** Certificate = SEQUENCE { tbsCertificate, signatureAlgorithm, signatureValue BIT STRING }. */
function leafFactory(templatePem, templateName, rootKey) {
  const der = Buffer.from(templatePem.replace(/-----[^-]+-----|\s/g, ''), 'base64');
  const certificate = readTlv(der, 0);
  const tbs = readTlv(der, certificate.contentStart);
  const signatureAlgorithm = readTlv(der, tbs.end);
  const tbsBytes = der.subarray(tbs.start, tbs.end);
  // tbsCertificate = SEQUENCE { [0] version, serialNumber INTEGER, ... }
  const version = readTlv(der, tbs.contentStart);
  const serial = readTlv(der, version.end);
  const serialOffset = serial.contentStart - tbs.start;
  const serialLength = serial.end - serial.contentStart;
  const templateKey = new X509Certificate(der).publicKey.export({ type: 'spki', format: 'der' });
  const templatePoint = templateKey.subarray(templateKey.length - 65);
  const nameOffsets = offsetsOf(tbsBytes, Buffer.from(templateName));
  const pointOffset = tbsBytes.indexOf(templatePoint);
  if (nameOffsets.length === 0 || pointOffset < 0)
    throw new Error('scale fixture: template leaf has an unexpected layout');
  const algorithmBytes = der.subarray(signatureAlgorithm.start, signatureAlgorithm.end);
  const keys = Array.from({ length: KEY_POOL_SIZE }, () => {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    return {
      point: publicKey.export({ type: 'spki', format: 'der' }).subarray(-65),
      privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }),
    };
  });
  let leaves = 0;

  return (name) => {
    if (name.length !== templateName.length)
      throw new Error(`scale fixture: ${name} must be ${templateName.length} characters`);
    const { point, privateKeyPem } = keys[leaves++ % keys.length];
    const patched = Buffer.from(tbsBytes);
    for (const offset of nameOffsets) patched.write(name, offset, 'latin1');
    point.copy(patched, pointOffset);
    const serialBytes = randomBytes(serialLength);
    serialBytes[0] = (serialBytes[0] & 0x7f) | 0x01; // positive, and no leading zero byte needed
    serialBytes.copy(patched, serialOffset);
    const signature = sign('sha256', patched, rootKey);
    const body = Buffer.concat([
      patched,
      algorithmBytes,
      tlv(0x03, Buffer.concat([Buffer.from([0]), signature])),
    ]);
    const leafDer = tlv(0x30, body);
    const base64 = leafDer.toString('base64').replace(/.{64}/g, '$&\n');
    return {
      certificatePem: `-----BEGIN CERTIFICATE-----\n${base64}${base64.endsWith('\n') ? '' : '\n'}-----END CERTIFICATE-----\n`,
      privateKeyPem,
    };
  };
}

function readTlv(buffer, start) {
  let offset = start + 1;
  let length = buffer[offset++];
  if (length & 0x80) {
    const bytes = length & 0x7f;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + buffer[offset++];
  }
  return { start, contentStart: offset, end: offset + length };
}

function tlv(tag, content) {
  const length = content.length;
  const header =
    length < 0x80
      ? Buffer.from([tag, length])
      : length < 0x100
        ? Buffer.from([tag, 0x81, length])
        : Buffer.from([tag, 0x82, length >> 8, length & 0xff]);
  return Buffer.concat([header, content]);
}

function offsetsOf(haystack, needle) {
  const offsets = [];
  for (let at = haystack.indexOf(needle); at !== -1; at = haystack.indexOf(needle, at + 1)) offsets.push(at);
  return offsets;
}
