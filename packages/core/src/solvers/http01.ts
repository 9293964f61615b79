/** @module HTTP-01: key authorizations kept in memory and in storage, so any instance can answer the CA. */
import type { ChallengeSolver, PresentedChallenge } from '../issuers/issuer.js';
import type { Logger } from '../log.js';
import { normalizeName } from '../names.js';
import { storageKeys } from '../storage/keys.js';
import type { Storage } from '../storage/storage.js';

export interface HttpChallengeRequest {
  method: string;
  /** The Host header as received (port allowed). */
  host: string | undefined;
  url: string;
  /** The peer's address, for the log. */
  remote?: string;
}

export interface HttpChallengeResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

interface ChallengeRecord {
  identifier: string;
  keyAuthorization: string;
}

const CHALLENGE_PATH = '/.well-known/acme-challenge/';
/** ACME tokens are 43 base64url characters; anything far longer is not one. */
const MAX_TOKEN_LENGTH = 128;
const TOKEN = /^[A-Za-z0-9_-]+$/;
/** Challenges live minutes; a crashed instance's entries expire by themselves. */
const CHALLENGE_TTL_MS = 60 * 60_000;

const notFound: HttpChallengeResponse = {
  status: 404,
  headers: { 'content-type': 'text/plain; charset=utf-8' },
  body: 'Not Found\n',
};

export class Http01Solver implements ChallengeSolver {
  private readonly active = new Map<string, ChallengeRecord>();

  constructor(
    private readonly storage: Storage,
    private readonly logger: Logger,
  ) {}

  async present(challenge: PresentedChallenge): Promise<void> {
    const record = { identifier: challenge.identifier, keyAuthorization: challenge.keyAuthorization };
    this.active.set(challenge.token, record);
    // Written before the CA is told to validate, so an instance behind the same balancer can answer too.
    await this.storage.set(storageKeys.challenge(challenge.token), record, CHALLENGE_TTL_MS);
  }

  async cleanup(challenge: PresentedChallenge): Promise<void> {
    this.active.delete(challenge.token);
    await this.storage.delete(storageKeys.challenge(challenge.token));
  }

  /**
   * The answer for a challenge request; `undefined` for anything that is not one (the app handles it).
   * Unknown tokens, a Host other than the identifier, and malformed tokens get a 404 and leak nothing.
   */
  async answer(request: HttpChallengeRequest): Promise<HttpChallengeResponse | undefined> {
    if (request.method !== 'GET' && request.method !== 'HEAD') return undefined;
    const path = request.url.split('?')[0] ?? '';
    if (!path.startsWith(CHALLENGE_PATH)) return undefined;
    const token = path.slice(CHALLENGE_PATH.length);
    if (token.length === 0 || token.length > MAX_TOKEN_LENGTH || !TOKEN.test(token)) return notFound;
    const host = hostWithoutPort(request.host);
    if (!host) return notFound;
    let record = this.active.get(token);
    const distributed = !record;
    if (!record) {
      record = await this.storage
        .get<ChallengeRecord>(storageKeys.challenge(token))
        .catch((error: unknown) => {
          this.logger.error({ error: String(error), token }, 'reading challenge from storage');
          return undefined;
        });
    }
    if (!record || record.identifier.replace(/^\*\./, '') !== host) return notFound;
    this.logger.info(
      { identifier: record.identifier, challenge: 'http-01', remote: request.remote, distributed },
      'served key authentication',
    );
    return {
      status: 200,
      headers: { 'content-type': 'text/plain' },
      body: request.method === 'HEAD' ? '' : record.keyAuthorization,
    };
  }
}

/** `Example.com:80` → `example.com`; `[::1]:80` → `::1`; undefined for anything that is not a host. */
export function hostWithoutPort(host: string | undefined): string | undefined {
  if (!host) return undefined;
  const bare = host.startsWith('[') ? host.slice(1, host.indexOf(']')) : host.replace(/:\d*$/, '');
  try {
    return normalizeName(bare);
  } catch {
    return undefined;
  }
}
