/**
 * Python-looking `repr` of JSON values, for the display-only `argsrepr`/`kwargsrepr` headers
 * (`(2, 3)`, `{'k': 'v'}`), so Flower, `inspect` and worker logs read the same whichever side sent the task.
 *
 * Invariants: never throws (cycles and non-JSON values get a placeholder), output is capped at `maxlen`
 * characters like Celery's saferepr (argsrepr_maxsize defaults to 1024).
 */

export const REPR_MAXLEN = 1024;

function strRepr(s: string): string {
  // Python picks double quotes only when the text has a single quote and no double quote.
  const quote = s.includes("'") && !s.includes('"') ? '"' : "'";
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (ch === '\\') out += '\\\\';
    else if (ch === quote) out += `\\${quote}`;
    else if (ch === '\n') out += '\\n';
    else if (ch === '\r') out += '\\r';
    else if (ch === '\t') out += '\\t';
    else if (code < 0x20 || code === 0x7f) out += `\\x${code.toString(16).padStart(2, '0')}`;
    else out += ch;
  }
  return quote + out + quote;
}

function reprValue(v: unknown, seen: Set<object>): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') {
    if (Number.isNaN(v)) return 'nan';
    if (!Number.isFinite(v)) return v > 0 ? 'inf' : '-inf';
    return String(v);
  }
  if (typeof v === 'string') return strRepr(v);
  if (typeof v === 'bigint') return v.toString();
  if (v instanceof Date) return strRepr(v.toISOString());
  if (typeof v !== 'object') return `<${typeof v}>`;
  if (seen.has(v)) return '...';
  seen.add(v);
  try {
    if (Array.isArray(v)) return `[${v.map((x) => reprValue(x, seen)).join(', ')}]`;
    const items = Object.entries(v).map(([k, x]) => `${strRepr(k)}: ${reprValue(x, seen)}`);
    return `{${items.join(', ')}}`;
  } finally {
    seen.delete(v);
  }
}

function cap(text: string, maxlen: number): string {
  return text.length > maxlen ? `${text.slice(0, Math.max(0, maxlen - 3))}...` : text;
}

/** `repr(value)` as Python would print the decoded JSON value. */
export function pyRepr(value: unknown, maxlen = REPR_MAXLEN): string {
  return cap(reprValue(value, new Set()), maxlen);
}

/** Positional arguments shown as the tuple Python's `delay()` sends: `(2, 3)`, `('boom',)`, `()`. */
export function argsRepr(args: readonly unknown[], maxlen = REPR_MAXLEN): string {
  const seen = new Set<object>();
  const inner = args.map((a) => reprValue(a, seen));
  return cap(inner.length === 1 ? `(${inner[0]},)` : `(${inner.join(', ')})`, maxlen);
}
