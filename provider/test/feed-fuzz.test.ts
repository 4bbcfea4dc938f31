// The channel feed reader under fast-check: the feed the catalog site builds (fixtures/feeds/
// catalog.xml, made by `astro build` of the shipped example appliances plus a single-layer one),
// mutated as text and as bytes, token soup, and feeds generated item by item with any text and
// any names, fed to parseFeed, which the data sources call on whatever a channel URL serves.
// Whatever comes in: a listing that keeps storm's rules, or a FeedError in a publisher's words
// (lib/feed-verdict.ts has the bar); never another exception, never a call past two seconds.
// A failure prints fast-check's seed and the shrunk input; reproduce with FC_SEED=<seed>, then
// keep the input in fixtures/feeds/ with its entry in expected.json.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { applyByteEdits, applyEdits, byteEdit, textEdit, tokenOf } from './lib/mutations.ts';
import { refusedCharacter } from '../src/channel/definition/xml-reader.ts';
import { feedCharacterProblem } from '../src/channel/feed.ts';
import { NAME_PATTERN, SHA256_PATTERN, VERSION_PATTERN } from '../src/rules.ts';
import { judged, unshowable } from './lib/feed-verdict.ts';

const here = dirname(fileURLToPath(import.meta.url));
const feeds = join(here, 'fixtures', 'feeds');
const catalog = readFileSync(join(feeds, 'catalog.xml'));
const seeds = readdirSync(feeds)
  .filter((f) => f.endsWith('.xml'))
  .map((f) => readFileSync(join(feeds, f)))
  .filter((b) => b.length <= 64 * 1024);

// Bounded so the whole file takes a few seconds; FC_RUNS raises it for a long hunt.
const RUNS = Number(process.env['FC_RUNS'] ?? 150);
const SEED = process.env['FC_SEED'] === undefined ? undefined : Number(process.env['FC_SEED']);
const params = { numRuns: RUNS, includeErrorInReport: true, ...(SEED === undefined ? {} : { seed: SEED }) };

const NS = 'https://storm.invalid/xmlns/channel/1';
const SHA = 'dbfb6d13006ba94d6182e98c1b805aa199d548f7acdac50f5a9fac2147181002';

// Strings that matter to an XML reader, to RSS and to what storm does with the values.
const TOKENS = [
  '<', '>', '&', ';', '"', "'", '=', '/', '?', '!', '[', ']', '-', ':', ' ', '\n', '\r', '\t', '\r\n',
  '<item>', '</item>', '<item/>', '<channel>', '</channel>', '</rss>', '<rss version="2.0">', '<rss version="0.91">', '<feed>',
  '<title>', '</title>', '<title><b>x</b></title>', '<description>', '</description>', '&lt;p', '&lt;p&gt;', '&lt;/p&gt;', 'a&lt;p',
  '<storm:name>', '</storm:name>', '<storm:name>../../etc</storm:name>', '<storm:version>1.0/../x</storm:version>', '<storm:version>1.0</storm:version>',
  `<storm:sha256>${SHA}</storm:sha256>`, '<storm:sha256>', `<storm:base name="b" sha256="${SHA}"/>`, '<storm:base/>', `<storm:base name="../b" url="https://i/b" sha256="${SHA}"/>`,
  '<storm:provides>x</storm:provides>', '<storm:dependency>../x:1</storm:dependency>', '<storm:dependency>a:1.0</storm:dependency>',
  '<enclosure url="images/x.qcow2" length="-1"/>', '<enclosure url="https://i/x.qcow2" length="NaN"/>', 'length="1e400"', 'length="99999999999999999999"',
  'url="file:///etc/passwd"', 'url="/etc/passwd"', 'url="javascript:alert(1)"', 'https://i/x', 'sha256="', 'name="',
  '<![CDATA[', ']]>', '<![CDATA[<storm:name>x</storm:name>]]>', '<!--', '-->', '<?xml version="1.0"?>', "<?xml version='1.1'?>", '<?xml-stylesheet href="x"?>', '<?', '?>',
  '<!DOCTYPE rss [<!ENTITY a "aaaaaaaa">]>', '<!DOCTYPE html>', '<!ENTITY', '&a;', '&amp;', '&lt;', '&quot;', '&#', '&#x', '&#xE000;', '&#0;', '&#x10FFFF;', '&nbsp;', '&#160;',
  `xmlns:storm="${NS}"`, 'xmlns:storm="urn:other"', `xmlns:s="${NS}"`, '<s:name>x</s:name>', 'xmlns:', 'a="1" a="2"',
  '<a>', '</a>', '<a><a><a><a><a><a><a><a>', '</a></a></a></a>',
  '\u0000', '\u0007', '\u0085', '\u00e9', '\uE000', '\uE0000\uE001', '\uFFFE', '\uFEFF', '\uD800', '\uDC00', '\u2028', '\u00A0', '☃', '𝄞',
];

const token = tokenOf(TOKENS);
const edit = textEdit(TOKENS, 60);

const seed = fc.constantFrom(...seeds);

// ---------------------------------------------------------------------------------------------
// Feeds written item by item, escaped the way the catalog site escapes (catalog-site/src/lib/feed.ts).

const escapeXml = (s: string) => s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' })[c]!);

interface GeneratedItem {
  name: string;
  version: string;
  label: string;
  description: string;
  image: string;
  length: string;
  base: { name: string; url: string; sha256: string } | null;
  provides: string[];
  dependencies: string[];
}

function writeFeed(title: string, items: readonly GeneratedItem[]): string {
  const body = items
    .map((i) => {
      const site = 'https://appliances.example.org/appliances';
      const definition = `${site}/${encodeURIComponent(i.name)}/${encodeURIComponent(i.version)}/appliance.xml`;
      return [
        '<item>',
        `<title>${escapeXml(i.label)}</title>`,
        `<link>${escapeXml(`${site}/${encodeURIComponent(i.name)}/`)}</link>`,
        `<description>${escapeXml(`<p>${escapeXml(i.description)}</p>`)}</description>`,
        `<storm:name>${escapeXml(i.name)}</storm:name>`,
        `<storm:version>${escapeXml(i.version)}</storm:version>`,
        `<storm:definition>${escapeXml(definition)}</storm:definition>`,
        `<storm:definition-sha256>${SHA}</storm:definition-sha256>`,
        `<storm:sha256>${SHA}</storm:sha256>`,
        i.base ? `<storm:base name="${escapeXml(i.base.name)}" url="${escapeXml(i.base.url)}" sha256="${escapeXml(i.base.sha256)}"/>` : '',
        ...i.provides.map((p) => `<storm:provides>${escapeXml(p)}</storm:provides>`),
        ...i.dependencies.map((d) => `<storm:dependency>${escapeXml(d)}</storm:dependency>`),
        `<enclosure url="${escapeXml(i.image)}" length="${escapeXml(i.length)}" type="application/x-qemu-disk"/>`,
        '</item>',
      ].join('');
    })
    .join('');
  return `<?xml version="1.0" encoding="UTF-8"?><rss version="2.0" xmlns:storm="${NS}"><channel><title>${escapeXml(title)}</title>${body}</channel></rss>`;
}

const validItem = (text: fc.Arbitrary<string>): fc.Arbitrary<GeneratedItem> =>
  fc.record({
    name: fc.stringMatching(NAME_PATTERN),
    version: fc.stringMatching(VERSION_PATTERN),
    label: text,
    description: text,
    image: fc.webUrl(),
    length: fc.oneof(fc.constant('0'), fc.nat().map(String)),
    base: fc.option(fc.record({ name: fc.stringMatching(NAME_PATTERN), url: fc.webUrl(), sha256: fc.stringMatching(SHA256_PATTERN) }), { nil: null }),
    provides: fc.array(fc.stringMatching(NAME_PATTERN), { maxLength: 3 }),
    dependencies: fc.array(fc.tuple(fc.stringMatching(NAME_PATTERN), fc.option(fc.stringMatching(VERSION_PATTERN), { nil: null })).map(([n, v]) => (v === null ? n : `${n}:${v}`)), {
      maxLength: 3,
    }),
  });

/** The plain text parseFeed makes of a description written as one <p>: lines trimmed, blank ones dropped, runs of spaces and tabs one space. */
const plain = (text: string) =>
  text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => l.replace(/[ \t]+/g, ' ').trim())
    .filter((l) => l !== '')
    .join('\n');

describe('fuzzing the channel feed reader', () => {
  test('the catalog site\'s feed reads as the listing it was built from', async () => {
    const v = await judged(catalog);
    assert.ok(v.ok);
    assert.deepEqual(
      v.feed.items.map((i) => `${i.name} ${i.version} ${i.base?.name ?? 'single-layer'}`),
      ['router 0.9~rc1 single-layer', 'firewall 2.3.1-1 debian-12', 'webserv 1.0.0-0 debian-12', 'emailserv 1.1.0-0 debian-12', 'emailserv 1.0.0-0 debian-12'],
    );
  });

  test('feeds mutated as text: a listing that keeps the rules, or a FeedError in words, quickly', async () => {
    await fc.assert(
      fc.asyncProperty(seed, fc.array(edit, { minLength: 1, maxLength: 8 }), async (bytes, edits) => {
        const text = applyEdits(bytes.toString('utf8'), edits);
        await judged(text);
        await judged(Buffer.from(text, 'utf8'), { feedUrl: 'https://appliances.example.org/rss.xml' });
      }),
      params,
    );
  });

  test('feeds mutated as bytes (and re-encoded): read as UTF-8 or refused naming the byte', async () => {
    await fc.assert(
      fc.asyncProperty(seed, fc.array(byteEdit, { minLength: 1, maxLength: 6 }), fc.constantFrom('utf8', 'utf16le', 'latin1'), async (bytes, edits, encoding) => {
        const recoded = encoding === 'utf8' ? bytes : Buffer.from(bytes.toString('utf8'), encoding);
        await judged(applyByteEdits(recoded, edits));
      }),
      params,
    );
  });

  test('token soup', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(token, { maxLength: 80 }), async (tokens) => {
        await judged(tokens.join(''));
      }),
      params,
    );
  });

  test('generated feeds of ordinary text read back as written', async () => {
    await fc.assert(
      fc.asyncProperty(fc.string({ maxLength: 20 }), fc.uniqueArray(validItem(fc.string({ unit: 'grapheme', maxLength: 30 })), { maxLength: 6, selector: (i) => `${i.name} ${i.version}` }), async (title, items) => {
        const xml = writeFeed(title, items);
        const v = await judged(xml);
        const refused = unshowable((title + items.map((i) => i.label + i.description).join('')).replace(/[\t\n\r\u2028\u2029]/g, ' '));
        if (refused !== null) return assert.equal(v.ok, false, `${JSON.stringify(refused)} is refused`);
        if (!v.ok) assert.fail(v.message);
        assert.equal(v.feed.title, title.replace(/\r\n?/g, '\n').trim());
        assert.deepEqual(
          v.feed.items.map((i) => ({ ...i })),
          items.map((i) => ({
            name: i.name,
            version: i.version,
            label: i.label.replace(/\r\n?/g, '\n').trim() || i.name,
            description: plain(i.description),
            link: `https://appliances.example.org/appliances/${i.name}/`,
            definitionUrl: `https://appliances.example.org/appliances/${i.name}/${encodeURIComponent(i.version)}/appliance.xml`,
            definitionSha256: SHA,
            image: { url: i.image, sha256: SHA, sig: null, sizeBytes: Number(i.length) > 0 ? Number(i.length) : null },
            base: i.base && { ...i.base, sig: null },
            provides: i.provides,
            dependencies: i.dependencies,
          })),
        );
      }),
      params,
    );
  });

  test('generated feeds with any code points in their text: read, or refused at the character', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(validItem(fc.string({ unit: 'binary', maxLength: 30 })), { maxLength: 4 }), async (items) => {
        await judged(writeFeed('t', items));
      }),
      params,
    );
  });

  test('generated feeds with any names, versions and values: those that break storm\'s rules are refused, the rest read', async () => {
    const anyName = fc.oneof(fc.stringMatching(NAME_PATTERN), fc.constantFrom('../../etc', '..', '.', 'a/b', 'A', '-a', 'a-', 'index.html', ' a', 'a\u0000'), fc.string({ maxLength: 12 }));
    const anyVersion = fc.oneof(fc.stringMatching(VERSION_PATTERN), fc.constantFrom('../1', '1/2', '1@2', '', '~1', '1 0', '1.0\n'), fc.string({ maxLength: 12 }));
    const anyUrl = fc.oneof(fc.webUrl(), fc.constantFrom('images/x.qcow2', '/etc/passwd', '../x', 'file:///etc/passwd', 'ftp://x/y', 'javascript:alert(1)', ''));
    const anySha = fc.oneof(fc.stringMatching(SHA256_PATTERN), fc.constantFrom('', SHA.toUpperCase(), SHA.slice(1), `${SHA} `), fc.string({ maxLength: 10 }));
    const anyLength = fc.oneof(fc.nat().map(String), fc.constantFrom('-1', 'NaN', '1e400', '99999999999999999999', '0x10', ' 12 ', '', '1.5'));
    const item = fc.record({
      name: anyName,
      version: anyVersion,
      label: fc.string({ maxLength: 10 }),
      description: fc.string({ maxLength: 10 }),
      image: anyUrl,
      length: anyLength,
      base: fc.option(fc.record({ name: anyName, url: anyUrl, sha256: anySha }), { nil: null }),
      provides: fc.array(anyName, { maxLength: 2 }),
      dependencies: fc.array(fc.tuple(anyName, fc.option(anyVersion, { nil: null })).map(([n, v]) => (v === null ? n : `${n}:${v}`)), { maxLength: 2 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(item, { maxLength: 4 }), async (items) => {
        const v = await judged(writeFeed('t', items));
        const keeps = (re: RegExp, s: string) => re.test(s.replace(/\r\n?/g, '\n').replace(/^[ \t\n]+|[ \t\n]+$/g, ''));
        const url = (u: string) => /^(https?|file):\/\/./.test(u.trim());
        const ids = items.map((i) => `${i.name.trim()} ${i.version.trim()}`);
        const fine = items.every(
          (i) =>
            keeps(NAME_PATTERN, i.name) &&
            keeps(VERSION_PATTERN, i.version) &&
            url(i.image) &&
            (i.base === null || (keeps(NAME_PATTERN, i.base.name) && url(i.base.url) && keeps(SHA256_PATTERN, i.base.sha256))) &&
            i.provides.every((p) => keeps(NAME_PATTERN, p)) &&
            i.dependencies.every((d) => {
              const [n, ver, ...rest] = d.split(':');
              return keeps(NAME_PATTERN, n!) && (ver === undefined || keeps(VERSION_PATTERN, ver)) && rest.length === 0;
            }) &&
            unshowable((i.label + i.description).replace(/[\t\n\r\u2028\u2029]/g, ' ')) === null,
        ) && new Set(ids).size === ids.length;
        if (!fine) assert.equal(v.ok, false, 'a value that breaks a rule is refused');
      }),
      params,
    );
  });

  test('the feed refuses exactly the characters appliance definitions refuse (what it lists came from them)', () => {
    for (let cp = 0; cp <= 0x110000; cp++) {
      if ((feedCharacterProblem(cp) === null) !== (refusedCharacter(cp) === null)) assert.fail(`U+${cp.toString(16)}: the feed and the definition disagree`);
    }
  });
});
