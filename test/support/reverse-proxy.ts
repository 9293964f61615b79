/**
 * @module test/support/reverse-proxy — what the HTTPS proxies in front of Pebble (the fault proxy, the ARI
 * stand-in) share: which headers to pass on, reading a body, and forwarding one request upstream.
 */
import type { IncomingHttpHeaders, IncomingMessage, OutgoingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';

/** Headers about one connection, not the message (RFC 9110 §7.6.1): a proxy does not pass them on. */
const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
]);

/** `headers` without the hop-by-hop ones and `alsoDrop` (lower case), ready to pass on. */
export function forwardableHeaders(
  headers: IncomingHttpHeaders,
  alsoDrop: readonly string[] = [],
): OutgoingHttpHeaders {
  const forwarded: OutgoingHttpHeaders = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value !== undefined && !HOP_BY_HOP.has(name) && !alsoDrop.includes(name)) forwarded[name] = value;
  }
  return forwarded;
}

export function readBody(stream: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.on('end', () => resolve(Buffer.concat(chunks)));
    stream.on('error', reject);
  });
}

export interface UpstreamRequest {
  method: string;
  /** Path and query, as the client sent them. */
  path: string;
  headers: OutgoingHttpHeaders;
  body?: Buffer;
}

export interface UpstreamResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

/** Sends `request` to `target` over HTTPS on a fresh connection, trusting `caPem`; reads the whole answer. */
export function forwardUpstream(
  target: URL,
  caPem: string,
  request: UpstreamRequest,
): Promise<UpstreamResponse> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      {
        hostname: target.hostname,
        port: target.port,
        method: request.method,
        path: request.path,
        headers: request.headers,
        ca: caPem,
        agent: false,
        timeout: 30_000,
      },
      (res) => {
        readBody(res).then(
          (body) => resolve({ status: res.statusCode ?? 502, headers: res.headers, body }),
          reject,
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error('upstream timed out')));
    req.on('error', reject);
    req.end(request.body);
  });
}
