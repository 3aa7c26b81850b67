/**
 * The Fastify application: JSON API under /api, the page at /, one error shape for every failure.
 * It knows nothing of celeriac: sending an SMS and reading a task's state come in as functions (web/deps.ts),
 * so the routes can be read (and tested) as plain HTTP.
 *
 * Error shape: `{ error: { code, message, field?, … } }` with the status of errors.ts; 429s carry Retry-After.
 * Fastify's own refusals (bad JSON, wrong content type, body too large) are mapped to the same shape; a cache that
 * cannot be reached is a 503 `unavailable`, anything else a logged 500 `internal`.
 */
import Fastify, { type FastifyError, type FastifyInstance } from 'fastify';
import { ApiError } from '../errors.ts';
import type { WebDeps } from './deps.ts';
import { registerAuthRoutes } from './auth-routes.ts';
import { registerHomeRoutes } from './home-routes.ts';
import { registerStatic } from './static.ts';

function fromFastify(err: FastifyError): ApiError | null {
  switch (err.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'unsupported_media_type', 'Send JSON with Content-Type: application/json.');
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, 'too_large', 'The request body is too large.');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, 'bad_request', 'The request body is not valid JSON.', { field: 'body' });
  }
  if (err instanceof SyntaxError || (err.statusCode === 400 && /JSON/i.test(err.message))) {
    return new ApiError(400, 'bad_request', 'The request body is not valid JSON.', { field: 'body' });
  }
  if (err.statusCode && err.statusCode >= 400 && err.statusCode < 500) {
    return new ApiError(err.statusCode, 'bad_request', err.message);
  }
  return null;
}

/** Redis down (ioredis gave up on the command) or SQLite locked past its busy timeout: a 503, not a 500. */
function unreachable(err: unknown): boolean {
  const e = err as { name?: string; message?: string; code?: string };
  return e?.name === 'MaxRetriesPerRequestError' || e?.code === 'SQLITE_BUSY' ||
    /ECONNREFUSED|ECONNRESET|Connection is closed|Stream isn't writeable/.test(e?.message ?? '');
}

export async function buildWebApp(deps: WebDeps): Promise<FastifyInstance> {
  const app = Fastify({ logger: false, bodyLimit: 16 * 1024 });

  app.setErrorHandler((raw, req, reply) => {
    const err = raw instanceof ApiError ? raw : fromFastify(raw as FastifyError);
    if (err) {
      if (typeof err.extra.retryAfter === 'number') void reply.header('retry-after', String(err.extra.retryAfter));
      return reply.status(err.status).send(err.toJSON());
    }
    if (unreachable(raw)) {
      deps.logError(`${req.method} ${req.url}: the store is unreachable: ${(raw as Error).message}`);
      return reply.status(503).send(new ApiError(503, 'unavailable', 'A service behind the app is unreachable; try again in a moment.').toJSON());
    }
    deps.logError(`${req.method} ${req.url} failed: ${(raw as Error).stack ?? String(raw)}`);
    return reply.status(500).send({ error: { code: 'internal', message: 'Something went wrong on our side; try again.' } });
  });

  app.setNotFoundHandler((req, reply) => {
    const err = new ApiError(404, 'not_found', `No such page: ${req.method} ${req.url.split('?')[0]}`);
    return reply.status(404).send(err.toJSON());
  });

  app.addHook('onSend', async (req, reply, payload) => {
    if (req.url.startsWith('/api/')) void reply.header('cache-control', 'no-store');
    void reply.header('x-content-type-options', 'nosniff');
    return payload;
  });

  registerStatic(app);
  registerAuthRoutes(app, deps);
  registerHomeRoutes(app, deps);
  return app;
}
