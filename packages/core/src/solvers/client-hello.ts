/** @module Reads the SNI and ALPN of a TLS ClientHello without consuming it, so the right server can take it. */
import type net from 'node:net';

export interface ClientHelloSummary {
  servername?: string;
  alpnProtocols: string[];
}

/** A ClientHello fits one record in practice; anything larger is not worth waiting for. */
const MAX_RECORD_BYTES = 16_384 + 5;
/** A client that has not sent its ClientHello by then gets the ordinary TLS path. */
const PEEK_TIMEOUT_MS = 5_000;
const HANDSHAKE_RECORD = 0x16;
const CLIENT_HELLO = 0x01;
const EXTENSION_SERVER_NAME = 0x0000;
const EXTENSION_ALPN = 0x0010;

/**
 * Waits for the first TLS record on `socket`, parses it, and puts the bytes back (`unshift`) so the TLS
 * server reads them as if nothing happened. Resolves `undefined` for anything that is not a ClientHello.
 */
export function peekClientHello(socket: net.Socket): Promise<ClientHelloSummary | undefined> {
  return new Promise((resolve) => {
    let received = Buffer.alloc(0);
    const finish = (summary: ClientHelloSummary | undefined) => {
      clearTimeout(timer);
      socket.off('readable', onReadable).off('close', onClose).off('error', onClose);
      if (received.length > 0) socket.unshift(received);
      resolve(summary);
    };
    const onClose = () => finish(undefined);
    const onReadable = () => {
      for (let chunk = socket.read() as Buffer | null; chunk; chunk = socket.read() as Buffer | null) {
        received = Buffer.concat([received, chunk]);
      }
      if (received.length >= 1 && received[0] !== HANDSHAKE_RECORD) return finish(undefined);
      if (received.length < 5) return;
      const recordBytes = 5 + received.readUInt16BE(3);
      if (recordBytes > MAX_RECORD_BYTES) return finish(undefined);
      if (received.length >= recordBytes) finish(parseClientHello(received.subarray(5, recordBytes)));
    };
    const timer = setTimeout(() => finish(undefined), PEEK_TIMEOUT_MS);
    socket.on('readable', onReadable).on('close', onClose).on('error', onClose);
  });
}

/** Parses a ClientHello handshake message; `undefined` when it is malformed (hostile input is common here). */
export function parseClientHello(message: Buffer): ClientHelloSummary | undefined {
  try {
    let at = 0;
    const u8 = () => message.readUInt8(at++);
    const u16 = () => {
      const value = message.readUInt16BE(at);
      at += 2;
      return value;
    };
    const skip = (length: number) => {
      at += length;
      if (at > message.length) throw new RangeError('truncated');
    };
    if (u8() !== CLIENT_HELLO) return undefined;
    skip(3 + 2 + 32); // handshake length, legacy version, random
    skip(u8()); // session id
    skip(u16()); // cipher suites
    skip(u8()); // compression methods
    const summary: ClientHelloSummary = { alpnProtocols: [] };
    if (at >= message.length) return summary;
    const extensionsEnd = at + 2 + message.readUInt16BE(at);
    skip(2);
    while (at + 4 <= extensionsEnd) {
      const type = u16();
      const length = u16();
      const end = at + length;
      if (type === EXTENSION_SERVER_NAME) {
        skip(2 + 1); // list length, name type (host_name)
        const nameLength = u16();
        summary.servername = message.toString('ascii', at, at + nameLength).toLowerCase();
      } else if (type === EXTENSION_ALPN) {
        skip(2);
        while (at < end) {
          const protocolLength = u8();
          summary.alpnProtocols.push(message.toString('ascii', at, at + protocolLength));
          skip(protocolLength);
        }
      }
      at = end;
    }
    return summary;
  } catch {
    return undefined;
  }
}
