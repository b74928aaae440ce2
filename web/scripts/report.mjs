// Bundle size and first load of the catalog, as a report (not a test).
//
//   node web/scripts/report.mjs                       bundle size of web/dist
//   node web/scripts/report.mjs --url URL --token T   and first load of /ui/catalog
//                                                     in Chromium (5 cold loads)
//
// e.g. after `./deploy/quickstart`: node web/scripts/report.mjs --url "$GANGWAY_URL" --token "$GANGWAY_TOKEN"
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { gzipSync } from 'node:zlib';
import { join, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

const dist = join(dirname(fileURLToPath(import.meta.url)), '..', 'dist');
const args = process.argv.slice(2);
const opt = (n) => {
  const i = args.indexOf(n);
  return i >= 0 ? args[i + 1] : undefined;
};

let js = 0,
  jsGz = 0,
  css = 0,
  cssGz = 0;
for (const f of readdirSync(join(dist, 'assets'))) {
  const p = join(dist, 'assets', f);
  const b = readFileSync(p);
  const gz = gzipSync(b, { level: 9 }).length;
  if (f.endsWith('.js')) {
    js += statSync(p).size;
    jsGz += gz;
  } else if (f.endsWith('.css')) {
    css += b.length;
    cssGz += gz;
  }
}
const kb = (n) => (n / 1024).toFixed(1) + ' KB';
// What the first page needs: the entry script index.html names (the request
// form and the dashboard are separate chunks, loaded with their pages).
const html = readFileSync(join(dist, 'index.html'), 'utf8');
let entryGz = 0;
for (const m of html.matchAll(/src="\/ui\/(assets\/[^"]+\.js)"/g)) entryGz += gzipSync(readFileSync(join(dist, m[1])), { level: 9 }).length;
console.log(`JS:  ${kb(js)} raw, ${kb(jsGz)} gzipped (budget 300 KB gzipped: ${jsGz <= 300 * 1024 ? 'within' : 'OVER'})`);
console.log(`JS loaded by the first page (entry chunk): ${kb(entryGz)} gzipped`);
console.log(`CSS: ${kb(css)} raw, ${kb(cssGz)} gzipped`);

const url = opt('--url');
const token = opt('--token');
if (url && token) {
  const { chromium } = await import('playwright-core');
  const browser = await chromium.launch({
    executablePath: process.env.GW_CHROMIUM || '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  const times = [];
  for (let i = 0; i < 5; i++) {
    const ctx = await browser.newContext({ baseURL: url }); // empty cache each time
    const r = await ctx.request.post('/v1/session', { data: { token } });
    if (r.status() !== 201) throw new Error('POST /v1/session: ' + r.status());
    const page = await ctx.newPage();
    const t0 = Date.now();
    await page.goto('/ui/catalog');
    await page.locator('ul.cards > li').first().waitFor();
    times.push(Date.now() - t0);
    await ctx.close();
  }
  await browser.close();
  times.sort((a, b) => a - b);
  console.log(`First load of /ui/catalog until the first action shows (cold cache, 5 loads): median ${times[2]} ms, max ${times[4]} ms (target < 1000 ms)`);
}
