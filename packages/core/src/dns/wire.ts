/** @module The DNS message format (RFC 1035, RFC 2136 UPDATE): just what DNS-01 needs, on Buffers. */

/** Record types by number; only those DNS-01 reads or writes. */
export const RR_TYPE = { A: 1, NS: 2, CNAME: 5, SOA: 6, TXT: 16, AAAA: 28, TSIG: 250, ANY: 255 } as const;
export type RrTypeName = keyof typeof RR_TYPE;

/** Classes: IN for data; NONE in an UPDATE deletes one record (RFC 2136 §2.5.4); ANY for TSIG. */
export const RR_CLASS = { IN: 1, NONE: 254, ANY: 255 } as const;

export const OPCODE = { QUERY: 0, UPDATE: 5 } as const;

/** RCODE names (RFC 1035, RFC 2136, RFC 8945): an error says which one, never just a number. */
export const RCODE_NAMES: Readonly<Record<number, string>> = {
  0: 'NOERROR',
  1: 'FORMERR',
  2: 'SERVFAIL',
  3: 'NXDOMAIN',
  4: 'NOTIMP',
  5: 'REFUSED',
  6: 'YXDOMAIN',
  7: 'YXRRSET',
  8: 'NXRRSET',
  9: 'NOTAUTH',
  10: 'NOTZONE',
};

export const RCODE = { NOERROR: 0, NXDOMAIN: 3, REFUSED: 5, NOTAUTH: 9, NOTZONE: 10 } as const;

export function rcodeName(rcode: number): string {
  return RCODE_NAMES[rcode] ?? `RCODE${rcode}`;
}

export interface DnsQuestion {
  name: string;
  type: number;
  class: number;
}

export interface DnsRecord {
  /** Lower case, no trailing dot ('' is the root). */
  name: string;
  type: number;
  class: number;
  ttl: number;
  /** The record data as sent; names inside it may be compressed, so read them through `target`/`texts`. */
  data: Buffer;
  /** CNAME/NS target, or the SOA's primary name server. */
  target?: string;
  /** TXT: the character-strings. */
  texts?: string[];
}

export interface DnsMessage {
  id: number;
  /** QR: this is a response. */
  response: boolean;
  opcode: number;
  authoritative: boolean;
  truncated: boolean;
  recursionDesired: boolean;
  rcode: number;
  /** In an UPDATE: the zone section. */
  questions: DnsQuestion[];
  /** In an UPDATE: the prerequisites. */
  answers: DnsRecord[];
  /** In an UPDATE: the updates. */
  authorities: DnsRecord[];
  additionals: DnsRecord[];
}

/** A record to encode: rdata already in wire form (see {@link txtData}). */
export interface OutgoingRecord {
  name: string;
  type: number;
  class: number;
  ttl: number;
  data: Buffer;
}

/** Lower case, no trailing dot: the form names are compared in. */
export function canonicalName(name: string): string {
  return name.toLowerCase().replace(/\.$/, '');
}

/** A name in uncompressed wire form (also the canonical form TSIG signs over, after lower-casing). */
export function encodeName(name: string): Buffer {
  const labels = canonicalName(name).split('.').filter(Boolean);
  const parts: Buffer[] = [];
  for (const label of labels) {
    const bytes = Buffer.from(label, 'ascii');
    if (bytes.length > 63) throw new RangeError(`DNS label longer than 63 bytes in ${name}`);
    parts.push(Buffer.from([bytes.length]), bytes);
  }
  parts.push(Buffer.from([0]));
  const encoded = Buffer.concat(parts);
  if (encoded.length > 255) throw new RangeError(`DNS name longer than 255 bytes: ${name}`);
  return encoded;
}

/** TXT rdata: the value split into character-strings of at most 255 bytes. */
export function txtData(value: string): Buffer {
  const bytes = Buffer.from(value, 'utf8');
  const parts: Buffer[] = [];
  for (let offset = 0; offset < bytes.length || parts.length === 0; offset += 255) {
    const chunk = bytes.subarray(offset, offset + 255);
    parts.push(Buffer.from([chunk.length]), chunk);
  }
  return Buffer.concat(parts);
}

export interface OutgoingMessage {
  id: number;
  opcode: number;
  recursionDesired?: boolean;
  questions: DnsQuestion[];
  answers?: OutgoingRecord[];
  authorities?: OutgoingRecord[];
  additionals?: OutgoingRecord[];
}

export function encodeMessage(message: OutgoingMessage): Buffer {
  const header = Buffer.alloc(12);
  header.writeUInt16BE(message.id, 0);
  header.writeUInt16BE(((message.opcode & 0xf) << 11) | (message.recursionDesired ? 0x0100 : 0), 2);
  const sections = [message.answers ?? [], message.authorities ?? [], message.additionals ?? []];
  header.writeUInt16BE(message.questions.length, 4);
  sections.forEach((records, index) => {
    header.writeUInt16BE(records.length, 6 + index * 2);
  });
  const parts: Buffer[] = [header];
  for (const question of message.questions) {
    const fixed = Buffer.alloc(4);
    fixed.writeUInt16BE(question.type, 0);
    fixed.writeUInt16BE(question.class, 2);
    parts.push(encodeName(question.name), fixed);
  }
  for (const record of sections.flat()) parts.push(encodeRecord(record));
  return Buffer.concat(parts);
}

export function encodeRecord(record: OutgoingRecord): Buffer {
  const fixed = Buffer.alloc(10);
  fixed.writeUInt16BE(record.type, 0);
  fixed.writeUInt16BE(record.class, 2);
  fixed.writeUInt32BE(record.ttl, 4);
  fixed.writeUInt16BE(record.data.length, 8);
  return Buffer.concat([encodeName(record.name), fixed, record.data]);
}

/** Thrown for bytes that are not a DNS message; the caller treats it like no answer. */
export class MalformedMessageError extends Error {
  constructor(detail: string) {
    super(`malformed DNS message: ${detail}`);
    this.name = 'MalformedMessageError';
  }
}

export function decodeMessage(bytes: Buffer): DnsMessage {
  if (bytes.length < 12) throw new MalformedMessageError('shorter than its header');
  const flags = bytes.readUInt16BE(2);
  const counts = [4, 6, 8, 10].map((offset) => bytes.readUInt16BE(offset)) as [
    number,
    number,
    number,
    number,
  ];
  const reader = { offset: 12 };
  const questions: DnsQuestion[] = [];
  for (let i = 0; i < counts[0]; i++) {
    const name = readName(bytes, reader);
    need(bytes, reader.offset + 4);
    questions.push({
      name,
      type: bytes.readUInt16BE(reader.offset),
      class: bytes.readUInt16BE(reader.offset + 2),
    });
    reader.offset += 4;
  }
  const readSection = (count: number) => Array.from({ length: count }, () => readRecord(bytes, reader));
  return {
    id: bytes.readUInt16BE(0),
    response: (flags & 0x8000) !== 0,
    opcode: (flags >> 11) & 0xf,
    authoritative: (flags & 0x0400) !== 0,
    truncated: (flags & 0x0200) !== 0,
    recursionDesired: (flags & 0x0100) !== 0,
    rcode: flags & 0xf,
    questions,
    answers: readSection(counts[1]),
    authorities: readSection(counts[2]),
    additionals: readSection(counts[3]),
  };
}

function readRecord(bytes: Buffer, reader: { offset: number }): DnsRecord {
  const name = readName(bytes, reader);
  need(bytes, reader.offset + 10);
  const type = bytes.readUInt16BE(reader.offset);
  const recordClass = bytes.readUInt16BE(reader.offset + 2);
  const ttl = bytes.readUInt32BE(reader.offset + 4);
  const length = bytes.readUInt16BE(reader.offset + 8);
  const start = reader.offset + 10;
  need(bytes, start + length);
  reader.offset = start + length;
  const record: DnsRecord = {
    name,
    type,
    class: recordClass,
    ttl,
    data: bytes.subarray(start, start + length),
  };
  if (type === RR_TYPE.CNAME || type === RR_TYPE.NS || type === RR_TYPE.SOA) {
    record.target = readName(bytes, { offset: start });
  } else if (type === RR_TYPE.TXT) {
    record.texts = readTexts(record.data);
  }
  return record;
}

function readTexts(data: Buffer): string[] {
  const texts: string[] = [];
  for (let offset = 0; offset < data.length; ) {
    const length = data[offset] ?? 0;
    need(data, offset + 1 + length);
    texts.push(data.subarray(offset + 1, offset + 1 + length).toString('utf8'));
    offset += 1 + length;
  }
  return texts;
}

/** A pointer may only point backwards, so a chain of them ends; the bound is a second guard. */
const MAX_POINTERS = 64;

/** Reads a possibly compressed name at `reader.offset` and moves past it. */
export function readName(bytes: Buffer, reader: { offset: number }): string {
  const labels: string[] = [];
  let offset = reader.offset;
  let jumps = 0;
  let end: number | undefined;
  for (;;) {
    need(bytes, offset + 1);
    const length = bytes[offset] as number;
    if ((length & 0xc0) === 0xc0) {
      need(bytes, offset + 2);
      const pointer = bytes.readUInt16BE(offset) & 0x3fff;
      if (pointer >= offset || ++jumps > MAX_POINTERS) throw new MalformedMessageError('name pointer loop');
      end ??= offset + 2;
      offset = pointer;
      continue;
    }
    if (length === 0) {
      end ??= offset + 1;
      break;
    }
    need(bytes, offset + 1 + length);
    labels.push(
      bytes
        .subarray(offset + 1, offset + 1 + length)
        .toString('ascii')
        .toLowerCase(),
    );
    offset += 1 + length;
  }
  reader.offset = end;
  return labels.join('.');
}

function need(bytes: Buffer, length: number): void {
  if (bytes.length < length) throw new MalformedMessageError('cut short');
}
