/** @module TSIG (RFC 8945): signing a DNS message with a shared key, and checking the signed answer. */
import { createHmac, timingSafeEqual } from 'node:crypto';
import {
  canonicalName,
  type DnsRecord,
  decodeMessage,
  encodeName,
  encodeRecord,
  RR_CLASS,
  RR_TYPE,
  readName,
} from './wire.js';

/** The algorithms RFC 8945 §6 says to implement, minus HMAC-MD5 (broken; RFC 8945 says not to use it). */
export const TSIG_ALGORITHMS = {
  'hmac-sha256': 'sha256',
  'hmac-sha384': 'sha384',
  'hmac-sha512': 'sha512',
} as const;
export type TsigAlgorithm = keyof typeof TSIG_ALGORITHMS;

/** TSIG error codes (RFC 8945 §3) with what they mean for the person who configured the key. */
export const TSIG_ERRORS: Readonly<Record<number, { name: string; meaning: string }>> = {
  16: { name: 'BADSIG', meaning: 'key name or secret wrong (the signature does not verify)' },
  17: {
    name: 'BADKEY',
    meaning:
      'key name or secret wrong (the server knows no such key; Knot also answers so when its ACL denies)',
  },
  18: { name: 'BADTIME', meaning: "this machine's clock and the server's differ by more than the fudge" },
  22: { name: 'BADTRUNC', meaning: 'the server refused a truncated signature' },
};

/**
 * How far apart the signer's and verifier's clocks may be: the 300 s RFC 8945 §10 recommends, as BIND,
 * Knot and PowerDNS use.
 */
const FUDGE_SECONDS = 300;

export interface TsigKey {
  /** The key's name as the server knows it (BIND: the `key "<name>"` statement). */
  name: string;
  algorithm: TsigAlgorithm;
  secret: Buffer;
}

export class TsigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'TsigError';
  }
}

/** The algorithm as BIND, Knot and PowerDNS spell it ('HMAC-SHA256', 'hmac-sha256.'); undefined if unsupported. */
export function tsigAlgorithm(value: string): TsigAlgorithm | undefined {
  const normal = canonicalName(value);
  return normal in TSIG_ALGORITHMS ? (normal as TsigAlgorithm) : undefined;
}

/** Time signed (48 bits) and fudge, as they go into the record and the MAC. */
function timeAndFudge(timeSigned: number): Buffer {
  const time = Buffer.alloc(8);
  time.writeUInt16BE(Math.floor(timeSigned / 2 ** 32), 0);
  time.writeUInt32BE(timeSigned % 2 ** 32, 2);
  time.writeUInt16BE(FUDGE_SECONDS, 6);
  return time;
}

/** The TSIG variables after the key name, class and TTL (RFC 8945 §4.3.3), as they go into the MAC. */
function variables(key: TsigKey, time: Buffer, error: number, other: Buffer): Buffer[] {
  const tail = Buffer.alloc(4);
  tail.writeUInt16BE(error, 0);
  tail.writeUInt16BE(other.length, 2);
  return [encodeName(key.name), CLASS_ANY_TTL_0, encodeName(key.algorithm), time, tail, other];
}

const CLASS_ANY_TTL_0 = Buffer.from([0, RR_CLASS.ANY, 0, 0, 0, 0]);

function mac(key: TsigKey, parts: Buffer[]): Buffer {
  const hmac = createHmac(TSIG_ALGORITHMS[key.algorithm], key.secret);
  for (const part of parts) hmac.update(part);
  return hmac.digest();
}

/** `message` with a TSIG record appended (ARCOUNT raised); also the MAC, to check the answer with. */
export function signMessage(
  message: Buffer,
  key: TsigKey,
  nowSeconds: number,
): { signed: Buffer; requestMac: Buffer } {
  const timeSigned = Math.floor(nowSeconds);
  const time = timeAndFudge(timeSigned);
  const requestMac = mac(key, [message, ...variables(key, time, 0, Buffer.alloc(0))]);
  const macLength = Buffer.alloc(2);
  macLength.writeUInt16BE(requestMac.length);
  const originalIdErrorOther = Buffer.concat([message.subarray(0, 2), Buffer.alloc(4)]);
  const algorithm = encodeName(key.algorithm);
  const data = Buffer.concat([algorithm, time, macLength, requestMac, originalIdErrorOther]);
  const record = encodeRecord({ name: key.name, type: RR_TYPE.TSIG, class: RR_CLASS.ANY, ttl: 0, data });
  const signed = Buffer.concat([message, record]);
  signed.writeUInt16BE(message.readUInt16BE(10) + 1, 10);
  return { signed, requestMac };
}

export interface TsigResult {
  /** The TSIG error the server set (0: none). */
  error: number;
}

/**
 * Checks the TSIG record that ends a response to a signed request (RFC 8945 §5.3). A response the server
 * could not sign (BADKEY, BADSIG: the MAC is empty) is reported by its error, not as forged; any other
 * unsigned or wrongly signed response throws, so a forged "NOERROR" never passes for success.
 */
export function verifyResponse(
  response: Buffer,
  key: TsigKey,
  requestMac: Buffer,
  nowSeconds: number,
): TsigResult {
  const decoded = decodeMessage(response);
  const tsig = decoded.additionals.at(-1);
  if (!tsig || tsig.type !== RR_TYPE.TSIG) {
    // An error answer may come unsigned (RFC 8945 §5.3.2); its RCODE says what went wrong.
    if (decoded.rcode === 0)
      throw new TsigError('the server answered a signed request without a TSIG signature');
    return { error: 0 };
  }
  try {
    return checkTsig(response, decoded.additionals.length, tsig, key, requestMac, nowSeconds);
  } catch (error) {
    if (error instanceof RangeError) throw new TsigError('the answer carries a malformed TSIG record');
    throw error;
  }
}

function checkTsig(
  response: Buffer,
  additionalCount: number,
  tsig: DnsRecord,
  key: TsigKey,
  requestMac: Buffer,
  nowSeconds: number,
): TsigResult {
  const reader = { offset: tsig.data.byteOffset - response.byteOffset };
  const algorithm = readName(response, reader);
  const fixed = response.subarray(reader.offset);
  const timeSigned = fixed.readUInt16BE(0) * 2 ** 32 + fixed.readUInt32BE(2);
  const fudge = fixed.readUInt16BE(6);
  const macLength = fixed.readUInt16BE(8);
  const responseMac = fixed.subarray(10, 10 + macLength);
  const after = fixed.subarray(10 + macLength);
  const originalId = after.readUInt16BE(0);
  const error = after.readUInt16BE(2);
  const otherLength = after.readUInt16BE(4);
  const other = after.subarray(6, 6 + otherLength);
  if (macLength === 0 && error !== 0) return { error };
  if (canonicalName(tsig.name) !== canonicalName(key.name) || algorithm !== key.algorithm) {
    throw new TsigError(`the answer is signed with key ${tsig.name} (${algorithm}), not ${key.name}`);
  }
  // The MAC covers the message as it was before the TSIG record was added: ARCOUNT one less, original ID.
  const recordStart = tsigRecordStart(response, additionalCount);
  const unsignedPart = Buffer.from(response.subarray(0, recordStart));
  unsignedPart.writeUInt16BE(originalId, 0);
  unsignedPart.writeUInt16BE(unsignedPart.readUInt16BE(10) - 1, 10);
  const requestMacLength = Buffer.alloc(2);
  requestMacLength.writeUInt16BE(requestMac.length);
  // The time and fudge exactly as the server sent them (its fudge may differ from ours).
  const time = fixed.subarray(0, 8);
  const expected = mac(key, [
    requestMacLength,
    requestMac,
    unsignedPart,
    ...variables(key, time, error, other),
  ]);
  if (expected.length !== responseMac.length || !timingSafeEqual(expected, responseMac)) {
    throw new TsigError(`the answer's TSIG signature does not verify with key ${key.name}`);
  }
  // BADTIME comes signed with the server's time: report the error, not our own clock check.
  if (error === 0 && Math.abs(nowSeconds - timeSigned) > fudge) {
    throw new TsigError(
      `the answer was signed ${Math.round(nowSeconds - timeSigned)} s away from this clock`,
    );
  }
  return { error };
}

/** Where the last additional record (the TSIG) starts: walk the message record by record. */
function tsigRecordStart(response: Buffer, additionalCount: number): number {
  const reader = { offset: 12 };
  const questions = response.readUInt16BE(4);
  for (let i = 0; i < questions; i++) {
    readName(response, reader);
    reader.offset += 4;
  }
  const records = response.readUInt16BE(6) + response.readUInt16BE(8) + additionalCount - 1;
  for (let i = 0; i < records; i++) {
    readName(response, reader);
    reader.offset += 10 + response.readUInt16BE(reader.offset + 8);
  }
  return reader.offset;
}
