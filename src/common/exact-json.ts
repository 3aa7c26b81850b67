/**
 * JSON as Python writes and reads it, exactly: integers of any size and the non-finite floats. Python's `json`
 * (and so kombu and Celery) writes `NaN`, `Infinity` and `-Infinity` as bare words and integers with every digit;
 * JavaScript's JSON refuses the words and rounds every integer past 2^53.
 *
 * - parseJson: integers outside Number's safe range become BigInt, `NaN`/`Infinity`/`-Infinity` numbers; every
 *   other value is what JSON.parse gives. Ordinary text costs one scan for a run of 16 digits, then JSON.parse.
 * - stringifyJson: BigInt as its digits, non-finite numbers as Python's words; everything else as JSON.stringify.
 *   Values without either cost JSON.stringify plus one check of the output for `null` (where a NaN could hide).
 */

/** A run of 16 digits is the shortest text that can hold an integer past 2^53 (9007199254740992 has 16). */
const LONG_DIGITS = /\d{16}/;
const PYTHON_WORDS = /NaN|Infinity/;

export function parseJson(text: string): unknown {
  if (!LONG_DIGITS.test(text)) {
    try {
      return JSON.parse(text);
    } catch (err) {
      if (!PYTHON_WORDS.test(text)) throw err;
    }
  }
  return new ExactParser(text).document();
}

class ExactParser {
  private i = 0;
  constructor(private readonly s: string) {}

  document(): unknown {
    const v = this.value();
    this.ws();
    if (this.i < this.s.length) this.fail('unexpected text after the JSON value');
    return v;
  }

  private fail(why: string): never {
    throw new SyntaxError(`${why} at position ${this.i} in JSON`);
  }

  private ws(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s.charCodeAt(this.i);
      if (c === 32 || c === 10 || c === 13 || c === 9) this.i++;
      else break;
    }
  }

  private value(): unknown {
    this.ws();
    const c = this.s[this.i];
    if (c === '{') return this.object();
    if (c === '[') return this.array();
    if (c === '"') return this.string();
    if (c === '-' || (c >= '0' && c <= '9')) return this.number();
    for (const [word, v] of WORDS) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return v;
      }
    }
    return this.fail(c === undefined ? 'unexpected end' : `unexpected character ${JSON.stringify(c)}`);
  }

  private object(): Record<string, unknown> {
    this.i++;
    const out: Record<string, unknown> = {};
    this.ws();
    if (this.s[this.i] === '}') {
      this.i++;
      return out;
    }
    for (;;) {
      this.ws();
      if (this.s[this.i] !== '"') this.fail('expected a key');
      const key = this.string();
      this.ws();
      if (this.s[this.i++] !== ':') this.fail('expected ":"');
      const v = this.value();
      // as JSON.parse: a "__proto__" key is an own property, never the prototype
      Object.defineProperty(out, key, { value: v, enumerable: true, writable: true, configurable: true });
      this.ws();
      const next = this.s[this.i++];
      if (next === '}') return out;
      if (next !== ',') this.fail('expected "," or "}"');
    }
  }

  private array(): unknown[] {
    this.i++;
    const out: unknown[] = [];
    this.ws();
    if (this.s[this.i] === ']') {
      this.i++;
      return out;
    }
    for (;;) {
      out.push(this.value());
      this.ws();
      const next = this.s[this.i++];
      if (next === ']') return out;
      if (next !== ',') this.fail('expected "," or "]"');
    }
  }

  private string(): string {
    const start = this.i;
    this.i++;
    for (;;) {
      const c = this.s.charCodeAt(this.i);
      if (Number.isNaN(c)) this.fail('unterminated string');
      if (c === 34) break; // "
      this.i += c === 92 ? 2 : 1; // a backslash skips the escaped character
    }
    this.i++;
    return JSON.parse(this.s.slice(start, this.i)) as string;
  }

  private number(): number | bigint {
    const m = NUMBER.exec(this.s.slice(this.i, this.i + 400));
    if (!m) {
      if (this.s.startsWith('-Infinity', this.i)) {
        this.i += 9;
        return -Infinity;
      }
      return this.fail('bad number');
    }
    this.i += m[0].length;
    const n = Number(m[0]);
    if (m[1] === undefined && m[2] === undefined && !Number.isSafeInteger(n)) return BigInt(m[0]);
    return n;
  }
}

const NUMBER = /^-?(?:0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/;
const WORDS: Array<[string, unknown]> = [['true', true], ['false', false], ['null', null], ['NaN', NaN], ['Infinity', Infinity]];

export function stringifyJson(value: unknown): string | undefined {
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch (err) {
    if (!(err instanceof TypeError) || !/BigInt/.test(err.message)) throw err;
    return exact(value);
  }
  // NaN and ±Infinity come out as null: look for them only when the text has a null
  if (text !== undefined && text.includes('null') && hasNonFinite(value)) return exact(value);
  return text;
}

function hasNonFinite(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isFinite(v);
  if (v === null || typeof v !== 'object') return false;
  if (Array.isArray(v)) return v.some(hasNonFinite);
  if (typeof (v as { toJSON?: unknown }).toJSON === 'function') return false;
  return Object.values(v).some(hasNonFinite);
}

/** JSON.stringify's rules (toJSON, undefined/functions dropped in objects and null in arrays), plus BigInt and non-finite. */
function exact(v: unknown): string | undefined {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function') {
    v = (v as { toJSON(): unknown }).toJSON();
  }
  switch (typeof v) {
    case 'bigint':
      return v.toString();
    case 'number':
      return Number.isFinite(v) ? JSON.stringify(v) : Number.isNaN(v) ? 'NaN' : v > 0 ? 'Infinity' : '-Infinity';
    case 'string':
    case 'boolean':
      return JSON.stringify(v);
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined;
    default:
      break;
  }
  if (v === null) return 'null';
  if (Array.isArray(v)) return `[${v.map((x) => exact(x) ?? 'null').join(',')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v as object)) {
    const t = exact(x);
    if (t !== undefined) parts.push(`${JSON.stringify(k)}:${t}`);
  }
  return `{${parts.join(',')}}`;
}
