/**
 * `miniglm keys create|list|revoke` against a real Postgres database (DATABASE_URL, no API),
 * and the client commands sending MINIGLM_API_KEY to an API on that database: a missing,
 * revoked or too weak key is one line naming the problem.
 */
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startApi, type StartedApi } from '@miniglm/api';
import { openTestDb, type TestDb } from '@miniglm/core/db/testing';
import { createRedis, deleteKeysWithPrefix, DEFAULT_REDIS_URL } from '@miniglm/core/service';
import { expectOneLineError, expectSuccess, startCli, useTempDir } from './helpers.ts';

const dir = useTempDir('keys');
const prefix = `miniglm-test-cli-keys-${process.pid}`;
const redisUrl = process.env.MINIGLM_TEST_REDIS_URL || DEFAULT_REDIS_URL;
const redis = createRedis(redisUrl, { failFast: true });
let t: TestDb;
let api: StartedApi;

beforeAll(async () => {
  t = await openTestDb('postgres', 'cli_keys');
  api = await startApi({ db: t.db, redis, prefix, port: 0, logger: false });
});

afterAll(async () => {
  await api?.close();
  await deleteKeysWithPrefix(redis, prefix);
  redis.disconnect();
  await t?.cleanup();
});

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) =>
  startCli(args, dir(), 60_000, { DATABASE_URL: t.where, MINIGLM_API_KEY: '', ...env }).done;

describe('miniglm keys', () => {
  const made: Record<string, { id: string; key: string }> = {};

  it('miniglm api refuses a non-loopback address while no key exists, in one line', async () => {
    expectOneLineError(
      await cli(['api', '--host', '0.0.0.0', '--port', '0'], { REDIS_URL: redisUrl }),
      /refusing to listen on 0\.0\.0\.0 without API keys: .*miniglm keys create --name admin --role admin/,
    );
  });

  it('creates keys, printing each secret once, and stores only its hash', async () => {
    const none = await cli(['keys', 'list']);
    expectSuccess(none);
    expect(none.stdout).toMatch(/no API keys: the API runs keyless, on loopback addresses only/);

    for (const [name, role] of [
      ['ops', 'admin'],
      ['viewer-bot', 'viewer'],
    ]) {
      const r = await cli(['keys', 'create', '--name', name!, '--role', role!]);
      expectSuccess(r);
      const m = new RegExp(
        `^created ${role} key ([0-9a-f]{12}) \\("${name}"\\); the key, shown only now:\\n(mgk_\\1_[A-Za-z0-9_-]{43})\\n$`,
      ).exec(r.stdout);
      expect(m, r.stdout).not.toBeNull();
      made[name!] = { id: m![1]!, key: m![2]! };
    }
    const row = await t.db.prisma.apiKey.findUniqueOrThrow({ where: { id: made.ops!.id } });
    expect(row.role).toBe('admin');
    expect(JSON.stringify(row)).not.toContain(made.ops!.key.split('_').at(-1));

    const list = await cli(['keys', 'list']);
    expectSuccess(list);
    // Not revoked ("-"); no quotas or per-run limits of its own: the API's defaults apply.
    expect(list.stdout).toMatch(new RegExp(`${made.ops!.id}\\s+ops\\s+admin\\s+\\S+Z\\s+-(\\s+default){7}\\n`));
    expect(list.stdout).toMatch(new RegExp(`${made['viewer-bot']!.id}\\s+viewer-bot\\s+viewer`));
    expect(list.stdout).not.toContain('mgk_');
  });

  it('refuses a bad role or a missing name in one line', async () => {
    expectOneLineError(
      await cli(['keys', 'create', '--name', 'x', '--role', 'root']),
      /--role must be one of admin, member, viewer, got "root"/,
    );
    expectOneLineError(await cli(['keys', 'create', '--role', 'admin']), /missing --name/);
    expectOneLineError(await cli(['keys', 'revoke', 'ffffffffffff']), /no key with id "ffffffffffff"/);
    expect(await t.db.prisma.apiKey.count()).toBe(2);
  });

  it('client commands send MINIGLM_API_KEY; 401 and 403 are one line naming the problem', async () => {
    const runs = ['runs', '--api', api.url];
    const ok = await cli(runs, { MINIGLM_API_KEY: made.ops!.key });
    expectSuccess(ok);
    expect(ok.stdout).toMatch(/no runs/);

    expectOneLineError(await cli(runs), /401 the API needs a key: set MINIGLM_API_KEY/);

    const config = path.join(dir(), 'tiny.yaml');
    fs.writeFileSync(
      config,
      [
        'name: tiny',
        'tokenizer: { name: char }',
        'model: { layers: 1, heads: 2, dim: 16, blockSize: 16 }',
        'stages:',
        '  - { name: tang, kind: pretrain, dataset: { source: "poetry:tang" }, iterations: 2, batchSize: 2 }',
      ].join('\n'),
    );
    expectOneLineError(
      await cli(['submit', '--config', config, '--api', api.url], { MINIGLM_API_KEY: made['viewer-bot']!.key }),
      /POST \/v1\/runs: 403 not allowed with this key: .*viewer key, which can only read/,
    );
    expect(await t.db.prisma.run.count()).toBe(0);
  });

  it('revoke takes effect at the next request', async () => {
    const r = await cli(['keys', 'revoke', made.ops!.id]);
    expectSuccess(r);
    expect(r.stdout).toMatch(new RegExp(`^revoked key ${made.ops!.id} \\("ops", admin\\) at \\S+Z\\n$`));
    expect((await t.db.prisma.apiKey.findUniqueOrThrow({ where: { id: made.ops!.id } })).revokedAt).not.toBeNull();
    expectOneLineError(
      await cli(['runs', '--api', api.url], { MINIGLM_API_KEY: made.ops!.key }),
      new RegExp(`401 the API refused MINIGLM_API_KEY: the API key ${made.ops!.id} \\("ops"\\) was revoked`),
    );
    const list = await cli(['keys', 'list']);
    expect(list.stdout).toMatch(new RegExp(`${made.ops!.id}\\s+ops\\s+admin\\s+\\S+Z\\s+\\S+Z`));
  });

  it('bootstraps a deployment: keys generate makes a key without a database, miniglm api stores it from MINIGLM_ADMIN_KEY_FILE', async () => {
    const generated = await startCli(['keys', 'generate'], dir(), 60_000, {
      DATABASE_URL: 'postgresql://nowhere.invalid/x',
    }).done;
    expectSuccess(generated);
    const key = generated.stdout.trim();
    expect(key).toMatch(/^mgk_[0-9a-f]{12}_[A-Za-z0-9_-]{43}$/);
    const id = key.split('_')[1]!;
    expect(await t.db.prisma.apiKey.count({ where: { id } })).toBe(0);

    const secret = path.join(dir(), 'admin_key');
    fs.writeFileSync(secret, 'not a key\n');
    const env = { REDIS_URL: redisUrl, MINIGLM_ADMIN_KEY_FILE: secret };
    expectOneLineError(
      await cli(['api', '--host', '0.0.0.0', '--port', '0'], env),
      /MINIGLM_ADMIN_KEY_FILE \(.*admin_key\): not an API key of the form mgk_/,
    );

    fs.writeFileSync(secret, `${key}\n`);
    const server = startCli(['api', '--host', '0.0.0.0', '--port', '0'], dir(), 60_000, {
      DATABASE_URL: t.where,
      MINIGLM_API_KEY: '',
      ...env,
    });
    let out = '';
    await new Promise<void>((resolve) =>
      server.child.stdout!.on('data', (chunk: string) => {
        out += chunk;
        if (out.includes('listening on')) resolve();
      }),
    );
    server.child.kill('SIGTERM');
    await server.done;
    expect(out).toContain(`stored the admin key ${id} from MINIGLM_ADMIN_KEY_FILE`);
    expect(await t.db.prisma.apiKey.findUniqueOrThrow({ where: { id } })).toMatchObject({
      role: 'admin',
      revokedAt: null,
    });
    expectSuccess(await cli(['runs', '--api', api.url], { MINIGLM_API_KEY: key }));
  });

  it('keys create and keys set give a key quotas of its own; a submission past one is one line naming it', async () => {
    const created = await cli([
      'keys',
      'create',
      '--name',
      'quota-bot',
      '--role',
      'member',
      '--max-queued-runs',
      '0',
      '--max-stored-bytes',
      '2GiB',
      '--max-parameters',
      '5e6',
      '--json',
    ]);
    expectSuccess(created);
    const bot = JSON.parse(created.stdout) as { id: string; key: string };
    expect(JSON.parse(created.stdout)).toMatchObject({
      maxQueuedRuns: 0,
      maxRunningRuns: null,
      maxStoredBytes: 2 * 1024 ** 3,
      maxParameters: 5e6,
      maxCheckpoints: null,
    });
    const list = await cli(['keys', 'list']);
    expect(list.stdout).toMatch(
      new RegExp(
        `${bot.id}\\s+quota-bot\\s+member\\s+\\S+Z\\s+-\\s+default\\s+0\\s+2\\.0 GiB\\s+5,000,000(\\s+default){3}\\n`,
      ),
    );

    const config = path.join(dir(), 'quota.yaml');
    fs.writeFileSync(
      config,
      [
        'name: quota',
        'tokenizer: { name: char }',
        'model: { layers: 1, heads: 2, dim: 16, blockSize: 16 }',
        'stages:',
        '  - { name: tang, kind: pretrain, dataset: { source: "poetry:tang" }, iterations: 2, batchSize: 2 }',
      ].join('\n'),
    );
    const runs = await t.db.prisma.run.count();
    expectOneLineError(
      await cli(['submit', '--config', config, '--api', api.url], { MINIGLM_API_KEY: bot.key }),
      new RegExp(
        `POST /v1/runs: 429 queued runs quota: key ${bot.id} \\("quota-bot"\\) has 0 runs queued, and its limit is 0 \\(this key's own limit, set by miniglm keys set ${bot.id} --max-queued-runs\\)`,
      ),
    );
    expect(await t.db.prisma.run.count()).toBe(runs);

    const set = await cli([
      'keys',
      'set',
      bot.id,
      '--max-queued-runs',
      'default',
      '--max-running-runs',
      '3',
      '--max-parameters',
      'default',
      '--max-checkpoints',
      '50',
    ]);
    expectSuccess(set);
    expect(set.stdout).toBe(
      `key ${bot.id} ("quota-bot", member): max running runs 3, max queued runs default, max stored bytes 2.0 GiB; ` +
        'per run: max parameters default, max training tokens default, max checkpoints per stage 50, max eval tokens default\n',
    );
    expect(await t.db.prisma.apiKey.findUniqueOrThrow({ where: { id: bot.id } })).toMatchObject({
      maxRunningRuns: 3,
      maxQueuedRuns: null,
      maxStoredBytes: 2n * 1024n ** 3n,
      maxParameters: null,
      maxCheckpoints: 50,
    });
    expectOneLineError(
      await cli(['keys', 'set', bot.id, '--max-checkpoints', '0']),
      /keys set: --max-checkpoints must be a whole number from 1 to 2147483647, got "0", or "default"/,
    );
    expectOneLineError(
      await cli(['keys', 'set', bot.id, '--max-stored-bytes', 'lots']),
      /keys set: --max-stored-bytes must be a size such as 50GiB, 500MB or 1048576 \(bytes\), got "lots", or "default"/,
    );
  });
});
