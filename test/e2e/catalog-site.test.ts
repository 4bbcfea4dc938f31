// The channel site end to end: build catalog-site with Astro from fixture definitions, serve
// the static tree with a real HTTP server (node:http, under a sub-path, as a publisher might),
// read the feed back with rss-parser as a storm client would, and drive the catalog in a real
// browser (Debian's chromium through playwright-core). What the catalog shows (publisher, sizes,
// dates, sorting, copying) and its screenshots are catalog-browse.test.ts's.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { glob, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import type { Server } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import Parser from 'rss-parser';
import { formatProblems, parseApplianceDefinition } from '../../provider/src/channel/definition.ts';
import type { ApplianceDefinition } from '../../provider/src/channel/types.ts';
import { parseFeed } from '../../provider/src/channel/feed.ts';
import { IMAGE_MEDIA_TYPES, formatFromName, imageFileName } from '../../provider/src/channel/publish.ts';
import { generateKeyPair, hashFile, parsePublicKey, verifyFeedSignature } from '../../provider/src/channel/signing.ts';
import { signCommand, type KeysCommandIO } from '../../provider/src/cli/keys.ts';
import { launchChromium } from '../lib/browser.ts';
import { buildSite, serveStatic as serveAt, type BuildResult } from '../lib/channel.ts';

const serveStatic = (root: string) => serveAt(root, BASE_PATH);

/** The CLI's output, kept for assertions instead of interleaving with the test report. */
function captured(): KeysCommandIO & { err: () => string } {
  let err = '';
  return { stdout: { write: () => true }, stderr: { write: (t: string) => (err += t) }, env: {}, err: () => err };
}

const repo = fileURLToPath(new URL('../../', import.meta.url));
const site = path.join(repo, 'catalog-site');
const examples = path.join(site, 'appliances');
const fixtures = path.join(repo, 'provider/test/fixtures/appliances');
const astroBin = path.join(repo, 'node_modules/astro/bin/astro.mjs');
const BASE_PATH = '/channels/storm/';
const STORM_NS = 'https://storm.invalid/xmlns/channel/1';

async function fixtureDefinitions(dir: string): Promise<Map<string, ApplianceDefinition>> {
  const byId = new Map<string, ApplianceDefinition>();
  for await (const rel of glob('**/appliance.xml', { cwd: dir })) {
    const result = parseApplianceDefinition(await readFile(path.join(dir, rel), 'utf8'), rel);
    assert.ok(result.ok, `fixture ${rel} must be valid`);
    byId.set(`${result.definition.name}/${result.definition.version}`, result.definition);
  }
  return byId;
}

type StormItem = Parser.Item & {
  stormName?: string;
  stormVersion?: string;
  stormDefinition?: string;
  stormDefinitionSha256?: string;
  stormSha256?: string;
  stormSignature?: string;
  stormBase?: { $: { name: string; url: string; sha256: string; sig?: string } };
  stormProvides?: string[];
  stormDependencies?: string[];
  enclosure?: { url: string; length?: string; type?: string };
};

/**
 * A channel directory from the provider's fixture definitions (provider/test/fixtures/appliances):
 * valid/<name>.xml becomes <name>/<version>/appliance.xml, plus two later versions of emailserv
 * (1.9 and 1.10, to check that versions sort as numbers; 1.9 is written with a BOM and CRLF line
 * ends, to check that a definition is published byte for byte), plus `extra` files.
 */
async function channelDir(dir: string, extra: Record<string, string | Uint8Array> = {}): Promise<void> {
  const files: Record<string, string | Uint8Array> = { ...extra };
  for await (const f of glob('*.xml', { cwd: path.join(fixtures, 'valid') })) {
    const xml = await readFile(path.join(fixtures, 'valid', f), 'utf8');
    const parsed = parseApplianceDefinition(xml, f);
    assert.ok(parsed.ok, `fixture ${f} must be valid`);
    const { name, version } = parsed.definition;
    files[`${name}/${version}/appliance.xml`] = xml;
    if (name === 'emailserv') {
      for (const later of ['1.9.0-0', '1.10.0-0']) files[`${name}/${later}/appliance.xml`] = xml.replace(`<version>${version}</version>`, `<version>${later}</version>`);
      files[`${name}/1.9.0-0/appliance.xml`] = `\uFEFF${(files[`${name}/1.9.0-0/appliance.xml`] as string).replace(/\n/g, '\r\n')}`;
    }
  }
  for (const [rel, xml] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, rel)), { recursive: true });
    await writeFile(path.join(dir, rel), xml);
  }
}

describe('catalog site: build, serve, feed, browser', () => {
  let work: string;
  let out: string;
  let server: Server;
  let channelUrl: string;
  let built: BuildResult;
  let definitions: Map<string, ApplianceDefinition>;
  let publicKeyLine: string;
  let secretKeyFile: string;

  before(async () => {
    work = await mkdtemp(path.join(tmpdir(), 'storm-catalog-'));
    out = path.join(work, 'dist');
    await channelDir(path.join(work, 'valid'));
    definitions = await fixtureDefinitions(path.join(work, 'valid'));
    ({ server, url: channelUrl } = await serveStatic(out));
    // The publisher's key, as `storm keygen` makes it: the site publishes the public half.
    const pair = generateKeyPair('test channel');
    publicKeyLine = pair.publicKeyLine;
    secretKeyFile = path.join(work, 'publisher.key');
    await writeFile(path.join(work, 'publisher.pub'), `${pair.publicKeyLine}\n`);
    await writeFile(secretKeyFile, pair.secretKeyPem, { mode: 0o600 });
    built = await buildSite(path.join(work, 'valid'), out, channelUrl, { STORM_CHANNEL_PUBLIC_KEY: path.join(work, 'publisher.pub') });
    console.log(`# catalog site: ${definitions.size} definitions built in ${built.seconds.toFixed(1)} s`);
  });

  after(async () => {
    server?.close();
    if (work) await rm(work, { recursive: true, force: true });
  });

  test('the example channel builds into a plain static tree', async () => {
    assert.equal(built.code, 0, built.output);
    for (const f of ['index.html', 'rss.xml', 'schema/appliance-definition.xsd', 'schema/appliance-definition.schema.json']) {
      assert.ok(existsSync(path.join(out, f)), `${f} is built`);
    }
    for (const [id, def] of definitions) {
      assert.ok(existsSync(path.join(out, 'appliances', def.name, 'index.html')), `page of ${def.name}`);
      assert.ok(existsSync(path.join(out, 'appliances', id, 'appliance.xml')), `definition of ${id}`);
    }
    assert.ok(!existsSync(path.join(out, '.prerender')), 'no server runtime left in the output');
  });

  test('an invalid definition fails the build with the validator’s messages, file and lines', async () => {
    const dir = path.join(work, 'invalid');
    const xml = await readFile(path.join(fixtures, 'invalid/many-errors.xml'), 'utf8');
    await channelDir(dir, { 'broken/appliance.xml': xml });
    const file = path.join(dir, 'broken/appliance.xml');

    const result = await buildSite(dir, path.join(work, 'invalid-dist'), channelUrl);
    assert.notEqual(result.code, 0, 'the build must fail');
    const parsed = parseApplianceDefinition(xml, file);
    assert.ok(!parsed.ok);
    const expected = formatProblems(parsed.problems, file);
    assert.ok(result.output.includes(expected), `build output should contain:\n${expected}\n--- got:\n${result.output}`);
    const lines = (JSON.parse(await readFile(path.join(fixtures, 'invalid/expected.json'), 'utf8')) as Record<string, [string, number][]>)['many-errors.xml']!;
    const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
    for (const [where, line] of lines) assert.match(result.output, new RegExp(`${literal(file)}:${line}:\\d+: ${literal(where)}: `), `reports ${where} at line ${line} (and a column)`);
    assert.ok(!existsSync(path.join(work, 'invalid-dist', 'rss.xml')), 'nothing is published');
  });

  test('hostile definitions fail the build before anything is written, each at its line', async () => {
    const dir = path.join(work, 'hostile');
    const firewall = await readFile(path.join(fixtures, 'valid/firewall.xml'), 'utf8');
    const withVersion = (xml: string, v: string) => xml.replace(/<version>[^<]*<\/version>/, `<version>${v}</version>`);
    const withDependency = (xml: string, name: string, v: string) => withVersion(xml, v).replace('</appliance>', `  <dependency>${name}</dependency>\n</appliance>`);
    const cycleA = withDependency(firewall.replace(/<name>[^<]*<\/name>/, '<name>cycle-a</name>'), 'cycle-b', '1.0');
    const cycleB = withDependency(firewall.replace(/<name>[^<]*<\/name>/, '<name>cycle-b</name>'), 'cycle-a', '1.0');
    await channelDir(dir, {
      'index/appliance.xml': withVersion(firewall, 'index.html'),
      'pua/appliance.xml': firewall.replace(/<label>[^<]*<\/label>/, '<label>Fire \uE0000\uE001 wall</label>'),
      'latin1/appliance.xml': Buffer.from(firewall.replace(/<label>[^<]*<\/label>/, '<label>Pare-feu série</label>'), 'latin1'),
      'cycle-a/appliance.xml': cycleA,
      'cycle-b/appliance.xml': cycleB,
    });
    const dist = path.join(work, 'hostile-dist');
    const result = await buildSite(dir, dist, channelUrl);
    assert.notEqual(result.code, 0, 'the build must fail');
    const line = (f: string, re: RegExp) => assert.match(result.output, new RegExp(`${path.join(dir, f).replace(/[.*+?^\${}()|[\]\\]/g, '\\$&')}:\\d+:(\\d+:)? ${re.source}`), f);
    line('index/appliance.xml', /\/appliance\/version: version "index.html" is reserved/);
    line('pua/appliance.xml', /\/: private-use character U\+E000 is not allowed/);
    line('latin1/appliance.xml', /\/: byte 0xE9 is not UTF-8 \(was the file saved as Latin-1 or Windows-1252\?\)/);
    line('cycle-a/appliance.xml', /\/appliance\/dependency: dependency cycle: cycle-a 1.0 → cycle-b 1.0 → cycle-a 1.0/);
    assert.doesNotMatch(result.output, /EISDIR|TypeError|    at /, 'no crash, no stack trace');
    assert.ok(!existsSync(dist), 'nothing is written');
  });

  test('the example appliances shipped with the site are valid', async () => {
    assert.ok((await fixtureDefinitions(examples)).size >= 3);
  });

  test('rss.xml round-trips every definition through rss-parser', async () => {
    const res = await fetch(new URL('rss.xml', channelUrl));
    assert.equal(res.status, 200);
    const xml = await res.text();
    assert.match(xml, new RegExp(`xmlns:storm="${STORM_NS.replaceAll('.', '\\.')}"`));

    const parser: Parser<{ atom?: unknown }, StormItem> = new Parser({
      customFields: {
        item: [
          ['storm:name', 'stormName'],
          ['storm:version', 'stormVersion'],
          ['storm:definition', 'stormDefinition'],
          ['storm:definition-sha256', 'stormDefinitionSha256'],
          ['storm:sha256', 'stormSha256'],
          ['storm:signature', 'stormSignature'],
          ['storm:base', 'stormBase'],
          ['storm:provides', 'stormProvides', { keepArray: true }],
          ['storm:dependency', 'stormDependencies', { keepArray: true }],
        ],
      },
    });
    const feed = await parser.parseString(xml);
    assert.equal(feed.title, 'Test channel');
    assert.equal(feed.link, channelUrl);
    assert.equal(feed.items.length, definitions.size, 'one item per appliance version');

    const seen = new Set<string>();
    for (const item of feed.items) {
      const id = `${item.stormName}/${item.stormVersion}`;
      const def = definitions.get(id);
      assert.ok(def, `item ${id} is one of the definitions`);
      seen.add(id);
      assert.equal(item.title, `${def.label} ${def.version}`);
      assert.equal(item.link, new URL(`appliances/${def.name}/#v${def.version}`, channelUrl).href);
      assert.ok(item.guid, 'guid');
      assert.ok(item.pubDate && !Number.isNaN(Date.parse(item.pubDate)), 'pubDate');
      assert.ok(item.contentSnippet?.includes(def.description), `description carries the definition’s description: ${item.contentSnippet}`);
      assert.equal(item.stormSha256, def.image.sha256);
      assert.equal(item.stormSignature ?? null, def.image.sig);
      // The fixtures' images live on another server: the build never saw them, so RSS's "length
      // unknown", and the type their names say (webserv's is the paper's .tgz).
      assert.deepEqual({ ...item.enclosure }, { url: def.image.url, length: '0', type: IMAGE_MEDIA_TYPES[formatFromName(imageFileName(def.image.url) ?? '')] });
      assert.ok(def.base, `${id} has a base`);
      assert.deepEqual({ ...item.stormBase?.$ }, {
        name: def.base.name,
        url: def.base.url,
        sha256: def.base.sha256,
        ...(def.base.sig ? { sig: def.base.sig } : {}),
      });
      assert.deepEqual(item.stormProvides ?? [], def.provides);
      assert.deepEqual(
        (item.stormDependencies ?? []).map((d) => {
          const [name, version] = d.split(':');
          return { name, version: version ?? null };
        }),
        def.dependencies,
      );

      // The definition URL serves the definition itself, which parses to the same data.
      assert.equal(item.stormDefinition, new URL(`appliances/${def.name}/${def.version}/appliance.xml`, channelUrl).href);
      const published = await fetch(item.stormDefinition!);
      assert.equal(published.status, 200);
      const bytes = Buffer.from(await published.arrayBuffer());
      assert.equal(item.stormDefinitionSha256, createHash('sha256').update(bytes).digest('hex'), 'storm:definition-sha256 covers the served definition');
      assert.ok(bytes.equals(await readFile(path.join(work, 'valid', def.name, def.version, 'appliance.xml'))), `${id} is published byte for byte`);
      const reparsed = parseApplianceDefinition(bytes.toString('utf8'), item.stormDefinition);
      assert.ok(reparsed.ok);
      assert.deepEqual(reparsed.definition, def);
    }
    assert.equal(seen.size, definitions.size, 'every version is in the feed once');

    // And the provider's own feed reader (what data.storm_appliance uses) accepts it.
    const channel = await parseFeed(xml);
    assert.deepEqual(channel.items.map((i) => `${i.name}/${i.version}`).sort(), [...definitions.keys()].sort());
    for (const i of channel.items) {
      const def = definitions.get(`${i.name}/${i.version}`)!;
      assert.deepEqual(i.image, { url: def.image.url, sha256: def.image.sha256, sig: def.image.sig, sizeBytes: null });
      assert.deepEqual(i.base, def.base);
      assert.ok(i.definitionSha256, 'definition-sha256');
    }
  });

  test('the publisher key is published, and a feed signed after the build verifies', async () => {
    const pub = await fetch(new URL('publisher.pub', channelUrl));
    assert.equal(pub.status, 200);
    assert.equal((await pub.text()).trim(), publicKeyLine);
    const index = await readFile(path.join(out, 'index.html'), 'utf8');
    assert.ok(index.includes(publicKeyLine), 'the key is shown on the site');
    assert.ok(index.includes(`href="${BASE_PATH}rss.xml.sig"`), 'with a key, the site links the feed signature the publisher will make');

    // `storm sign --purpose feed` next to the built rss.xml, as the README tells publishers: the
    // channel comes from the feed's own <atom:link rel="self">, which the build wrote from
    // STORM_CHANNEL_URL, so the signature names the URL users read the feed at.
    const rss = path.join(out, 'rss.xml');
    const feedUrl = new URL('rss.xml', channelUrl).href;
    const signed = Date.now();
    const first = captured();
    assert.equal(await signCommand(['--key', secretKeyFile, '--purpose', 'feed', rss], first), 0, first.err());
    const sig = await fetch(feedUrl + '.sig');
    assert.equal(sig.status, 200);
    const sigText = await sig.text();
    assert.match(sigText, /^storm-signature-v2\n/);
    const feed = Buffer.from(await (await fetch(feedUrl)).arrayBuffer());
    const { sha256, size } = await hashFile(rss);
    assert.equal(size, feed.length);
    const verified = verifyFeedSignature(sigText, [parsePublicKey(publicKeyLine)], { sha256, size, channel: feedUrl });
    assert.equal(verified.statement.channel, feedUrl);
    assert.ok(verified.statement.version >= signed && verified.statement.version <= Date.now(), 'the version is the signing time');
    const week = verified.statement.expires - verified.statement.version;
    assert.ok(week > 7 * 86_400_000 - 1000 && week <= 7 * 86_400_000, `expires in 7 days by default (${week} ms)`);

    // Signed again with nothing changed: a newer version and a later expiry, as a publisher's
    // weekly re-sign needs; --expires-in sets how long.
    const second = captured();
    assert.equal(await signCommand(['--key', secretKeyFile, '--purpose', 'feed', '--expires-in', '14d', rss], second), 0, second.err());
    const again = verifyFeedSignature(await readFile(`${rss}.sig`, 'utf8'), [parsePublicKey(publicKeyLine)], { sha256, size, channel: feedUrl }).statement;
    assert.ok(again.version > verified.statement.version);
    assert.ok(again.expires - again.version > 13 * 86_400_000);
    // A channel URL other than the one the feed was built for is refused at signing time.
    const io = captured();
    assert.equal(await signCommand(['--key', secretKeyFile, '--purpose', 'feed', '--channel', 'https://elsewhere.example/rss.xml', rss], io), 1);
    assert.match(io.err(), /the feed says it lives at .*rss\.xml .*--channel says https:\/\/elsewhere\.example\/rss\.xml/);
  });

  test('the HCL snippets are what terraform fmt would write', async (t) => {
    const terraform = ['/usr/local/bin/terraform', '/usr/bin/terraform'].find((f) => existsSync(f));
    if (!terraform) {
      t.skip('terraform is not installed');
      return;
    }
    for (const name of new Set([...definitions.values()].map((d) => d.name))) {
      const page = await readFile(path.join(out, 'appliances', name, 'index.html'), 'utf8');
      const pre = /<pre data-language="hcl"[^>]*>([\s\S]*?)<\/pre>/.exec(page)?.[1];
      assert.ok(pre, `${name}'s page has an HCL snippet`);
      const hcl = pre
        .replace(/<[^>]+>/g, '')
        .replace(/&quot;/g, '"')
        .replace(/&#39;/g, "'")
        .replace(/&lt;/g, '<')
        .replace(/&gt;/g, '>')
        .replace(/&amp;/g, '&');
      assert.match(hcl, new RegExp(`data "storm_appliance" "${name}"[\\s\\S]*resource "storm_appliance" "${name}"`));
      const formatted: string = execFileSync(terraform, ['fmt', '-no-color', '-'], { input: hcl, encoding: 'utf8', env: { ...process.env, TF_CLI_CONFIG_FILE: '/dev/null' } });
      assert.equal(formatted, hcl, `${name}: the snippet is formatted`);
    }
  });

  test('the schemas are published next to the feed', async () => {
    const xsd = await fetch(new URL('schema/appliance-definition.xsd', channelUrl));
    assert.equal(xsd.status, 200);
    assert.match(await xsd.text(), /<xs:schema/);
    const json = await fetch(new URL('schema/appliance-definition.schema.json', channelUrl));
    assert.equal(json.status, 200);
    const schema = (await json.json()) as Record<string, unknown>;
    assert.equal(typeof schema, 'object');
    assert.ok('$schema' in schema || 'type' in schema, 'a JSON Schema document');
  });

  test('in a browser: search, filter by provides, open an appliance, dependencies are links', async (t) => {
    const browser = await launchChromium(t);
    if (!browser) return;
    const page = await browser.newPage({ viewport: { width: 1200, height: 860 } });
    const errors: string[] = [];
    page.on('pageerror', (e) => errors.push(String(e)));
    page.on('response', (r) => r.status() >= 400 && errors.push(`${r.status()} ${r.url()}`));

    await page.goto(channelUrl);
    const visibleCards = () => page.locator('[data-appliance]:visible').evaluateAll((els) => els.map((e) => e.getAttribute('data-appliance')));
    const names = [...new Set([...definitions.values()].map((d) => d.name))].sort();
    assert.deepEqual(await visibleCards(), names, 'every appliance is listed');

    // Text search narrows the list; the count follows.
    await page.getByRole('searchbox').fill('nftables');
    assert.deepEqual(await visibleCards(), ['firewall']);
    assert.match((await page.locator('#catalog-count').textContent()) ?? '', /^1 of 3 /);
    await page.getByRole('searchbox').fill('');
    assert.deepEqual(await visibleCards(), names);

    // Filter by a service an appliance provides, then by hardware.
    await page.getByRole('combobox', { name: 'Provides' }).selectOption('smtp');
    assert.deepEqual(await visibleCards(), ['emailserv']);
    assert.match(page.url(), /provides=smtp/, 'the filter is kept in the URL');
    await page.getByRole('combobox', { name: 'Provides' }).selectOption('');
    await page.getByRole('combobox', { name: 'Memory' }).selectOption({ label: '≤ 512 MiB' });
    assert.deepEqual(await visibleCards(), ['firewall', 'webserv']);
    await page.getByRole('combobox', { name: 'Memory' }).selectOption('');

    // Through to an appliance page: its dependencies are links to their pages.
    await page.getByRole('link', { name: 'Simple Web Server' }).click();
    await page.waitForURL(/appliances\/webserv\/$/);
    assert.equal(await page.locator('h1').textContent(), 'Simple Web Server');
    const deps = page.locator('a.dependency');
    assert.deepEqual(await deps.allTextContents(), ['emailserv', 'firewall']);
    assert.deepEqual(await deps.evaluateAll((as) => as.map((a) => (a as unknown as { href: string }).href)), [
      new URL('appliances/emailserv/#v1.0.0-0', channelUrl).href,
      new URL('appliances/firewall/', channelUrl).href,
    ]);
    assert.match((await page.locator('pre[data-language="hcl"]').textContent()) ?? '', /data "storm_appliance" "webserv"[\s\S]*resource "storm_appliance" "webserv"/);

    await deps.first().click();
    await page.waitForURL(/appliances\/emailserv\/#v1\.0\.0-0$/);
    assert.equal(await page.locator('h1').textContent(), 'Mail Server');
    const versions = await page.locator('section.version').evaluateAll((ss) => ss.map((s) => s.id));
    assert.deepEqual(versions, ['v1.10.0-0', 'v1.9.0-0', 'v1.0.0-0'], 'all versions, newest first');
    assert.deepEqual(errors, [], 'no errors in the page');
  });
});
