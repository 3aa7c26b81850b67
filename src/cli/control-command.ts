/**
 * `celeriac control <method> [args…]`: Celery's `celery control`, for celeriac and Python workers alike (Redis; on
 * SQLite, the celeriac workers on the file). The positional arguments become the method's arguments as Celery's
 * `Panel.meta` names them (celery/worker/control.py), e.g. `rate_limit <task> <rate>` sends `{task_name, rate_limit}`.
 * Replies print as Celery prints them:
 *
 *   ->  w1@host: OK
 *           new rate limit set successfully
 *
 * (`-j` prints `{node: reply}` as JSON). No reply within the timeout: exit 1. `revoke` and `terminate` addressed to
 * every worker are also stored in the broker's revoke store first, as `celeriac revoke` does.
 */
import type { Command } from 'commander';
import { Control } from '../control/control.ts';
import { printJson, UsageError } from './output.ts';
import { appFrom, list, number, type GlobalOptions } from './common-options.ts';

type Parse = (value: string) => unknown;
const str: Parse = (v) => v;
const float = (what: string): Parse => (v) => {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n)) throw new UsageError(`${what} must be a number, got "${v}"`);
  return n;
};
const int = (what: string): Parse => (v) => {
  const n = Number(v);
  if (!Number.isInteger(n)) throw new UsageError(`${what} must be a whole number, got "${v}"`);
  return n;
};

interface Meta {
  /** Positional arguments in order: name, how to read it. */
  args?: Array<[string, Parse]>;
  /** How many positional arguments must be given. */
  required?: number;
  /** The name that takes the remaining arguments, as a list. */
  variadic?: string;
  signature: string;
}

/** Celery 5.2's visible control commands (`Panel.meta`), with their arguments. */
export const CONTROL_METHODS: Record<string, Meta> = {
  revoke: { variadic: 'task_id', required: 1, signature: '<id1> [id2 [... [idN]]]' },
  terminate: { args: [['signal', str]], variadic: 'task_id', required: 2, signature: '<signal> <id1> [id2 [... [idN]]]' },
  rate_limit: { args: [['task_name', str], ['rate_limit', str]], required: 2,
    signature: '<task_name> <rate_limit (e.g., 5/s | 5/m | 5/h)>' },
  time_limit: { args: [['task_name', str], ['soft', float('soft_secs')], ['hard', float('hard_secs')]], required: 2,
    signature: '<task_name> <soft_secs> [hard_secs]' },
  heartbeat: { signature: '' },
  enable_events: { signature: '' },
  disable_events: { signature: '' },
  election: { signature: '' },
  pool_grow: { args: [['n', int('N')]], signature: '[N=1]' },
  pool_shrink: { args: [['n', int('N')]], signature: '[N=1]' },
  pool_restart: { signature: '' },
  autoscale: { args: [['max', int('max')], ['min', int('min')]], signature: '[max [min]]' },
  shutdown: { signature: '' },
  add_consumer: { args: [['queue', str], ['exchange', str], ['exchange_type', str], ['routing_key', str]], required: 1,
    signature: '<queue> [exchange [type [routing_key]]]' },
  cancel_consumer: { args: [['queue', str]], required: 1, signature: '<queue>' },
};

/** The arguments of `method` from the command line, as Celery's `_compile_arguments` builds them. */
export function controlArguments(method: string, argv: string[]): Record<string, unknown> {
  const meta = CONTROL_METHODS[method];
  if (!meta) {
    throw new UsageError(`unknown control method "${method}" (use one of ${Object.keys(CONTROL_METHODS).join(', ')})`);
  }
  const usage = () => new UsageError(`control ${method} takes: ${meta.signature || 'no arguments'}`);
  if (argv.length < (meta.required ?? 0)) throw usage();
  const out: Record<string, unknown> = {};
  const fixed = meta.args ?? [];
  fixed.slice(0, argv.length).forEach(([name, parse], i) => (out[name] = parse(argv[i])));
  const rest = argv.slice(fixed.length);
  if (meta.variadic) out[meta.variadic] = rest;
  else if (rest.length > 0) throw usage();
  return out;
}

const indent = (text: string, n: number) => text.split('\n').map((l) => ' '.repeat(n) + l).join('\n');

/** Celery's `CLIContext.pretty` (celery/bin/base.py): a status word and the text shown under it. */
export function prettyReply(reply: unknown): { status: 'OK' | 'ERROR'; text: string } {
  if (Array.isArray(reply)) {
    return { status: 'OK', text: reply.length === 0 ? '- empty -' : reply.map((i) => `* ${typeof i === 'string' ? i : JSON.stringify(i)}`).join('\n') };
  }
  if (reply !== null && typeof reply === 'object') {
    const r = reply as Record<string, unknown>;
    if ('ok' in r) return { status: 'OK', text: indent(prettyReply(r.ok).text, 4) };
    if ('error' in r) return { status: 'ERROR', text: indent(prettyReply(r.error).text, 4) };
    return { status: 'OK', text: JSON.stringify(reply, Object.keys(r).sort(), 4) };
  }
  if (typeof reply === 'string') return { status: 'OK', text: reply };
  return { status: 'OK', text: reply === null || reply === undefined ? 'None' : String(reply) };
}

/** `->  <node>: OK` and the reply under it, for each node (celery/bin/control.py _say_remote_command_reply). */
export function printReplies(replies: Record<string, unknown>): void {
  for (const [node, reply] of Object.entries(replies)) {
    const { status, text } = prettyReply(reply);
    process.stdout.write(`->  ${node}: ${status}\n${indent(text, 4)}\n`);
  }
}

interface ControlOptions {
  timeout?: number;
  destination?: string[];
  json?: boolean;
}

async function runControl(g: GlobalOptions, method: string, argv: string[], o: ControlOptions): Promise<void> {
  const args = controlArguments(method, argv);
  const { app } = await appFrom(g);
  try {
    if ((method === 'revoke' || method === 'terminate') && !o.destination) {
      // lasts for workers that start later too, as `celeriac revoke` (app.revoke) does
      await (await app.broker()).storeRevokes(args.task_id as string[]);
    }
    const replies = await new Control(app).broadcast(method, args,
      { timeout: (o.timeout ?? 1) * 1000, destination: o.destination });
    if (o.json) printJson(replies);
    else printReplies(replies);
    if (Object.keys(replies).length === 0) {
      process.stderr.write('Error: No nodes replied within time constraint.\n');
      process.exitCode = 1;
    }
  } finally {
    await app.close();
  }
}

export function registerControlCommand(program: Command, globals: () => GlobalOptions): void {
  const methods = Object.entries(CONTROL_METHODS).map(([m, meta]) => `  ${m} ${meta.signature}`.trimEnd()).join('\n');
  program.command('control')
    .description('tell workers (celeriac or Python) to do something and print their replies: shutdown, rate_limit, time_limit, revoke, …')
    .argument('<method>', Object.keys(CONTROL_METHODS).join(' | '))
    .argument('[args...]', 'the method\'s arguments, in Celery\'s order')
    .option('-t, --timeout <seconds>', 'how long to collect replies (default 1)', number('--timeout'))
    .option('-d, --destination <nodes>', 'comma-separated node names', list)
    .option('-j, --json', 'print the replies as one JSON object {node: reply}')
    .addHelpText('after', `\nMethods:\n${methods}\n`)
    .action((method: string, argv: string[], o: ControlOptions) => runControl(globals(), method, argv, o));
}
