/**
 * Errors of the stores, so that every error a broker or result backend throws is a CeleriacError with a code
 * (src/common/errors.ts): use after close is E_CLOSED; a store that cannot be reached or used is E_CONNECTION
 * (stores/redis/connection.ts, stores/sqlite/database.ts); text read back from a store that is not the JSON we
 * wrote is E_MALFORMED_MESSAGE; a value that cannot be stored as JSON is E_NOT_JSON.
 */
import { CeleriacError, ErrorCode } from '../common/errors.ts';
import { parseJson, stringifyJson } from '../common/exact-json.ts';

/** E_CLOSED: `what` (`broker`, `result backend`) at `displayUrl` was used after close(). */
export function closedError(what: string, displayUrl: string): CeleriacError {
  return new CeleriacError(ErrorCode.Closed, `${what} ${displayUrl} is closed`);
}

/** JSON text of a value to store; E_NOT_JSON (naming `what`) when it has none (a BigInt, a cycle). */
export function toJson(value: unknown, what: string): string {
  try {
    return stringifyJson(value) ?? 'null';
  } catch (err) {
    throw new CeleriacError(ErrorCode.NotJson, `${what} cannot be stored as JSON (${(err as Error).message})`, { cause: err });
  }
}

/** A value read back from its JSON text; E_MALFORMED_MESSAGE (naming `what`) when the text is not JSON. */
export function fromJson(text: string, what: string): unknown {
  try {
    return parseJson(text);
  } catch (err) {
    throw new CeleriacError(ErrorCode.MalformedMessage, `${what} is not JSON (${(err as Error).message}): ${text.slice(0, 200)}`,
      { cause: err });
  }
}
