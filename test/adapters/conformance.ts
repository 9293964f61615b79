/** @module test/adapters/conformance — one suite that every framework adapter runs by passing a factory. */
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import { acme, type CertManager, type CertManagerOptions, createManager, ListenError } from '@autotls/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HttpResponse, httpRequest } from '../support/http.js';
import { captureLogger } from '../support/logs.js';
import { type ChallTestSrv, type Pebble, startChallTestSrv, startPebble } from '../support/pebble.js';
import { freePorts } from '../support/ports.js';
import { delay, waitFor } from '../support/processes.js';
import { handshake, resolverFor, tempDir } from '../support/servers.js';

/** What the app under test sees of a request that reached it. */
export interface AppRequest {
  method: string;
  url: string;
  /** The framework's own idea of it (`req.secure`, `ctx.secure`, `request.protocol === 'https'`). */
  secure: boolean;
}

export interface AppResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface AdapterSetup {
  /** Options for the adapter: a manager's options plus `redirect`, or an existing `manager` (left open). */
  options: CertManagerOptions & { redirect?: boolean; manager?: CertManager };
  /** Plain-HTTP port to listen on (where Pebble validates HTTP-01). */
  httpPort: number;
  /** HTTPS port to listen on: 0 (any free port), or where Pebble validates TLS-ALPN-01. */
  httpsPort: number;
  host: string;
  /** The app: install it as a catch-all route/middleware in the framework's own idiom. */
  app: (request: AppRequest) => AppResponse;
}

export interface RunningAdapter {
  httpPort: number;
  httpsPort: number;
  manager: CertManager;
  /** Closes the servers, and the manager unless it was given in `options.manager`. */
  close(): Promise<void>;
}

/** Builds an app with the adapter, starts it as a user would, and resolves once it serves both ports. */
export type AdapterFactory = (setup: AdapterSetup) => Promise<RunningAdapter>;

const APP = 'app.example.test';
const ISSUED = 'issued.example.test';
const PENDING = 'pending.example.test';
const ALPN = 'alpn.example.test';
const MANAGER_FORM = 'manager-form.example.test';
const CHALLENGE = '/.well-known/acme-challenge/';

/** Every request that reaches the app gets this: a status, header and body no adapter would make up. */
function appAnswer(request: AppRequest): AppResponse {
  return {
    status: 203,
    headers: { 'content-type': 'text/plain; charset=utf-8', 'x-app': 'conformance' },
    body: `app: ${request.method} ${request.url} secure=${request.secure}`,
  };
}

interface SendOptions {
  port: number;
  secure?: boolean;
  method?: string;
  path?: string;
  /** Host header (default the app's name). */
  host?: string;
  /** TLS server name (default the app's name, whatever the Host header says). */
  servername?: string;
  ca?: string;
  agent?: http.Agent;
}

/** One request to 127.0.0.1 with a chosen Host header and raw path (sent as is, no normalisation). */
function send(options: SendOptions): Promise<HttpResponse> {
  return httpRequest(`${options.secure ? 'https' : 'http'}://127.0.0.1:${options.port}/`, {
    method: options.method ?? 'GET',
    rawPath: options.path ?? '/',
    headers: { host: options.host ?? APP },
    servername: options.servername ?? APP,
    ca: options.ca,
    agent: options.agent,
  });
}

/** Counts of `process.getActiveResourcesInfo()` by type (vitest's own handles and timers included). */
function activeResources(): Map<string, number> {
  const counts = new Map<string, number>();
  for (const type of process.getActiveResourcesInfo()) counts.set(type, (counts.get(type) ?? 0) + 1);
  return counts;
}

/** Resource types that have more entries now than in `before`, e.g. ['TCPServerWrap +1']. */
function leakedSince(before: Map<string, number>): string[] {
  const leaked: string[] = [];
  for (const [type, count] of activeResources()) {
    const extra = count - (before.get(type) ?? 0);
    if (extra > 0) leaked.push(`${type} +${extra}`);
  }
  return leaked;
}

async function expectNothingLeftOpen(before: Map<string, number>): Promise<void> {
  // Handles close on the next turns of the event loop; give them a moment, then look.
  await waitFor(() => leakedSince(before).length === 0, { timeoutMs: 2000 }).catch(() => {});
  expect(leakedSince(before)).toEqual([]);
}

const whenClosed = (socket: net.Socket) =>
  new Promise<void>((resolve) => (socket.destroyed ? resolve() : socket.once('close', () => resolve())));

/**
 * The adapter contract, run against a real Pebble: challenge answered through the framework, the app
 * untouched, redirect on and off, HTTPS with the managed certificate, hostile requests, clean shutdown.
 * @example
 * runAdapterConformance('express', async ({ options, httpPort, host, app }) => { ... });
 */
export function runAdapterConformance(name: string, factory: AdapterFactory): void {
  describe(`the ${name} adapter (conformance)`, () => {
    let dns: ChallTestSrv;
    let pebble: Pebble;
    let httpPort: number;
    let tlsPort: number;
    let storage: string;
    let rootPem: string;
    const appRequests: AppRequest[] = [];
    const app = (request: AppRequest) => {
      appRequests.push(request);
      return appAnswer(request);
    };

    const start = (
      options: AdapterSetup['options'] = {},
      ports: { httpPort?: number; httpsPort?: number } = {},
    ) =>
      factory({
        options: {
          storage,
          issuers: [acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem })],
          logger: captureLogger(),
          ...options,
        },
        httpPort: ports.httpPort ?? httpPort,
        httpsPort: ports.httpsPort ?? 0,
        host: '127.0.0.1',
        app,
      });

    /** Puts a challenge in storage the way core's HTTP-01 solver does, so any instance can answer it. */
    const presentChallenge = async (manager: CertManager, identifier = APP) => {
      const token = randomBytes(32).toString('base64url');
      const keyAuthorization = `${token}.${randomBytes(32).toString('base64url')}`;
      await manager.storage.set(`challenges/${token}`, { identifier, keyAuthorization });
      return { token, keyAuthorization };
    };

    beforeAll(async () => {
      dns = await startChallTestSrv();
      [httpPort, tlsPort] = (await freePorts(2)) as [number, number];
      pebble = await startPebble({ dnsServer: dns.dnsAddress, httpPort, tlsPort });
      rootPem = await pebble.rootPem();
      storage = await tempDir('autotls-adapters-');
      // One certificate from Pebble for the app's name, stored; every later start loads it from storage.
      const running = await start({ domains: [APP] });
      try {
        await running.manager.ready([APP]);
      } finally {
        await running.close();
      }
    });

    afterAll(async () => {
      await pebble?.stop();
      await dns?.stop();
    });

    it('obtains a certificate from a real ACME CA through the framework and serves it over HTTPS', async () => {
      const logger = captureLogger();
      const running = await start({ domains: [ISSUED], logger });
      try {
        await running.manager.ready([ISSUED]);
        const { authorized, error, cert } = await handshake(running.httpsPort, ISSUED, rootPem);
        expect(error).toBeUndefined();
        expect(authorized).toBe(true);
        expect(cert.subjectaltname).toBe(`DNS:${ISSUED}`);
        expect(logger.find('served key authentication')[0]).toMatchObject({
          identifier: ISSUED,
          distributed: false,
        });
      } finally {
        await running.close();
      }
    });

    it('obtains and serves the domains given only to an existing manager (the documented manager form)', async () => {
      const manager = createManager({
        domains: [MANAGER_FORM],
        storage,
        issuers: [acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem })],
        logger: captureLogger(),
      });
      try {
        const running = await start({ manager });
        try {
          expect(running.manager).toBe(manager);
          await manager.ready([MANAGER_FORM]);
          const { authorized, cert } = await handshake(running.httpsPort, MANAGER_FORM, rootPem);
          expect(authorized).toBe(true);
          expect(cert.subjectaltname).toBe(`DNS:${MANAGER_FORM}`);
        } finally {
          await running.close();
        }
      } finally {
        await manager.close();
      }
    });

    it("answers TLS-ALPN-01 on the framework's HTTPS port and serves the certificate there", async () => {
      const logger = captureLogger();
      const issuers = [
        acme({ directoryUrl: pebble.directoryUrl, ca: pebble.caPem, challenges: ['tls-alpn-01'] }),
      ];
      // One attempt (no retry schedule): an adapter that does not wire TLS-ALPN-01 fails here, not at the timeout.
      const retry = { maxDurationMs: 1 };
      const running = await start({ domains: [ALPN], issuers, logger, retry }, { httpsPort: tlsPort });
      try {
        await running.manager.ready([ALPN]);
        expect(logger.find('served key authentication certificate')[0]).toMatchObject({
          identifier: ALPN,
          challenge: 'tls-alpn-01',
        });
        const { authorized, cert } = await handshake(running.httpsPort, ALPN, rootPem);
        expect(authorized).toBe(true);
        expect(cert.subjectaltname).toBe(`DNS:${ALPN}`);
        const response = await send({
          port: running.httpsPort,
          secure: true,
          ca: rootPem,
          path: '/after',
          host: ALPN,
          servername: ALPN,
        });
        expect(response.body).toBe(appAnswer({ method: 'GET', url: '/after', secure: true }).body);
      } finally {
        await running.close();
      }
    });

    it('answers an HTTP-01 challenge with the key authorization, on the plain-HTTP port and over HTTPS', async () => {
      const running = await start({ domains: [APP] });
      try {
        await running.manager.ready([APP]);
        const { token, keyAuthorization } = await presentChallenge(running.manager);
        const path = `${CHALLENGE}${token}`;
        const seenBefore = appRequests.length;
        for (const host of [APP, `${APP}:80`, APP.toUpperCase()]) {
          const plain = await send({ port: running.httpPort, path, host });
          expect({ status: plain.status, body: plain.body }).toEqual({ status: 200, body: keyAuthorization });
          expect(plain.headers['content-type']).toMatch(/^text\/plain/);
        }
        const head = await send({ port: running.httpPort, method: 'HEAD', path });
        expect({ status: head.status, body: head.body }).toEqual({ status: 200, body: '' });
        // CAs follow redirects to HTTPS, so the HTTPS side answers too.
        const secure = await send({ port: running.httpsPort, secure: true, ca: rootPem, path });
        expect({ status: secure.status, body: secure.body }).toEqual({ status: 200, body: keyAuthorization });
        expect(appRequests.length).toBe(seenBefore);
      } finally {
        await running.close();
      }
    });

    it('passes every other request over HTTPS to the app untouched', async () => {
      const running = await start({ domains: [APP] });
      try {
        await running.manager.ready([APP]);
        const { token } = await presentChallenge(running.manager);
        const cases = [
          ['GET', '/hello?x=1&y=%20'],
          ['POST', '/form'],
          ['DELETE', '/items/7'],
          ['POST', `${CHALLENGE}${token}`],
          ['GET', '/.well-known/acme-challengeX/abc'],
          ['GET', '/.well-known/other'],
        ] as const;
        for (const [method, path] of cases) {
          const response = await send({ port: running.httpsPort, secure: true, ca: rootPem, method, path });
          const expected = appAnswer({ method, url: path, secure: true });
          expect({ status: response.status, body: response.body }).toEqual({
            status: expected.status,
            body: expected.body,
          });
          expect(response.headers['x-app']).toBe('conformance');
          expect(response.headers['content-type']).toBe('text/plain; charset=utf-8');
        }
      } finally {
        await running.close();
      }
    });

    it('redirects plain HTTP to HTTPS with a 308 that keeps the host, the HTTPS port and the path', async () => {
      const running = await start({ domains: [APP] });
      try {
        const seenBefore = appRequests.length;
        const target = (path: string, host = APP) => `https://${host}:${running.httpsPort}${path}`;
        for (const [method, path, host] of [
          ['GET', '/some/path?q=1&r=%2F', APP],
          ['POST', '/form', APP],
          ['HEAD', '/', `${APP}:8080`],
          ['GET', '/unknown/route', APP],
        ] as const) {
          const response = await send({ port: running.httpPort, method, path, host });
          expect(response.status).toBe(308);
          expect(response.headers.location).toBe(target(path, APP));
        }
        const ipv6 = await send({ port: running.httpPort, path: '/x', host: '[::1]:80' });
        expect(ipv6.headers.location).toBe(`https://[::1]:${running.httpsPort}/x`);
        expect(appRequests.length).toBe(seenBefore);
      } finally {
        await running.close();
      }
    });

    it('with redirect: false, lets the app answer plain HTTP and still answers challenges there', async () => {
      const running = await start({ domains: [APP], redirect: false });
      try {
        const response = await send({ port: running.httpPort, path: '/hello?x=1' });
        const expected = appAnswer({ method: 'GET', url: '/hello?x=1', secure: false });
        expect({ status: response.status, body: response.body }).toEqual({
          status: expected.status,
          body: expected.body,
        });
        expect(response.headers['x-app']).toBe('conformance');
        const { token, keyAuthorization } = await presentChallenge(running.manager);
        const challenge = await send({ port: running.httpPort, path: `${CHALLENGE}${token}` });
        expect({ status: challenge.status, body: challenge.body }).toEqual({
          status: 200,
          body: keyAuthorization,
        });
      } finally {
        await running.close();
      }
    });

    for (const redirect of [true, false]) {
      it(`never leaks a key authorization, errors or crashes on hostile challenge requests (redirect: ${redirect})`, async () => {
        const running = await start({ domains: [APP], redirect });
        try {
          await running.manager.ready([APP]);
          const { token, keyAuthorization } = await presentChallenge(running.manager);
          const hostile: Array<{ method?: string; path: string; host?: string }> = [
            { path: `${CHALLENGE}${randomBytes(32).toString('base64url')}` },
            { path: `${CHALLENGE}${token}`, host: 'other.example.test' },
            { path: `${CHALLENGE}${token}`, host: `${APP}.evil.test` },
            { path: `${CHALLENGE}${token}`, host: `evil.test@${APP}` },
            { path: `${CHALLENGE}${token}`, host: `${APP}:abc` },
            { path: `${CHALLENGE}${token}`, host: '' },
            { path: `${CHALLENGE}../acme-challenge/${token}` },
            { path: `${CHALLENGE}..%2Facme-challenge%2F${token}` },
            { path: `${CHALLENGE}%2e%2e/%2e%2e/challenges/${token}` },
            {
              path: `${CHALLENGE}${encodeURIComponent(token).replace(/^./, (c) => `%${c.charCodeAt(0).toString(16)}`)}`,
            },
            { path: `${CHALLENGE}${token}%00` },
            { path: `${CHALLENGE}${token}/` },
            { path: `${CHALLENGE}${token}/..` },
            { path: `${CHALLENGE}` },
            { path: `${CHALLENGE}${'a'.repeat(4096)}` },
            { path: `${CHALLENGE}%` },
            { path: `/.WELL-KNOWN/ACME-CHALLENGE/${token}` },
            { method: 'POST', path: `${CHALLENGE}${token}` },
            { method: 'PUT', path: `${CHALLENGE}${token}` },
            { method: 'DELETE', path: `${CHALLENGE}${token}` },
            { method: 'OPTIONS', path: `${CHALLENGE}${token}` },
          ];
          for (const target of [
            { port: running.httpPort },
            { port: running.httpsPort, secure: true, ca: rootPem },
          ]) {
            for (const request of hostile) {
              const response = await send({ ...target, ...request });
              const label = `${request.method ?? 'GET'} ${request.path.slice(0, 80)} Host: ${request.host ?? APP}`;
              expect(response.status, label).toBeLessThan(500);
              expect(response.body, label).not.toContain(keyAuthorization);
              expect(response.status === 200 && response.body === keyAuthorization, label).toBe(false);
            }
          }
          // Garbage that is not HTTP at all: the server drops it and keeps serving.
          await new Promise<void>((resolve) => {
            const socket = net.connect(running.httpPort, '127.0.0.1', () =>
              socket.end('\u0000\u00ff GARBAGE\r\n\r\n'),
            );
            socket.on('error', () => {}).on('close', () => resolve());
            socket.resume();
          });
          const still = await send({ port: running.httpPort, path: `${CHALLENGE}${token}` });
          expect({ status: still.status, body: still.body }).toEqual({ status: 200, body: keyAuthorization });
        } finally {
          await running.close();
        }
      });
    }

    it('leaves no servers, sockets or timers behind after close(), even with open connections', async () => {
      const before = activeResources();
      // PENDING's CA lookups fail, so its obtain is waiting to retry (a timer) when close() comes.
      await dns.setServFail(PENDING);
      const retry = { intervalsMs: [60_000], dnsRecheckMs: 60_000 };
      const running = await start({ domains: [APP, PENDING], retry, resolver: resolverFor(dns.dnsAddress) });
      await running.manager.ready([APP]);
      await once(running.manager, 'cert_failed');
      const httpAgent = new http.Agent({ keepAlive: true });
      const httpsAgent = new https.Agent({ keepAlive: true });
      await send({ port: running.httpPort, path: '/', agent: httpAgent });
      await send({ port: running.httpsPort, secure: true, ca: rootPem, path: '/', agent: httpsAgent });
      // A client that sends half a request and waits: close() must not wait for it.
      const slow = net.connect(running.httpPort, '127.0.0.1');
      await new Promise((resolve) => slow.once('connect', resolve));
      slow.write(`GET / HTTP/1.1\r\nHost: ${APP}\r\n`);
      slow.on('error', () => {});
      // And one that connects to the HTTPS port and never starts the TLS handshake.
      const silent = net.connect(running.httpsPort, '127.0.0.1');
      await new Promise((resolve) => silent.once('connect', resolve));
      silent.on('error', () => {});
      const idle = [...Object.values(httpAgent.freeSockets), ...Object.values(httpsAgent.freeSockets)].flat();
      expect(idle.length).toBe(2);
      try {
        // Bounded, so a close() that waits on a client fails here instead of at the test timeout.
        const clientSockets = [slow, silent, ...idle].map((socket) => whenClosed(socket as net.Socket));
        const finished = running.close().then(() => Promise.all(clientSockets));
        const inTime = await Promise.race([finished.then(() => true), delay(5000).then(() => false)]);
        expect(inTime, 'close() resolved and ended every open client connection within 5 s').toBe(true);
      } finally {
        slow.destroy();
        silent.destroy();
        httpAgent.destroy();
        httpsAgent.destroy();
      }
      await expectNothingLeftOpen(before);
    });

    it('refuses to start with a one-line error naming a taken plain-HTTP port, leaving nothing open', async () => {
      const busy = net.createServer();
      await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
      const busyPort = (busy.address() as net.AddressInfo).port;
      const before = activeResources();
      try {
        const error = await start({ domains: [APP] }, { httpPort: busyPort }).then(
          async (running) => {
            await running.close();
            return undefined;
          },
          (reason: unknown) => reason,
        );
        expect(error).toBeInstanceOf(ListenError);
        expect((error as ListenError).port).toBe(busyPort);
        expect((error as ListenError).code).toBe('EADDRINUSE');
        expect((error as Error).message).not.toContain('\n');
        await expectNothingLeftOpen(before);
      } finally {
        await new Promise((resolve) => busy.close(resolve));
      }
    });
  });
}
