/**
 * Real child processes for tests: the celeriac CLI and the Python Celery peer, with their output collected so a test
 * can wait for a log line; every process started here is killed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const CLI = fileURLToPath(new URL('../../bin/celeriac', import.meta.url));
export const PEER = fileURLToPath(new URL('../peer/celery_peer.py', import.meta.url));
export const PYTHON = '/usr/bin/python3';

const live = new Set<ChildProcess>();
process.on('exit', () => {
  for (const p of live) p.kill('SIGKILL');
});

export class Proc {
  out = '';
  readonly exited: Promise<number | null>;
  constructor(readonly child: ChildProcess) {
    live.add(child);
    child.stdout?.on('data', (d) => (this.out += d));
    child.stderr?.on('data', (d) => (this.out += d));
    this.exited = new Promise((resolve) => child.once('exit', (code, signal) => {
      live.delete(child);
      resolve(code ?? (signal ? -1 : null));
    }));
  }

  async waitFor(pattern: RegExp | string, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const hit = () => (typeof pattern === 'string' ? this.out.includes(pattern) : pattern.test(this.out));
    while (!hit()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${pattern}; output so far:\n${this.out}`);
      if (this.child.exitCode !== null) throw new Error(`process exited (${this.child.exitCode}) before ${pattern}:\n${this.out}`);
      await new Promise((r) => setTimeout(r, 25));
    }
  }

  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    this.child.kill(signal);
  }
}

export function run(cmd: string, args: string[], env: Record<string, string> = {}, cwd = ROOT): Proc {
  return new Proc(spawn(cmd, args, { cwd, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] }));
}

export function celeriac(args: string[], env: Record<string, string> = {}): Proc {
  return run(process.execPath, [CLI, ...args], env);
}

/** Run to completion; resolves with exit code and output. */
export async function exec(proc: Proc, timeoutMs = 60_000): Promise<{ code: number | null; out: string }> {
  const timer = setTimeout(() => proc.kill('SIGKILL'), timeoutMs);
  const code = await proc.exited;
  clearTimeout(timer);
  return { code, out: proc.out };
}

export function peer(args: string[], broker: string, backend: string, extraEnv: Record<string, string> = {}): Proc {
  return run(PYTHON, [PEER, ...args], { CELERY_PEER_BROKER: broker, CELERY_PEER_BACKEND: backend, ...extraEnv });
}

/** The last line of output that parses as JSON. */
export function lastJsonLine(out: string): any {
  const lines = out.trim().split('\n').reverse();
  for (const line of lines) {
    try {
      return JSON.parse(line);
    } catch {
      // not JSON: a log line
    }
  }
  throw new Error(`no JSON line in output:\n${out}`);
}
