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

// The Prisma client (packages/core/src/db/generated/client, git-ignored) is generated from
// prisma/schema.prisma. npm runs no dependency install scripts here (npm 11 allow-scripts),
// so @prisma/client's postinstall never generates it: we do, whenever it is missing, was
// made from another schema (the generator copies the schema into its output), or by another
// @prisma/client version. Offline: the client uses the WebAssembly query compiler and
// prisma.config.ts stops the CLI from downloading native engines.
const schema = path.join(root, 'prisma', 'schema.prisma');
const generated = path.join(root, 'packages', 'core', 'src', 'db', 'generated', 'client');
if (fs.existsSync(schema)) {
  const read = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : undefined);
  const clientVersion = JSON.parse(
    read(path.join(root, 'node_modules', '@prisma', 'client', 'package.json')) ?? '{}',
  ).version;
  const fresh =
    read(path.join(generated, 'schema.prisma')) === read(schema) &&
    (read(path.join(generated, 'index.js')) ?? '').includes(`Prisma Client JS version: ${clientVersion}\n`);
  if (!fresh) {
    console.error('miniglm: generating the Prisma client (prisma generate) ...');
    const cli = path.join(root, 'node_modules', 'prisma', 'build', 'index.js');
    const r = spawnSync(process.execPath, [cli, 'generate'], {
      cwd: root,
      encoding: 'utf8',
      env: {
        ...process.env,
        // Also set by prisma.config.ts; repeated so that no download is tried even before it loads.
        PRISMA_SCHEMA_ENGINE_BINARY: process.env.PRISMA_SCHEMA_ENGINE_BINARY ?? process.execPath,
        PRISMA_QUERY_ENGINE_LIBRARY: process.env.PRISMA_QUERY_ENGINE_LIBRARY ?? process.execPath,
        PRISMA_ENGINES_CHECKSUM_IGNORE_MISSING: '1',
        PRISMA_HIDE_UPDATE_MESSAGE: '1',
        CHECKPOINT_DISABLE: '1', // Prisma's version-check ping
      },
    });
    if (r.status !== 0) {
      console.error(`${r.stdout ?? ''}${r.stderr ?? ''}${r.error ? String(r.error) : ''}`);
      console.error('miniglm: prisma generate failed; see the output above');
      process.exit(r.status ?? 1);
    }
  }
}

// The native backend's kernels (packages/native: C++ over OpenBLAS), built from source with
// the system g++ against Node's own headers: nothing is downloaded. Where g++ or OpenBLAS is
// missing this is no error: the model falls back to wasm and says in one line how to get it.
const { buildNative } = await import('../packages/native/build.mjs');
buildNative();
