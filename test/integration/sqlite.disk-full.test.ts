// The SQLite file on a full disk, for real: a 4 MiB tmpfs mounted for this test, filled by a filler file while a
// worker process (the CLI) runs on that file. Three times over: fill, publish until publish fails (E_BROKER_FULL, a
// message that says the disk is full and names the file), free the space, then every task whose publish resolved
// runs to SUCCESS, new tasks run, and the write-ahead log was checkpointed back to a small size.
// Needs root (mount -t tmpfs); without it the test fails and says so, it does not skip.
import { after, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, ftruncateSync, fstatSync, mkdirSync, mkdtempSync, openSync, readSync, rmSync, statSync, unlinkSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Celeriac, CeleriacError } from 'celeriac';
import { celeriac, type Proc } from '../helpers/processes.ts';

const DISK = '4m';
/** Left free after filling, so that some publishes fit before the disk is full. */
const SLACK = 256 * 1024;
const CYCLES = 3;
/**
 * "Small again": the log after a TRUNCATE checkpoint, plus what the writes since then appended. Without checkpoints
 * it only grows here (SQLite's own waits for ~4 MB, the whole disk), by some 300 KiB a cycle.
 */
const SMALL_WAL = 1024 * 1024;

const dir = mkdtempSync(join(tmpdir(), 'celeriac-disk-full-'));
const mnt = join(dir, 'disk');
mkdirSync(mnt);
const file = join(mnt, 'celeriac.db');
const wal = `${file}-wal`;
const url = `sqlite:///${file}`;
let mounted = false;
let worker: Proc | null = null;
let app: Celeriac | null = null;

after(async () => {
  if (worker && worker.child.exitCode === null && worker.child.signalCode === null) {
    worker.kill('SIGTERM');
    const timer = setTimeout(() => worker?.kill('SIGKILL'), 10_000);
    await worker.exited;
    clearTimeout(timer);
  }
  await app?.close();
  if (mounted) {
    try {
      execFileSync('umount', [mnt], { stdio: 'pipe' });
    } catch {
      execFileSync('umount', ['-l', mnt], { stdio: 'pipe' }); // still busy: detach it, the kernel frees it later
    }
  }
  rmSync(dir, { recursive: true, force: true });
});

function startWorker(name: string): Proc {
  return celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', '-c', '4', '-n', `${name}@%h`],
    { CELERIAC_BROKER_URL: url, CELERIAC_RESULT_BACKEND: url, TEST_LEASE_TIMEOUT: '3' });
}

async function stopWorker(): Promise<void> {
  worker!.kill('SIGTERM');
  assert.equal(await worker!.exited, 0, `warm shutdown; output (tail):\n${worker!.out.slice(-2000)}`);
  worker = null;
}

function mountDisk(): void {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${DISK}`, 'tmpfs', mnt], { stdio: 'pipe' });
  } catch (err) {
    const why = String((err as { stderr?: Buffer }).stderr ?? (err as Error).message).trim();
    throw new Error(`this test needs a real small disk: "mount -t tmpfs -o size=${DISK} tmpfs ${mnt}" failed (${why}). ` +
      'Run it as root (CI does), or in a container allowed to mount (--cap-add SYS_ADMIN).');
  }
  mounted = true;
}

const sizeOf = (path: string) => (existsSync(path) ? statSync(path).size : 0);

/**
 * The log's salts (its header, bytes 16-23): SQLite draws new ones each time the log starts over after a complete
 * checkpoint. Null while the log is empty (just truncated).
 */
function walSalts(): string | null {
  if (sizeOf(wal) < 32) return null;
  const fd = openSync(wal, 'r');
  try {
    const header = Buffer.alloc(32);
    readSync(fd, header, 0, 32, 0);
    return header.subarray(16, 24).toString('hex');
  } finally {
    closeSync(fd);
  }
}

/** Fill the disk with `path`, then give back SLACK bytes of it. */
function fill(path: string): void {
  const fd = openSync(path, 'w');
  try {
    for (const chunk of [Buffer.alloc(256 * 1024, 7), Buffer.alloc(4096, 7)]) {
      for (;;) {
        try {
          writeSync(fd, chunk);
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOSPC') break;
          throw err;
        }
      }
    }
    ftruncateSync(fd, Math.max(0, fstatSync(fd).size - SLACK));
  } finally {
    closeSync(fd);
  }
}

async function until(cond: () => boolean | Promise<boolean>, timeoutMs: number, what: () => string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await cond())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms: ${what()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** What the file holds, for a failure's message: messages by state, and the sizes. */
function describeStore(): string {
  const db = new Database(file, { readonly: true, fileMustExist: true });
  try {
    const rows = db.prepare('SELECT state, COUNT(*) AS n FROM celeriac_messages GROUP BY state').all() as Array<{ state: string; n: number }>;
    return `messages ${JSON.stringify(rows)}, db ${sizeOf(file)} B, wal ${sizeOf(wal)} B`;
  } catch (err) {
    return `(cannot read the store: ${(err as Error).message})`;
  } finally {
    db.close();
  }
}

test('SQLite on a full disk: publish fails with E_BROKER_FULL, and once space returns every accepted task runs (3 cycles)',
  { timeout: 170_000 }, async (t) => {
    mountDisk();
    worker = startWorker('disk-full-1');
    await worker.waitFor(' ready.', 30_000);
    app = new Celeriac('disk-full', { broker: url, backend: url });
    const backend = await app.backend();
    assert.equal(await (await app.sendTask('basic.add', [1, 2])).get({ timeout: 20_000 }), 3);

    for (let cycle = 1; cycle <= CYCLES; cycle++) {
      // the last cycle's worker starts on the full disk: it must start anyway, and recover like the others
      const startOnFullDisk = cycle === CYCLES;
      if (startOnFullDisk) await stopWorker();
      const saltsBefore = walSalts();
      const filler = join(mnt, `filler-${cycle}`);
      fill(filler);

      const accepted: string[] = [];
      let failure: unknown = null;
      for (let i = 0; i < 20_000 && failure === null; i++) {
        try {
          accepted.push((await app.sendTask('basic.order', [`c${cycle}-${i}`])).id);
        } catch (err) {
          failure = err;
        }
      }
      const walWhenFull = sizeOf(wal);
      t.diagnostic(`cycle ${cycle}: ${accepted.length} publishes fitted; wal ${walWhenFull} B; ${failure}`);
      assert.ok(failure instanceof CeleriacError, `cycle ${cycle}: publish failed with a CeleriacError: ${failure}`);
      assert.equal(failure.code, 'E_BROKER_FULL', failure.message);
      assert.match(failure.message, /disk is full/);
      assert.ok(failure.message.includes(file), `the message names the file: ${failure.message}`);
      assert.match(failure.message, /\d+ (B|bytes|KiB|MiB) free/, `the message says how much space is free: ${failure.message}`);

      if (startOnFullDisk) {
        worker = startWorker(`disk-full-${cycle}`);
        await worker.waitFor(' ready.', 30_000);
      }
      // the worker meets the full disk (reserve, results, acks, heartbeats) for a moment
      await new Promise((r) => setTimeout(r, 1500));
      unlinkSync(filler);

      await until(async () => (await backend.getMany(accepted)).every((m) => m?.status === 'SUCCESS'), 60_000, () =>
        `cycle ${cycle}: not every accepted task succeeded; ${describeStore()}\nworker output (tail):\n${worker!.out.slice(-3000)}`)
        .catch(async (err) => {
          const metas = await backend.getMany(accepted);
          const missing = accepted.filter((_, i) => metas[i]?.status !== 'SUCCESS');
          throw new Error(`${(err as Error).message}\nnot SUCCESS (${missing.length} of ${accepted.length}): ${missing.slice(0, 5).join(', ')}`);
        });

      // new work is accepted and runs
      const more = await Promise.all(Array.from({ length: 50 }, (_, i) => app!.sendTask('basic.add', [cycle, i])));
      assert.deepEqual(await Promise.all(more.map((r) => r.get({ timeout: 20_000 }))), Array.from({ length: 50 }, (_, i) => cycle + i));

      // the log was checkpointed and started over (not only reused), and is small again
      const saltsAfter = walSalts();
      t.diagnostic(`cycle ${cycle}: recovered; wal ${sizeOf(wal)} B (salts ${saltsBefore} -> ${saltsAfter}), db ${sizeOf(file)} B`);
      assert.ok(saltsAfter === null || saltsAfter !== saltsBefore,
        `cycle ${cycle}: the WAL was checkpointed and started over (salts ${saltsBefore} -> ${saltsAfter})`);
      assert.ok(sizeOf(wal) < SMALL_WAL, `cycle ${cycle}: the WAL is small again: ${sizeOf(wal)} B (${walWhenFull} B when full)`);
    }

    await stopWorker();
  });
