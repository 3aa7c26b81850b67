/**
 * The page: public/index.html at /, and its script and style at /static/<name>. Plain files, read once at start,
 * no build step and nothing from outside (the Content-Security-Policy allows this origin only).
 */
import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

const PUBLIC = new URL('../public/', import.meta.url);
const FILES: Record<string, string> = {
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};
const CSP = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'";

export function registerStatic(app: FastifyInstance): void {
  const index = readFileSync(new URL('index.html', PUBLIC));
  const assets = new Map(Object.keys(FILES).map((name) => [name, readFileSync(new URL(name, PUBLIC))]));

  app.get('/', async (_req, reply) => {
    return reply.type('text/html; charset=utf-8').header('content-security-policy', CSP).header('cache-control', 'no-cache').send(index);
  });

  app.get<{ Params: { name: string } }>('/static/:name', async (req, reply) => {
    const body = assets.get(req.params.name);
    if (!body) return reply.callNotFound();
    return reply.type(FILES[req.params.name]).header('cache-control', 'no-cache').send(body);
  });
}
