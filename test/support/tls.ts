/** @module test/support/tls — a throwaway test CA and a 127.0.0.1/::1/localhost server certificate (via openssl). */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { commandExists, makeTempDir } from './processes.js';

const run = promisify(execFile);

export interface TestTls {
  /** Trust anchor for every harness HTTPS endpoint (Pebble's ACME and management APIs, the fault proxy). */
  caPem: string;
  caPath: string;
  /** Leaf for DNS:localhost, IP:127.0.0.1, IP:::1 (ECDSA P-256, valid 7 days), signed by the CA. */
  certPem: string;
  certPath: string;
  keyPem: string;
  keyPath: string;
  dir: string;
}

const opensslConfig = `
[req]
distinguished_name = dn
prompt = no

[dn]
CN = localhost

[v3_ca]
basicConstraints = critical, CA:TRUE, pathlen:0
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash

[v3_server]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = serverAuth
subjectAltName = DNS:localhost, IP:127.0.0.1, IP:::1
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

async function openssl(dir: string, args: string[]): Promise<void> {
  try {
    await run('openssl', args, { cwd: dir });
  } catch (error) {
    const { stderr } = error as { stderr?: string };
    throw new Error(`openssl ${args.join(' ')} failed: ${stderr ?? String(error)}`);
  }
}

async function generate(): Promise<TestTls> {
  if (!commandExists('openssl')) throw new Error('openssl is not installed: apt-get install openssl');
  const dir = makeTempDir('autotls-test-tls-');
  await writeFile(join(dir, 'openssl.cnf'), opensslConfig);
  const words = (text: string) => text.split(' ');
  const ec = words('-algorithm EC -pkeyopt ec_paramgen_curve:P-256');
  await Promise.all([
    openssl(dir, ['genpkey', ...ec, '-out', 'ca.key']),
    openssl(dir, ['genpkey', ...ec, '-out', 'server.key']),
  ]);
  const caName = `/CN=autotls test CA ${randomBytes(3).toString('hex')}`;
  await Promise.all([
    openssl(dir, [
      ...words(
        'req -x509 -new -key ca.key -config openssl.cnf -extensions v3_ca -days 7 -sha256 -out ca.pem',
      ),
      '-subj',
      caName,
    ]),
    openssl(dir, words('req -new -key server.key -config openssl.cnf -out server.csr')),
  ]);
  await openssl(dir, [
    ...words('x509 -req -in server.csr -CA ca.pem -CAkey ca.key -days 7 -sha256 -out server.pem'),
    ...words('-extfile openssl.cnf -extensions v3_server -set_serial'),
    `0x${randomBytes(8).toString('hex')}`,
  ]);
  const caPath = join(dir, 'ca.pem');
  const certPath = join(dir, 'server.pem');
  const keyPath = join(dir, 'server.key');
  const [caPem, certPem, keyPem] = await Promise.all([
    readFile(caPath, 'utf8'),
    readFile(certPath, 'utf8'),
    readFile(keyPath, 'utf8'),
  ]);
  return { caPem, caPath, certPem, certPath, keyPem, keyPath, dir };
}

const cacheKey = Symbol.for('autotls.test.support.tls');
const cache = globalThis as unknown as Record<symbol, Promise<TestTls> | undefined>;

/** The process-wide test CA and server certificate, generated on first use (~50 ms) and then cached. */
export function testTls(): Promise<TestTls> {
  let pending = cache[cacheKey];
  if (pending === undefined) {
    pending = generate();
    // Don't cache a failure.
    pending.catch(() => {
      cache[cacheKey] = undefined;
    });
    cache[cacheKey] = pending;
  }
  return pending;
}
