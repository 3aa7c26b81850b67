/**
 * Login and registration endpoints (JSON in, JSON out):
 *   GET  /api/users/check-phone?phone=   { phone, registered }              — the dialog's on-blur check
 *   POST /api/sms/send {phone, purpose}   202 { taskId, resendAfter, expiresIn } — code stored, send_sms queued
 *   POST /api/login/sms {phone, code}     { token, username, expiresAt }
 *   POST /api/login/password {account, password}   the same; account = username, phone or email
 *   POST /api/register {phone, code, password, username?}   201 { username, phone }
 *   GET  /api/me (Bearer token)           { username, expiresAt }            — 401 once the token expired
 *   POST /api/logout (Bearer token)       204; the token stops working at once
 * The HTTP answer to /api/sms/send does not wait for the SMS: it returns once the message is queued.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { ApiError } from '../errors.ts';
import * as v from '../validate.ts';
import type { Session } from '../auth/tokens.ts';
import type { User } from '../auth/users.ts';
import type { WebDeps } from './deps.ts';

export function bearer(req: FastifyRequest): string | null {
  const h = req.headers.authorization;
  const m = typeof h === 'string' ? /^Bearer\s+(\S+)$/i.exec(h) : null;
  return m ? m[1] : null;
}

export function registerAuthRoutes(app: FastifyInstance, deps: WebDeps): void {
  const { users, codes, tokens } = deps.rt;

  async function loginAnswer(user: User) {
    const { token, session } = await tokens.issue(user);
    return { token, username: session.username, expiresAt: new Date(session.expiresAt).toISOString() };
  }

  async function session(req: FastifyRequest): Promise<{ token: string; session: Session }> {
    const token = bearer(req);
    const s = token ? await tokens.lookup(token) : null;
    if (!token || !s) throw new ApiError(401, 'unauthorized', 'Log in first (your session is missing or has expired).');
    return { token, session: s };
  }

  app.get<{ Querystring: { phone?: unknown } }>('/api/users/check-phone', async (req) => {
    const phone = v.phone(req.query.phone);
    return { phone, registered: await users.phoneRegistered(phone) };
  });

  app.post('/api/sms/send', async (req, reply) => {
    const body = v.body(req.body);
    const phone = v.phone(body.phone);
    const purpose = v.purpose(body.purpose);
    const registered = await users.phoneRegistered(phone);
    if (purpose === 'login' && !registered) {
      throw new ApiError(404, 'phone_not_registered', 'This number is not registered: register first.', { field: 'phone' });
    }
    if (purpose === 'register' && registered) {
      throw new ApiError(409, 'phone_taken', 'This phone number is already registered: log in instead.', { field: 'phone' });
    }
    const code = await codes.issue(phone, purpose);
    let taskId: string;
    try {
      taskId = await deps.queueSms(phone, code);
    } catch (err) {
      await codes.release(phone, purpose).catch(() => {});
      deps.logError(`cannot queue send_sms for ${phone}: ${(err as Error).message}`);
      throw new ApiError(503, 'unavailable', 'The SMS could not be queued just now; try again in a moment.');
    }
    return reply.status(202).send({
      taskId, resendAfter: codes.policy.resendSeconds, expiresIn: codes.policy.codeTtlSeconds,
    });
  });

  app.post('/api/login/sms', async (req) => {
    const body = v.body(req.body);
    const phone = v.phone(body.phone);
    const code = v.code(body.code);
    await codes.verify(phone, 'login', code);
    const user = await users.byPhone(phone);
    if (!user) throw new ApiError(401, 'bad_credentials', 'This number has no account.', { field: 'phone' });
    return loginAnswer(user);
  });

  app.post('/api/login/password', async (req) => {
    const body = v.body(req.body);
    const account = v.account(body.account);
    if (typeof body.password !== 'string' || body.password === '' || body.password.length > 1024) {
      throw new ApiError(400, 'bad_password', 'A password is required.', { field: 'password' });
    }
    const user = await users.checkPassword(account.kind, account.value, body.password);
    if (!user) throw new ApiError(401, 'bad_credentials', 'Wrong account or password.', { field: 'password' });
    return loginAnswer(user);
  });

  app.post('/api/register', async (req, reply) => {
    const body = v.body(req.body);
    const phone = v.phone(body.phone);
    const code = v.code(body.code);
    const password = v.password(body.password);
    const username = v.username(body.username);
    if (await users.phoneRegistered(phone)) {
      throw new ApiError(409, 'phone_taken', 'This phone number is already registered: log in instead.', { field: 'phone' });
    }
    if (username !== undefined && (await users.usernameTaken(username))) {
      throw new ApiError(409, 'username_taken', 'This username is taken: choose another.', { field: 'username' });
    }
    await codes.verify(phone, 'register', code);
    const user = await users.create({ phone, password, username });
    return reply.status(201).send({ username: user.username, phone: user.phone });
  });

  app.get('/api/me', async (req) => {
    const { session: s } = await session(req);
    return { username: s.username, expiresAt: new Date(s.expiresAt).toISOString() };
  });

  app.post('/api/logout', async (req, reply) => {
    const { token } = await session(req);
    await tokens.revoke(token);
    return reply.status(204).send();
  });
}
