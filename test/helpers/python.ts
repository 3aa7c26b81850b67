/**
 * The real Python Celery peer (test/peer/celery_peer.py) as a test partner: a client CLI (`send`, `result`)
 * whose JSON answer is parsed, and a worker process that is started, waited for and stopped.
 * Always /usr/bin/python3 (processes.ts PYTHON): the `python3` on PATH has no Celery.
 */
import { dirname } from 'node:path';
import { exec, lastJsonLine, peer, PEER, PYTHON, run, type Proc } from './processes.ts';
import type { RedisServer } from './redis.ts';

/** What `celery_peer.py send|result` prints (see celery_peer.result_report). */
export interface PeerResult {
  task_id: string;
  state: string;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  result: any;
  traceback: string | null;
  date_done?: string | null;
  children?: unknown[];
  group_id?: string;
  parent_id?: string;
}

export interface PeerSendOptions {
  kwargs?: Record<string, unknown>;
  queue?: string;
  countdown?: number;
  eta?: string;
  expires?: number;
  priority?: number;
  taskId?: string;
  /** Seconds the peer waits for the result (default 20). */
  timeout?: number;
  noWait?: boolean;
  /** Extra environment for the peer, e.g. { CELERY_PEER_PROTOCOL: '1' }. */
  env?: Record<string, string>;
}

/** JSON with every non-ASCII character escaped, so command-line arguments do not depend on the locale. */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

export function sendArgs(name: string, args: unknown[] = [], o: PeerSendOptions = {}): string[] {
  const argv = ['send', name, ...args.map(asciiJson)];
  if (o.kwargs) argv.push('--kwargs', asciiJson(o.kwargs));
  if (o.queue) argv.push('--queue', o.queue);
  if (o.countdown !== undefined) argv.push('--countdown', String(o.countdown));
  if (o.eta !== undefined) argv.push('--eta', o.eta);
  if (o.expires !== undefined) argv.push('--expires', String(o.expires));
  if (o.priority !== undefined) argv.push('--priority', String(o.priority));
  if (o.taskId !== undefined) argv.push('--task-id', o.taskId);
  argv.push('--timeout', String(o.timeout ?? 20));
  if (o.noWait) argv.push('--no-wait');
  return argv;
}

/** Runs one peer CLI command to its end and parses the JSON it printed last. */
export async function peerJson(redis: RedisServer, argv: string[], timeoutMs = 60_000,
  env: Record<string, string> = {}): Promise<PeerResult> {
  const { code, out } = await exec(peer(argv, redis.url(0), redis.url(1), env), timeoutMs);
  if (code !== 0) throw new Error(`celery_peer.py ${argv.join(' ')} exited with ${code}:\n${out}`);
  try {
    return lastJsonLine(out) as PeerResult;
  } catch {
    throw new Error(`celery_peer.py ${argv.join(' ')} printed no JSON:\n${out}`);
  }
}

/** `celery_peer.py send …` from a Python Celery client; resolves with the result it waited for. */
export function peerSend(redis: RedisServer, name: string, args: unknown[] = [], o: PeerSendOptions = {}): Promise<PeerResult> {
  return peerJson(redis, sendArgs(name, args, o), ((o.timeout ?? 20) + 30) * 1000, o.env);
}

/**
 * Runs Python code as a Celery client of the peer app (for what the CLI cannot send: chains, chords, groups).
 * The code sees `app`, `add`, `mul`, `xsum`, `echo`, `fail`, `chain`, `chord`, `group`, `signature`, `json`, and must
 * print one JSON line last.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function pyClient(redis: RedisServer, code: string, timeoutMs = 60_000): Promise<any> {
  const prelude = [
    'import json',
    'from celery import chain, chord, group, signature',
    'from celery_peer import app, add, mul, xsum, echo, fail',
  ].join('\n');
  const proc = run(PYTHON, ['-c', `${prelude}\n${code}`], {
    CELERY_PEER_BROKER: redis.url(0), CELERY_PEER_BACKEND: redis.url(1), PYTHONPATH: dirname(PEER),
  });
  const { code: rc, out } = await exec(proc, timeoutMs);
  if (rc !== 0) throw new Error(`python client exited with ${rc}:\n${out}`);
  try {
    return lastJsonLine(out);
  } catch {
    throw new Error(`python client printed no JSON:\n${out}`);
  }
}

/** `celery_peer.py result <id>`: a Python client reads (or, with a timeout, waits for) a stored result. */
export function peerResult(redis: RedisServer, taskId: string, timeoutSeconds?: number): Promise<PeerResult> {
  const argv = ['result', taskId];
  if (timeoutSeconds !== undefined) argv.push('--timeout', String(timeoutSeconds));
  return peerJson(redis, argv, ((timeoutSeconds ?? 0) + 30) * 1000);
}

/** A naive-UTC Celery `date_done` ("2026-11-30T00:39:18.283610") as epoch milliseconds. */
export function naiveUtcMs(text: string): number {
  const ms = Date.parse(`${text.slice(0, 23)}Z`);
  if (Number.isNaN(ms)) throw new Error(`not a date_done: ${text}`);
  return ms;
}

/** A Python Celery worker process (`celery_peer.py worker -Q … -c 1 -n …`), ready when start() resolves. */
export class PyWorker {
  private constructor(readonly proc: Proc, readonly name: string) {}

  static async start(redis: RedisServer, queues: string[], name = 'py1@%h', extra: string[] = [],
    env: Record<string, string> = {}): Promise<PyWorker> {
    const proc = peer(['worker', '-Q', queues.join(','), '-c', '1', '-n', name, ...extra], redis.url(0), redis.url(1), env);
    const w = new PyWorker(proc, name);
    try {
      await proc.waitFor(/\bready\.\s*$/m, 30_000);
    } catch (err) {
      await w.stop();
      throw err;
    }
    return w;
  }

  get out(): string {
    return this.proc.out;
  }

  /** Ids in the order this worker logged "Task <name>[<id>] received". */
  receivedOrder(): string[] {
    return [...this.out.matchAll(/Task [\w.]+\[([^\]]+)\] received/g)].map((m) => m[1]);
  }

  /** Warm shutdown (SIGTERM), then SIGKILL if it has not exited in time. */
  async stop(timeoutMs = 15_000): Promise<void> {
    if (this.proc.child.exitCode !== null || this.proc.child.signalCode !== null) return;
    this.proc.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((r) => (timer = setTimeout(() => r('late'), timeoutMs)));
    const how = await Promise.race([this.proc.exited.then(() => 'exited' as const), late]);
    clearTimeout(timer);
    if (how === 'late') {
      this.proc.kill('SIGKILL');
      await this.proc.exited;
    }
  }
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `check` until it returns true, failing with `what` after `timeoutMs`. */
export async function until(check: () => Promise<boolean> | boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(20);
  }
}
