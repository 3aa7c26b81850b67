// Mingle: a Python Celery worker that starts asks the running workers for their revoked ids (`hello`,
// celery/worker/consumer/mingle.py). A celeriac worker answers with the ids it holds, in LimitedSet's form, so the
// Python worker refuses a task that was revoked before it started and that only the celeriac worker knew of.
import { after, afterEach, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Celeriac, Control, TaskRevokedError, Worker } from 'celeriac';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { quietLogger } from '../helpers/logs.ts';
import { PyWorker, peerJson, until } from '../helpers/python.ts';

let redis: RedisServer;
const cleanup: Array<() => Promise<void>> = [];
before(async () => {
  redis = await startRedis();
});
after(async () => {
  await redis.dispose();
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await redis.flush();
});

test('a Python worker started later learns a revoke only the celeriac worker held, and refuses the task', async () => {
  const app = new Celeriac('mingle', { broker: redis.url(0), backend: redis.url(1) });
  cleanup.push(() => app.close());
  // the celeriac worker consumes a queue of its own: the task goes to the Python worker's queue
  const worker = new Worker(app, { logger: quietLogger(), hostname: 'ts-mingle@test', queues: ['ts-only'] });
  await worker.start();
  cleanup.push(() => worker.stop());
  const id = 'mingle-revoked-1';
  // addressed to the celeriac worker: it remembers it, nothing is stored in the broker, no Python worker heard it
  await new Control(app).revoke(id, { destination: ['ts-mingle@test'] });
  await until(() => worker.revokedIds().includes(id), 'the celeriac worker to hold the revoke');
  assert.equal((await (await app.broker()).revoked([id])).size, 0, 'not in the broker\'s revoke store');

  const py = await PyWorker.start(redis, ['py-mingle'], 'py-mingle@test');
  cleanup.push(() => py.stop());
  assert.match(py.out, /mingle: sync with 1 nodes/);
  assert.doesNotMatch(py.out, /mingle: sync with .* failed/);
  const revoked = await peerJson(redis, ['inspect', 'revoked', '--timeout', '2']) as unknown as Record<string, string[]>;
  assert.ok(revoked['py-mingle@test']?.includes(id), `the Python worker knows it: ${JSON.stringify(revoked)}`);

  const refused = await app.sendTask('celery_peer.add', [1, 2], {}, { queue: 'py-mingle', taskId: id });
  await assert.rejects(refused.get({ timeout: 20_000 }), (e: unknown) => e instanceof TaskRevokedError);
  assert.equal(await refused.state(), 'REVOKED');
  const other = await app.sendTask('celery_peer.add', [2, 3], {}, { queue: 'py-mingle' });
  assert.equal(await other.get({ timeout: 20_000 }), 5, 'other tasks run');
  await until(() => py.out.includes(`Discarding revoked task: celery_peer.add[${id}]`), 'Python to log the refusal', 5000);
});

test('a celeriac worker started later learns a revoke only a Python worker held (it asks with hello), and refuses the task', async () => {
  const py = await PyWorker.start(redis, ['py-only'], 'py-holder@test');
  cleanup.push(() => py.stop());
  const id = 'mingle-revoked-2';
  // Python's own client, while no celeriac worker runs: only the Python worker hears it, nothing is stored
  await peerJson(redis, ['revoke', id]);
  await until(async () => {
    const r = await peerJson(redis, ['inspect', 'revoked', '--timeout', '1']) as unknown as Record<string, string[]>;
    return r['py-holder@test']?.includes(id) ?? false;
  }, 'the Python worker to hold the revoke');
  const app = new Celeriac('mingle', { broker: redis.url(0), backend: redis.url(1) });
  cleanup.push(() => app.close());
  assert.equal((await (await app.broker()).revoked([id])).size, 0, 'not in the broker\'s revoke store yet');
  const ran: string[] = [];
  app.task('ts.mingle', function (this: { request: { id: string } }) {
    ran.push(this.request.id);
  });
  const lines: string[] = [];
  const worker = new Worker(app, { logger: quietLogger(lines), hostname: 'ts-late@test', queues: ['ts-late'] });
  await worker.start();
  cleanup.push(() => worker.stop());
  assert.ok(lines.some((l) => /mingle: sync with 1 nodes/.test(l)), lines.join('\n'));
  assert.ok(worker.revokedIds().includes(id));
  const refused = await app.sendTask('ts.mingle', [], {}, { queue: 'ts-late', taskId: id });
  await assert.rejects(refused.get({ timeout: 10_000 }), (e: unknown) => e instanceof TaskRevokedError);
  assert.deepEqual(ran, [], 'it never ran');
  assert.equal((await (await app.broker()).revoked([id])).size, 1, 'and it is now stored for the workers that come later');
});
