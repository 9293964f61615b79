import { randomBytes } from 'node:crypto';
import net from 'node:net';
import tls from 'node:tls';
import { describe, expect, it } from 'vitest';
import { parseClientHello, peekClientHello } from '../src/solvers/client-hello.js';

/** The first bytes a real TLS client sends, captured by a plain TCP server. */
async function realClientHello(options: tls.ConnectionOptions): Promise<{ record: Buffer; peeked: unknown }> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const captured = new Promise<{ record: Buffer; peeked: unknown }>((resolve) => {
    server.once('connection', async (socket) => {
      const peeked = await peekClientHello(socket);
      socket.once('data', (record: Buffer) => {
        socket.destroy();
        resolve({ record, peeked });
      });
    });
  });
  const client = tls.connect({
    host: '127.0.0.1',
    port: (server.address() as net.AddressInfo).port,
    ...options,
  });
  client.on('error', () => {});
  const result = await captured;
  client.destroy();
  server.close();
  return result;
}

describe('reading a ClientHello', () => {
  it('finds the SNI name and ALPN protocols, and leaves the bytes for the TLS server', async () => {
    const { record, peeked } = await realClientHello({
      servername: 'WWW.Example.com',
      ALPNProtocols: ['acme-tls/1'],
    });
    expect(peeked).toEqual({ servername: 'www.example.com', alpnProtocols: ['acme-tls/1'] });
    expect(record[0]).toBe(0x16); // the unshifted record is read again, whole
    expect(parseClientHello(record.subarray(5))).toEqual(peeked);
  });

  it('never throws on truncated or random input', () => {
    for (let i = 0; i < 500; i++) {
      expect(() => parseClientHello(randomBytes(i % 300))).not.toThrow();
    }
  });
});
