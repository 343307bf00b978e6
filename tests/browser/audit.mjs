#!/usr/bin/env node
// Renders enishi's customer pages in Debian's headless Chromium and reports what is wrong with
// them, for the Rust tests in tests/it/pages/ (see docs/testing.md).
//
// Usage: node tests/browser/audit.mjs < spec.json > report.json
//
// The spec (JSON on stdin):
//   { "viewports": [{ "width": 390, "height": 844 }, { "width": 1280, "height": 800 }],
//     "pages": [{ "name": "link-start", "url": "http://127.0.0.1:PORT/...",
//                 "screenshot_dir": "docs/images" | null, "expect_status": 404 | null,
//                 "headers": {"x-shop-customer": "2"} (sent with every request of the page),
//                 "steps": [{ "fill": "#email", "value": "..." }, { "click": "button" },
//                           { "wait_for_url": "/done" }] }] }
// The report (JSON on stdout): { "chromium": "<version>", "results": [one entry per page and
// viewport, in spec order: pages outer, viewports inner] }; the entry's fields are described at
// `auditOne` below. A page that cannot be loaded, or whose step fails, has `error` set and the
// rest of the run goes on. Exit status: 0 with a report; 2 when the tools are missing or the
// spec is malformed (the reason on stderr).

import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const HERE = dirname(fileURLToPath(import.meta.url));
const MODULES = join(HERE, 'node_modules');
const AXE = join(MODULES, 'axe-core', 'axe.min.js');
const CHROMIUM = process.env.ENISHI_CHROMIUM || '/usr/bin/chromium';
// Busy CI machines are slow; a timeout only turns a hang into a failure.
const TIMEOUT_MS = 30_000;
const MIN_TARGET_PX = 44;
const MIN_INPUT_FONT_PX = 16;
const TEXT_LIMIT = 2000;
// A LINE in-app browser on Android (the engine is Blink, as here), used for narrow viewports.
const MOBILE_UA =
  'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) ' +
  'Chrome/124.0.0.0 Mobile Safari/537.36 Line/14.9.1/IAB';
const LAUNCH_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

function die(message) {
  process.stderr.write(`audit.mjs: ${message}\n`);
  process.exit(2);
}

function checkTools() {
  if (!existsSync(join(MODULES, 'playwright-core', 'package.json')) || !existsSync(AXE)) {
    die(`${MODULES} is missing or incomplete: run npm ci in tests/browser ` +
      '(cd tests/browser && npm ci --no-audit --no-fund)');
  }
  if (!existsSync(CHROMIUM)) {
    die(`no Chromium at ${CHROMIUM} (ENISHI_CHROMIUM overrides the path): ` +
      "install Debian's chromium: apt-get install chromium fonts-noto-cjk");
  }
}

async function readStdin() {
  const chunks = [];
  for await (const chunk of process.stdin) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

// The spec is input we own: anything unexpected is an error naming the field.
function checkKeys(what, value, allowed) {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    die(`spec: ${what} must be an object`);
  }
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) die(`spec: ${what} has an unknown field "${key}"`);
  }
}

function parseSpec(text) {
  let spec;
  try {
    spec = JSON.parse(text);
  } catch (e) {
    die(`spec on stdin is not JSON: ${e.message}`);
  }
  checkKeys('the spec', spec, ['viewports', 'pages']);
  if (!Array.isArray(spec.viewports) || spec.viewports.length === 0) {
    die('spec: viewports must be a non-empty array');
  }
  spec.viewports.forEach((v, i) => {
    checkKeys(`viewports[${i}]`, v, ['width', 'height']);
    if (!(v.width > 0 && v.height > 0)) die(`spec: viewports[${i}] needs a positive width and height`);
  });
  if (!Array.isArray(spec.pages)) die('spec: pages must be an array');
  spec.pages.forEach((p, i) => {
    checkKeys(`pages[${i}]`, p, ['name', 'url', 'screenshot_dir', 'expect_status', 'steps', 'headers']);
    if (typeof p.name !== 'string' || !p.name) die(`spec: pages[${i}].name must be a string`);
    if (typeof p.url !== 'string' || !p.url) die(`spec: pages[${i}].url must be a string`);
    (p.steps ?? []).forEach((s, j) => {
      const where = `pages[${i}].steps[${j}]`;
      if ('fill' in s) checkKeys(where, s, ['fill', 'value']);
      else if ('click' in s) checkKeys(where, s, ['click']);
      else if ('wait_for_url' in s) checkKeys(where, s, ['wait_for_url']);
      else die(`spec: ${where} is none of fill, click, wait_for_url`);
    });
  });
  return spec;
}

function contextOptions(viewport) {
  const common = { viewport, locale: 'ja-JP', timezoneId: 'Asia/Tokyo' };
  if (viewport.width < 800) {
    return { ...common, deviceScaleFactor: 2, isMobile: true, hasTouch: true, userAgent: MOBILE_UA };
  }
  return { ...common, deviceScaleFactor: 1, isMobile: false, hasTouch: false };
}

// Records what the page does while it is open: console errors, uncaught errors, failed
// subresources and the main frame's documents (each navigation's response status).
function watch(page) {
  const seen = { console: [], pageErrors: [], failed: [], documents: [] };
  const isDocument = (request) =>
    request.isNavigationRequest() && request.frame() === page.mainFrame();
  page.on('console', (msg) => {
    if (msg.type() !== 'error') return;
    seen.console.push({ text: msg.text(), url: msg.location()?.url || null });
  });
  page.on('pageerror', (err) => seen.pageErrors.push(String(err?.stack || err)));
  page.on('response', (response) => {
    const request = response.request();
    if (isDocument(request)) {
      seen.documents.push({ url: response.url(), status: response.status() });
    } else if (response.status() >= 400) {
      seen.failed.push({
        url: response.url(),
        method: request.method(),
        resource_type: request.resourceType(),
        status: response.status(),
        failure: null,
      });
    }
  });
  page.on('requestfailed', (request) => {
    const failure = request.failure()?.errorText ?? 'failed';
    // ERR_ABORTED is a request the page itself gave up, mostly because it navigated away
    // (a form submit cancels the old page's pending loads); it is not a broken resource.
    if (failure.includes('ERR_ABORTED')) return;
    if (isDocument(request)) {
      seen.documents.push({ url: request.url(), status: null, failure });
      return;
    }
    seen.failed.push({
      url: request.url(),
      method: request.method(),
      resource_type: request.resourceType(),
      status: null,
      failure,
    });
  });
  return seen;
}

async function runSteps(page, steps) {
  for (const [i, step] of (steps ?? []).entries()) {
    try {
      if ('fill' in step) await page.fill(step.fill, String(step.value ?? ''));
      else if ('click' in step) await page.click(step.click);
      else await page.waitForURL((url) => url.href.includes(step.wait_for_url));
    } catch (e) {
      throw new Error(`step ${i} ${JSON.stringify(step)} failed: ${e.message.split('\n')[0]}`);
    }
  }
  await page.waitForLoadState('load');
}

// Runs inside the page: the layout checks, the document's language and viewport, its text.
function inspectInPage({ minTarget, minFont, textLimit }) {
  const describe = (el) => {
    let d = el.tagName.toLowerCase();
    if (el.id) d += `#${el.id}`;
    for (const c of el.classList) d += `.${c}`;
    for (const attr of ['type', 'name', 'role', 'href']) {
      const v = el.getAttribute(attr);
      if (v !== null && !(attr === 'type' && el.tagName === 'BUTTON')) d += `[${attr}="${v}"]`;
    }
    const text = (el.innerText || el.value || el.getAttribute('aria-label') || '').trim();
    if (text) d += ` "${Array.from(text).slice(0, 30).join('')}"`;
    return d;
  };
  const visible = (el) => {
    const box = el.getBoundingClientRect();
    const shown = el.checkVisibility ? el.checkVisibility({ visibilityProperty: true }) : true;
    return shown && box.width > 0 && box.height > 0;
  };
  const round = (n) => Math.round(n * 10) / 10;
  const targets = 'a[href], button, input:not([type="hidden"]), select, textarea, [role="button"]';
  const smallTargets = [];
  for (const el of document.querySelectorAll(targets)) {
    if (!visible(el)) continue;
    const box = el.getBoundingClientRect();
    if (box.width < minTarget || box.height < minTarget) {
      const size = { width: round(box.width), height: round(box.height) };
      smallTargets.push({ element: describe(el), ...size });
    }
  }
  const notText = ['checkbox', 'radio', 'submit', 'button', 'reset', 'image', 'file', 'range',
    'color', 'hidden'];
  const smallFonts = [];
  for (const el of document.querySelectorAll('input, select, textarea')) {
    const type = (el.getAttribute('type') || 'text').toLowerCase();
    if (el.tagName === 'INPUT' && notText.includes(type)) continue;
    if (!visible(el)) continue;
    const size = parseFloat(getComputedStyle(el).fontSize);
    if (size < minFont) smallFonts.push({ element: describe(el), font_size: round(size) });
  }
  const root = document.documentElement;
  const lang = (root.getAttribute('lang') || '').trim();
  const meta = document.querySelector('meta[name="viewport"]');
  const text = document.body ? document.body.innerText : '';
  return {
    scroll_width: root.scrollWidth,
    client_width: root.clientWidth,
    inner_width: window.innerWidth,
    small_targets: smallTargets,
    small_input_fonts: smallFonts,
    lang: lang || null,
    viewport_meta: meta ? meta.getAttribute('content') ?? '' : null,
    title: document.title,
    text: Array.from(text).slice(0, textLimit).join(''),
  };
}

// axe-core's serious and critical violations. The script is evaluated through the DevTools
// protocol rather than added as a <script>, so a page's Content-Security-Policy cannot block it
// (and the audit need not bypass the page's CSP, whose violations are faults to see).
async function axeViolations(page, axeSource) {
  await page.evaluate(axeSource);
  const violations = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ['violations'] });
    return result.violations.map((v) => ({
      id: v.id,
      impact: v.impact,
      help: v.help,
      nodes: v.nodes.length,
      targets: v.nodes.slice(0, 3).map((n) => n.target.join(' ')),
    }));
  });
  return violations.filter((v) => v.impact === 'serious' || v.impact === 'critical');
}

// One entry of the report: the page at one viewport. Fields:
//   name, url (as asked), viewport {width, height}, expect_status (from the spec);
//   final_url; status (the last main-document response that is no redirect; null if none);
//   documents [{url, status, failure?}] (every main-frame navigation, redirects included);
//   title; text (the body's innerText, at most 2000 characters);
//   console_errors [{text, url}]; page_errors [string] (uncaught, with the stack);
//   failed_requests [{url, method, resource_type, status, failure}] (subresources: HTTP >= 400
//     or a network failure);
//   scroll_width, client_width, inner_width (the page scrolls sideways when scroll_width >
//     client_width: a phone widens window.innerWidth to the content, hiding the overflow;
//     the root's clientWidth is the layout viewport);
//   small_targets [{element, width, height}]; small_input_fonts [{element, font_size}];
//   lang, viewport_meta (null when missing);
//   axe_violations [{id, impact, help, nodes, targets}] (serious and critical only);
//   screenshot (the file written, or null);
//   error (null, or why the page could not be loaded, stepped through or inspected).
async function auditOne(browser, page, viewport, axeSource) {
  const entry = {
    name: page.name,
    url: page.url,
    viewport,
    expect_status: page.expect_status ?? null,
    final_url: null,
    status: null,
    documents: [],
    title: null,
    text: null,
    console_errors: [],
    page_errors: [],
    failed_requests: [],
    scroll_width: null,
    client_width: null,
    inner_width: null,
    small_targets: [],
    small_input_fonts: [],
    lang: null,
    viewport_meta: null,
    axe_violations: [],
    screenshot: null,
    error: null,
  };
  const context = await browser.newContext({ ...contextOptions(viewport), extraHTTPHeaders: page.headers ?? {} });
  context.setDefaultTimeout(TIMEOUT_MS);
  context.setDefaultNavigationTimeout(TIMEOUT_MS);
  const tab = await context.newPage();
  const seen = watch(tab);
  try {
    await tab.goto(page.url, { waitUntil: 'load' });
    await runSteps(tab, page.steps);
    Object.assign(entry, await tab.evaluate(inspectInPage, {
      minTarget: MIN_TARGET_PX,
      minFont: MIN_INPUT_FONT_PX,
      textLimit: TEXT_LIMIT,
    }));
    entry.axe_violations = await axeViolations(tab, axeSource);
    if (page.screenshot_dir) {
      mkdirSync(page.screenshot_dir, { recursive: true });
      const file = join(page.screenshot_dir, `${page.name}-${viewport.width}x${viewport.height}.png`);
      await tab.screenshot({ path: file, fullPage: true });
      entry.screenshot = file;
    }
  } catch (e) {
    // playwright colours its call log; the report is read as plain text.
    entry.error = e.message.replace(/\u001b\[[0-9;]*m/g, '').trim();
  }
  entry.final_url = tab.url();
  await context.close();
  finish(entry, seen);
  return entry;
}

// Copies what the listeners saw into the entry. Chromium also logs every failed load as a
// console error ("Failed to load resource: ... 404"); those duplicate a failed request or the
// document's status, which are reported on their own, so they are dropped here, as is the one
// for the browser's own request of /favicon.ico (which no page asked for, and which the page
// events do not show).
function finish(entry, seen) {
  entry.documents = seen.documents;
  const redirect = (d) => d.status !== null && d.status >= 300 && d.status < 400;
  const last = [...seen.documents].reverse().find((d) => !redirect(d));
  entry.status = last?.status ?? null;
  const loaded = new Set([...seen.failed, ...seen.documents].map((r) => r.url));
  const implicit = (url) => {
    try {
      return new URL(url).pathname === '/favicon.ico';
    } catch {
      return false;
    }
  };
  entry.console_errors = seen.console.filter(
    (m) => !(m.text.startsWith('Failed to load resource') && (loaded.has(m.url) || implicit(m.url))),
  );
  entry.page_errors = seen.pageErrors;
  entry.failed_requests = seen.failed;
}

async function main() {
  checkTools();
  const spec = parseSpec(await readStdin());
  const { chromium } = await import('playwright-core');
  const axeSource = readFileSync(AXE, 'utf8');
  let browser;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: LAUNCH_ARGS,
      timeout: TIMEOUT_MS * 2,
    });
  } catch (e) {
    die(`Chromium at ${CHROMIUM} did not start: ${e.message}\n` +
      "install Debian's chromium: apt-get install chromium fonts-noto-cjk");
  }
  const version = browser.version();
  const results = [];
  try {
    for (const page of spec.pages) {
      for (const viewport of spec.viewports) {
        results.push(await auditOne(browser, page, viewport, axeSource));
      }
    }
  } finally {
    await browser.close();
  }
  process.stdout.write(`${JSON.stringify({ chromium: version, results }, null, 1)}\n`);
}

main().catch((e) => die(e.stack || String(e)));
