// The zero-set-up path on the embedded SQLite default, as a newcomer meets it: the quick start's run menu, and a
// worker and `call --wait` in separate processes, including a worker killed with -9 mid-task and started again.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { celeriac, exec, lastJsonLine, run, ROOT } from '../helpers/processes.ts';

let dir: string;
let env: Record<string, string>;
before(() => {
  dir = mkdtempSync(join(tmpdir(), 'celeriac-quickstart-'));
  // the same default the app would pick (sqlite://.celeriac/celeriac.db), but inside a temp directory
  env = { CELERIAC_BROKER_URL: `sqlite:///${join(dir, 'celeriac.db')}`, CELERIAC_RESULT_BACKEND: '' };
});
after(() => rmSync(dir, { recursive: true, force: true }));

test('the app uses the embedded SQLite default when nothing is configured', async () => {
  const { Celeriac } = await import('celeriac');
  const saved = process.env.CELERIAC_BROKER_URL;
  delete process.env.CELERIAC_BROKER_URL;
  try {
    const app = new Celeriac('defaults');
    assert.equal(app.conf.broker, 'sqlite://.celeriac/celeriac.db');
    assert.equal(app.conf.backend, app.conf.broker);
  } finally {
    if (saved !== undefined) process.env.CELERIAC_BROKER_URL = saved;
  }
});

test('npm run menu without a terminal plays the four steps once and exits 0', async () => {
  const { code, out } = await exec(run(process.execPath, ['--import', 'tsx', 'examples/quickstart/run.ts'], env), 60_000);
  assert.equal(code, 0, out);
  assert.match(out, /add\(5, 6\) sent, task id [0-9a-f-]{36}/);
  assert.match(out, /send_sms [0-9a-f-]{36}: SUCCESS -> \{"phone":"18888888888","sent":true\}/);
  assert.match(out, /add [0-9a-f-]{36}: SUCCESS -> 11/);
});

test('worker in one process, call --wait in another; kill -9 mid-task, start again, the task completes', async () => {
  const worker = celeriac(['-A', 'examples/quickstart', 'worker', '-l', 'info'], env);
  await worker.waitFor(' ready.');
  assert.match(worker.out, new RegExp(`transport: +sqlite:///${dir}/celeriac.db`), 'the banner shows the file');
  const ok = await exec(celeriac(['-A', 'examples/quickstart', 'call', 'celery_task.order_task.add', '5', '6', '--wait'], env));
  assert.equal(ok.code, 0, ok.out);
  assert.equal(lastJsonLine(ok.out), 11);

  const sent = await exec(celeriac(['-A', 'examples/quickstart', 'call', 'celery_task.order_task.add', '20', '22'], env));
  const id = sent.out.trim();
  await worker.waitFor(`[${id}] received`);
  worker.kill('SIGKILL');
  await worker.exited;
  const again = celeriac(['-A', 'examples/quickstart', 'worker', '-l', 'info'], env);
  try {
    const r = await exec(celeriac(['-A', 'examples/quickstart', 'result', id, '--timeout', '30'], env), 40_000);
    assert.deepEqual(lastJsonLine(r.out), { id, state: 'SUCCESS', result: 42, traceback: null });
  } finally {
    again.kill('SIGTERM');
    await again.exited;
  }
});
