/**
 * @miniglm/web: the files the API serves exist, every module the pages import is a file
 * of public/ or a vendor file, and the vendor files are found wherever npm put them.
 */
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { packageDir, vendorFiles, webRoot } from '../src/index.ts';

function jsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? jsFiles(path.join(dir, e.name)) : e.name.endsWith('.js') ? [path.join(dir, e.name)] : [],
  );
}

describe('@miniglm/web', () => {
  it('webRoot holds the entry page, the router, the stylesheet and one module per page', () => {
    expect(path.isAbsolute(webRoot)).toBe(true);
    for (const file of [
      'index.html',
      'app.js',
      'style.css',
      'pages/runs.js',
      'pages/run.js',
      'pages/lineage.js',
      'pages/compare.js',
      'pages/playground.js',
    ])
      expect(existsSync(path.join(webRoot, file)), file).toBe(true);
  });

  it('vendorFiles maps /vendor URLs to the uPlot and cytoscape files in node_modules', () => {
    expect(Object.keys(vendorFiles).sort()).toEqual([
      '/vendor/cytoscape.esm.min.js',
      '/vendor/uPlot.esm.js',
      '/vendor/uPlot.min.css',
    ]);
    for (const [url, file] of Object.entries(vendorFiles)) {
      expect(path.isAbsolute(file), url).toBe(true);
      expect(existsSync(file), `${url} → ${file}`).toBe(true);
    }
    expect(readFileSync(vendorFiles['/vendor/uPlot.esm.js']!, 'utf8')).toMatch(/export\s*\{[^}]*default/);
    // cytoscape's "exports" hide its package.json: its folder is found from its main entry.
    expect(path.basename(packageDir('cytoscape'))).toBe('cytoscape');
  });

  it('every static import of the browser modules resolves to a file of public/ or a vendor file', () => {
    const imports = /(?:import\s[^'"]*?from\s*|import\s*\(\s*)['"]([^'"]+)['"]/g;
    for (const file of jsFiles(webRoot)) {
      for (const [, spec] of readFileSync(file, 'utf8').matchAll(imports)) {
        if (spec!.startsWith('/vendor/')) expect(vendorFiles, `${file}: ${spec}`).toHaveProperty([spec!]);
        else expect(existsSync(path.resolve(path.dirname(file), spec!)), `${file}: ${spec}`).toBe(true);
      }
    }
  });

  it('index.html loads the stylesheets and app.js by absolute URLs the API serves', () => {
    const html = readFileSync(path.join(webRoot, 'index.html'), 'utf8');
    for (const url of ['/vendor/uPlot.min.css', '/style.css', '/app.js']) expect(html).toContain(`"${url}"`);
  });
});
