// Builds the native kernels (src/*.cc) into build/miniglm_native.node with the system g++,
// against Node's own headers and OpenBLAS. Nothing is downloaded: no node-gyp, which would
// fetch headers. Plain JavaScript, so that scripts/ensure-deps.mjs can run it before any
// TypeScript tooling exists. `node packages/native/build.mjs` builds by hand.
//
// A build is redone when the sources, the Node version, the compiler flags or the CPU
// change (-march=native: a binary built on one CPU may not run on another). Where g++,
// Node's headers or OpenBLAS are missing, it writes build/unavailable.txt with one line
// saying what is missing and how to get it; the backend reads that line.
import { spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const buildDir = path.join(here, 'build');
export const addonPath = path.join(buildDir, 'miniglm_native.node');
export const unavailablePath = path.join(buildDir, 'unavailable.txt');
const stampPath = path.join(buildDir, 'stamp.txt');

export const HOW_TO_GET =
  'install g++ and OpenBLAS (Debian/Ubuntu: apt-get install -y g++ libopenblas-dev), then run node scripts/ensure-deps.mjs';

const NODE_HEADERS = [
  process.env.MINIGLM_NODE_HEADERS,
  path.join(path.dirname(process.execPath), '..', 'include', 'node'),
  '/usr/include/node',
];
const OPENBLAS_HEADERS = [
  process.env.MINIGLM_OPENBLAS_INCLUDE,
  '/usr/include/x86_64-linux-gnu/openblas-pthread',
  '/usr/include/aarch64-linux-gnu/openblas-pthread',
  '/usr/include/openblas',
  '/usr/include',
  '/usr/local/include',
];

function firstWith(dirs, file) {
  return dirs.find((d) => d && fs.existsSync(path.join(d, file)));
}

function sources() {
  const dir = path.join(here, 'src');
  return fs
    .readdirSync(dir)
    .filter((f) => f.endsWith('.cc') || f.endsWith('.h'))
    .sort()
    .map((f) => path.join(dir, f));
}

/** The g++ command line, or why there is none. */
export function plan() {
  const cxx = process.env.CXX || 'g++';
  const probe = spawnSync(cxx, ['--version'], { encoding: 'utf8' });
  if (probe.error || probe.status !== 0) return { missing: `the C++ compiler (${cxx}) was not found` };
  const nodeInclude = firstWith(NODE_HEADERS, 'node_api.h');
  if (!nodeInclude) return { missing: "Node's headers (node_api.h) were not found" };
  const blasInclude = firstWith(OPENBLAS_HEADERS, 'cblas.h');
  if (!blasInclude) return { missing: 'OpenBLAS (cblas.h) was not found' };
  const flags = [
    '-O3',
    '-march=native',
    // Lets exp's range reduction vectorise; results are unchanged (no traps are enabled).
    '-fno-trapping-math',
    '-fno-math-errno',
    '-pthread',
    '-std=c++17',
    '-fPIC',
    '-shared',
    '-Wall',
    '-Wextra',
    '-DNODE_GYP_MODULE_NAME=miniglm_native',
  ];
  const args = [
    ...flags,
    `-I${nodeInclude}`,
    `-I${blasInclude}`,
    ...sources().filter((f) => f.endsWith('.cc')),
    '-o',
    `${addonPath}.tmp`,
    '-lopenblas',
    '-lm',
  ];
  return { cxx, args, compiler: probe.stdout.split('\n')[0] };
}

function stamp(p) {
  const h = crypto.createHash('sha256');
  for (const f of sources()) h.update(f).update(fs.readFileSync(f));
  h.update(JSON.stringify([p.cxx, p.args, p.compiler, process.version, os.cpus()[0]?.model ?? '']));
  return h.digest('hex');
}

/**
 * Builds when needed. Returns { built: true } after a build, { built: false } when the
 * binary was current, or { built: false, missing } when it cannot be built here.
 */
export function buildNative({ quiet = false } = {}) {
  fs.mkdirSync(buildDir, { recursive: true });
  const p = plan();
  if (p.missing) {
    fs.rmSync(addonPath, { force: true });
    fs.writeFileSync(unavailablePath, `${p.missing}; ${HOW_TO_GET}\n`);
    return { built: false, missing: p.missing };
  }
  const want = stamp(p);
  const have = fs.existsSync(stampPath) ? fs.readFileSync(stampPath, 'utf8') : '';
  if (have === want && fs.existsSync(addonPath)) return { built: false };
  if (!quiet) console.error('miniglm: building the native kernels (g++ + OpenBLAS) ...');
  fs.rmSync(stampPath, { force: true });
  const r = spawnSync(p.cxx, p.args, { encoding: 'utf8' });
  if (r.status !== 0) {
    fs.rmSync(addonPath, { force: true });
    const first = `${r.stderr ?? ''}${r.error ?? ''}`.split('\n').find((l) => /error/i.test(l)) ?? 'unknown error';
    const missing = /cannot find -lopenblas/.test(r.stderr ?? '')
      ? 'OpenBLAS (libopenblas.so) was not found'
      : `the native kernels failed to compile (${first.trim()})`;
    fs.writeFileSync(unavailablePath, `${missing}; ${HOW_TO_GET}\n`);
    if (!quiet) console.error(`${r.stderr ?? ''}`);
    return { built: false, missing };
  }
  // Renamed into place: a running process that has the old binary mapped keeps it intact.
  fs.renameSync(`${addonPath}.tmp`, addonPath);
  fs.rmSync(unavailablePath, { force: true });
  fs.writeFileSync(stampPath, want);
  return { built: true };
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const r = buildNative();
  if (r.missing) {
    console.error(`miniglm: native kernels not built: ${r.missing}; ${HOW_TO_GET}`);
    process.exit(1);
  }
  console.error(r.built ? `miniglm: built ${addonPath}` : `miniglm: ${addonPath} is current`);
}
