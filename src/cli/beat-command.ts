/**
 * `celeriac -A <app> beat [-l info] [--list]`: the scheduler process (banner, signals, exit), and `startBeat`, the
 * beat half of `worker -B`. The scheduling itself is src/beat/beat.ts.
 */
import type { Command } from 'commander';
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { VERSION } from '../common/version.ts';
import { celeryTimestamp, createLogger, type Logger, type LogLevel } from '../common/logger.ts';
import type { Celeriac } from '../app/app.ts';
import { Beat } from '../beat/beat.ts';
import { formatInZone, scheduleStatus } from '../beat/inspect.ts';
import { loadIncludes, type LoadedApp } from './load-app.ts';
import { UsageError } from './output.ts';
import { onParentGone } from './parent-watch.ts';
import { appFrom, type GlobalOptions } from './common-options.ts';

async function loadFor(g: GlobalOptions, what: string): Promise<LoadedApp> {
  if (!g.app) throw new UsageError(`${what} needs an app: celeriac -A <module> ${what}`);
  const loaded = await appFrom(g);
  await loadIncludes(loaded); // task modules may set a task's default queue or priority
  return loaded;
}

/** Start a Beat beside other work in this process (`worker -B`); stop it with `beat.stop()`. */
export async function startBeat(app: Celeriac, logger: Logger): Promise<Beat> {
  const beat = new Beat(app, { logger });
  await beat.start();
  return beat;
}

function banner(app: Celeriac, beat: Beat, brokerUrl: string, level: LogLevel): string {
  return [
    `celeriac beat v${VERSION} is starting.`,
    `LocalTime -> ${celeryTimestamp().slice(0, 19)}`,
    'Configuration ->',
    `    . broker -> ${brokerUrl}`,
    `    . app -> ${app.main}`,
    '    . scheduler -> celeriac (state and leader lock in the broker)',
    `    . timezone -> ${beat.timezone}`,
    `    . entries -> ${beat.entries.length}`,
    `    . logfile -> [stderr]@%${level.toUpperCase()}`,
    `    . lock lease -> ${beat.lockTtlMs / 1000}s`,
  ].join('\n');
}

async function runBeat(g: GlobalOptions): Promise<void> {
  const { app } = await loadFor(g, 'beat');
  const logger = createLogger({ level: g.loglevel });
  const beat = new Beat(app, { logger });
  const broker = await app.broker();
  process.stdout.write(banner(app, beat, broker.displayUrl, g.loglevel) + '\n');
  let signals = 0;
  const onSignal = () => {
    if (++signals > 1) process.exit(1);
    void beat.stop().finally(() => app.close()).finally(() => process.exit(0));
  };
  for (const s of ['SIGINT', 'SIGTERM', 'SIGQUIT'] as const) process.on(s, onSignal);
  onParentGone(onSignal);
  await beat.start();
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  return rows.map((r) => r.map((cell, i) => (i === r.length - 1 ? cell : cell.padEnd(widths[i]))).join('  ')).join('\n');
}

async function listSchedule(g: GlobalOptions): Promise<void> {
  const { app } = await loadFor(g, 'beat');
  try {
    const now = Date.now();
    const status = await scheduleStatus(app, now).catch(async (err: unknown) => {
      if (err instanceof CeleriacError) throw err;
      const url = (await app.broker()).displayUrl;
      throw new CeleriacError(ErrorCode.Connection, `cannot read beat state from ${url}: ${(err as Error).message}`, { cause: err });
    });
    const tz = status.timezone;
    const rows = [['ENTRY', 'TASK', 'SCHEDULE', 'LAST RUN', 'NEXT RUN']];
    for (const e of status.entries) {
      const next = e.nextRun === Infinity ? 'never' : e.nextRun <= now ? 'due now' : formatInZone(e.nextRun, tz);
      rows.push([e.name, e.task, e.schedule, e.lastRun === null ? 'never' : formatInZone(e.lastRun, tz), next]);
    }
    let out = `Timezone: ${tz}\n`;
    out += status.entries.length ? table(rows) : 'No entries in beatSchedule.';
    if (status.removed.length) out += `\nState kept for entries no longer scheduled (a beat forgets it): ${status.removed.join(', ')}`;
    process.stdout.write(out + '\n');
  } finally {
    await app.close();
  }
}

export function registerBeatCommand(program: Command, globals: () => GlobalOptions): void {
  program.command('beat')
    .description('start the scheduler: send the app\'s beatSchedule entries when due (several may run; one sends)')
    .option('--list', 'print each entry, its schedule, last run and next run, then exit')
    .action((o: { list?: boolean }) => (o.list ? listSchedule(globals()) : runBeat(globals())));
}
