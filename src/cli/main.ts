/**
 * The `celeriac` command: argv, signals, exit codes and console output live here and nowhere else.
 *   celeriac [-A <app>] worker | beat | call | result | status | inspect | control | revoke | purge
 */
import { createInterface } from 'node:readline/promises';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { parseLogLevel, type LogLevel } from '../common/logger.ts';
import { VERSION } from '../common/version.ts';
import { Control } from '../control/control.ts';
import { fatal, printJson, setDebug, UsageError } from './output.ts';
import { registerBeatCommand } from './beat-command.ts';
import { registerWorkerCommand } from './worker-command.ts';
import { registerStatusCommand } from './status-command.ts';
import { registerControlCommand } from './control-command.ts';
import { appFrom, jsonArg, list, number, type GlobalOptions } from './common-options.ts';

interface CallOptions {
  kwargs?: Record<string, unknown>;
  queue?: string;
  countdown?: number;
  eta?: string;
  expires?: number;
  priority?: number;
  taskId?: string;
  wait?: boolean;
  timeout?: number;
}

async function runCall(g: GlobalOptions, name: string, rawArgs: string[], o: CallOptions) {
  const { app } = await appFrom(g);
  const args = rawArgs.map((a) => {
    try {
      return JSON.parse(a) as unknown;
    } catch {
      return a; // a bare word is a string, as in `call send_sms 18888888 hello`
    }
  });
  if (o.kwargs !== undefined && (typeof o.kwargs !== 'object' || o.kwargs === null || Array.isArray(o.kwargs))) {
    throw new UsageError('--kwargs must be a JSON object');
  }
  if (o.eta !== undefined && Number.isNaN(new Date(o.eta).getTime())) throw new UsageError(`--eta is not a date: ${o.eta}`);
  try {
    const result = await app.sendTask(name, args, o.kwargs ?? {}, {
      queue: o.queue, countdown: o.countdown, eta: o.eta, expires: o.expires, priority: o.priority, taskId: o.taskId,
    });
    if (!o.wait) {
      process.stdout.write(result.id + '\n');
      return;
    }
    const value = await result.get({ timeout: (o.timeout ?? 30) * 1000 });
    printJson(value);
  } finally {
    await app.close();
  }
}

async function runResult(g: GlobalOptions, id: string, o: { timeout?: number }) {
  const { app } = await appFrom(g);
  try {
    const res = app.AsyncResult(id);
    if (o.timeout) {
      try {
        await res.get({ timeout: o.timeout * 1000, propagate: false });
      } catch (err) {
        if (!(err instanceof CeleriacError && err.code === ErrorCode.Timeout)) throw err;
      }
    }
    const meta = await res.meta();
    printJson({ id, state: meta?.status ?? 'PENDING', result: meta?.result ?? null, traceback: meta?.traceback ?? null });
  } finally {
    await app.close();
  }
}

async function runPurge(g: GlobalOptions, o: { queues?: string[]; force?: boolean }) {
  const { app } = await appFrom(g);
  try {
    const queues = o.queues?.length ? o.queues : [app.conf.taskDefaultQueue];
    if (!o.force) {
      if (!process.stdin.isTTY) throw new UsageError('purge asks for confirmation; without a terminal pass -f');
      const rl = createInterface({ input: process.stdin, output: process.stdout });
      const answer = await rl.question(
        `WARNING: This will remove all tasks from ${queues.length === 1 ? 'queue' : 'queues'}: ${queues.join(', ')}.\n` +
          '         There is no undo for this operation!\n\nAre you sure you want to delete all tasks (yes/NO)? ');
      rl.close();
      if (answer.trim().toLowerCase() !== 'yes') {
        process.stdout.write('Nothing purged.\n');
        return;
      }
    }
    const n = await (await app.broker()).purge(queues);
    process.stdout.write(`Purged ${n} ${n === 1 ? 'message' : 'messages'} from ${queues.length} known task ${queues.length === 1 ? 'queue' : 'queues'}.\n`);
  } finally {
    await app.close();
  }
}

const INSPECT_METHODS = ['ping', 'active', 'registered', 'stats', 'reserved', 'scheduled', 'revoked'] as const;

async function runInspect(g: GlobalOptions, method: string, o: { timeout?: number; destination?: string[] }) {
  if (!(INSPECT_METHODS as readonly string[]).includes(method)) {
    throw new UsageError(`unknown inspect method "${method}" (use one of ${INSPECT_METHODS.join(', ')})`);
  }
  const { app } = await appFrom(g);
  try {
    const replies = await new Control(app).inspect(method as (typeof INSPECT_METHODS)[number],
      { timeout: (o.timeout ?? 1) * 1000, destination: o.destination });
    printJson(replies);
    if (Object.keys(replies).length === 0) {
      process.stderr.write('Error: No nodes replied within time constraint.\n');
      process.exitCode = 1;
    }
  } finally {
    await app.close();
  }
}

async function runRevoke(g: GlobalOptions, ids: string[], o: { terminate?: boolean }) {
  const { app } = await appFrom(g);
  try {
    await new Control(app).revoke(ids, { terminate: o.terminate });
    process.stdout.write(`revoked: ${ids.join(', ')}\n`);
  } finally {
    await app.close();
  }
}

export function buildProgram(): Command {
  const program = new Command('celeriac')
    .description('Celery for TypeScript: run workers, call tasks and read results')
    .version(VERSION, '-V, --version')
    .option('-A, --app <module>', 'app module or package exporting `app` (.ts or .js)')
    .option('-b, --broker <url>', 'broker URL (overrides the app and CELERIAC_BROKER_URL)')
    .option('--backend <url>', 'result backend URL (overrides the app and CELERIAC_RESULT_BACKEND)')
    .addOption(new Option('--result-backend <url>', 'Celery\'s name for --backend').hideHelp())
    .option('-l, --loglevel <level>', 'debug, info, warning, error or critical', (v) => {
      try {
        return parseLogLevel(v);
      } catch (err) {
        throw new InvalidArgumentError((err as Error).message);
      }
    }, 'warning' as LogLevel)
    .showSuggestionAfterError(true)
    .exitOverride();

  const globals = (): GlobalOptions => {
    const o = program.opts<GlobalOptions & { resultBackend?: string }>();
    return { ...o, backend: o.backend ?? o.resultBackend };
  };
  program.hook('preAction', () => setDebug(globals().loglevel === 'debug'));

  registerWorkerCommand(program, globals);
  registerBeatCommand(program, globals);
  registerStatusCommand(program, globals);

  program.command('call')
    .description('send a task by name and print its id (or, with --wait, its result as JSON)')
    .argument('<task>', 'task name, e.g. celery_task.order_task.add')
    .argument('[args...]', 'positional arguments, each parsed as JSON (bare words are strings)')
    .option('--kwargs <json>', 'keyword arguments as a JSON object', jsonArg('--kwargs'))
    .option('--queue <queue>', 'queue to send to')
    .option('--countdown <seconds>', 'run no earlier than this many seconds from now', number('--countdown'))
    .option('--eta <iso>', 'run no earlier than this time (ISO 8601)')
    .option('--expires <seconds>', 'discard if not started within this many seconds', number('--expires'))
    .option('--priority <n>', 'priority 0-9 (0 is served first)', number('--priority', { integer: true }))
    .option('--task-id <id>', 'use this task id')
    .option('--wait', 'wait for the result and print it as JSON')
    .option('--timeout <seconds>', 'how long --wait waits (default 30)', number('--timeout'))
    .action((name, args, o) => runCall(globals(), name, args, o));

  program.command('result')
    .description('print a task\'s state and result as JSON')
    .argument('<id>', 'task id')
    .option('--timeout <seconds>', 'wait up to this long for the task to finish', number('--timeout'))
    .action((id, o) => runResult(globals(), id, o));

  program.command('inspect')
    .description('ask workers (celeriac or Python) and print their replies as JSON: ping, active, registered, stats, reserved, scheduled, revoked')
    .argument('<method>', 'ping | active | registered | stats | reserved | scheduled | revoked')
    .option('--timeout <seconds>', 'how long to collect replies (default 1)', number('--timeout'))
    .option('-d, --destination <nodes>', 'comma-separated node names', list)
    .action((method, o) => runInspect(globals(), method, o));

  registerControlCommand(program, globals);

  program.command('revoke')
    .description('revoke tasks on every worker (they are discarded when they arrive; --terminate stops running ones)')
    .argument('<ids...>', 'task ids')
    .option('--terminate', 'also stop the task if it is running')
    .action((ids, o) => runRevoke(globals(), ids, o));

  program.command('purge')
    .description('remove all waiting messages from queues')
    .option('-Q, --queues <list>', 'comma-separated queues (default: the default queue)', list)
    .option('-f, --force', 'do not ask for confirmation')
    .action((o) => runPurge(globals(), o));

  return program;
}

export async function main(argv = process.argv): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.exitCode === 0) process.exit(0);
      process.exit(2); // commander already printed one clear line
    }
    fatal(err);
  }
}
