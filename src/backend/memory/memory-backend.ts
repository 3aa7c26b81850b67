/**
 * The in-process result backend (`memory://` or `memory://<name>`): the backend contract (backend.ts) for
 * single-process use and users' own tests, with the semantics of redis:// and sqlite://. Backends opened on the same
 * URL in one process share one store, which lives as long as the process.
 *
 * State per store:
 *   results   task id -> { status, record JSON, expiresAt (ms) | null }   (kept as JSON: nobody can mutate a record)
 *   chords    group id -> { size, expiresAt }; parts: group id -> task id -> { index, state, result JSON, order }
 *   waiting   the waiters (stores/waiters.ts) of this store's backends that have a wait pending; store() settles
 *             them with the record as it stands after the write
 * Invariants: a live SUCCESS is never overwritten; an expired record reads as absent (and is swept now and then);
 * a chord part counts once per task id, with its first run's value; until chordCleanup() every call that finds the
 * header complete gets the parts (a redelivered last part must be able to publish a body its first completer never
 * sent).
 */
import { decodeResultMeta, encodeResultMeta, type ResultMeta } from '../../protocol/index.ts';
import type { BackendOptions, ChordPart, ResultBackend, StoreRequest } from '../backend.ts';
import { SWEEP_EVERY_MS, expiresAt, resultTtlMs } from '../../stores/limits.ts';
import { ResultWaiters } from '../../stores/waiters.ts';
import { closedError, fromJson, toJson } from '../../stores/errors.ts';
import { memoryStoreName } from '../../stores/memory/url.ts';

interface Record_ {
  status: string;
  json: string;
  expiresAt: number | null;
}
interface Part {
  index: number | null;
  state: string;
  result: string;
  order: number;
}

class ResultStore {
  readonly results = new Map<string, Record_>();
  readonly chords = new Map<string, { size: number; expiresAt: number | null }>();
  readonly parts = new Map<string, Map<string, Part>>();
  readonly waiting = new Set<ResultWaiters>();
  readonly groups = new Map<string, { json: string; expiresAt: number | null }>();
  partOrder = 0;
  lastSweep = 0;

  live(taskId: string, now: number): Record_ | null {
    const r = this.results.get(taskId);
    if (!r) return null;
    if (r.expiresAt !== null && r.expiresAt <= now) {
      this.results.delete(taskId);
      return null;
    }
    return r;
  }

  sweep(now: number): void {
    this.lastSweep = now;
    for (const [id, r] of this.results) if (r.expiresAt !== null && r.expiresAt <= now) this.results.delete(id);
    for (const [gid, g] of this.groups) if (g.expiresAt !== null && g.expiresAt <= now) this.groups.delete(gid);
    for (const [gid, c] of this.chords) {
      if (c.expiresAt !== null && c.expiresAt <= now) {
        this.chords.delete(gid);
        this.parts.delete(gid);
      }
    }
  }
}

const stores = new Map<string, ResultStore>();

function storeFor(url: string): ResultStore {
  const name = memoryStoreName(url);
  let s = stores.get(name);
  if (!s) stores.set(name, (s = new ResultStore()));
  return s;
}

export class MemoryBackend implements ResultBackend {
  readonly displayUrl: string;
  private readonly s: ResultStore;
  private readonly ttlMs: number;
  private readonly waiters: ResultWaiters;
  private closed = false;

  constructor(url: string, options: BackendOptions) {
    this.displayUrl = url;
    this.s = storeFor(url);
    this.ttlMs = resultTtlMs(options.resultExpires);
    // known to the shared store only while a wait is pending, so a backend nobody closes leaves nothing behind
    this.waiters = new ResultWaiters({
      busy: () => this.s.waiting.add(this.waiters),
      idle: () => this.s.waiting.delete(this.waiters),
    });
  }

  private check(): void {
    if (this.closed) throw closedError('result backend', this.displayUrl);
  }

  private expiresAt(now: number): number | null {
    return expiresAt(this.ttlMs, now);
  }

  async store(entries: StoreRequest[]): Promise<void> {
    this.check();
    const now = Date.now();
    if (now - this.s.lastSweep > SWEEP_EVERY_MS) this.s.sweep(now);
    for (const e of entries) {
      const old = this.s.live(e.taskId, now);
      if (old?.status !== 'SUCCESS') {
        const record = { status: String(e.meta.status), json: encodeResultMeta(e.meta), expiresAt: this.expiresAt(now) };
        this.s.results.set(e.taskId, record);
      }
      const rec = this.s.live(e.taskId, now)!;
      for (const w of [...this.s.waiting]) w.settleRecord(e.taskId, rec.json);
    }
  }

  async get(taskId: string): Promise<ResultMeta | null> {
    this.check();
    const r = this.s.live(taskId, Date.now());
    return r ? decodeResultMeta(r.json, taskId) : null;
  }

  async getMany(taskIds: string[]): Promise<(ResultMeta | null)[]> {
    return Promise.all(taskIds.map((id) => this.get(id)));
  }

  async wait(taskId: string, timeoutMs: number): Promise<ResultMeta> {
    this.check();
    // registered, then the look, in one synchronous step: a store cannot slip in between
    return this.waiters.wait(taskId, timeoutMs, () => {
      const current = this.s.live(taskId, Date.now());
      return current ? decodeResultMeta(current.json, taskId) : null;
    });
  }

  async forget(taskId: string): Promise<void> {
    this.check();
    this.s.results.delete(taskId);
  }

  async saveGroup(groupId: string, tuple: unknown): Promise<void> {
    this.check();
    this.s.groups.set(groupId, { json: toJson({ result: tuple }, `group ${groupId}`), expiresAt: this.expiresAt(Date.now()) });
  }

  async restoreGroup(groupId: string): Promise<unknown | null> {
    this.check();
    const g = this.s.groups.get(groupId);
    if (!g || (g.expiresAt !== null && g.expiresAt <= Date.now())) return null;
    return (fromJson(g.json, `group ${groupId}`) as { result?: unknown }).result ?? null;
  }

  async deleteGroup(groupId: string): Promise<void> {
    this.check();
    this.s.groups.delete(groupId);
  }

  async setChordSize(groupId: string, size: number): Promise<void> {
    this.check();
    this.s.chords.set(groupId, { size, expiresAt: this.expiresAt(Date.now()) });
  }

  async chordPartDone(part: ChordPart): Promise<Array<[string, string, unknown]> | null> {
    this.check();
    let parts = this.s.parts.get(part.groupId);
    if (!parts) this.s.parts.set(part.groupId, (parts = new Map()));
    // a redelivered part counts once and keeps its first value (backend.ts, promise 5), but may complete the chord
    // again (its body may never have been published)
    if (!parts.has(part.taskId)) {
      parts.set(part.taskId, { index: part.index, state: part.state, result: toJson(part.result ?? null, `the result of chord part ${part.taskId}`),
        order: this.s.partOrder++ });
    }
    const chord = this.s.chords.get(part.groupId);
    if (!chord || (chord.expiresAt !== null && chord.expiresAt <= Date.now()) || parts.size !== chord.size) return null;
    const rank = (p: Part) => (p.index === null ? Infinity : p.index);
    return [...parts].sort(([, a], [, b]) => rank(a) - rank(b) || a.order - b.order)
      .map(([tid, p]) => [tid, p.state, fromJson(p.result, `the stored result of chord part ${tid}`)]);
  }

  async chordCleanup(groupId: string): Promise<void> {
    this.check();
    this.s.chords.delete(groupId);
    this.s.parts.delete(groupId);
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.waiters.closeAll();
  }
}
