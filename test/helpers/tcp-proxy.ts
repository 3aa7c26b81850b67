/**
 * A TCP proxy in front of a real server, for network faults: `stall()` keeps every connection open but forwards
 * nothing (new connections are accepted and held too), `resume()` lets the held bytes through, `cut()` drops every
 * connection (the listener stays, so clients can reconnect).
 */
import { connect, createServer, type Server, type Socket } from 'node:net';

export class TcpProxy {
  private readonly pairs = new Set<[Socket, Socket]>();
  private stalled = false;
  private constructor(private readonly server: Server, readonly port: number) {}

  static async start(targetPort: number, targetHost = '127.0.0.1'): Promise<TcpProxy> {
    let proxy: TcpProxy | null = null;
    const server = createServer((client) => proxy!.accept(client, targetPort, targetHost));
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    proxy = new TcpProxy(server, (server.address() as { port: number }).port);
    return proxy;
  }

  url(db = 0, scheme = 'redis', query = ''): string {
    return `${scheme}://127.0.0.1:${this.port}/${db}${query}`;
  }

  private accept(client: Socket, port: number, host: string): void {
    const upstream = connect(port, host);
    const pair: [Socket, Socket] = [client, upstream];
    this.pairs.add(pair);
    const end = () => {
      this.pairs.delete(pair);
      client.destroy();
      upstream.destroy();
    };
    client.on('error', end).on('close', end);
    upstream.on('error', end).on('close', end);
    client.pipe(upstream);
    upstream.pipe(client);
    if (this.stalled) this.hold(pair);
  }

  private hold([a, b]: [Socket, Socket]): void {
    a.pause();
    b.pause();
  }

  /** Nothing is forwarded either way until resume(); connections stay open. */
  stall(): void {
    this.stalled = true;
    for (const pair of this.pairs) this.hold(pair);
  }

  resume(): void {
    this.stalled = false;
    for (const [a, b] of this.pairs) {
      a.resume();
      b.resume();
    }
  }

  /** Drop every open connection (a plain destroy: resetAndDestroy() on a paused socket keeps Node 20 from exiting). */
  cut(): void {
    for (const [a, b] of [...this.pairs]) {
      a.destroy();
      b.destroy();
    }
    this.pairs.clear();
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}
