// The files the /dashboard page loads besides itself: uPlot's script and stylesheet,
// served from the `uplot` package in node_modules (no CDN: a dashboard must work on a
// host with no way out). They are found once, when this module loads, and read on the
// first request for each (then kept: 50 KB). Without the package the routes answer
// 404 and the page shows its figures as numbers only.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { moduleDir } from '../internal/here.js';
import type { RouteHandler } from './http-types.js';

const FILES: Record<string, { file: string; type: string }> = {
  '/dashboard/uplot.js': { file: 'uplot/dist/uPlot.iife.min.js', type: 'text/javascript; charset=utf-8' },
  '/dashboard/uplot.css': { file: 'uplot/dist/uPlot.min.css', type: 'text/css; charset=utf-8' },
};

const resolved = new Map<string, string>();
{
  // here.ts sits in lib/internal (dist/{esm,cjs}/internal once built): resolving from
  // there finds the package's node_modules, or an application's above it.
  const require = createRequire(join(moduleDir, 'dashboard-assets.js'));
  for (const [path, f] of Object.entries(FILES)) {
    try {
      resolved.set(path, require.resolve(f.file));
    } catch {
      // uplot not installed: the route answers 404
    }
  }
}

const cache = new Map<string, Buffer>();

/** The route for a /dashboard/<asset> path, or undefined (404) for one that is not an asset or is missing. */
export function dashboardAsset(path: string): RouteHandler | undefined {
  const f = FILES[path];
  const at = resolved.get(path);
  if (!f || !at) return undefined;
  return () => {
    let body = cache.get(path);
    if (!body) {
      body = readFileSync(at);
      cache.set(path, body);
    }
    return { status: 200, headers: { 'content-type': f.type, 'cache-control': 'public, max-age=3600', 'x-content-type-options': 'nosniff' }, body };
  };
}

/** Whether the chart library is there to serve (the page is told, so it need not ask). */
export function dashboardHasCharts(): boolean {
  return resolved.has('/dashboard/uplot.js');
}
