// The CLI as a user meets it: call / result / purge against a real redis-server and a worker process,
// and one clear line (no stack trace) with a non-zero exit for each kind of user error.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { startRedis, type RedisServer } from '../helpers/redis.ts';
import { celeriac, exec, lastJsonLine, type Proc } from '../helpers/processes.ts';

let redis: RedisServer;
let worker: Proc;
let env: Record<string, string>;

before(async () => {
  redis = await startRedis();
  env = { CELERIAC_BROKER_URL: redis.url(0), CELERIAC_RESULT_BACKEND: redis.url(1) };
  worker = celeriac(['-A', 'test/apps/basic', 'worker', '-l', 'info', '-Q', 'celery,math'], env);
  await worker.waitFor(' ready.');
});
after(async () => {
  worker.kill('SIGTERM');
  await worker.exited;
  await redis.dispose();
});

const cli = (args: string[], extra: Record<string, string> = {}) => exec(celeriac(args, { ...env, ...extra }));

describe('call and result', () => {
  test('call prints the task id; result reads it back as JSON', async () => {
    const { code, out } = await cli(['-A', 'test/apps/basic', 'call', 'basic.add', '5', '6']);
    assert.equal(code, 0, out);
    const id = out.trim();
    assert.match(id, /^[0-9a-f-]{36}$/);
    const r = await cli(['-A', 'test/apps/basic', 'result', id, '--timeout', '10']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(lastJsonLine(r.out), { id, state: 'SUCCESS', result: 11, traceback: null });
  });

  test('call --wait prints the result; JSON args, --kwargs, --queue, --priority', async () => {
    const { code, out } = await cli(['-A', 'test/apps/basic', 'call', 'basic.request', '[1,2]', '"x"', 'bare',
      '--kwargs', '{"k": "é"}', '--queue', 'math', '--priority', '6', '--wait', '--timeout', '10']);
    assert.equal(code, 0, out);
    const r = lastJsonLine(out);
    assert.deepEqual(r.args, [[1, 2], 'x', 'bare', { k: 'é' }]);
    assert.equal(r.queue, 'math');
    assert.equal(r.priority, 6);
  });

  test('call --countdown delays the run; --wait on a failure exits 1 with the remote error', async () => {
    const t0 = Date.now();
    const ok = await cli(['call', 'basic.add', '1', '1', '--countdown', '1', '--wait']);
    assert.equal(ok.code, 0, ok.out);
    assert.equal(lastJsonLine(ok.out), 2);
    assert.ok(Date.now() - t0 >= 1000);
    const bad = await cli(['call', 'basic.fail', '"nope"', '--wait']);
    assert.equal(bad.code, 1);
    assert.match(bad.out, /celeriac: error: ValueError: nope/);
    assert.doesNotMatch(bad.out, /\n\s+at /, 'no stack trace');
  });

  test('result of an unknown id is PENDING', async () => {
    const r = await cli(['result', 'no-such-id']);
    assert.equal(r.code, 0, r.out);
    assert.deepEqual(lastJsonLine(r.out), { id: 'no-such-id', state: 'PENDING', result: null, traceback: null });
  });

  test('purge -f empties the named queues and says how many', async () => {
    const c = redis.client(0);
    await c.lpush('idle_q', 'a', 'b');
    await c.lpush('idle_q\x06\x163', 'c');
    const r = await cli(['purge', '-Q', 'idle_q', '-f']);
    assert.equal(r.code, 0, r.out);
    assert.match(r.out, /Purged 3 messages from 1 known task queue/);
    assert.equal(await c.llen('idle_q'), 0);
    const refused = await cli(['purge', '-Q', 'idle_q']);
    assert.notEqual(refused.code, 0, 'no confirmation without a terminal');
  });
});

describe('user errors: one clear line, non-zero exit, no stack', () => {
  const cases: Array<[string, string[], RegExp, Record<string, string>?]> = [
    ['missing module', ['-A', 'test/apps/nope', 'worker'], /cannot find app module "test\/apps\/nope"/],
    ['no app export', ['-A', 'test/helpers/logs.ts', 'worker'], /no export "app" that is a Celeriac app/],
    ['unknown option', ['-A', 'test/apps/basic', 'worker', '--bogus'], /unknown option '--bogus'/],
    ['bad concurrency', ['-A', 'test/apps/basic', 'worker', '-c', 'lots'], /concurrency must be a whole number/],
    ['unknown scheme', ['-A', 'test/apps/basic', 'worker', '--broker', 'amqq://x'], /unknown broker scheme "amqq:\/\/"/],
    ['bad URL', ['call', 'x', '--broker', 'redis://h:port/zz'], /Redis URL|not a URL|cannot parse/],
    ['bad kwargs', ['call', 'x', '--kwargs', '[1]'], /--kwargs must be a JSON object/],
    ['bad eta', ['call', 'x', '--eta', 'someday'], /--eta is not a date/],
    ['worker without -A', ['worker'], /worker needs an app/],
  ];
  for (const [name, args, pattern, extra] of cases) {
    test(name, async () => {
      const { code, out } = await cli(args, extra);
      assert.notEqual(code, 0, out);
      assert.match(out, pattern);
      assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
      assert.ok(out.trim().split('\n').length <= 2, `short: ${out}`);
    });
  }

  test('an unreachable broker ends with a clear error and masks the password', async () => {
    const { code, out } = await cli(['-A', 'test/apps/basic', 'call', 'basic.add', '1', '2',
      '--broker', 'redis://:s3cret@127.0.0.1:1/0'], {});
    assert.notEqual(code, 0);
    assert.match(out, /celeriac: error:/);
    assert.doesNotMatch(out, /s3cret/);
  });
});
