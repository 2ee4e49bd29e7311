// herald's documentation site, in a real browser (Debian's chromium, driven
// by playwright-core; Playwright's own browser download is not used).
//
// Usage: node site.mjs SITE_DIR
//
// Loads every page twice, from disk (file://) and from a loopback web server,
// and fails when a page logs a console error, a request fails or leaves the
// site, an internal link or #fragment does not resolve, the search does not
// find a field by name, or the usage.metered.model_inference page does not
// list billing-service as a consumer. Prints one JSON summary line; exits 1
// listing every problem otherwise.

import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { chromium } from 'playwright-core';

const siteDir = path.resolve(process.argv[2] || '');
if (!process.argv[2] || !fs.existsSync(path.join(siteDir, 'index.html'))) {
  console.error('usage: node site.mjs SITE_DIR (a directory written by `herald docs --out`)');
  process.exit(2);
}
const executablePath = process.env.HERALD_CHROMIUM || '/usr/bin/chromium';
if (!fs.existsSync(executablePath)) {
  console.error(`error: no Chromium at ${executablePath}: apt-get install chromium (or run .ci/run)`);
  process.exit(1);
}

const problems = [];
const summary = { pages: 0, links: 0, fragments: 0, search: null, consumer: null };

function htmlPages(dir, prefix = '') {
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const rel = prefix + e.name;
    if (e.isDirectory()) return htmlPages(path.join(dir, e.name), rel + '/');
    return e.name.endsWith('.html') ? [rel] : [];
  });
}
const pages = htmlPages(siteDir).sort();

const TYPES = { '.html': 'text/html; charset=utf-8', '.css': 'text/css', '.js': 'text/javascript',
  '.json': 'application/json', '.yaml': 'application/yaml', '.svg': 'image/svg+xml' };
const server = http.createServer((req, res) => {
  const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const file = path.join(siteDir, rel);
  if (!file.startsWith(siteDir) || !fs.existsSync(file) || !fs.statSync(file).isFile()) {
    res.writeHead(404).end('not found');
    return;
  }
  res.writeHead(200, { 'content-type': TYPES[path.extname(file)] || 'application/octet-stream' });
  fs.createReadStream(file).pipe(res);
});
await new Promise((ok) => server.listen(0, '127.0.0.1', ok));
const httpBase = `http://127.0.0.1:${server.address().port}/`;
const fileBase = pathToFileURL(siteDir + path.sep).href;

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'herald-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

try {
  // Nothing may leave the site: a request anywhere else is a problem and is refused.
  await context.route('**/*', (route) => {
    const u = route.request().url();
    if (u.startsWith(fileBase) || u.startsWith(httpBase) || u.startsWith('data:')) return route.continue();
    problems.push(`a page requested ${u}, outside the site`);
    return route.abort();
  });
  for (const base of [fileBase, httpBase]) await crawl(base);
  await search(fileBase);
  await consumers(httpBase);
} finally {
  await context.close();
  server.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}

// Visits every page under `base`; checks console, requests, links and fragments.
async function crawl(base) {
  const ids = new Map(); // page path -> Set of element ids
  const wanted = []; // [page path, id, from]
  const page = await context.newPage();
  let where = base;
  page.on('console', (m) => { if (m.type() === 'error') problems.push(`${where}: console error: ${m.text()}`); });
  page.on('pageerror', (e) => problems.push(`${where}: uncaught: ${e.message}`));
  page.on('requestfailed', (r) => problems.push(`${where}: request failed: ${r.url()} (${r.failure()?.errorText})`));
  page.on('response', (r) => { if (r.status() >= 400) problems.push(`${where}: ${r.status()} for ${r.url()}`); });
  for (const rel of pages) {
    where = `${base}${rel}`;
    const response = await page.goto(where, { waitUntil: 'load' });
    if (base === httpBase && (!response || response.status() !== 200)) problems.push(`${where}: status ${response?.status()}`);
    summary.pages += 1;
    ids.set(rel, new Set(await page.$$eval('[id]', (els) => els.map((e) => e.id))));
    const refs = await page.$$eval('a[href], link[href], script[src]', (els) =>
      els.map((e) => e.getAttribute('href') ?? e.getAttribute('src')));
    for (const ref of refs) {
      if (ref.startsWith('data:')) continue;
      const target = new URL(ref, page.url());
      if (!target.href.startsWith(base)) {
        problems.push(`${where}: link ${ref} leaves the site`);
        continue;
      }
      summary.links += 1;
      const relTarget = decodeURIComponent(target.href.slice(base.length).split('#')[0]);
      const file = path.join(siteDir, relTarget);
      if (!fs.existsSync(file) || !fs.statSync(file).isFile()) {
        problems.push(`${where}: link ${ref} points to ${relTarget}, which does not exist`);
        continue;
      }
      if (target.hash.length > 1) wanted.push([relTarget, decodeURIComponent(target.hash.slice(1)), where]);
    }
  }
  await page.close();
  for (const [rel, id, from] of wanted) {
    summary.fragments += 1;
    if (!ids.get(rel)?.has(id)) problems.push(`${from}: link to ${rel}#${id}, but that page has no element with that id`);
  }
}

// The search box finds a field by name and its result leads to the field's row.
async function search(base) {
  const page = await context.newPage();
  await page.goto(`${base}index.html`, { waitUntil: 'load' });
  await page.fill('#search', 'region');
  const hit = page.locator('#search-results a', { hasText: /^\/region$/ }).first();
  await hit.waitFor({ state: 'visible', timeout: 10_000 }).catch(() => {});
  if (!(await hit.count())) {
    const got = await page.locator('#search-results').innerText();
    problems.push(`search for "region" did not list the field /region; results: ${got}`);
    await page.close();
    return;
  }
  const href = await hit.getAttribute('href');
  await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), hit.click()]);
  const url = page.url();
  const row = page.locator('[id="field.region"]');
  if (!url.endsWith('schemas/UsageEvent/1.1.0.html#field.region') || (await row.count()) !== 1) {
    problems.push(`search result ${href} led to ${url}, not to UsageEvent 1.1.0's /region row`);
  } else {
    summary.search = { query: 'region', landed: url.slice(base.length), row: (await row.innerText()).split('\t').slice(0, 2) };
  }
  await page.close();
}

// The model_inference subject page lists billing-service among its consumers.
async function consumers(base) {
  const page = await context.newPage();
  await page.goto(`${base}subjects/usage.metered.model_inference.html`, { waitUntil: 'load' });
  const names = await page.locator('table.consumers tbody tr td:first-child').allInnerTexts();
  if (!names.includes('billing-service')) {
    problems.push(`usage.metered.model_inference lists consumers ${JSON.stringify(names)}, without billing-service`);
  } else {
    const link = page.locator('table.consumers tbody tr td:first-child a', { hasText: 'billing-service' }).first();
    await Promise.all([page.waitForNavigation({ waitUntil: 'load' }), link.click()]);
    const title = await page.locator('h1').innerText();
    if (title !== 'billing-service') problems.push(`the billing-service link led to a page titled ${title}`);
    summary.consumer = { subject: 'usage.metered.model_inference', consumers: names };
  }
  await page.close();
}

if (problems.length) {
  console.error(problems.join('\n'));
  process.exit(1);
}
console.log(JSON.stringify(summary));
