/** @module The plain-HTTP side: a Node request as core sees it, the redirect to HTTPS, writing an answer. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { errorFields, type Logger } from './log.js';
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

/** What the plain-HTTP side asks of the manager: a challenge answer for a request, if it is one. */
export type ChallengeAnswerer = (request: HttpChallengeRequest) => Promise<HttpChallengeResponse | undefined>;

export interface HttpAnswerOptions {
  /** Redirect plain HTTP to HTTPS (default true). */
  redirect?: boolean;
  /** Port in redirect URLs (default 443). */
  httpsPort?: number;
}

/**
 * What a request should get: a challenge answer, else (when `secure` is false and `redirect` is not) a
 * 308 to HTTPS; `undefined` means "not ours, let the app handle it". A failing answer is a 404, logged.
 */
export async function answerHttpRequest(
  answerChallenge: ChallengeAnswerer,
  logger: Logger,
  request: HttpChallengeRequest & { secure: boolean },
  options: HttpAnswerOptions = {},
): Promise<HttpChallengeResponse | undefined> {
  const answer = await answerChallenge(request).catch((error: unknown) => {
    logger.error({ ...errorFields(error), url: request.url }, 'answering challenge request');
    return notFoundResponse;
  });
  if (answer) return answer;
  if (request.secure || options.redirect === false) return undefined;
  return redirectToHttps(request.host, request.url, options.httpsPort);
}

/** A request listener for a plain-HTTP server: challenge answers, else a 308 to HTTPS (else 404). */
export function plainHttpHandler(
  answerChallenge: ChallengeAnswerer,
  logger: Logger,
  options: HttpAnswerOptions = {},
): (req: IncomingMessage, res: ServerResponse) => Promise<void> {
  return async (req, res) => {
    const request = { ...httpChallengeRequestOf(req), secure: false };
    const response = await answerHttpRequest(answerChallenge, logger, request, options);
    writeHttpResponse(res, response ?? notFoundResponse);
  };
}
