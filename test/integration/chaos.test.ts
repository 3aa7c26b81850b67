// The short chaos run: acks-late tasks over 3 worker processes, a worker kill -9 every 2 s, one Redis kill -9 (AOF,
// appendfsync always) while the producer is still sending, a share of ETA tasks. It must end with nothing lost,
// nothing run early, duplicates within what the kills explain (the harness exits 1 otherwise). About 15 s.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { exec, lastJsonLine, run } from '../helpers/processes.ts';

test('short chaos run: ≥ 2 worker kills and a Redis kill -9; 0 lost, 0 early, duplicates only from the kills', async () => {
  const { code, out } = await exec(run(process.execPath, ['--import', 'tsx', 'chaos/run.ts', '--tasks', '600',
    '--send-seconds', '8', '--work-ms', '100', '--kill-every', '2', '--redis-kill-at', '4', '--min-kills', '2',
    '--timeout', '45']), 90_000);
  const summary = lastJsonLine(out.split('\n').filter((l) => l.startsWith('{"sent"')).join('\n'));
  assert.equal(code, 0, out.slice(-3000));
  assert.equal(summary.sent, 600);
  assert.equal(summary.completed, 600);
  assert.equal(summary.lost, 0);
  assert.equal(summary.ranEarly, 0);
  assert.ok(summary.workerKills >= 2, `at least two worker kills, not ${summary.workerKills}`);
  assert.equal(summary.redisKills, 1);
  assert.equal(summary.redisKillSignal, 'SIGKILL');
  assert.equal(summary.fsync, 'always');
  assert.equal(summary.redis.lostWrites, 0, 'appendfsync always: no acknowledged write lost to the Redis kill');
  assert.ok(summary.duplicated <= summary.duplicatesAllowed, out.slice(-3000));
});
