// Open rendered HTML pages in a real headless Chromium and report what the DOM shows.
//
// Usage: node check.mjs --modules DIR --chromium PATH PAGE.html [PAGE.html ...]
//
//   DIR      a directory whose node_modules holds playwright-core (tests/browser/package.json pins it)
//   PATH     the Chromium executable (Debian: /usr/bin/chromium)
//
// For each page, prints one JSON line: {page, title, state, diagrams: [{svg, error, messages, numbers}],
// links, scrolled, pageErrors, dialogs, injected}. state is the page's data-diagrams attribute once drawing
// ends ("done", "error: ...", "no-mermaid"; each part is scrolled into view first, as parts are drawn when
// they come near the viewport); each diagram: whether it holds an SVG, Mermaid's error text
// if any, its message count (.messageText) and the sequence numbers shown. For a page with numbered arrows,
// the middle number is clicked: scrolled gives the frame's distance from the top of the viewport after the
// click, the location's hash and whether the frame became the :target. texts: each message's text as drawn. injected is true when the page ran any script planted in a transcript (window.pwned).
// Exit status: 0 when every page was read, 2 on bad usage or a browser failure.

import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args, positionals: pages } = parseArgs({
  options: { modules: { type: 'string' }, chromium: { type: 'string' } }, allowPositionals: true,
});
if (!args.modules || !args.chromium || pages.length === 0) {
  process.stderr.write('usage: node check.mjs --modules DIR --chromium PATH PAGE.html [...]\n');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(args.modules), 'package.json'));
const { chromium } = require('playwright-core');

const browser = await chromium.launch({
  executablePath: args.chromium,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
    '--disable-dev-shm-usage', '--allow-file-access-from-files'],
});
try {
  for (const file of pages) {
    const page = await browser.newPage({ viewport: { width: 1200, height: 800 } });
    const pageErrors = [];
    const dialogs = [];
    page.on('pageerror', (err) => pageErrors.push(String(err)));
    page.on('dialog', (d) => { dialogs.push(d.message()); d.dismiss(); });
    await page.goto(pathToFileURL(path.resolve(file)).href, { waitUntil: 'load' });
    const hasDiagrams = await page.evaluate(() => document.querySelectorAll('pre.mermaid').length > 0);
    if (hasDiagrams) {  // parts are drawn as they come near the viewport: bring each one there in turn
      const parts = await page.evaluate(() => document.querySelectorAll('pre.mermaid').length);
      for (let i = 0; i < parts; i += 1) {
        const state = await page.evaluate(() => document.body.getAttribute('data-diagrams'));
        if (state !== null) { break; }  // drawing failed, or no Mermaid
        await page.evaluate((k) => document.querySelectorAll('pre.mermaid')[k].scrollIntoView(), i);
        await page.waitForFunction((k) => document.querySelectorAll('pre.mermaid')[k].hasAttribute('data-drawn')
          || document.body.hasAttribute('data-diagrams'), i, { timeout: 60000 });
      }
      await page.waitForFunction(() => document.body.hasAttribute('data-diagrams'), null, { timeout: 60000 });
      await page.evaluate(() => window.scrollTo(0, 0));
    }
    const report = await page.evaluate(() => ({
      title: document.title,
      state: document.body.getAttribute('data-diagrams'),
      diagrams: [...document.querySelectorAll('pre.mermaid')].map((pre) => ({
        svg: !!pre.querySelector('svg'),
        error: pre.querySelector('.error-text, .error-icon') ? pre.textContent.slice(0, 300) : null,
        messages: pre.querySelectorAll('svg .messageText').length,
        texts: [...pre.querySelectorAll('svg .messageText')].map((t) => t.textContent),
        numbers: [...pre.querySelectorAll('svg .sequenceNumber')].map((n) => Number(n.textContent.trim())),
      })),
      links: [...document.querySelectorAll('a[href]')].map((a) => a.getAttribute('href')),
      injected: window.pwned !== undefined,
    }));
    let scrolled = null;
    const numbers = report.diagrams.flatMap((d) => d.numbers);
    if (numbers.length) {
      const last = numbers[Math.floor(numbers.length / 2)];
      await page.locator('svg .sequenceNumber', { hasText: new RegExp(`^${last}$`) }).last().click();
      await page.waitForTimeout(300);
      scrolled = await page.evaluate((n) => {
        const el = document.getElementById(`frame-${n}`);
        const top = el.getBoundingClientRect().top;
        return { frame: n, hash: location.hash, top, target: el.matches(':target'), scrollY: window.scrollY };
      }, last);
    }
    console.log(JSON.stringify({ page: file, ...report, scrolled, pageErrors, dialogs }));
    await page.close();
  }
} catch (err) {
  process.stderr.write(`check.mjs: ${err.stack || err}\n`);
  process.exitCode = 2;
} finally {
  await browser.close();
}
