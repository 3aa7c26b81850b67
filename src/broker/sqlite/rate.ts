/**
 * Global rate limits on the SQLite broker (the rule of stores/rate.ts): a task's next free start in
 * celeriac_rates, read and moved in one immediate transaction, so every process on the file agrees.
 */
import type { Db } from '../../stores/sqlite/driver.ts';
import { rateStep, type RateTurn } from '../../stores/rate.ts';

const DDL = `CREATE TABLE IF NOT EXISTS celeriac_rates (task TEXT PRIMARY KEY, next_free INTEGER NOT NULL) WITHOUT ROWID;`;

export class SqliteRates {
  private readonly take: (name: string, intervalMs: number, aheadMs: number) => RateTurn;

  constructor(db: Db) {
    db.transaction(() => db.exec(DDL)).immediate();
    const read = db.prepare<[string], number>('SELECT next_free FROM celeriac_rates WHERE task = ?').pluck();
    const write = db.prepare('INSERT INTO celeriac_rates (task, next_free) VALUES (?, ?) ON CONFLICT (task) DO UPDATE SET next_free = excluded.next_free');
    const tx = db.transaction((name: string, intervalMs: number, aheadMs: number): RateTurn => {
      const { turn, nextFree } = rateStep(read.get(name) ?? null, Date.now(), intervalMs, aheadMs);
      if (turn.reserved && nextFree !== null) write.run(name, nextFree);
      return turn;
    });
    this.take = (name, intervalMs, aheadMs) => tx.immediate(name, intervalMs, aheadMs);
  }

  acquire(name: string, intervalMs: number, aheadMs: number): RateTurn {
    return this.take(name, intervalMs, aheadMs);
  }
}
