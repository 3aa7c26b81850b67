/**
 * Users in the app's SQLite database (table `users`, see db.ts): find by phone, email or username, create with a
 * hashed password, check a password. Uniqueness is the database's (UNIQUE constraints), so two registrations of one
 * phone racing each other end with exactly one account and one 409.
 */
import type { AppDb } from '../db.ts';
import { ApiError } from '../errors.ts';
import { dummyHash, hashPassword, verifyPassword } from './passwords.ts';

export interface User {
  id: number;
  username: string;
  phone: string;
  email: string | null;
}

interface UserRow extends User {
  password_hash: string;
}

export interface NewUser {
  username?: string;
  phone: string;
  email?: string | null;
  password: string;
}

const COLUMNS = 'id, username, phone, email, password_hash';

function publicUser(row: UserRow): User {
  return { id: row.id, username: row.username, phone: row.phone, email: row.email };
}

export class UserStore {
  private readonly q;

  constructor(db: AppDb) {
    this.q = {
      byPhone: db.prepare<[string], UserRow>(`SELECT ${COLUMNS} FROM users WHERE phone = ?`),
      byEmail: db.prepare<[string], UserRow>(`SELECT ${COLUMNS} FROM users WHERE email = ?`),
      byUsername: db.prepare<[string], UserRow>(`SELECT ${COLUMNS} FROM users WHERE username = ?`),
      insert: db.prepare<[string, string, string | null, string, number]>(
        'INSERT INTO users (username, phone, email, password_hash, created_at) VALUES (?, ?, ?, ?, ?)'),
    };
  }

  async phoneRegistered(phone: string): Promise<boolean> {
    return this.q.byPhone.get(phone) !== undefined;
  }

  async usernameTaken(username: string): Promise<boolean> {
    return this.q.byUsername.get(username) !== undefined;
  }

  async byPhone(phone: string): Promise<User | null> {
    const row = this.q.byPhone.get(phone);
    return row ? publicUser(row) : null;
  }

  /** The username defaults to the phone number, so registering needs only a phone, a code and a password. */
  async create(u: NewUser): Promise<User> {
    const username = u.username ?? u.phone;
    if (this.q.byPhone.get(u.phone)) throw new ApiError(409, 'phone_taken', 'This phone number is already registered: log in instead.', { field: 'phone' });
    if (this.q.byUsername.get(username)) throw new ApiError(409, 'username_taken', 'This username is taken: choose another.', { field: 'username' });
    const hash = await hashPassword(u.password);
    try {
      const info = this.q.insert.run(username, u.phone, u.email ?? null, hash, Date.now());
      return { id: Number(info.lastInsertRowid), username, phone: u.phone, email: u.email ?? null };
    } catch (err) {
      // lost a race with another registration of the same phone or name while hashing
      const msg = (err as Error).message;
      if (/UNIQUE constraint failed: users\.phone/.test(msg)) {
        throw new ApiError(409, 'phone_taken', 'This phone number is already registered: log in instead.', { field: 'phone' });
      }
      if (/UNIQUE constraint failed: users\.username/.test(msg)) {
        throw new ApiError(409, 'username_taken', 'This username is taken: choose another.', { field: 'username' });
      }
      throw err;
    }
  }

  /** The user when `password` is theirs; null otherwise, after the same amount of work either way. */
  async checkPassword(kind: 'phone' | 'email' | 'username', account: string, password: string): Promise<User | null> {
    const row = kind === 'phone' ? this.q.byPhone.get(account)
      : kind === 'email' ? this.q.byEmail.get(account) : this.q.byUsername.get(account);
    const ok = await verifyPassword(password, row?.password_hash ?? (await dummyHash()));
    return row && ok ? publicUser(row) : null;
  }
}
