/**
 * The home page's data and the demo's windows into the machinery:
 *   GET /api/banners            { banners, refreshedAt, source: 'cache' | 'database' } — see banners.ts
 *   GET /api/visits             { visits } — each call counts itself: INCR on the raw connection (a visit counter)
 *   GET /api/outbox?phone=      { messages } — the phone panel (404 outbox_disabled with a real provider)
 *   GET /api/sms/tasks/:id      { id, state, result? | error? } — a send_sms task by id, FAILURE included
 *   GET /api/health             { ok, cache, broker }
 */
import type { FastifyInstance } from 'fastify';
import { ApiError } from '../errors.ts';
import * as v from '../validate.ts';
import type { WebDeps } from './deps.ts';

export function registerHomeRoutes(app: FastifyInstance, deps: WebDeps): void {
  const { banners, cache, outbox } = deps.rt;

  app.get('/api/banners', async () => banners.list());

  app.get('/api/visits', async () => {
    // `connection()` is django-redis's get_redis_connection(): a command the cache does not wrap, on an unprefixed
    // key we name ourselves.
    const conn = cache.connection();
    return { visits: await conn.incr(`${cache.prefix}:visits`) };
  });

  app.get<{ Querystring: { phone?: unknown } }>('/api/outbox', async (req) => {
    if (!outbox) {
      throw new ApiError(404, 'outbox_disabled', 'Messages go to a real SMS provider (SMS_PROVIDER=http); there is no outbox to show.');
    }
    const phone = req.query.phone === undefined || req.query.phone === '' ? undefined : v.phone(req.query.phone);
    return { messages: await outbox.list(phone) };
  });

  app.get<{ Params: { id: string } }>('/api/sms/tasks/:id', async (req) => deps.smsStatus(v.taskId(req.params.id)));

  app.get('/api/health', async () => {
    await cache.connection().ping();
    return { ok: true, cache: cache.connection().displayUrl, broker: await deps.brokerUrl() };
  });
}
