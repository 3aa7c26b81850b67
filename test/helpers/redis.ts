/**
 * A real redis-server for a test file, on a free port, with no persistence, stopped when the test ends.
 * `restart()` keeps the port (for reconnect tests); `aof: true` keeps data across restarts.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** Any reply to PING (+PONG, or -NOAUTH from a server that wants a password) means the server is up. */
function answersPing(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = connect(port, '127.0.0.1');
    const done = (up: boolean) => {
      sock.destroy();
      resolve(up);
    };
    sock.setTimeout(500, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => done(/^[+-]/.test(d.toString())));
  });
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

export class RedisServer {
  private proc: ChildProcess | null = null;
  private readonly clients: Redis[] = [];
  readonly dir = mkdtempSync(join(tmpdir(), 'celeriac-redis-'));
  constructor(readonly port: number, private readonly aof: boolean, private readonly extraArgs: string[] = []) {}

  url(db = 0): string {
    return `redis://127.0.0.1:${this.port}/${db}`;
  }

  async start(): Promise<void> {
    const args = ['--port', String(this.port), '--bind', '127.0.0.1', '--save', '', '--dir', this.dir,
      '--appendonly', this.aof ? 'yes' : 'no', '--daemonize', 'no', '--logfile', '', ...this.extraArgs];
    this.proc = spawn('redis-server', args, { stdio: 'ignore' });
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if (await answersPing(this.port)) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`redis-server did not start on port ${this.port}`);
  }

  /** SIGKILL by default (a crash); `graceful` sends SIGTERM, so Redis flushes its AOF first. */
  async stop(options: { graceful?: boolean } = {}): Promise<void> {
    const p = this.proc;
    this.proc = null;
    if (!p || p.exitCode !== null) return;
    await new Promise<void>((resolve) => {
      p.once('exit', () => resolve());
      p.kill(options.graceful ? 'SIGTERM' : 'SIGKILL');
    });
  }

  async restart(options: { graceful?: boolean } = {}): Promise<void> {
    await this.stop(options);
    await this.start();
  }

  /** A plain client for assertions; closed by dispose(). */
  client(db = 0): Redis {
    const c = new Redis({ port: this.port, host: '127.0.0.1', db });
    c.on('error', () => {});
    this.clients.push(c);
    return c;
  }

  async flush(): Promise<void> {
    const c = new Redis({ port: this.port, host: '127.0.0.1' });
    await c.flushall();
    c.disconnect();
  }

  async dispose(): Promise<void> {
    for (const c of this.clients.splice(0)) c.disconnect();
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

export async function startRedis(options: { aof?: boolean; args?: string[] } = {}): Promise<RedisServer> {
  const server = new RedisServer(await freePort(), options.aof ?? false, options.args ?? []);
  await server.start();
  return server;
}
