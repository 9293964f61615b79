/** @module test/harness.test — the real-parts harness itself: challtestsrv, Pebble, Redis, the fault proxy. */
import { X509Certificate } from 'node:crypto';
import { Resolver } from 'node:dns/promises';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type ChallTestSrv,
  type FaultProxy,
  freePort,
  httpRequest,
  isPidAlive,
  type Pebble,
  type Redis,
  randomEabKey,
  startChallTestSrv,
  startFaultProxy,
  startPebble,
  startRedis,
  stopAllProcesses,
  testTls,
} from './support/index.js';

function rawPing(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let reply = '';
    socket.setTimeout(2000, () => socket.destroy(new Error('PING timed out')));
    socket.on('error', reject);
    socket.on('connect', () => socket.write('PING\r\n'));
    socket.on('data', (chunk) => {
      reply += chunk.toString('utf8');
      if (reply.endsWith('\r\n')) {
        socket.end();
        resolve(reply);
      }
    });
  });
}

const directoryOf = async (url: string, ca: string) => {
  const response = await httpRequest(url, { ca });
  expect(response.status).toBe(200);
  return JSON.parse(response.body) as Record<string, unknown> & {
    meta?: { externalAccountRequired?: boolean };
  };
};

describe('real-parts harness', () => {
  let dns: ChallTestSrv;
  let production: Pebble;
  let zerossl: Pebble;
  let redis: Redis;
  let proxy: FaultProxy;
  let resolver: Resolver;
  const pids: number[] = [];
  const eabKey = randomEabKey();

  beforeAll(async () => {
    dns = await startChallTestSrv();
    pids.push(dns.pid);
    resolver = new Resolver({ timeout: 1000, tries: 1 });
    resolver.setServers([dns.dnsAddress]);
    const httpPort = await freePort();
    [production, zerossl] = await Promise.all([
      startPebble({
        name: 'production',
        dnsServer: dns.dnsAddress,
        httpPort,
        certificateValidityPeriodSeconds: 600,
      }),
      startPebble({ name: 'zerossl', dnsServer: dns.dnsAddress, httpPort, eab: { 'kid-1': eabKey } }),
    ]);
    pids.push(production.pid, zerossl.pid);
    redis = await startRedis();
    pids.push(redis.pid);
    const tls = await testTls();
    proxy = await startFaultProxy({
      target: production.origin,
      caPem: production.caPem,
      certPem: tls.certPem,
      keyPem: tls.keyPem,
    });
  });

  afterAll(async () => {
    await proxy?.stop();
    await stopAllProcesses();
  });

  it('serves two Pebble directories, one requiring EAB', async () => {
    const plain = await directoryOf(production.directoryUrl, production.caPem);
    const eab = await directoryOf(zerossl.directoryUrl, zerossl.caPem);
    expect(plain.newAccount).toBe(`${production.origin}/sign-me-up`);
    expect(plain.meta?.externalAccountRequired).toBe(false);
    expect(eab.meta?.externalAccountRequired).toBe(true);
    expect(zerossl.eab).toEqual({ 'kid-1': eabKey });
    expect(production.output()).toContain('Using certificate validity period of 600 seconds');
    expect(production.output()).toContain('Configured to reject 0% of good nonces');
    expect(production.output()).toContain('Disabling random VA sleeps');
    expect(production.requestLog()).toContainEqual({ method: 'GET', route: '/dir' });
  });

  it('fetches each Pebble’s own root and intermediate', async () => {
    const [root, intermediate, otherRoot] = await Promise.all([
      production.rootPem(),
      production.intermediatePem(),
      zerossl.rootPem(),
    ]);
    expect(root).toContain('-----BEGIN CERTIFICATE-----');
    expect(otherRoot).not.toBe(root);
    const rootCert = new X509Certificate(root);
    const intermediateCert = new X509Certificate(intermediate);
    expect(intermediateCert.verify(rootCert.publicKey)).toBe(true);
    expect(rootCert.subject).toMatch(/Pebble Root CA/);
  });

  it('mocks DNS through challtestsrv', async () => {
    await expect(resolver.resolve4('anything.example.test')).resolves.toEqual(['127.0.0.1']);
    await expect(resolver.resolve6('anything.example.test')).rejects.toMatchObject({ code: 'ENODATA' });

    await dns.addA('www.example.test', '127.0.0.9');
    await expect(resolver.resolve4('www.example.test')).resolves.toEqual(['127.0.0.9']);
    await dns.removeA('www.example.test');
    await expect(resolver.resolve4('www.example.test')).resolves.toEqual(['127.0.0.1']);

    await dns.setDefaultIPv4('');
    await expect(resolver.resolve4('www.example.test')).rejects.toMatchObject({ code: 'ENODATA' });
    await dns.setDefaultIPv4('127.0.0.1');

    await dns.addAAAA('v6.example.test', '::1');
    await expect(resolver.resolve6('v6.example.test')).resolves.toEqual(['::1']);
    await dns.removeAAAA('v6.example.test');

    await dns.addTxt('_acme-challenge.Example.test', 'digest-value');
    await expect(resolver.resolveTxt('_acme-challenge.example.test')).resolves.toEqual([['digest-value']]);
    await dns.clearTxt('_acme-challenge.example.test');
    await expect(resolver.resolveTxt('_acme-challenge.example.test')).rejects.toMatchObject({
      code: 'ENODATA',
    });
  });

  it('starts Redis and answers PING on a raw socket', async () => {
    expect(redis.url).toBe(`redis://127.0.0.1:${redis.port}`);
    await expect(rawPing(redis.port)).resolves.toBe('+PONG\r\n');
    await expect(redis.command('SET', 'k', 'v')).resolves.toBe('OK');
    await expect(redis.command('GET', 'k')).resolves.toBe('v');
    await redis.flushAll();
    await expect(redis.command('GET', 'k')).resolves.toBeNull();
  });

  it('proxies Pebble under the proxy’s own origin', async () => {
    const directory = await directoryOf(proxy.directoryUrl, proxy.caPem);
    expect(directory.newNonce).toBe(`${proxy.origin}/nonce-plz`);
    expect(JSON.stringify(directory)).not.toContain(production.origin);
    const nonce = await httpRequest(`${proxy.origin}/nonce-plz`, { method: 'HEAD', ca: proxy.caPem });
    expect(nonce.status).toBe(200);
    expect(nonce.headers['replay-nonce']).toMatch(/^[\w-]+$/);
    expect(nonce.headers.link).toBe(`<${proxy.origin}/dir>;rel="index"`);
    expect(proxy.log.at(-1)).toMatchObject({ method: 'HEAD', path: '/nonce-plz', status: 200 });
  });

  it('answers rateLimited problems with Retry-After for a number of requests', async () => {
    proxy.rateLimit({ retryAfterSeconds: 7, forRequests: 2 });
    const count = await proxy.requestsDuring(async () => {
      for (let i = 0; i < 2; i++) {
        const limited = await httpRequest(`${proxy.origin}/order-plz`, {
          method: 'POST',
          ca: proxy.caPem,
          body: '{}',
        });
        expect(limited.status).toBe(429);
        expect(limited.headers['retry-after']).toBe('7');
        expect(limited.headers['content-type']).toBe('application/problem+json');
        expect(limited.headers['replay-nonce']).toMatch(/^[\w-]+$/);
        expect(JSON.parse(limited.body)).toMatchObject({
          type: 'urn:ietf:params:acme:error:rateLimited',
          status: 429,
        });
      }
      const after = await httpRequest(proxy.directoryUrl, { ca: proxy.caPem });
      expect(after.status).toBe(200);
    });
    expect(count).toBe(3);
    expect(proxy.log.filter((entry) => entry.fault === 'rateLimited')).toHaveLength(2);
  });

  it('goes down and comes back', async () => {
    for (const mode of ['reset', 'refuse'] as const) {
      await proxy.down(mode);
      await expect(httpRequest(proxy.directoryUrl, { ca: proxy.caPem })).rejects.toThrow();
      await proxy.up();
      await expect(httpRequest(proxy.directoryUrl, { ca: proxy.caPem })).resolves.toMatchObject({
        status: 200,
      });
    }
    await proxy.down('hang');
    await expect(httpRequest(proxy.directoryUrl, { ca: proxy.caPem, timeoutMs: 300 })).rejects.toThrow(
      /timed out/,
    );
    await proxy.clear();
    await expect(httpRequest(proxy.directoryUrl, { ca: proxy.caPem })).resolves.toMatchObject({
      status: 200,
    });
  });

  it('restarts a Pebble on the same ports with a new root', async () => {
    const rootBefore = await production.rootPem();
    const pidBefore = production.pid;
    await production.stop();
    expect(isPidAlive(pidBefore)).toBe(false);
    await expect(httpRequest(proxy.directoryUrl, { ca: proxy.caPem })).resolves.toMatchObject({
      status: 502,
    });
    await production.restart();
    pids.push(production.pid);
    expect(production.pid).not.toBe(pidBefore);
    expect(await production.rootPem()).not.toBe(rootBefore);
    await expect(httpRequest(proxy.directoryUrl, { ca: proxy.caPem })).resolves.toMatchObject({
      status: 200,
    });
    expect(production.output()).toContain('--- pebble restarted ---');
  });

  it('stops everything and leaves no process behind', async () => {
    await proxy.stop();
    await Promise.all([production.stop(), zerossl.stop(), redis.stop(), dns.stop()]);
    expect(pids).toHaveLength(5);
    for (const pid of pids) expect(isPidAlive(pid), `pid ${pid}`).toBe(false);
    for (const pid of pids) expect(() => process.kill(pid, 0)).toThrow();
  });
});
