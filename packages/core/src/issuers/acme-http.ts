/**
 * @module The wire to an ACME CA: one HTTPS exchange under a whole-exchange deadline, its body parsed when
 * JSON, and what an error answer means — the CA's problem document, or an HTML page's status and a glimpse.
 */
import type https from 'node:https';
import { request as httpsRequest } from 'node:https';
import { type AcmeProblem, AcmeProblemError, parseRetryAfterMs, problemLinks } from '../problems.js';

/** One answer: headers flattened to strings, `body` (= `data`, the name acme-client reads) parsed when JSON. */
export interface AcmeAnswer {
  status: number;
  headers: Record<string, string>;
  body: unknown;
  data: unknown;
}

/** Shown in a problem made from a non-problem answer (an HTML error page): enough to recognise it. */
const BODY_EXCERPT_CHARS = 120;

/** A request that got no complete answer within the request timeout. Never sent again inside the attempt. */
export class RequestTimeoutError extends Error {
  readonly code = 'ETIMEDOUT';
  constructor(timeoutMs: number) {
    super(`no answer within ${timeoutMs} ms`);
    this.name = 'RequestTimeoutError';
  }
}

/** Sends `data` (JSON, or nothing) and resolves with the whole answer, or rejects after `timeoutMs`. */
export function sendToCa(
  agent: https.Agent,
  timeoutMs: number,
  url: string,
  method: string,
  data?: unknown,
): Promise<AcmeAnswer> {
  const payload = data === undefined ? undefined : JSON.stringify(data);
  return new Promise((resolve, reject) => {
    const request = httpsRequest(
      url,
      {
        method: method.toUpperCase(),
        agent,
        headers: {
          'content-type': 'application/jose+json',
          'user-agent': 'autotls (acme-client)',
          ...(payload ? { 'content-length': Buffer.byteLength(payload) } : {}),
        },
      },
      (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('error', reject);
        response.on('end', () => {
          const headers: Record<string, string> = {};
          for (const [name, value] of Object.entries(response.headers)) {
            if (value !== undefined) headers[name] = Array.isArray(value) ? value.join(', ') : value;
          }
          const body = parseBody(Buffer.concat(chunks).toString('utf8'), headers['content-type']);
          resolve({ status: response.statusCode ?? 0, headers, body, data: body });
        });
      },
    );
    // The whole exchange, not just idle time: a CA trickling bytes must not hold an attempt for ever.
    const deadline = setTimeout(() => request.destroy(new RequestTimeoutError(timeoutMs)), timeoutMs);
    request.on('close', () => clearTimeout(deadline));
    request.on('error', reject);
    request.end(payload);
  });
}

function parseBody(text: string, contentType: string | undefined): unknown {
  if (!text || !/json/.test(contentType ?? '')) return text;
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

/** "HTTP 500 from the CA (text/html): <first characters>" — for answers that are not problem documents. */
export function describeAnswer(answer: Pick<AcmeAnswer, 'status' | 'headers' | 'data'>): string {
  const type = answer.headers['content-type'] ?? 'no content type';
  const text = typeof answer.data === 'string' ? answer.data : JSON.stringify(answer.data ?? '');
  const excerpt = text.replace(/\s+/g, ' ').trim().slice(0, BODY_EXCERPT_CHARS);
  return `HTTP ${answer.status} from the CA (${type})${excerpt ? `: ${excerpt}` : ''}`;
}

/** A problem from an error answer; one that is not a problem document (an HTML page) keeps its status and a glimpse. */
export function problemFromAnswer(
  answer: Pick<AcmeAnswer, 'status' | 'headers' | 'data'>,
  request: { ca: string; url: string; request: string; nowMs: number },
): AcmeProblemError {
  const document = (answer.data && typeof answer.data === 'object' ? answer.data : {}) as Record<
    string,
    unknown
  >;
  const problem: AcmeProblem = {
    type: typeof document.type === 'string' ? document.type : 'about:blank',
    detail: typeof document.detail === 'string' ? document.detail : describeAnswer(answer),
    status: answer.status,
    ...(Array.isArray(document.subproblems) ? { subproblems: document.subproblems } : {}),
    ...(typeof document.instance === 'string' ? { instance: document.instance } : {}),
  };
  const links = problemLinks(answer.headers.link, problem);
  return new AcmeProblemError(problem, {
    ca: request.ca,
    url: request.url,
    request: request.request,
    retryAfterMs: parseRetryAfterMs(answer.headers['retry-after'], request.nowMs),
    ...(links.length > 0 ? { links } : {}),
  });
}
