// celeriac/testing: memory apps, a worker for the length of a callback, eager runs.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { memoryApp, runEagerly, withWorker } from 'celeriac/testing';
import type { TaskContext } from 'celeriac';

test('a memory app runs tasks through a real worker, and two memory apps do not share messages', async () => {
  const app = memoryApp('shop');
  const other = memoryApp('shop');
  const add = app.task('shop.add', (a: number, b: number) => a + b);
  other.task('shop.add', () => -1);
  await withWorker(app, async () => {
    assert.equal(await (await add.delay(2, 3)).get({ timeout: 5000 }), 5);
  });
  assert.equal(await (await other.broker()).queueLength('celery'), 0);
  await app.close();
  await other.close();
});

test('runEagerly calls the handler with a request, kwargs last, and surfaces retry()', async () => {
  const app = memoryApp();
  const greet = app.task('t.greet', function (this: TaskContext, name: string, opts?: { loud?: boolean }) {
    return `${opts?.loud ? 'HELLO' : 'hello'} ${name} (${this.request.task})`;
  });
  assert.equal(await runEagerly(greet, ['ada'], { loud: true }), 'HELLO ada (t.greet)');
  const flaky = app.task('t.flaky', function (this: TaskContext) {
    throw this.retry({ countdown: 7 });
  });
  await assert.rejects(runEagerly(flaky, []), (e: unknown) => (e as { countdown?: number }).countdown === 7);
  await app.close();
});
