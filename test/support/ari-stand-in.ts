/**
 * @module test/support/ari-stand-in — ACME Renewal Information (RFC 9773) in front of a Pebble that has none:
 * an HTTPS proxy that adds `renewalInfo` to the directory, answers it, records `replaces` on new orders and
 * can answer them with `alreadyReplaced`. Also: revoking a certificate at Pebble with its own key.
 */
import { createPublicKey, sign, X509Certificate } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { httpRequest } from './http.js';
import { type ShortLivedCA, startShortLivedCA } from './lifecycle.js';
import type { Pebble } from './pebble.js';
import { forwardableHeaders, readBody } from './reverse-proxy.js';
import { sendWhole, standInFront } from './stand-in.js';

/** Where the stand-in serves ARI; any path works, clients take it from the directory. */
const RENEWAL_INFO_PATH = '/renewal-info';
/** Pebble's newOrder route. */
const NEW_ORDER_PATH = '/order-plz';

export interface SuggestedWindow {
  start: Date;
  end: Date;
  explanationURL?: string;
}

export interface AriAnswer extends SuggestedWindow {
  /** Sent as `Retry-After`; default 21600 (6 hours, what Let's Encrypt sends). */
  retryAfterSeconds?: number;
}

export interface NewOrderSeen {
  identifiers: string[];
  replaces?: string;
  /** Answered `alreadyReplaced` by the stand-in instead of reaching Pebble. */
  rejected: boolean;
}

export interface AriStandIn {
  /** 'https://127.0.0.1:<port>' */
  readonly origin: string;
  readonly directoryUrl: string;
  /** Trust anchor for the stand-in's HTTPS (the harness CA). */
  readonly caPem: string;
  /** Every renewalInfo request, as the certificate id asked about. */
  readonly renewalInfoRequests: string[];
  readonly newOrders: NewOrderSeen[];
  /**
   * How to answer for a certificate (its serial, lower-case hex without leading zeros, and Pebble's record of
   * it). Default: a revoked certificate gets a window in the past (as Let's Encrypt does), any other one
   * Let's Encrypt's usual window, starting with a third of the lifetime left and lasting 1/45 of it.
   */
  answerWith(
    answer: (certificate: { serial: string; revoked: boolean; pem: string }) => AriAnswer | undefined,
  ): void;
  /** Answers the next `count` newOrder requests that carry `replaces` with an `alreadyReplaced` problem. */
  rejectReplaces(count?: number): void;
  stop(): Promise<void>;
}

/** The default answer: what Let's Encrypt does for revoked and for ordinary certificates. */
export function letsEncryptLikeAnswer(certificate: { revoked: boolean; pem: string }): AriAnswer {
  const now = Date.now();
  if (certificate.revoked) {
    return {
      start: new Date(now - 2 * 3600_000),
      end: new Date(now - 3600_000),
      explanationURL: 'https://ari-stand-in.test/revoked',
    };
  }
  const leaf = new X509Certificate(certificate.pem);
  const notBefore = Date.parse(leaf.validFrom);
  const notAfter = Date.parse(leaf.validTo);
  const lifetime = notAfter - notBefore;
  const start = notAfter - lifetime / 3;
  return { start: new Date(start), end: new Date(start + lifetime / 45) };
}

/** Serial of an ARI certificate id, in the form Pebble's management API and Node print (lower case). */
export function serialOfCertificateId(certificateId: string): string {
  const serialPart = certificateId.split('.')[1] ?? '';
  return Buffer.from(serialPart, 'base64url')
    .toString('hex')
    .replace(/^(00)+/, '');
}

/** The stand-in sets its own Content-Length on what it answers. */
const NOT_FORWARDED = ['content-length'];

export async function startAriStandIn(pebble: Pebble): Promise<AriStandIn> {
  const front = await standInFront(pebble);
  const { origin, upstream } = front;
  const renewalInfoRequests: string[] = [];
  const newOrders: NewOrderSeen[] = [];
  let answer: (certificate: { serial: string; revoked: boolean; pem: string }) => AriAnswer | undefined =
    letsEncryptLikeAnswer;
  let rejectsLeft = 0;

  const renewalInfo = async (res: ServerResponse, certificateId: string) => {
    renewalInfoRequests.push(certificateId);
    const serial = serialOfCertificateId(certificateId);
    const status = await pebble.certStatus(serial);
    if (!status) return sendWhole(res, 404, { 'content-type': 'application/problem+json' }, '{"status":404}');
    const given = answer({ serial, revoked: status.Status === 'Revoked', pem: status.Certificate });
    if (!given) return sendWhole(res, 404, { 'content-type': 'application/problem+json' }, '{"status":404}');
    const body = {
      suggestedWindow: { start: given.start.toISOString(), end: given.end.toISOString() },
      ...(given.explanationURL ? { explanationURL: given.explanationURL } : {}),
    };
    sendWhole(
      res,
      200,
      { 'content-type': 'application/json', 'retry-after': String(given.retryAfterSeconds ?? 21_600) },
      JSON.stringify(body),
    );
  };

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    const body = await readBody(req);
    if (method === 'GET' && path.startsWith(`${RENEWAL_INFO_PATH}/`)) {
      return renewalInfo(res, decodeURIComponent(path.slice(RENEWAL_INFO_PATH.length + 1)));
    }
    const headers = forwardableHeaders(req.headers, NOT_FORWARDED);
    if (method === 'POST' && path === NEW_ORDER_PATH) {
      const jws = JSON.parse(body.toString('utf8')) as { payload: string };
      const order = JSON.parse(Buffer.from(jws.payload, 'base64url').toString('utf8')) as {
        identifiers: Array<{ value: string }>;
        replaces?: string;
      };
      const seen: NewOrderSeen = {
        identifiers: order.identifiers.map((identifier) => identifier.value),
        ...(order.replaces ? { replaces: order.replaces } : {}),
        rejected: Boolean(order.replaces && rejectsLeft > 0),
      };
      newOrders.push(seen);
      if (seen.rejected) {
        rejectsLeft--;
        const nonce = (await upstream('HEAD', '/nonce-plz', { host: req.headers.host })).headers[
          'replay-nonce'
        ];
        const problem = {
          type: 'urn:ietf:params:acme:error:alreadyReplaced',
          detail: `certificate ${order.replaces} has already been replaced (ARI stand-in)`,
          status: 409,
        };
        return sendWhole(
          res,
          409,
          { 'content-type': 'application/problem+json', ...(nonce ? { 'replay-nonce': nonce } : {}) },
          JSON.stringify(problem),
        );
      }
    }
    const response = await upstream(method, path, headers, body.length > 0 ? body : undefined);
    const out = forwardableHeaders(response.headers, NOT_FORWARDED);
    let payload = response.body;
    if (method === 'GET' && path === new URL(pebble.directoryUrl).pathname) {
      const directory = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
      payload = Buffer.from(JSON.stringify({ ...directory, renewalInfo: `${origin}${RENEWAL_INFO_PATH}` }));
    }
    if (method === 'HEAD') {
      res.writeHead(response.status, out);
      return res.end();
    }
    sendWhole(res, response.status, out, payload);
  };

  await front.serve(handle);

  return {
    origin,
    directoryUrl: front.directoryUrl,
    caPem: front.caPem,
    renewalInfoRequests,
    newOrders,
    answerWith(next) {
      answer = next;
    },
    rejectReplaces(count = 1) {
      rejectsLeft = count;
    },
    stop: () => front.stop(),
  };
}

/**
 * Revokes a certificate at the CA the way its key holder can (RFC 8555 §7.6, JWS signed with the certificate's
 * own ECDSA P-256 key, `jwk` in the header), so no account is needed.
 */
export async function revokeWithCertificateKey(options: {
  directoryUrl: string;
  caPem: string;
  certificatePem: string;
  privateKeyPem: string;
}): Promise<void> {
  const directoryResponse = await httpRequest(options.directoryUrl, { ca: options.caPem });
  const directory = JSON.parse(directoryResponse.body) as { newNonce: string; revokeCert: string };
  const nonceResponse = await httpRequest(directory.newNonce, { method: 'HEAD', ca: options.caPem });
  const nonce = String(nonceResponse.headers['replay-nonce']);
  const { kty, crv, x, y } = createPublicKey(options.privateKeyPem).export({ format: 'jwk' });
  const encode = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const protectedHeader = encode({ alg: 'ES256', jwk: { crv, kty, x, y }, nonce, url: directory.revokeCert });
  const leaf = new X509Certificate(options.certificatePem);
  const payload = encode({ certificate: leaf.raw.toString('base64url') });
  const signature = sign('sha256', Buffer.from(`${protectedHeader}.${payload}`), {
    key: options.privateKeyPem,
    dsaEncoding: 'ieee-p1363',
  }).toString('base64url');
  const response = await httpRequest(directory.revokeCert, {
    method: 'POST',
    ca: options.caPem,
    headers: { 'content-type': 'application/jose+json' },
    body: JSON.stringify({ protected: protectedHeader, payload, signature }),
  });
  if (response.status !== 200) throw new Error(`revokeCert answered ${response.status}: ${response.body}`);
}

/** A short-lived-certificate Pebble behind an ARI stand-in, for a test file's beforeAll; `stop` ends both. */
export async function startCaBehindAriStandIn(): Promise<{
  ca: ShortLivedCA;
  standIn: AriStandIn;
  stop(): Promise<void>;
}> {
  const ca = await startShortLivedCA();
  const standIn = await startAriStandIn(ca.pebble).catch(async (error: unknown) => {
    await ca.stop();
    throw error;
  });
  return {
    ca,
    standIn,
    async stop() {
      await standIn.stop();
      await ca.stop();
    },
  };
}
