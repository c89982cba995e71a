/**
 * `npm start`'s demo as a newcomer uses it: README's curl lines answer JSON, and a real
 * headless Chromium logs in by the shop's form, sees the login on the blog, fills the
 * cart there, and logs out, one cookie for all. Screenshots go to test/output/demo/.
 */
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Browser as Chromium, HTTPResponse, Page } from 'puppeteer-core';
import { startDemo, type RunningDemo } from '../support/demo.ts';
import { Browser, send } from '../support/http.ts';

const OUTPUT = 'test/output/demo';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const hasChromium = existsSync(CHROMIUM);
// The flags a CI machine needs: no sandbox (root), no GPU, no network of the browser's own.
const CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

let demo: RunningDemo;

beforeAll(async () => {
  rmSync(OUTPUT, { recursive: true, force: true });
  mkdirSync(OUTPUT, { recursive: true });
  demo = await startDemo(join(OUTPUT, 'demo.log'));
}, 100_000);

afterAll(async () => {
  await demo?.stop();
});

/** README's "Trying it" curl lines: [method, url]. */
function readmeCurlLines(): Array<[string, string]> {
  const lines = readFileSync('README.md', 'utf8').split('\n');
  return lines.flatMap((line) => {
    const match = /^curl -c jar -b jar (?:-X (\w+) )?'?(http:\/\/127\.0\.0\.1:8080\/[^' ]*)'?/.exec(line);
    return match ? [[match[1] ?? 'GET', match[2]!] as [string, string]] : [];
  });
}

describe('the demo answers curl with JSON, as README shows', () => {
  it('README\'s curl sequence: login in shop, blog sees it and fills the cart, shop sees the cart, logout', async () => {
    const steps = readmeCurlLines();
    expect(steps.map(([method, url]) => `${method} ${new URL(url).pathname}`)).toEqual(['POST /shop/login', 'GET /blog/', 'POST /blog/cart', 'GET /shop/', 'POST /shop/logout']);
    const jar = new Browser(demo.url);
    const replies = [];
    for (const [method, url] of steps) {
      const { pathname, search } = new URL(url);
      // What curl sends: Accept */*, no body for -X POST.
      const reply = await jar.request(method, pathname + search, undefined, { accept: '*/*', 'user-agent': 'curl/8' });
      expect(reply.status, `${method} ${url}`).toBe(200);
      expect(reply.headers['content-type']).toMatch(/^application\/json/);
      replies.push(reply.json());
    }
    expect(replies[0]).toEqual({ app: 'shop (Express)', loggedIn: 'Ada' });
    expect(replies[1]).toMatchObject({ user: { id: 'ada', name: 'Ada' }, cart: [] });
    expect(replies[2]).toMatchObject({ user: { name: 'Ada' }, cart: ['book'] });
    expect(replies[3]).toMatchObject({ user: { name: 'Ada' }, cart: ['book'] });
    expect(replies[4]).toEqual({ app: 'shop (Express)', loggedOut: true });
    expect((await jar.get('/blog/')).json()).toMatchObject({ sid: null, user: null, cart: [] });
  });

  it('?format=json gives JSON to a browser too; a page is HTML only for a client that prefers it', async () => {
    const html = 'text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8';
    for (const app of ['shop', 'blog']) {
      expect((await send(`${demo.url}/${app}/`, { headers: { accept: html } })).headers['content-type']).toMatch(/^text\/html/);
      expect((await send(`${demo.url}/${app}/?format=json`, { headers: { accept: html } })).headers['content-type']).toMatch(/^application\/json/);
      expect((await send(`${demo.url}/${app}/`, { headers: { accept: 'application/json, text/html;q=0.5' } })).headers['content-type']).toMatch(/^application\/json/);
    }
  });

  it('a form post is answered 303 to the mount\'s own page, not the gateway root; a malformed X-Forwarded-Prefix is ignored', async () => {
    const form = { accept: 'text/html', 'content-type': 'application/x-www-form-urlencoded' };
    const login = await send(`${demo.url}/shop/login`, { method: 'POST', headers: form, body: 'name=Lin' });
    expect([login.status, login.headers.location]).toEqual([303, '/shop/']);
    const cookie = login.headers['set-cookie']![0]!.split(';')[0]!;
    const cart = await send(`${demo.url}/blog/cart`, { method: 'POST', headers: { ...form, cookie, 'x-forwarded-prefix': '//evil.example' }, body: 'item=pen' });
    expect([cart.status, cart.headers.location]).toEqual([303, '/blog/']);
    const tooLarge = await send(`${demo.url}/blog/cart`, { method: 'POST', headers: { ...form, cookie }, body: `item=${'x'.repeat(5000)}` });
    expect(tooLarge.status).toBe(413);
    expect((await send(`${demo.url}/shop/`, { headers: { cookie } })).json()).toMatchObject({ user: { name: 'Lin' }, cart: ['pen'] });
  });

  it('the start page at / links both apps and needs no session', async () => {
    const page = await send(`${demo.url}/`, { headers: { accept: 'text/html' } });
    expect(page.status).toBe(200);
    expect(page.body).toContain('href="/shop/"');
    expect(page.body).toContain('href="/blog/"');
    expect(page.headers['set-cookie']).toBeUndefined();
  });
});

// Skipped only where Debian's chromium is not installed: .ci/run installs it, so CI runs this.
const browserSuite = hasChromium
  ? `a person in a browser (headless ${CHROMIUM})`
  : `a person in a browser: SKIPPED, no chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM_PATH)`;
if (!hasChromium) console.warn(`demo.test.ts: ${browserSuite}`);
describe.skipIf(!hasChromium)(browserSuite, () => {
  let chromium: Chromium;
  let page: Page;
  let userDataDir: string;
  const pageErrors: string[] = [];
  let shot = 0;
  const screenshot = async (name: string) => {
    await page.screenshot({ path: join(OUTPUT, `${String(++shot).padStart(2, '0')}-${name}.png`) as `${string}.png`, fullPage: true });
  };
  const text = (selector: string) => page.$eval(selector, (el) => (el as HTMLElement).innerText);
  /** Clicks and waits for the page it leads to (for a form post: the page its 303 leads to). */
  const follow = async (selector: string): Promise<HTTPResponse> => {
    const [response] = await Promise.all([page.waitForNavigation(), page.click(selector)]);
    return response!;
  };

  beforeAll(async () => {
    const { default: puppeteer } = await import('puppeteer-core');
    userDataDir = await mkdtemp(join(tmpdir(), 'sgw-chromium-'));
    chromium = await puppeteer.launch({
      executablePath: CHROMIUM,
      ignoreDefaultArgs: true,
      args: [...CHROMIUM_FLAGS, `--user-data-dir=${userDataDir}`],
      pipe: true,
      timeout: 60_000,
    });
    page = await chromium.newPage();
    page.setDefaultTimeout(20_000);
    await page.setViewport({ width: 900, height: 800 });
    page.on('pageerror', (error) => pageErrors.push(String(error)));
  }, 90_000);

  afterAll(async () => {
    await chromium?.close();
    if (userDataDir) rmSync(userDataDir, { recursive: true, force: true });
  });

  it('logs in on the shop by its form, is known on the blog, fills the cart there, and logs out of both', async () => {
    await page.goto(`${demo.url}/`);
    expect(await page.title()).toBe('session-gateway demo');
    await page.waitForFunction(() => document.getElementById('shop-user')?.textContent === 'nobody');
    await screenshot('start-page');

    await follow('#shop');
    expect(page.url()).toBe(`${demo.url}/shop/`);
    expect(await text('#who')).toBe('Not signed in.');
    await page.type('#name', 'Ada');
    await screenshot('shop-login-form');
    const afterLogin = await follow('#login');
    // The POST was answered 303 to the shop's own page (not the gateway root), then a GET.
    expect(afterLogin.request().redirectChain().map((r) => [r.method(), r.response()?.status()])).toEqual([['POST', 303]]);
    expect(page.url()).toBe(`${demo.url}/shop/`);
    expect(await text('#who')).toContain('Signed in as Ada');
    const cookies = await chromium.cookies();
    expect(cookies.map((c) => [c.name, c.httpOnly])).toEqual([['sgw.sid', true]]);
    await screenshot('shop-logged-in');

    await follow('nav a[href="/blog/"]');
    expect(page.url()).toBe(`${demo.url}/blog/`);
    expect(await text('#who')).toContain('Signed in as Ada');
    await page.type('#item', 'book');
    await follow('#add');
    expect(page.url()).toBe(`${demo.url}/blog/`);
    expect(await text('#cart')).toBe('book');
    await screenshot('blog-knows-ada-cart');

    await page.goto(`${demo.url}/`);
    await page.waitForFunction(() => document.getElementById('blog-cart')?.textContent === 'book');
    expect(await text('#shop-user')).toBe('Ada');
    await screenshot('start-page-both-apps');

    await page.goto(`${demo.url}/shop/`);
    expect(await text('#cart')).toBe('book');
    await follow('#logout');
    expect(page.url()).toBe(`${demo.url}/shop/`);
    expect(await text('#who')).toBe('Not signed in.');
    expect(await chromium.cookies()).toEqual([]);
    await screenshot('shop-logged-out');

    await page.goto(`${demo.url}/blog/`);
    expect(await text('#who')).toContain('Not signed in');
    expect(await text('#cart')).toBe('empty');
    expect(pageErrors).toEqual([]);
  }, 120_000);
});
