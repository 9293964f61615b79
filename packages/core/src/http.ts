/** @module The plain-HTTP side: a Node request as core sees it, the redirect to HTTPS, writing an answer. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { type HttpChallengeRequest, type HttpChallengeResponse, hostWithoutPort } from './solvers/http01.js';

export function httpChallengeRequestOf(req: IncomingMessage): HttpChallengeRequest {
  return {
    method: req.method ?? 'GET',
    host: req.headers.host,
    url: req.url ?? '/',
    remote: req.socket.remoteAddress && `${req.socket.remoteAddress}:${req.socket.remotePort}`,
  };
}

/** Writes a core answer to a Node response (HEAD gets no body). */
export function writeHttpResponse(res: ServerResponse, response: HttpChallengeResponse): void {
  res
    .writeHead(response.status, response.headers)
    .end(res.req?.method === 'HEAD' ? undefined : response.body);
}

export const notFoundResponse: HttpChallengeResponse = {
  status: 404,
  headers: { 'content-type': 'text/plain' },
  body: 'Not Found\n',
};

/** A 308 to the same host and path over HTTPS; 400 when the Host header is not a valid host name. */
export function redirectToHttps(
  host: string | undefined,
  url: string,
  httpsPort?: number,
): HttpChallengeResponse {
  const name = hostWithoutPort(host);
  if (!name)
    return { status: 400, headers: { 'content-type': 'text/plain' }, body: 'Bad Request: invalid Host\n' };
  const hostPart = name.includes(':') ? `[${name}]` : name;
  const port = httpsPort && httpsPort !== 443 ? `:${httpsPort}` : '';
  const path = url.startsWith('/') ? url : '/';
  return {
    status: 308,
    headers: { location: `https://${hostPart}${port}${path}`, 'content-type': 'text/plain' },
    body: '',
  };
}
