/** @module test/support/http — a tiny HTTP(S) client for the harness (custom CA, raw paths, any Host). */
import { type Agent, request as httpRequestRaw, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequestRaw } from 'node:https';

export interface HttpRequestOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** PEM trust anchor(s) for https URLs. */
  ca?: string | string[];
  /** Abort after this many ms; default 5000. */
  timeoutMs?: number;
  /** Path and query sent as is instead of the URL's, which `new URL` normalises (`..`, `%2e%2e`). */
  rawPath?: string;
  /** TLS server name (SNI) for https URLs, whatever the URL's host or the Host header says. */
  servername?: string;
  /** Keeps the connection for later requests; default a fresh connection that is closed after. */
  agent?: Agent;
}

export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
}

/** One request, on a fresh connection unless `agent` is given, body read to the end as UTF-8. */
export function httpRequest(url: string, options: HttpRequestOptions = {}): Promise<HttpResponse> {
  const target = new URL(url);
  const send = target.protocol === 'https:' ? httpsRequestRaw : httpRequestRaw;
  const headers: Record<string, string> = { ...options.headers };
  if (options.body !== undefined) headers['content-length'] = String(Buffer.byteLength(options.body));
  return new Promise((resolve, reject) => {
    const req = send(
      target,
      {
        method: options.method ?? 'GET',
        headers,
        agent: options.agent ?? false,
        ...(options.rawPath === undefined ? {} : { path: options.rawPath }),
        ...(options.servername === undefined ? {} : { servername: options.servername }),
        ...(options.ca === undefined ? {} : { ca: options.ca }),
        timeout: options.timeoutMs ?? 5000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('error', reject);
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: Buffer.concat(chunks).toString('utf8'),
          }),
        );
      },
    );
    req.on('timeout', () => req.destroy(new Error(`${options.method ?? 'GET'} ${url} timed out`)));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** POST a JSON body over plain HTTP and fail unless the answer is 2xx (challtestsrv's management API). */
export async function postJson(url: string, body: unknown): Promise<HttpResponse> {
  const response = await httpRequest(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  if (response.status < 200 || response.status > 299) {
    throw new Error(`POST ${url} ${JSON.stringify(body)} answered ${response.status}: ${response.body}`);
  }
  return response;
}
