/**
 * Operations: liveness, readiness (also with Redis down), Prometheus metrics, the OpenAPI
 * document, and that buildApi's app closes cleanly.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRedis } from '@miniglm/core/service';
import { buildApi, startApi } from '../src/index.ts';
import { openHarness, validCurriculum, type Harness } from './helpers.ts';

let h: Harness;
beforeAll(async () => {
  h = await openHarness('health');
});
afterAll(async () => {
  await h?.close();
});

describe('health', () => {
  it('/healthz and /readyz answer 200 when Postgres and Redis are up', async () => {
    const live = await h.app.inject({ url: '/healthz' });
    expect(live.statusCode).toBe(200);
    expect(live.json()).toEqual({ status: 'ok' });
    const ready = await h.app.inject({ url: '/readyz' });
    expect(ready.statusCode, ready.body).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready', database: 'ok', redis: 'ok' });
  });

  it('/readyz is 503 naming Redis when Redis cannot be reached; /healthz stays 200', async () => {
    const redis = createRedis('redis://127.0.0.1:1', { failFast: true });
    const app = await buildApi({ db: h.db, redis, prefix: h.prefix });
    try {
      const ready = await app.inject({ url: '/readyz' });
      expect(ready.statusCode).toBe(503);
      expect(ready.json()).toMatchObject({ error: 'Service Unavailable', database: 'ok' });
      expect(ready.json().message).toMatch(/^not ready: redis: /);
      expect(ready.json().redis).not.toBe('ok');
      expect((await app.inject({ url: '/healthz' })).statusCode).toBe(200);
      // A request that needs Redis says so at once instead of hanging, and writes nothing.
      const submit = await app.inject({
        method: 'POST',
        url: '/v1/runs',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify(validCurriculum({ name: 'no-redis' })),
      });
      expect(submit.statusCode).toBe(503);
      expect(submit.json().message).toMatch(/Redis is not connected/);
      expect(await h.db.prisma.run.count()).toBe(0);
      const generate = await app.inject({
        method: 'POST',
        url: '/v1/generate',
        headers: { 'content-type': 'application/json' },
        payload: JSON.stringify({ alias: 'x', prompt: 'p' }),
      });
      expect(generate.statusCode).toBe(404); // the alias is looked up (Postgres) before Redis is needed
      const metrics = await app.inject({ url: '/metrics' });
      expect(metrics.statusCode).toBe(200);
      expect(metrics.body).toMatch(/^miniglm_runs\{status="queued"\} 0$/m);
      expect(metrics.body).not.toMatch(/^miniglm_jobs\{/m);
    } finally {
      const started = Date.now();
      await app.close();
      redis.disconnect();
      expect(Date.now() - started).toBeLessThan(3000);
    }
  });
});

describe('startApi', () => {
  it('listens on a port and closes', async () => {
    const api = await startApi({ db: h.db, redis: h.redis, prefix: h.prefix, port: 0 });
    try {
      expect(api.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const res = await fetch(`${api.url}/healthz`);
      expect(res.status).toBe(200);
      expect(await res.json()).toEqual({ status: 'ok' });
    } finally {
      await api.close();
    }
    await expect(fetch(`${api.url}/healthz`)).rejects.toThrow();
  });
});

describe('/metrics', () => {
  it('has process metrics, request durations by route, runs by status and jobs by queue and state', async () => {
    const created = await h.app.inject({
      method: 'POST',
      url: '/v1/runs',
      headers: { 'content-type': 'application/json' },
      payload: JSON.stringify(validCurriculum()),
    });
    expect(created.statusCode, created.body).toBe(201);
    await h.app.inject({ url: `/v1/runs/${created.json().id}` });

    const res = await h.app.inject({ url: '/metrics' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/plain/);
    const text = res.body;
    expect(text).toMatch(/^process_cpu_user_seconds_total \d/m);
    expect(text).toMatch(
      /^miniglm_http_request_duration_seconds_count\{method="GET",route="\/v1\/runs\/:id",status="200"\} 1$/m,
    );
    expect(text).toMatch(
      /^miniglm_http_request_duration_seconds_count\{method="POST",route="\/v1\/runs",status="201"\} 1$/m,
    );
    expect(text).toMatch(/^miniglm_runs\{status="queued"\} 1$/m);
    expect(text).toMatch(/^miniglm_runs\{status="failed"\} 0$/m);
    expect(text).toMatch(/^miniglm_runs\{status="running"\} 0$/m);
    expect(text).toMatch(/^miniglm_jobs\{queue="miniglm-prepare",state="waiting"\} 1$/m);
    expect(text).toMatch(/^miniglm_jobs\{queue="miniglm-evaluate",state="waiting-children"\} 1$/m);
    expect(text).toMatch(/^miniglm_jobs\{queue="miniglm-train",state="waiting-children"\} 1$/m);
    expect(text).toMatch(/^miniglm_jobs\{queue="miniglm-generate",state="active"\} 0$/m);
  });
});

describe('OpenAPI', () => {
  it('/docs/json documents the routes with their schemas; /docs serves the UI', async () => {
    const res = await h.app.inject({ url: '/docs/json' });
    expect(res.statusCode).toBe(200);
    const doc = res.json();
    expect(doc.openapi).toMatch(/^3\./);
    for (const path of [
      '/v1/runs',
      '/v1/runs/{id}',
      '/v1/runs/{id}/metrics',
      '/v1/runs/{id}/lineage',
      '/v1/runs/{id}/cancel',
      '/v1/checkpoints/{id}/download',
      '/v1/aliases/{name}',
      '/v1/files',
      '/v1/generate',
      '/v1/compare',
    ])
      expect(doc.paths, path).toHaveProperty([path]);
    const curriculum = doc.paths['/v1/runs'].post.requestBody.content['application/json'].schema;
    expect(curriculum.properties.stages.items.properties).toHaveProperty('iterations');
    expect(curriculum.additionalProperties).toBe(false);
    expect(
      doc.paths['/v1/generate'].post.requestBody.content['application/json'].schema.properties.samples,
    ).toMatchObject({ minimum: 1, maximum: 20 });
    // Keys (src/auth.ts): a bearer scheme for the whole API, 401 on /v1/ routes, none on probes.
    expect(doc.components.securitySchemes.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(doc.paths['/v1/runs'].post.responses).toHaveProperty('401');
    expect(doc.paths['/v1/runs'].get.responses).toHaveProperty('403');
    expect(doc.paths['/healthz'].get.security).toEqual([]);
    expect(doc.paths['/healthz'].get.responses).not.toHaveProperty('401');
    // Not text/plain: a type any web page can send cross-site (src/cross-site.ts).
    expect(Object.keys(doc.paths['/v1/files'].post.requestBody.content)).toEqual(['application/octet-stream']);
    const ui = await h.app.inject({ url: '/docs' });
    expect([200, 302]).toContain(ui.statusCode);
    // The static files of the dashboard are not API routes.
    expect(
      Object.keys(doc.paths).filter((p) => !p.startsWith('/v1/') && !['/healthz', '/readyz', '/metrics'].includes(p)),
    ).toEqual([]);
  });
});

describe('dashboard', () => {
  it('GET / serves the dashboard HTML, its modules and the vendor libraries; API routes stay API routes', async () => {
    const home = await h.app.inject({ url: '/' });
    expect(home.statusCode).toBe(200);
    expect(home.headers['content-type']).toMatch(/^text\/html/);
    expect(home.body).toContain('<script type="module" src="/app.js"></script>');
    for (const [url, type] of [
      ['/app.js', /javascript/],
      ['/style.css', /^text\/css/],
      ['/pages/runs.js', /javascript/],
      ['/vendor/uPlot.esm.js', /javascript/],
      ['/vendor/uPlot.min.css', /^text\/css/],
      ['/vendor/cytoscape.esm.min.js', /javascript/],
    ] as const) {
      const res = await h.app.inject({ url });
      expect(res.statusCode, url).toBe(200);
      expect(res.headers['content-type'], url).toMatch(type);
      expect(res.body.length, url).toBeGreaterThan(100);
    }
    // No wildcard: an unknown path is the API's JSON 404, and the API's own routes answer as before.
    const missing = await h.app.inject({ url: '/no-such-file.js' });
    expect(missing.statusCode).toBe(404);
    expect(missing.json()).toMatchObject({ error: 'Not Found' });
    expect((await h.app.inject({ url: '/v1/no-such-route' })).json()).toMatchObject({ error: 'Not Found' });
    expect((await h.app.inject({ url: '/v1/runs' })).json()).toHaveProperty('runs');
    expect((await h.app.inject({ url: '/healthz' })).json()).toEqual({ status: 'ok' });
  });
});
