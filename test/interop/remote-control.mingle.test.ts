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
