#!/usr/bin/env node
/**
 * An interactive `run` menu on the embedded default: it starts a worker (a real `celeriac worker` process on the same
 * SQLite file) and lets you call the quick-start tasks and check their results by id.
 *   1 async add   2 send an SMS to a number you type   3 check the SMS result   4 check the add result   q quit
 * Without a terminal it plays the four steps once and exits 0 (what CI and `npm run menu` in a pipe see).
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline/promises';
import { fileURLToPath } from 'node:url';
import { app } from './celery_task/celery.ts';
import { add } from './celery_task/order_task.ts';
import { sendSms } from './celery_task/user_task.ts';

const root = fileURLToPath(new URL('../../', import.meta.url));
const worker = spawn(process.execPath, [`${root}bin/celeriac`, '-A', fileURLToPath(new URL('./celery_task', import.meta.url)),
  'worker', '-l', 'info', '-c', '10'], { stdio: ['ignore', 'pipe', 'pipe'], env: process.env });
const ready = new Promise<void>((resolve, reject) => {
  const onData = (d: Buffer) => {
    for (const line of d.toString().split('\n')) {
      if (!line.trim()) continue;
      if (process.env.QUICKSTART_SHOW_WORKER !== '0') process.stdout.write(`  [worker] ${line}\n`);
      if (line.includes(' ready.')) resolve();
    }
  };
  worker.stdout.on('data', onData);
  worker.stderr.on('data', onData);
  worker.once('exit', (code) => reject(new Error(`the worker exited (${code}) before it was ready`)));
});

let addId: string | null = null;
let smsId: string | null = null;

async function show(label: string, id: string | null, wait: boolean): Promise<void> {
  if (!id) {
    console.log(`No ${label} task sent yet.`);
    return;
  }
  const res = app.AsyncResult(id);
  if (wait) await res.get({ timeout: 15_000, propagate: false }).catch(() => {});
  const state = await res.state();
  const value = await res.info();
  console.log(`${label} ${id}: ${state}${state === 'SUCCESS' || state === 'FAILURE' ? ` -> ${JSON.stringify(value)}` : ''}`);
}

async function step(choice: string, ask: (q: string) => Promise<string>, wait: boolean): Promise<boolean> {
  switch (choice.trim()) {
    case '1': {
      const r = await add.delay(5, 6);
      addId = r.id;
      console.log(`add(5, 6) sent, task id ${r.id}`);
      return true;
    }
    case '2': {
      const phone = (await ask('Phone number: ')).trim();
      const code = String(Math.floor(1000 + Math.random() * 9000));
      const r = await sendSms.delay(phone, code);
      smsId = r.id;
      console.log(`send_sms(${phone}, ${code}) sent, task id ${r.id}`);
      return true;
    }
    case '3':
      await show('send_sms', smsId, wait);
      return true;
    case '4':
      await show('add', addId, wait);
      return true;
    case 'q':
      return false;
    default:
      console.log('Choose 1, 2, 3, 4 or q.');
      return true;
  }
}

async function main(): Promise<void> {
  const broker = await app.broker();
  console.log(`celeriac quick start: broker ${broker.displayUrl}`);
  await ready;
  if (process.stdin.isTTY) {
    const rl = createInterface({ input: process.stdin, output: process.stdout });
    const menu = '\n1 async add  2 send SMS  3 check SMS result  4 check add result  q quit\n> ';
    while (await step(await rl.question(menu), (q) => rl.question(q), false)) { /* next choice */ }
    rl.close();
  } else {
    console.log('No terminal: playing the four steps once.');
    for (const choice of ['1', '2', '3', '4']) await step(choice, async () => '18888888888', true);
  }
}

let code = 0;
try {
  await main();
} catch (err) {
  console.error(`quick start failed: ${(err as Error).message}`);
  code = 1;
} finally {
  worker.kill('SIGTERM');
  await new Promise((r) => (worker.exitCode !== null ? r(null) : worker.once('exit', r)));
  await app.close();
}
process.exit(code);
