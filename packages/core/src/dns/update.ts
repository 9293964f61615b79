/** @module RFC 2136 dynamic updates signed with TSIG: add or delete single records in a zone. */
import { randomInt } from 'node:crypto';
import { type ExchangeOptions, exchange, formatServerAddress, type ServerAddress } from './exchange.js';
import { signMessage, TSIG_ERRORS, type TsigKey, verifyResponse } from './tsig.js';
import {
  canonicalName,
  decodeMessage,
  encodeMessage,
  OPCODE,
  type OutgoingRecord,
  RCODE,
  RR_CLASS,
  RR_TYPE,
  rcodeName,
} from './wire.js';

/** What an UPDATE refusal most likely means, for the person who set the server up. */
const RCODE_MEANINGS: Readonly<Record<number, string>> = {
  [RCODE.REFUSED]:
    'the key may not change this record (check the update-policy / allow-update); ' +
    'PowerDNS: the key name or secret is wrong, or the key is not in TSIG-ALLOW-DNSUPDATE',
  [RCODE.NOTAUTH]: 'the server is not authoritative for the zone, or does not accept this key',
  [RCODE.NOTZONE]: 'the record is not inside the zone',
};

/** An UPDATE the server refused: the RCODE and (when the server set one) the TSIG error, by name. */
export class DnsUpdateError extends Error {
  constructor(
    readonly server: string,
    readonly zone: string,
    readonly rcode: number,
    readonly tsigError: number,
  ) {
    const tsig = TSIG_ERRORS[tsigError];
    const reason = tsig
      ? `TSIG ${tsig.name}: ${tsig.meaning}`
      : (RCODE_MEANINGS[rcode] ?? (tsigError ? `TSIG error ${tsigError}` : 'the server refused the update'));
    super(`DNS UPDATE of zone ${zone} at ${server} failed with ${rcodeName(rcode)} (${reason})`);
    this.name = 'DnsUpdateError';
  }

  get rcodeName(): string {
    return rcodeName(this.rcode);
  }

  get tsigErrorName(): string | undefined {
    return TSIG_ERRORS[this.tsigError]?.name;
  }
}

export interface UpdateRequest extends ExchangeOptions {
  server: ServerAddress;
  zone: string;
  key: TsigKey;
  /** Records in the update section: class IN adds, class NONE deletes that one record. */
  updates: OutgoingRecord[];
  nowSeconds: number;
}

/** Sends one signed UPDATE; resolves when the server applied it, else throws a {@link DnsUpdateError}. */
export async function sendUpdate(request: UpdateRequest): Promise<void> {
  const message = encodeMessage({
    id: randomInt(0, 0x10000),
    opcode: OPCODE.UPDATE,
    questions: [{ name: request.zone, type: RR_TYPE.SOA, class: RR_CLASS.IN }],
    authorities: request.updates,
  });
  const { signed, requestMac } = signMessage(message, request.key, request.nowSeconds);
  const answer = await exchange(request.server, signed, request);
  const { error } = verifyResponse(answer, request.key, requestMac, request.nowSeconds);
  const { rcode } = decodeMessage(answer);
  if (rcode !== RCODE.NOERROR || error !== 0) {
    throw new DnsUpdateError(formatServerAddress(request.server), canonicalName(request.zone), rcode, error);
  }
}
