/**
 * `celeriac status [-d node,…]`: which workers are alive, on every broker — a health probe for Docker, systemd and
 * Kubernetes. It reads the heartbeats celeriac workers keep in the broker (renewed with their leases), so it needs
 * no remote-control channel; on Redis it also pings, so Python Celery workers on the same broker are listed too.
 *
 * Exit status: 0 when at least one worker is alive (with -d: every named node), 1 otherwise.
 */
import type { Command } from 'commander';
import { Control } from '../control/control.ts';
import { printJson } from './output.ts';
import { appFrom, list, number, type GlobalOptions } from './common-options.ts';

interface StatusOptions {
  destination?: string[];
  timeout?: number;
  json?: boolean;
}

interface NodeStatus {
  node: string;
  kind: 'celeriac' | 'celery';
  pid?: number;
  /** Seconds the last heartbeat still covers (celeriac workers). */
  aliveFor?: number;
}

/** `<node>:<pid>:<random>`, the instance id a worker heartbeats under; the node name itself contains no colon. */
function parseInstance(instance: string): { node: string; pid?: number } {
  const m = /^(.*):(\d+):[^:]*$/.exec(instance);
  return m ? { node: m[1], pid: Number(m[2]) } : { node: instance };
}

async function runStatus(g: GlobalOptions, o: StatusOptions): Promise<void> {
  const { app } = await appFrom(g);
  try {
    const broker = await app.broker();
    const eviction = await broker.evictionWarning?.() ?? null;
    if (eviction && !o.json) process.stderr.write(`WARNING: ${eviction}\n`);
    const now = Date.now();
    const nodes: NodeStatus[] = (await broker.workers()).map((w) => ({
      ...parseInstance(w.instance), kind: 'celeriac' as const, aliveFor: Math.max(0, Math.round((w.aliveUntil - now) / 1000)),
    }));
    const wanted = o.destination ?? [];
    const missing = () => wanted.filter((n) => !nodes.some((s) => s.node === n));
    // only Python workers are missing from the heartbeats: ask where they can be (Redis), not on a SQLite file
    if (broker.control?.pythonPeers && (wanted.length === 0 || missing().length > 0)) {
      const replies = await new Control(app).ping({ timeout: (o.timeout ?? 1) * 1000 });
      for (const node of Object.keys(replies)) if (!nodes.some((s) => s.node === node)) nodes.push({ node, kind: 'celery' });
    }
    const shown = wanted.length > 0 ? nodes.filter((s) => wanted.includes(s.node)) : nodes;
    const ok = wanted.length > 0 ? missing().length === 0 : shown.length > 0;
    if (o.json) {
      printJson({ ok, nodes: shown, missing: missing(), warnings: eviction ? [eviction] : [] });
    } else {
      for (const s of shown) {
        const detail = s.kind === 'celeriac' ? `pid ${s.pid ?? '?'}, heartbeat valid ${s.aliveFor}s more` : 'replied to ping';
        process.stdout.write(`-> ${s.node}: OK (${detail})\n`);
      }
      for (const n of missing()) process.stdout.write(`-> ${n}: not seen\n`);
      const count = new Set(shown.map((s) => s.node)).size;
      process.stdout.write(count === 0 ? 'No nodes online.\n' : `\n${count} ${count === 1 ? 'node' : 'nodes'} online.\n`);
    }
    if (!ok) process.exitCode = 1;
  } finally {
    await app.close();
  }
}

export function registerStatusCommand(program: Command, globals: () => GlobalOptions): void {
  program.command('status')
    .description('list the workers that are alive; exits 1 when none is (or a -d node is not): a health probe')
    .option('-d, --destination <nodes>', 'comma-separated node names that must be alive, e.g. w1@host', list)
    .option('--timeout <seconds>', 'how long to wait for ping replies where the broker has remote control (default 1)',
      number('--timeout'))
    .option('--json', 'print {ok, nodes, missing, warnings} as JSON')
    .action((o: StatusOptions) => runStatus(globals(), o));
}
