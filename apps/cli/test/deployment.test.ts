/**
 * docker-compose.yml and the Dockerfile cannot be run on the development machine (it runs
 * no containers), so what can drift is checked here: the image installs every workspace,
 * and the compose services run `miniglm` commands that exist, with the environment they read.
 */
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { REPO_ROOT } from './helpers.ts';

const read = (file: string) => fs.readFileSync(path.join(REPO_ROOT, file), 'utf8');

describe('deployment files', () => {
  it('the Dockerfile copies every workspace package.json before npm ci', () => {
    const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces;
    const dockerfile = read('Dockerfile');
    const npmCi = dockerfile.indexOf('RUN npm ci');
    expect(npmCi).toBeGreaterThan(0);
    for (const ws of workspaces) expect(dockerfile.slice(0, npmCi), ws).toContain(`COPY ${ws}/package.json ${ws}/`);
  });

  it('the image runs its commands as the unprivileged node user, owning only its cache folder', () => {
    const dockerfile = read('Dockerfile');
    const user = dockerfile.search(/^USER node$/m);
    expect(user).toBeGreaterThan(0);
    // Nothing after it runs as root again, and every RUN (installs) comes before it.
    expect(dockerfile.slice(user)).not.toMatch(/^USER (?!node$)/m);
    expect(dockerfile.slice(user)).not.toMatch(/^RUN /m);
    expect(dockerfile.slice(0, user)).toMatch(/chown node:node \/app\/\.miniglm/);
  });

  it('docker-compose.yml runs the api and worker commands of miniglm against postgres and redis', () => {
    const compose = parse(read('docker-compose.yml')) as {
      services: Record<
        string,
        { command?: string[]; environment?: Record<string, string>; image?: string; build?: unknown }
      >;
    };
    expect(Object.keys(compose.services).sort()).toEqual(['api', 'postgres', 'redis', 'worker']);
    const main = read('apps/cli/src/main.ts');
    for (const name of ['api', 'worker']) {
      const service = compose.services[name]!;
      expect(main).toMatch(new RegExp(`\\n  ${service.command![0]}: \\{`));
      expect(service.environment?.DATABASE_URL).toMatch(/^postgresql:\/\/.*@postgres:5432\//);
      expect(service.environment?.REDIS_URL).toBe('redis://redis:6379');
    }
    expect(read('Dockerfile')).toMatch(/ENTRYPOINT \["node", "apps\/cli\/bin\/miniglm.js"\]/);
  });
});
