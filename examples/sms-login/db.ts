/**
 * The application's own SQLite database (where a Django project would often use MySQL): users and banners, in one
 * better-sqlite3 connection per process (WAL, so the web app and a separate worker can share the file).
 *
 * Tables:
 *   users(id, username UNIQUE NOCASE, phone UNIQUE, email UNIQUE NOCASE NULL, password_hash, created_at ms)
 *   banners(id, title, subtitle, link, color, position, active 0|1, updated_at ms)
 * Seeding (first start, empty tables only): the demo account and three banners, so the page has something to show.
 */
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import Database from 'better-sqlite3';

export type AppDb = Database.Database;

export function openAppDb(file: string): AppDb {
  mkdirSync(dirname(file), { recursive: true });
  const db = new Database(file, { timeout: 10_000 });
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec(`
    CREATE TABLE IF NOT EXISTS users (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      username TEXT NOT NULL UNIQUE COLLATE NOCASE,
      phone TEXT NOT NULL UNIQUE,
      email TEXT UNIQUE COLLATE NOCASE,
      password_hash TEXT NOT NULL,
      created_at INTEGER NOT NULL
    );
    CREATE TABLE IF NOT EXISTS banners (
      id INTEGER PRIMARY KEY AUTOINCREMENT,
      title TEXT NOT NULL,
      subtitle TEXT NOT NULL DEFAULT '',
      link TEXT NOT NULL DEFAULT '#',
      color TEXT NOT NULL DEFAULT '#3b6fd8',
      position INTEGER NOT NULL DEFAULT 0,
      active INTEGER NOT NULL DEFAULT 1,
      updated_at INTEGER NOT NULL
    );`);
  return db;
}

/** The demo account the README and the page mention. */
export const DEMO_USER = {
  username: 'alice',
  phone: '13800138000',
  email: 'alice@example.com',
  password: 'celeriac-demo',
} as const;

const DEMO_BANNERS = [
  { title: 'Tasks in TypeScript', subtitle: 'Define them once, call them from anywhere', color: '#3b6fd8' },
  { title: 'Beat keeps the banners fresh', subtitle: 'update_banner runs every minute', color: '#2f9e6e' },
  { title: 'Wire-compatible with Celery', subtitle: 'Python workers can share the queues', color: '#c2582b' },
];

/** Fill empty tables with the demo data; `insertUser` is passed in so the password gets hashed by its owner. */
export async function seed(db: AppDb, insertUser: (u: typeof DEMO_USER) => Promise<unknown>): Promise<void> {
  const banners = db.prepare('SELECT COUNT(*) AS n FROM banners').get() as { n: number };
  if (banners.n === 0) {
    const add = db.prepare('INSERT INTO banners (title, subtitle, color, position, updated_at) VALUES (?, ?, ?, ?, ?)');
    DEMO_BANNERS.forEach((b, i) => add.run(b.title, b.subtitle, b.color, i, Date.now()));
  }
  const users = db.prepare('SELECT COUNT(*) AS n FROM users').get() as { n: number };
  if (users.n === 0) await insertUser(DEMO_USER);
}
