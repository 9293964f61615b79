/** @module test/support/redis — a throwaway redis-server on a free loopback port, plus a raw RESP client. */
import { connect } from 'node:net';
import { freePort } from './ports.js';
import { makeTempDir, startProcess } from './processes.js';

export type RedisReply = string | number | null | RedisError | RedisReply[];

export class RedisError extends Error {}

export interface Redis {
  /** 'redis://127.0.0.1:<port>' */
  readonly url: string;
  readonly port: number;
  readonly pid: number;
  /** Send one command over a fresh raw socket; server errors come back as RedisError values. */
  command(...args: string[]): Promise<RedisReply>;
  /** FLUSHALL, for isolation between tests sharing one server. */
  flushAll(): Promise<void>;
  output(): string;
  stop(): Promise<void>;
  /** Starts redis-server again on the same port and directory (with `persist`, with its data); `pid` changes. */
  restart(): Promise<void>;
}

export interface StartRedisOptions {
  /** Keep the data across `stop()`/`restart()` (append-only file, fsynced on every write). Default false. */
  persist?: boolean;
}

type Parsed = { value: RedisReply; next: number } | undefined;

/** Parse one RESP2 reply from `buffer` at `at`; undefined when more bytes are needed. */
function parseReply(buffer: Buffer, at: number): Parsed {
  const lineEnd = buffer.indexOf('\r\n', at);
  if (lineEnd === -1) return undefined;
  const type = String.fromCharCode(buffer[at] ?? 0);
  const line = buffer.toString('utf8', at + 1, lineEnd);
  const next = lineEnd + 2;
  switch (type) {
    case '+':
      return { value: line, next };
    case '-':
      return { value: new RedisError(line), next };
    case ':':
      return { value: Number(line), next };
    case '$': {
      const length = Number(line);
      if (length < 0) return { value: null, next };
      if (buffer.length < next + length + 2) return undefined;
      return { value: buffer.toString('utf8', next, next + length), next: next + length + 2 };
    }
    case '*': {
      const count = Number(line);
      if (count < 0) return { value: null, next };
      const items: RedisReply[] = [];
      let cursor = next;
      for (let i = 0; i < count; i++) {
        const item = parseReply(buffer, cursor);
        if (item === undefined) return undefined;
        items.push(item.value);
        cursor = item.next;
      }
      return { value: items, next: cursor };
    }
    default:
      throw new Error(`unexpected RESP reply: ${JSON.stringify(buffer.toString('utf8'))}`);
  }
}

/** One command to redis on host:port over a new raw TCP connection; resolves with the parsed reply. */
export function redisCommand(
  port: number,
  args: readonly string[],
  host = '127.0.0.1',
  timeoutMs = 2000,
): Promise<RedisReply> {
  const request = `*${args.length}\r\n${args.map((arg) => `$${Buffer.byteLength(arg)}\r\n${arg}\r\n`).join('')}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host });
    let received = Buffer.alloc(0);
    const fail = (error: Error) => {
      socket.destroy();
      reject(error);
    };
    socket.setTimeout(timeoutMs, () => fail(new Error(`redis ${args[0] ?? ''} timed out`)));
    socket.once('error', fail);
    socket.once('connect', () => socket.write(request));
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      try {
        const parsed = parseReply(received, 0);
        if (parsed === undefined) return;
        socket.destroy();
        resolve(parsed.value);
      } catch (error) {
        fail(error as Error);
      }
    });
    socket.once('end', () => fail(new Error('redis closed the connection before replying')));
  });
}

/** Start redis-server (no daemon) in a temp dir; ready once PING answers PONG. No persistence unless asked. */
export async function startRedis(options: StartRedisOptions = {}): Promise<Redis> {
  const port = await freePort();
  const dir = makeTempDir('autotls-test-redis-');
  const persistence = options.persist
    ? ['--appendonly', 'yes', '--appendfsync', 'always']
    : ['--appendonly', 'no'];
  const start = () =>
    startProcess({
      name: 'redis-server',
      command: 'redis-server',
      args: [
        ...['--port', String(port), '--bind', '127.0.0.1', '--save', '', ...persistence],
        ...['--daemonize', 'no', '--dir', dir, '--protected-mode', 'yes'],
      ],
      cwd: dir,
      notInstalledMessage: 'redis-server is not installed: run .ci/run or apt-get install redis-server',
      ready: [
        { port },
        {
          description: 'PING answering PONG',
          check: async () => (await redisCommand(port, ['PING'])) === 'PONG',
        },
      ],
    });
  let child = await start();
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() {
      return child.pid;
    },
    command: (...args) => redisCommand(port, args),
    async flushAll() {
      const reply = await redisCommand(port, ['FLUSHALL']);
      if (reply !== 'OK') throw new Error(`FLUSHALL answered ${String(reply)}`);
    },
    output: () => child.output(),
    stop: () => child.stop(),
    async restart() {
      await child.stop();
      child = await start();
    },
  };
}
