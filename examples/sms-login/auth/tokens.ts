/**
 * Login tokens: random opaque strings (32 bytes, base64url) whose session lives in the cache with a TTL.
 * Chosen over signed tokens because logging out (or an admin) can revoke one at once, and the cache is there anyway.
 *
 * Keys: token:<sha256 of the token, hex> -> { userId, username, expiresAt }, TTL tokenTtlSeconds. Only the digest is
 * stored, so a dump of the cache gives no usable token.
 */
import { createHash, randomBytes } from 'node:crypto';
import type { Cache } from '../cache/cache.ts';
import type { User } from './users.ts';

export interface Session {
  userId: number;
  username: string;
  /** ms since the epoch */
  expiresAt: number;
}

const TOKEN_RE = /^[A-Za-z0-9_-]{43}$/;

function keyOf(token: string): string {
  return `token:${createHash('sha256').update(token).digest('hex')}`;
}

export class TokenService {
  constructor(private readonly cache: Cache, readonly ttlSeconds: number) {}

  async issue(user: User): Promise<{ token: string; session: Session }> {
    const token = randomBytes(32).toString('base64url');
    const session: Session = { userId: user.id, username: user.username, expiresAt: Date.now() + this.ttlSeconds * 1000 };
    await this.cache.set(keyOf(token), session, this.ttlSeconds);
    return { token, session };
  }

  /** The session of a live token; null for an unknown, malformed, revoked or expired one. */
  async lookup(token: string): Promise<Session | null> {
    if (!TOKEN_RE.test(token)) return null;
    return this.cache.get<Session>(keyOf(token));
  }

  async revoke(token: string): Promise<boolean> {
    return TOKEN_RE.test(token) && this.cache.delete(keyOf(token));
  }
}
