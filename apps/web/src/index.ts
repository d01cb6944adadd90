/**
 * @miniglm/web: the dashboard of the training service. Plain ES modules and CSS in public/
 * (no build step); the API serves them at "/" and the two browser libraries they import
 * (uPlot for charts, cytoscape for the lineage graph) at /vendor/....
 *
 *   import { webRoot, vendorFiles } from '@miniglm/web';
 *   // webRoot: the absolute path of public/
 *   // vendorFiles: { '/vendor/uPlot.esm.js': '/abs/.../node_modules/uplot/dist/uPlot.esm.js', ... }
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The folder of index.html, app.js, pages/ and style.css. */
export const webRoot: string = fileURLToPath(new URL('../public/', import.meta.url));

const require = createRequire(import.meta.url);

/**
 * The folder of an installed package, wherever npm put it (hoisted to the root node_modules
 * or kept in apps/web/node_modules). `<name>/package.json` is tried first; a package whose
 * "exports" hide it (cytoscape) is found from its main entry, walking up to the package.json
 * that names it.
 */
export function packageDir(name: string): string {
  try {
    return path.dirname(require.resolve(`${name}/package.json`));
  } catch {
    let dir = path.dirname(require.resolve(name));
    for (;;) {
      const manifest = path.join(dir, 'package.json');
      if (existsSync(manifest)) {
        try {
          if ((JSON.parse(readFileSync(manifest, 'utf8')) as { name?: string }).name === name) return dir;
        } catch {
          // not JSON: keep walking up
        }
      }
      const parent = path.dirname(dir);
      if (parent === dir) throw new Error(`cannot find the folder of the package "${name}"`);
      dir = parent;
    }
  }
}

/** What the pages import from /vendor/, and where each file is inside node_modules. */
const VENDOR: Record<string, [pkg: string, file: string]> = {
  '/vendor/uPlot.esm.js': ['uplot', 'dist/uPlot.esm.js'],
  '/vendor/uPlot.min.css': ['uplot', 'dist/uPlot.min.css'],
  '/vendor/cytoscape.esm.min.js': ['cytoscape', 'dist/cytoscape.esm.min.mjs'],
};

/** URL path (e.g. "/vendor/uPlot.esm.js") → absolute file path inside node_modules. */
export const vendorFiles: Record<string, string> = Object.fromEntries(
  Object.entries(VENDOR).map(([url, [pkg, file]]) => [url, path.join(packageDir(pkg), file)]),
);
