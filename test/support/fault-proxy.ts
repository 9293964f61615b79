/** @module test/support/fault-proxy — an HTTPS reverse proxy in front of Pebble that can rate-limit or go down. */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { freePort } from './ports.js';
import { forwardableHeaders, forwardUpstream, readBody, type UpstreamResponse } from './reverse-proxy.js';
import { testTls } from './tls.js';

export interface FaultProxyOptions {
  /** Upstream origin, e.g. pebble.origin ('https://127.0.0.1:14000'). */
  target: string;
  /** Trust anchor for the upstream; default: the harness CA (testTls().caPem), which Pebble uses. */
  caPem?: string;
  /** The proxy's own certificate and key; default: the harness server certificate (127.0.0.1/::1/localhost). */
  certPem?: string;
  keyPem?: string;
  /** Path of the directory on the upstream; default '/dir' (Pebble). */
  directoryPath?: string;
}

export type RequestMatcher = string | RegExp | ((request: { method: string; path: string }) => boolean);

export interface RateLimitOptions {
  /** Value of the Retry-After header (seconds). */
  retryAfterSeconds: number;
  /** Default 429. */
  status?: number;
  /** How many of the following (matching) requests get the error; default 'all' (until clear()). */
  forRequests?: number | 'all';
  /** Problem `detail`; default 'rate limited by the test fault proxy'. */
  detail?: string;
  /** Only requests matching this get the error (string = path prefix); default: every request. */
  match?: RequestMatcher;
}

/**
 * 'reset': new connections and requests on kept-alive connections are destroyed (ECONNRESET / socket hang up).
 * 'refuse': the listener is closed (ECONNREFUSED); up() listens again on the same port.
 * 'hang': requests are accepted and never answered (until up()/clear()/stop(), which destroy them).
 */
export type DownMode = 'reset' | 'refuse' | 'hang';

export interface ProxyLogEntry {
  /** Date.now() when the request arrived. */
  time: number;
  method: string;
  /** Path and query as requested. */
  path: string;
  /** Status sent to the client; 0 when the connection was destroyed or the request left hanging. */
  status: number;
  /** Set when the proxy answered instead of the upstream. */
  fault?: 'rateLimited' | 'reset' | 'hang' | 'upstreamError';
}

export interface FaultProxy {
  /** 'https://127.0.0.1:<port>' */
  readonly origin: string;
  /** origin + '/dir' */
  readonly directoryUrl: string;
  readonly port: number;
  readonly target: string;
  /** Trust anchor for the proxy's certificate. */
  readonly caPem: string;
  /** HTTP requests received (including faulted ones) since start or resetLog(). */
  readonly requests: number;
  /** TCP connections destroyed on arrival while down('reset'). */
  readonly droppedConnections: number;
  readonly log: readonly ProxyLogEntry[];
  /** From now on answer (matching) requests with an RFC 8555 rateLimited problem + Retry-After + Replay-Nonce. */
  rateLimit(options: RateLimitOptions): void;
  down(mode?: DownMode): Promise<void>;
  up(): Promise<void>;
  /** Remove every fault (rate limit and down state); the log and counters stay. */
  clear(): Promise<void>;
  /** Empty the log and zero the counters. */
  resetLog(): void;
  /** How many requests arrived while `fn` ran. */
  requestsDuring(fn: () => unknown): Promise<number>;
  stop(): Promise<void>;
}

function matchesRequest(matcher: RequestMatcher | undefined, method: string, path: string): boolean {
  if (matcher === undefined) return true;
  if (typeof matcher === 'string') return path.startsWith(matcher);
  if (matcher instanceof RegExp) return new RegExp(matcher.source, matcher.flags).test(path);
  return matcher({ method, path });
}

/**
 * Start the proxy on a free 127.0.0.1 port. The client's Host header is passed through unchanged: Pebble
 * builds every URL (directory, Location, Link, account kid) from the Host header and checks the JWS `url`
 * against it, so the upstream already speaks in the proxy's origin. Any remaining occurrence of the target
 * origin in JSON/text bodies and Location/Link headers is rewritten to the proxy origin as well.
 */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const tls = await testTls();
  const caPem = options.caPem ?? tls.caPem;
  const target = new URL(options.target);
  const targetOrigin = target.origin;
  const directoryPath = options.directoryPath ?? '/dir';
  const port = await freePort();
  const origin = `https://127.0.0.1:${port}`;
  const rewrite = (text: string) => text.split(targetOrigin).join(origin);

  let log: ProxyLogEntry[] = [];
  let requests = 0;
  let droppedConnections = 0;
  let downMode: DownMode | undefined;
  let limit: (RateLimitOptions & { remaining: number }) | undefined;
  let nonceUrl: string | undefined;
  const sockets = new Set<Socket>();
  const hanging = new Set<ServerResponse>();

  const upstream = (method: string, path: string, headers: OutgoingHttpHeaders, body?: Buffer) =>
    forwardUpstream(target, caPem, { method, path, headers, body });

  const freshNonce = async (host: string): Promise<string | undefined> => {
    try {
      if (nonceUrl === undefined) {
        const directory = await upstream('GET', directoryPath, { host });
        const parsed = JSON.parse(directory.body.toString('utf8')) as { newNonce?: string };
        if (parsed.newNonce === undefined) return undefined;
        const url = new URL(parsed.newNonce);
        nonceUrl = url.pathname + url.search;
      }
      const response = await upstream('HEAD', nonceUrl, { host });
      const nonce = response.headers['replay-nonce'];
      return typeof nonce === 'string' ? nonce : undefined;
    } catch {
      return undefined;
    }
  };

  const sendProblem = (
    res: ServerResponse,
    status: number,
    headers: OutgoingHttpHeaders,
    problem: object,
  ) => {
    const body = Buffer.from(JSON.stringify(problem));
    res.writeHead(status, {
      'content-type': 'application/problem+json',
      'content-length': body.length,
      'cache-control': 'no-store',
      ...headers,
    });
    res.end(body);
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const entry: ProxyLogEntry = { time: Date.now(), method, path, status: 0 };
    requests++;
    log.push(entry);
    res.on('finish', () => {
      entry.status = res.statusCode;
    });

    if (downMode === 'hang') {
      entry.fault = 'hang';
      hanging.add(res);
      return;
    }
    if (downMode !== undefined) {
      entry.fault = 'reset';
      req.socket.destroy();
      return;
    }

    const host = req.headers.host ?? `127.0.0.1:${port}`;
    const body = await readBody(req);

    if (limit !== undefined && matchesRequest(limit.match, method, path)) {
      const active = limit;
      if (active.remaining !== Number.POSITIVE_INFINITY) {
        active.remaining--;
        if (active.remaining <= 0) limit = undefined;
      }
      entry.fault = 'rateLimited';
      const status = active.status ?? 429;
      const nonce = await freshNonce(host);
      sendProblem(
        res,
        status,
        {
          'retry-after': String(active.retryAfterSeconds),
          link: `<${origin}${directoryPath}>;rel="index"`,
          ...(nonce === undefined ? {} : { 'replay-nonce': nonce }),
        },
        {
          type: 'urn:ietf:params:acme:error:rateLimited',
          detail: active.detail ?? 'rate limited by the test fault proxy',
          status,
        },
      );
      return;
    }

    const headers = forwardableHeaders(req.headers);
    headers.host = host;
    let response: UpstreamResponse;
    try {
      response = await upstream(method, path, headers, body.length > 0 ? body : undefined);
    } catch (error) {
      entry.fault = 'upstreamError';
      if (!res.destroyed) {
        sendProblem(
          res,
          502,
          {},
          {
            type: 'urn:ietf:params:acme:error:serverInternal',
            detail: `fault proxy: upstream unavailable (${(error as Error).message})`,
            status: 502,
          },
        );
      }
      return;
    }

    const out = forwardableHeaders(response.headers, ['content-length']);
    for (const name of ['location', 'link']) {
      const value = out[name];
      if (value === undefined) continue;
      // Typed per header by @types/node ('location' is string only); Link may repeat.
      (out as Record<string, string | string[]>)[name] = Array.isArray(value)
        ? value.map(rewrite)
        : rewrite(String(value));
    }
    let payload = response.body;
    if (/json|text/i.test(String(response.headers['content-type'] ?? ''))) {
      payload = Buffer.from(rewrite(payload.toString('utf8')));
    }
    if (method === 'HEAD') {
      if (response.headers['content-length'] !== undefined)
        out['content-length'] = response.headers['content-length'];
      res.writeHead(response.status, out);
      res.end();
    } else {
      out['content-length'] = payload.length;
      res.writeHead(response.status, out);
      res.end(payload);
    }
  };

  const server: Server = createServer({
    cert: options.certPem ?? tls.certPem,
    key: options.keyPem ?? tls.keyPem,
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    handle(req, res).catch(() => res.destroy());
  });
  server.on('connection', (socket: Socket) => {
    if (downMode === 'reset') {
      droppedConnections++;
      socket.destroy();
      return;
    }
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('secureConnection', (socket: TLSSocket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  server.on('tlsClientError', () => {});
  server.on('clientError', (_error, socket) => socket.destroy());

  const listen = () =>
    new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port, host: '127.0.0.1' }, () => {
        server.off('error', reject);
        resolve();
      });
    });
  const destroyAll = () => {
    for (const res of hanging) res.destroy();
    hanging.clear();
    for (const socket of sockets) socket.destroy();
    sockets.clear();
  };

  await listen();

  const proxy: FaultProxy = {
    origin,
    directoryUrl: `${origin}${directoryPath}`,
    port,
    target: targetOrigin,
    caPem: tls.caPem,
    get requests() {
      return requests;
    },
    get droppedConnections() {
      return droppedConnections;
    },
    get log() {
      return log;
    },
    rateLimit(rateLimitOptions) {
      const count = rateLimitOptions.forRequests ?? 'all';
      limit = { ...rateLimitOptions, remaining: count === 'all' ? Number.POSITIVE_INFINITY : count };
      if (limit.remaining <= 0) limit = undefined;
    },
    async down(mode = 'reset') {
      await proxy.up();
      downMode = mode;
      if (mode !== 'hang') destroyAll();
      if (mode === 'refuse') {
        await new Promise<void>((resolve) => server.close(() => resolve()));
      }
    },
    async up() {
      const previous = downMode;
      downMode = undefined;
      for (const res of hanging) res.destroy();
      hanging.clear();
      if (previous === 'refuse') await listen();
    },
    async clear() {
      limit = undefined;
      await proxy.up();
    },
    resetLog() {
      log = [];
      requests = 0;
      droppedConnections = 0;
    },
    async requestsDuring(fn) {
      const before = requests;
      await fn();
      return requests - before;
    },
    async stop() {
      limit = undefined;
      const wasRefusing = downMode === 'refuse';
      downMode = undefined;
      destroyAll();
      if (!wasRefusing) await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return proxy;
}
