/**
 * Canvas data carried in a protocol 2 body: signatures and the `embed` object (docs/wire-format.md §3.4, §8).
 *
 * Invariants: readEmbed returns all four keys (absent => null, as an empty `{}` embed was accepted by Python, s12 m1);
 * signatures are checked only for being objects and are otherwise passed on untouched, because the worker
 * re-publishes them as received (options such as task_id must survive byte for byte in meaning).
 */
import { MalformedMessageError } from '../common/errors.ts';
import { isPlainObject } from './envelope.ts';

export interface Signature {
  task: string;
  args: unknown[];
  kwargs: Record<string, unknown>;
  options: Record<string, unknown>;
  subtask_type: string | null;
  immutable: boolean;
  [k: string]: unknown;
}

export interface Embed {
  callbacks: Signature[] | null;
  errbacks: Signature[] | null;
  chain: Signature[] | null;
  chord: Signature | null;
}

export const EMPTY_EMBED: Readonly<Embed> = Object.freeze({ callbacks: null, errbacks: null, chain: null, chord: null });

export function readSignatures(v: unknown, key: string, id: string): Signature[] | null {
  if (v === null || v === undefined) return null;
  if (Array.isArray(v) && v.every(isPlainObject)) return v as Signature[];
  throw new MalformedMessageError(`embed.${key} must be a list of signatures or null`, id);
}

/** Validates the third body element; `id` is the task id to attach to errors. */
export function readEmbed(v: unknown, id: string): Embed {
  if (v === null || v === undefined) return { ...EMPTY_EMBED };
  if (!isPlainObject(v)) throw new MalformedMessageError('embed (third body element) must be an object', id);
  if (v.chord !== null && v.chord !== undefined && !isPlainObject(v.chord)) {
    throw new MalformedMessageError('embed.chord must be a signature or null', id);
  }
  return {
    callbacks: readSignatures(v.callbacks, 'callbacks', id),
    errbacks: readSignatures(v.errbacks, 'errbacks', id),
    chain: readSignatures(v.chain, 'chain', id),
    chord: (v.chord ?? null) as Signature | null,
  };
}
