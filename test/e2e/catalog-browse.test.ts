// The catalog as a user of Artifact Hub or Vagrant Cloud meets it, in Chromium: who publishes the
// channel and with which key, each appliance's download size and last update, sorting, copy
// buttons, each version's definition text, and no link to a signature that will not exist. The
// site is built twice from the same definitions (the provider's fixtures, an image kept beside
// its definition, a single-layer appliance): once with a publisher key, the feed signed after the
// build as the README says, and once without. Screenshots: test-results/catalog-index.png and
// test-results/catalog-appliance.png.
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { glob, mkdir, mkdtemp, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type { Page } from 'playwright-core';
import { generateKeyPair } from '../../provider/src/channel/signing.ts';
import { signCommand, type KeysCommandIO } from '../../provider/src/cli/keys.ts';
import { launchChromium } from '../lib/browser.ts';
import { buildSite, serveStatic, type BuildResult } from '../lib/channel.ts';

const repo = fileURLToPath(new URL('../../', import.meta.url));
const fixtures = path.join(repo, 'provider/test/fixtures/appliances/valid');
const RESULTS = path.join(repo, 'test-results');
const BASE_PATH = '/storm/';
const PUBLISHER = 'Example Appliances Ltd';

const QCOW2_MAGIC = [0x51, 0x46, 0x49, 0xfb];
const GZIP_MAGIC = [0x1f, 0x8b];
const image = (magic: number[], bytes: number) => Buffer.concat([Buffer.from(magic), Buffer.alloc(bytes - magic.length, 7)]);

/** A definition in the paper's format: no <name> (the folder gives it) and no <sha256> (the image beside it does). */
const NOTES = `<?xml version='1.0' encoding='utf-8'?>
<appliance version='1.0'>
  <label>Team Notes</label>
  <description>A small wiki for a team's notes &amp; runbooks, served by nginx.</description>
  <version>0.4.2</version>
  <size>2048</size>
  <url>https://images.example/storm/notes-0.4.2.qcow2</url>
  <sig>https://images.example/storm/notes-0.4.2.qcow2.sig</sig>
  <base name='debian-12' url='https://images.example/debian-12.qcow2' sha256='cae66afe3057e4eb553d161dd813fb8e53fc3493d0b0804fdc40214a589247de' sig='https://images.example/debian-12.qcow2.sig'/>
  <provides>wiki</provides>
  <webpanel>/</webpanel>
  <hardware>
    <cpus>1</cpus>
    <memory>262144</memory>
    <ostype>linux</ostype>
    <disk name='vda' type='system' file='sys.img'/>
  </hardware>
</appliance>
`;

/** A single-layer appliance (no <base>: its image is its own base), its image a .tgz beside it. */
const SOLO = `<?xml version='1.0' encoding='utf-8'?>
<appliance version='1.0'>
  <name>solo</name>
  <label>Solo Router</label>
  <description>A router in one image, no base layer.</description>
  <version>3.0</version>
  <size>256</size>
  <url>https://images.example/storm/solo-3.0.tgz</url>
  <sig>https://images.example/storm/solo-3.0.tgz.sig</sig>
  <provides>router</provides>
  <hardware>
    <cpus>1</cpus>
    <memory>131072</memory>
    <ostype>linux</ostype>
    <disk name='vda' type='system' file='sys.img'/>
  </hardware>
</appliance>
`;

/** When each definition was published (its file's mtime is the feed's pubDate). */
const PUBLISHED: Record<string, string> = {
  'emailserv/1.0.0-0': '2026-09-01',
  // An older line fixed after the newest version: the appliance counts as updated then.
  'emailserv/0.9.0-0': '2026-11-25',
  'firewall/2.1': '2026-10-15',
  'notes/0.4.2': '2026-11-20',
  'solo/3.0': '2026-11-02',
  'webserv/1.0.0-0': '2026-08-20',
};
const BY_NAME = ['emailserv', 'firewall', 'notes', 'solo', 'webserv'];
const BY_UPDATE = ['emailserv', 'notes', 'solo', 'firewall', 'webserv'];
// Known sizes first, smallest first; the images the build never saw after them, by name.
const BY_SIZE = ['solo', 'notes', 'emailserv', 'firewall', 'webserv'];

async function channelDir(dir: string): Promise<void> {
  const files: Record<string, string | Buffer> = {
    'notes/0.4.2/appliance.xml': NOTES,
    'notes/0.4.2/notes-0.4.2.qcow2': image(QCOW2_MAGIC, 1.5 * 1024 * 1024),
    'solo/3.0/appliance.xml': SOLO,
    'solo/3.0/solo-3.0.tgz': image(GZIP_MAGIC, 300 * 1024),
  };
  for (const f of ['emailserv', 'firewall', 'webserv']) {
    const xml = await readFile(path.join(fixtures, `${f}.xml`), 'utf8');
    const version = /<version>([^<]*)<\/version>/.exec(xml)![1]!;
    files[`${f}/${version}/appliance.xml`] = xml;
    if (f === 'emailserv') files['emailserv/0.9.0-0/appliance.xml'] = xml.replace(`<version>${version}</version>`, '<version>0.9.0-0</version>').replace('<dependency>firewall:2.1</dependency>', '');
  }
  for (const [rel, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), content);
  }
  for (const [id, day] of Object.entries(PUBLISHED)) {
    const when = new Date(`${day}T09:30:00Z`);
    await utimes(path.join(dir, id, 'appliance.xml'), when, when);
  }
}

/** The CLI's output, kept for assertions instead of interleaving with the test report. */
function captured(): KeysCommandIO & { err: () => string } {
  let err = '';
  return { stdout: { write: () => true }, stderr: { write: (t: string) => (err += t) }, env: {}, err: () => err };
}

/** Every same-site link and script of every built page, fetched: none may be a 404. */
async function brokenLinks(out: string, siteUrl: string): Promise<string[]> {
  const targets = new Map<string, string>();
  for await (const rel of glob('**/*.html', { cwd: out })) {
    const html = await readFile(path.join(out, rel), 'utf8');
    const pageUrl = new URL(rel.replace(/index\.html$/, ''), siteUrl);
    for (const [, ref] of html.matchAll(/\s(?:href|src)="([^"]*)"/g)) {
      const target = new URL(ref!.replace(/&amp;/g, '&'), pageUrl);
      target.hash = '';
      if (target.origin === pageUrl.origin && !targets.has(target.href)) targets.set(target.href, rel);
    }
  }
  assert.ok(targets.size > 10, `links were found (${targets.size})`);
  const broken: string[] = [];
  for (const [target, from] of targets) {
    const res = await fetch(target);
    if (res.status !== 200) broken.push(`${from} → ${target}: ${res.status}`);
  }
  return broken;
}

/** The cards' appliance names, in the order the page shows them. */
const cardOrder = (page: Page) => page.locator('[data-appliance]:visible').evaluateAll((els) => els.map((e) => e.getAttribute('data-appliance')));

describe('catalog site in a browser: publisher, sizes, dates, sorting, copying, definitions', () => {
  let work: string;
  const servers: Server[] = [];
  let signed: { out: string; url: string; build: BuildResult };
  let unsigned: { out: string; url: string; build: BuildResult };
  let keyId: string;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'storm-catalog-browse-'));
    const appliances = path.join(work, 'appliances');
    await channelDir(appliances);
    const pair = generateKeyPair(PUBLISHER);
    keyId = pair.keyId;
    await writeFile(path.join(work, 'publisher.pub'), `${pair.publicKeyLine}\n`);
    await writeFile(path.join(work, 'publisher.key'), pair.secretKeyPem, { mode: 0o600 });

    const site = async (name: string, env: Record<string, string>) => {
      const out = path.join(work, name);
      const { server, url } = await serveStatic(out, BASE_PATH);
      servers.push(server);
      return { out, url, build: await buildSite(appliances, out, url, env) };
    };
    // With a key and no STORM_CHANNEL_PUBLISHER: the key's comment names the publisher.
    signed = await site('signed', { STORM_CHANNEL_PUBLIC_KEY: path.join(work, 'publisher.pub') });
    unsigned = await site('unsigned', { STORM_CHANNEL_PUBLISHER: 'Unsigned Lab' });
    // As the README tells publishers: sign the feed after every build.
    if (signed.build.code === 0) {
      const io = captured();
      assert.equal(await signCommand(['--key', path.join(work, 'publisher.key'), '--purpose', 'feed', path.join(signed.out, 'rss.xml')], io), 0, io.err());
    }
  });

  after(async () => {
    for (const s of servers) s.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('both builds succeed, and neither page links anything that is not there', async () => {
    assert.equal(signed.build.code, 0, signed.build.output);
    assert.equal(unsigned.build.code, 0, unsigned.build.output);
    assert.deepEqual(await brokenLinks(signed.out, signed.url), []);
    assert.deepEqual(await brokenLinks(unsigned.out, unsigned.url), []);
  });

  test('without a publisher key no page links rss.xml.sig, and every page says the channel is unsigned', async () => {
    for await (const rel of glob('**/*.html', { cwd: unsigned.out })) {
      const html = await readFile(path.join(unsigned.out, rel), 'utf8');
      assert.doesNotMatch(html, /rss\.xml\.sig/, `${rel} does not mention a signature that will not exist`);
      assert.match(html, /The feed is unsigned/, rel);
    }
    assert.ok(!existsSync(path.join(unsigned.out, 'publisher.pub')));
    for await (const rel of glob('**/*.html', { cwd: signed.out })) {
      assert.match(await readFile(path.join(signed.out, rel), 'utf8'), /href="\/storm\/rss\.xml\.sig"/, `${rel} links the signature`);
    }
  });

  test('a channel title holding the feed’s placeholder characters fails the build, naming the setting', async () => {
    const out = path.join(work, 'refused');
    const result = await buildSite(path.join(work, 'appliances'), out, signed.url, { STORM_CHANNEL_TITLE: 'Fire \uE0000\uE001 wall' });
    assert.notEqual(result.code, 0, 'the build must fail');
    assert.match(result.output, /STORM_CHANNEL_TITLE: character 6 cannot be published: private-use character U\+E000/);
    assert.doesNotMatch(result.output, /    at /, 'no stack trace');
    assert.ok(!existsSync(path.join(out, 'rss.xml')), 'nothing is published');
  });

  test('without JavaScript: every appliance, by name, with sizes and dates; no controls that could not work', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const context = await browser.newContext({ javaScriptEnabled: false });
    const page = await context.newPage();
    await page.goto(signed.url);
    assert.deepEqual(await cardOrder(page), BY_NAME);
    assert.equal(await page.locator('#catalog-filters').isVisible(), false, 'no sort or filter form');
    assert.match((await page.locator('[data-appliance="notes"] .download').textContent()) ?? '', /Download\s+1\.5 MiB/);
    await page.goto(new URL('appliances/notes/', signed.url).href);
    assert.equal(await page.locator('button.copy').first().isVisible(), false, 'no copy button without a script to copy');
    assert.ok(await page.locator('.definition-text pre').first().isVisible(), 'the definition is shown');
  });

  test('the index: publisher and key, download sizes, update dates, sorting by clicking', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = watch(page);
    await page.goto(signed.url);

    const channelLine = page.locator('main .publisher');
    assert.equal(await channelLine.locator('.publisher-name').textContent(), PUBLISHER);
    assert.equal((await channelLine.locator('.signature-cue').textContent())?.replace(/\s+/g, ' ').trim(), `✓ Feed signed by ${keyId}`);

    const card = (name: string) => page.locator(`[data-appliance="${name}"]`);
    const text = async (name: string, part: string) => ((await card(name).locator(part).textContent()) ?? '').replace(/\s+/g, ' ').trim();
    assert.equal(await text('notes', '.download'), 'Download 1.5 MiB', 'the size of the image beside the definition');
    assert.equal(await text('solo', '.download'), 'Download 300 KiB');
    assert.equal(await text('webserv', '.download'), 'Download size unknown', 'an image on another server: no number');
    assert.equal(await text('notes', '.updated'), 'Updated 2026-11-20');
    assert.equal(await text('emailserv', '.updated'), 'Updated 2026-11-25', 'the latest publication of any version');
    assert.match(await text('solo', '.hw'), /single layer$/);
    assert.match(await text('notes', '.hw'), /on debian-12$/);
    assert.equal(await text('notes', '.signature-cue'), `✓ Signed by ${keyId}`);
    assert.equal(await text('solo', '.signature-cue'), `✓ Signed by ${keyId}`);
    // The fixtures leave some images without a <sig>: storm would refuse them, so the card says so.
    assert.equal(await text('webserv', '.signature-cue'), '! Not fully signed');
    assert.match((await card('webserv').locator('.signature-cue').getAttribute('title')) ?? '', /the base debian-12 has no signature: storm refuses it unless insecure_skip_verify = true/);

    const sortBy = page.getByRole('combobox', { name: 'Sort by' });
    assert.deepEqual(await cardOrder(page), BY_NAME);
    await sortBy.selectOption({ label: 'Recently updated' });
    assert.deepEqual(await cardOrder(page), BY_UPDATE);
    assert.match(page.url(), /[?&]sort=updated/, 'the order is kept in the URL');
    await page.reload();
    assert.deepEqual(await cardOrder(page), BY_UPDATE, 'and restored from it');
    await sortBy.selectOption({ label: 'Download size' });
    assert.deepEqual(await cardOrder(page), BY_SIZE);
    // Sorting and filtering together: the order holds among the cards left.
    await page.getByRole('combobox', { name: 'Memory' }).selectOption({ label: '≤ 512 MiB' });
    assert.deepEqual(await cardOrder(page), ['solo', 'notes', 'firewall', 'webserv']);
    await page.getByRole('combobox', { name: 'Memory' }).selectOption('');
    await sortBy.selectOption({ label: 'Name' });
    assert.deepEqual(await cardOrder(page), BY_NAME);
    assert.doesNotMatch(page.url(), /sort=/);

    // The footer links the feed's signature, which exists (signed after the build).
    const sig = page.locator('footer a.feed-signature');
    assert.equal(await sig.count(), 1);
    assert.equal((await fetch(await sig.evaluate((a) => (a as unknown as { href: string }).href))).status, 200);

    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: path.join(RESULTS, 'catalog-index.png'), fullPage: true });
    console.log(`# screenshot: ${path.join(RESULTS, 'catalog-index.png')}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  });

  test('an appliance page: provenance, download, the definition’s text, copy buttons', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: new URL(signed.url).origin });
    const page = await context.newPage();
    const errors = watch(page);
    await page.goto(new URL('appliances/notes/', signed.url).href);

    const provenance = ((await page.locator('.provenance').textContent()) ?? '').replace(/\s+/g, ' ');
    assert.match(provenance, new RegExp(`Published by ${PUBLISHER} · Updated 2026-11-20 · Download 1\\.5 MiB \\(0\\.4\\.2, qcow2\\) ✓ Signed by ${keyId}`));
    const latest = page.locator('section.version').first();
    assert.match((await latest.locator('.facts .download').textContent()) ?? '', /1\.5 MiB\s*qcow2/);
    assert.match((await latest.locator('.version-details > .sig').textContent()) ?? '', /The feed and the images are signed with the publisher key/);

    // The definition as published, escaped into text (its markup is not markup here), beside the link to the file.
    const shown = await latest.locator('.definition-text pre').textContent();
    assert.equal(shown, NOTES);
    assert.ok(await latest.locator('.definition-text pre').isVisible(), 'the latest version’s definition is unfolded');
    assert.equal(await page.locator('appliance, hardware').count(), 0, 'no element was made from the definition');
    assert.equal(await latest.locator('a.definition').getAttribute('href'), '/storm/appliances/notes/0.4.2/appliance.xml');

    // Copy: the clipboard gets the snippet, and the button says it did.
    const hcl = page.locator('figure[data-snippet]', { has: page.locator('pre[data-language="hcl"]') });
    const button = hcl.getByRole('button', { name: 'Copy the HCL snippet' });
    assert.ok(await button.isVisible());
    await button.click();
    await page.waitForSelector('figure[data-snippet][data-copy]');
    assert.equal(await hcl.getAttribute('data-copy'), 'copied');
    assert.equal(await hcl.getByRole('button', { name: 'Copied the HCL snippet' }).count(), 1, 'the button says so');
    assert.equal(await hcl.getByRole('status').textContent(), 'Copied to the clipboard.');
    // Expressions, not functions: the tests are type-checked without the DOM's types.
    const clipboard = await page.evaluate<string>('navigator.clipboard.readText()');
    assert.equal(clipboard, await hcl.locator('pre').textContent());
    assert.match(clipboard, /data "storm_appliance" "notes"/);

    await mkdir(RESULTS, { recursive: true });
    await page.screenshot({ path: path.join(RESULTS, 'catalog-appliance.png'), fullPage: true });
    console.log(`# screenshot: ${path.join(RESULTS, 'catalog-appliance.png')}`);
    assert.deepEqual(errors, [], 'no errors in the page');
  });

  test('copying where the browser allows no clipboard: the text is selected, with what to press', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const context = await browser.newContext();
    // As on a page served over plain HTTP from another host, in a browser that refuses the old way too.
    // A string, not a function: what tsx compiles a function to refers to helpers the page lacks.
    await context.addInitScript({
      content: `Object.defineProperty(Navigator.prototype, 'clipboard', { get() { return undefined; } });
        Document.prototype.execCommand = function () { return false; };`,
    });
    const page = await context.newPage();
    const errors = watch(page);
    await page.goto(new URL('appliances/solo/', signed.url).href);
    const snippet = page.locator('figure[data-snippet]', { has: page.locator('pre[data-language="ts"]') });
    await snippet.getByRole('button', { name: 'Copy the cdktf snippet' }).click();
    await page.waitForSelector('figure[data-snippet][data-copy]');
    assert.equal(await snippet.getAttribute('data-copy'), 'selected');
    assert.match((await snippet.getByRole('status').textContent()) ?? '', /press Ctrl\+C/);
    // Chromium's selection text leaves out the last line end.
    assert.equal((await page.evaluate<string>('getSelection().toString()')).trimEnd(), (await snippet.locator('pre').textContent())?.trimEnd());
    assert.deepEqual(errors, [], 'no error, however the copy went');
  });

  test('a single-layer appliance: said so, and its snippets have no base', async () => {
    const html = await (await fetch(new URL('appliances/solo/', signed.url))).text();
    const text = html.replace(/<[^>]+>/g, ' ').replace(/\s+/g, ' ');
    assert.match(text, / Base single layer \(its own base\) /);
    assert.match(text, / Image \(single layer\) /);
    assert.match(text, / Download 300 KiB \(3\.0, tgz\) /);
    const hcl = /<pre data-language="hcl"[^>]*><code[^>]*>([\s\S]*?)<\/code><\/pre>/.exec(html)?.[1] ?? '';
    assert.match(hcl, /resource (&quot;|")storm_appliance(&quot;|") (&quot;|")solo(&quot;|")/);
    assert.doesNotMatch(hcl, /base/);
  });

  test('without a key: the publisher as configured, and “Unsigned” said plainly', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const page = await browser.newPage();
    const errors = watch(page);
    await page.goto(unsigned.url);
    assert.equal(await page.locator('main .publisher .publisher-name').textContent(), 'Unsigned Lab');
    const cues = await page.locator('.signature-cue').allTextContents();
    assert.equal(cues.length, BY_NAME.length + 1, 'the channel and every card');
    assert.ok(cues.every((c) => c.trim() === 'Unsigned'), cues.join(' | '));
    assert.equal(await page.locator('a[href$="rss.xml.sig"]').count(), 0);
    await page.goto(new URL('appliances/webserv/', unsigned.url).href);
    assert.match((await page.locator('.version-details > .sig').first().textContent()) ?? '', /no publisher key: storm cannot tell who published it/);
    assert.equal(await page.locator('a[href$="rss.xml.sig"]').count(), 0);
    assert.deepEqual(errors, []);
  });
});

/** Page errors and failed requests, to assert none happened. */
function watch(page: Page): string[] {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  page.on('response', (r) => r.status() >= 400 && errors.push(`${r.status()} ${r.url()}`));
  return errors;
}
