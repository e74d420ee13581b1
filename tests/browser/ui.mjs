// The site's reading aids in a real headless Chromium: the index's filter and sort, a long session page's
// sticky participants and lazily drawn parts, the message a page shows when Mermaid cannot load.
//
// Usage: node ui.mjs --modules DIR --chromium PATH --index INDEX.html --filter WORDS --long PAGE.html
//                    --offline PAGE.html [--width PX]
//
// Prints one JSON object: {index, long, offline}.
//   index: {ready, rows (names in table order), filtered: [{words, rows, shown}] (names shown and the
//           #shown text after typing each WORDS; --filter may be given several times),
//           cleared (rows shown after clearing), sorts: {column: {asc: [...], desc: [...]}} (each column's
//           visible texts after one and two clicks on its header), scrollWidth, clientWidth, rowHeights,
//           channelIds: [{title, text}], wide: the same measures at --wide PX}
//   long: {parts, drawnAtLoad (parts drawn once the first is, before any scrolling), detailsOpen, barVisibleAtTop,
//          flowBeforeContents, afterScroll: {scrollY, barVisible, bar (bounding box), viewport, topActorsTop,
//          names: [{text, x}], lifelines: [x...]}, drawnAfterScroll, state, pageErrors}
//   offline: {state, visible, text, box, pageErrors}
// Exit status: 0 when every page was read, 2 on bad usage or a browser failure.

import { createRequire } from 'node:module';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';

const { values: args } = parseArgs({
  options: {
    modules: { type: 'string' }, chromium: { type: 'string' }, index: { type: 'string' },
    filter: { type: 'string', multiple: true }, long: { type: 'string' }, offline: { type: 'string' },
    width: { type: 'string', default: '1400' }, wide: { type: 'string', default: '2400' },
  },
});
if (!args.modules || !args.chromium || !args.index || !args.long || !args.offline || args.filter === undefined) {
  process.stderr.write('usage: node ui.mjs --modules DIR --chromium PATH --index F --filter W --long F --offline F\n');
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(args.modules), 'package.json'));
const { chromium } = require('playwright-core');
const url = (file) => pathToFileURL(path.resolve(file)).href;
const viewport = { width: Number(args.width), height: 900 };

async function open(browser, file) {
  const page = await browser.newPage({ viewport });
  const pageErrors = [];
  page.on('pageerror', (err) => pageErrors.push(String(err)));
  await page.goto(url(file), { waitUntil: 'load' });
  return { page, pageErrors };
}

const visibleColumn = (page, column) => page.evaluate((c) => [...document.querySelectorAll('#sessions tbody tr')]
  .filter((r) => !r.hidden).map((r) => r.cells[c].textContent.trim()), column);

async function checkIndex(browser) {
  const { page, pageErrors } = await open(browser, args.index);
  await page.waitForFunction(() => document.body.getAttribute('data-index') === 'ready', null, { timeout: 30000 });
  const rows = await visibleColumn(page, 0);
  const filtered = [];
  for (const words of args.filter) {
    await page.fill('#filter', words);
    filtered.push({ words, rows: await visibleColumn(page, 0), shown: await page.textContent('#shown') });
  }
  await page.fill('#filter', '');
  const cleared = await visibleColumn(page, 0);
  const sorts = {};
  const headers = await page.evaluate(() => [...document.querySelectorAll('#sessions thead th')].map((th) => th.textContent.trim()));
  for (const [column, name] of headers.entries()) {
    const button = page.locator('#sessions thead th').nth(column).locator('button');
    await button.click();
    const asc = await visibleColumn(page, column);
    const ariaAsc = await page.locator('#sessions thead th').nth(column).getAttribute('aria-sort');
    await button.click();
    const desc = await visibleColumn(page, column);
    const ariaDesc = await page.locator('#sessions thead th').nth(column).getAttribute('aria-sort');
    sorts[name] = { asc, desc, ariaAsc, ariaDesc };
  }
  const fit = () => ({ scrollWidth: document.documentElement.scrollWidth,
    clientWidth: document.documentElement.clientWidth,
    rowHeights: [...document.querySelectorAll('#sessions tbody tr')].map((r) => r.getBoundingClientRect().height),
    channelIds: [...document.querySelectorAll('#sessions tbody td:last-child')].map((td) => ({
      title: td.getAttribute('title'), text: td.textContent.trim() })) });
  const widths = await page.evaluate(fit);
  await page.close();
  const wide = await browser.newPage({ viewport: { width: Number(args.wide), height: 900 } });
  await wide.goto(url(args.index), { waitUntil: 'load' });
  const wideFit = await wide.evaluate(fit);
  await wide.close();
  return { ready: true, rows, filtered, cleared, sorts, ...widths, wide: wideFit, pageErrors };
}

async function checkLong(browser) {
  const { page, pageErrors } = await open(browser, args.long);
  await page.waitForSelector('section.flow pre.mermaid[data-drawn]', { timeout: 120000 });
  await page.waitForTimeout(200);  // the bar is placed on the animation frame after a part is drawn
  const atLoad = await page.evaluate(() => ({
    parts: document.querySelectorAll('section.flow pre.mermaid').length,
    drawnAtLoad: document.querySelectorAll('section.flow pre.mermaid[data-drawn]').length,
    detailsOpen: document.querySelectorAll('nav.toc details[open]').length,
    details: document.querySelectorAll('nav.toc details').length,
    barVisibleAtTop: getComputedStyle(document.querySelector('.participants')).visibility === 'visible',
    flowBeforeContents: !!(document.querySelector('section.flow').compareDocumentPosition(
      document.querySelector('nav.toc')) & Node.DOCUMENT_POSITION_FOLLOWING),
  }));
  // Scroll down the flow part by part (each is drawn as it comes near), then to the bottom of the last one.
  const parts = atLoad.parts;
  for (let i = 0; i < parts; i += 1) {
    await page.evaluate((k) => document.querySelectorAll('section.flow pre.mermaid')[k].scrollIntoView(), i);
    await page.waitForFunction((k) => document.querySelectorAll('section.flow pre.mermaid')[k].hasAttribute('data-drawn'),
      i, { timeout: 120000 });
  }
  await page.waitForFunction(() => document.body.getAttribute('data-diagrams') === 'done', null, { timeout: 120000 });
  await page.evaluate(() => {
    const last = [...document.querySelectorAll('section.flow pre.mermaid')].pop();
    window.scrollTo(0, last.getBoundingClientRect().bottom + window.scrollY - window.innerHeight - 200);
  });
  await page.waitForTimeout(200);  // the bar's names are placed on the next animation frame after a scroll
  const afterScroll = await page.evaluate(() => {
    const bar = document.querySelector('.participants');
    const box = bar.getBoundingClientRect();
    const svg = [...document.querySelectorAll('section.flow pre.mermaid svg')].find((s) => s.getBoundingClientRect().bottom > box.bottom);
    const tops = [...document.querySelectorAll('section.flow svg rect.actor-top')].map((r) => r.getBoundingClientRect().top);
    return {
      scrollY: window.scrollY,
      barVisible: getComputedStyle(bar).visibility === 'visible',
      bar: { top: box.top, bottom: box.bottom, left: box.left, right: box.right, height: box.height },
      viewport: { width: window.innerWidth, height: window.innerHeight },
      topActorsTop: Math.max(...tops),
      names: [...bar.querySelectorAll('[data-actor]')].map((n) => {
        const r = n.getBoundingClientRect();
        return { text: n.textContent.trim(), x: r.left + r.width / 2, top: r.top, bottom: r.bottom };
      }),
      lifelines: svg ? [...svg.querySelectorAll('rect.actor-top')].map((r) => {
        const b = r.getBoundingClientRect();
        return b.left + b.width / 2;
      }).sort((a, b) => a - b) : [],
    };
  });
  const state = await page.evaluate(() => document.body.getAttribute('data-diagrams'));
  await page.close();
  return { ...atLoad, afterScroll, state, pageErrors };
}

async function checkOffline(browser) {
  const { page, pageErrors } = await open(browser, args.offline);
  await page.waitForFunction(() => document.body.hasAttribute('data-diagrams'), null, { timeout: 60000 });
  const report = await page.evaluate(() => {
    const box = document.getElementById('mermaid-missing');
    const r = box.getBoundingClientRect();
    return {
      state: document.body.getAttribute('data-diagrams'),
      visible: !box.hidden && r.height > 0 && r.bottom > 0 && r.top < window.innerHeight,
      text: box.innerText,
      box: { top: r.top, height: r.height },
    };
  });
  await page.close();
  return { ...report, pageErrors };
}

const browser = await chromium.launch({
  executablePath: args.chromium,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run',
    '--disable-dev-shm-usage', '--allow-file-access-from-files'],
});
try {
  const index = await checkIndex(browser);
  const long = await checkLong(browser);
  const offline = await checkOffline(browser);
  console.log(JSON.stringify({ index, long, offline }));
} catch (err) {
  process.stderr.write(`ui.mjs: ${err.stack || err}\n`);
  process.exitCode = 2;
} finally {
  await browser.close();
}
