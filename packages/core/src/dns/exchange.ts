/** @module One DNS request and its answer: UDP first, TCP when the answer is truncated (RFC 7766). */
import { createSocket } from 'node:dgram';
import { lookup } from 'node:dns/promises';
import { isIP, Socket } from 'node:net';
import { decodeMessage, MalformedMessageError } from './wire.js';

export interface ServerAddress {
  host: string;
  port: number;
}

/** How long one UDP try waits: DNS answers on a working path take milliseconds; 2 s is what dig waits. */
export const DEFAULT_DNS_TIMEOUT_MS = 2_000;
/** UDP datagrams get lost; one more try before the error (the request is idempotent). */
const UDP_TRIES = 2;

/** 'host', 'host:port', '[v6]:port' or a bare IPv6 address; port 53 unless given. */
export function parseServerAddress(value: string): ServerAddress {
  const bracketed = /^\[([^\]]+)\](?::(\d+))?$/.exec(value);
  if (bracketed) return { host: bracketed[1] as string, port: port(value, bracketed[2]) };
  if (isIP(value) === 6) return { host: value, port: 53 };
  const [host, portText, extra] = value.split(':');
  if (!host || extra !== undefined)
    throw new TypeError(`DNS server ${JSON.stringify(value)} is not host[:port]`);
  return { host, port: port(value, portText) };
}

function port(value: string, text: string | undefined): number {
  if (text === undefined) return 53;
  const number = Number(text);
  if (!Number.isInteger(number) || number < 1 || number > 65535) {
    throw new TypeError(`DNS server ${JSON.stringify(value)} has no valid port`);
  }
  return number;
}

export function formatServerAddress(server: ServerAddress): string {
  return isIP(server.host) === 6 ? `[${server.host}]:${server.port}` : `${server.host}:${server.port}`;
}

export class DnsTimeoutError extends Error {
  constructor(server: ServerAddress, transport: string, timeoutMs: number) {
    super(
      `DNS server ${formatServerAddress(server)} did not answer over ${transport} within ${timeoutMs} ms`,
    );
    this.name = 'DnsTimeoutError';
  }
}

export interface ExchangeOptions {
  timeoutMs?: number;
}

/** Sends `request` and resolves with the raw answer that carries its ID (raw: TSIG signs the bytes). */
export async function exchange(
  server: ServerAddress,
  request: Buffer,
  options: ExchangeOptions = {},
): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_DNS_TIMEOUT_MS;
  const address = isIP(server.host) ? server.host : (await lookup(server.host)).address;
  const target = { host: address, port: server.port };
  let answer: Buffer | undefined;
  for (let attempt = 1; attempt <= UDP_TRIES && !answer; attempt++) {
    answer = await exchangeUdp(target, request, timeoutMs).catch((error: unknown) => {
      if (error instanceof DnsTimeoutError && attempt < UDP_TRIES) return undefined;
      throw error instanceof DnsTimeoutError ? new DnsTimeoutError(server, 'UDP', timeoutMs) : error;
    });
  }
  if (answer && !decodeMessage(answer).truncated) return answer;
  return exchangeTcp(target, request, timeoutMs).catch((error: unknown) => {
    throw error instanceof DnsTimeoutError ? new DnsTimeoutError(server, 'TCP', timeoutMs) : error;
  });
}

function exchangeUdp(server: ServerAddress, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = createSocket(isIP(server.host) === 6 ? 'udp6' : 'udp4');
    const timer = setTimeout(() => finish(new DnsTimeoutError(server, 'UDP', timeoutMs)), timeoutMs);
    let done = false;
    const finish = (error: Error | undefined, answer?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.close();
      if (error) reject(error);
      else resolve(answer as Buffer);
    };
    socket.on('error', (error) => finish(error));
    socket.on('message', (answer) => {
      // Anything without our ID is a late answer to an earlier try, or noise: keep waiting.
      if (answer.length >= 12 && answer.readUInt16BE(0) === request.readUInt16BE(0))
        finish(undefined, answer);
    });
    socket.send(request, server.port, server.host, (error) => {
      if (error) finish(error);
    });
  });
}

function exchangeTcp(server: ServerAddress, request: Buffer, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = new Socket();
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => finish(new DnsTimeoutError(server, 'TCP', timeoutMs)), timeoutMs);
    let done = false;
    const finish = (error: Error | undefined, answer?: Buffer) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (error) reject(error);
      else resolve(answer as Buffer);
    };
    socket.on('error', (error) => finish(error));
    socket.on('close', () =>
      finish(new MalformedMessageError('the TCP connection closed before the answer')),
    );
    socket.on('data', (chunk) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 2) return;
      const length = received.readUInt16BE(0);
      if (received.length >= 2 + length) finish(undefined, received.subarray(2, 2 + length));
    });
    socket.connect(server.port, server.host, () => {
      const prefix = Buffer.alloc(2);
      prefix.writeUInt16BE(request.length);
      socket.write(Buffer.concat([prefix, request]));
    });
  });
}
