// Installs dependencies when they are missing or older than package-lock.json, so that
// `npm test`, `npm run demo` and `npm run bench` work on a fresh clone with nothing else.
// Plain JavaScript: it runs before TypeScript tooling is installed.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const lock = path.join(root, 'package-lock.json');
const installed = path.join(root, 'node_modules', '.package-lock.json');

const stale = !fs.existsSync(installed) || fs.statSync(installed).mtimeMs < fs.statSync(lock).mtimeMs;
if (stale) {
  console.error('miniglm: installing dependencies (npm ci) ...');
  const r = spawnSync('npm', ['ci', '--no-audit', '--no-fund'], { cwd: root, stdio: 'inherit' });
  if (r.status !== 0) {
    console.error('miniglm: npm ci failed; see the output above');
    process.exit(r.status ?? 1);
  }
}
