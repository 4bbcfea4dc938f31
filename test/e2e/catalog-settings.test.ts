// The catalog site's pure parts, in-process: the channel settings (what a build refuses and what
// it derives), the feed's placeholders, and what cards and pages say about sizes, dates,
// signatures and single-layer appliances. The built site is tested by catalog-site.test.ts and
// catalog-browse.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { getRssString } from '@astrojs/rss';
import { ChannelSettingError, channelConfig, publisherOf } from '../../catalog-site/src/lib/channel-config.ts';
import { downloadSize, families, formatBytes, signatureCue, type CatalogVersion } from '../../catalog-site/src/lib/catalog.ts';
import { feedItems } from '../../catalog-site/src/lib/feed.ts';
import { cdktfSnippet, hclSnippet } from '../../catalog-site/src/lib/snippets.ts';
import type { ApplianceDefinition } from '../../provider/src/channel/types.ts';

const config = (env: Record<string, string>) => channelConfig(env, '/srv', '/srv/appliances');

function definition(name: string, version: string, changes: Partial<ApplianceDefinition> = {}): ApplianceDefinition {
  return {
    formatVersion: '1.0',
    name,
    label: name,
    description: `${name}, for the catalog's tests.`,
    version,
    sizeMib: 1024,
    image: { url: `https://images.example/${name}-${version}.qcow2`, sha256: 'a'.repeat(64), sig: `https://images.example/${name}-${version}.qcow2.sig` },
    base: { name: 'debian-12', url: 'https://images.example/debian-12.qcow2', sha256: 'b'.repeat(64), sig: 'https://images.example/debian-12.qcow2.sig' },
    boot: null,
    provides: [],
    webpanel: null,
    hardware: { cpus: 1, memoryKib: 262144, ostype: 'linux', disks: [] },
    dependencies: [],
    ...changes,
  };
}

function published(def: ApplianceDefinition, day: string, bytes: number | null = null): CatalogVersion {
  return {
    definition: def,
    source: `${def.name}/${def.version}/appliance.xml`,
    definitionSha256: 'c'.repeat(64),
    published: new Date(`${day}T12:00:00Z`),
    download: { sha256: def.image.sha256 ?? 'd'.repeat(64), bytes, path: bytes === null ? null : `/srv/appliances/${def.name}.qcow2`, format: 'qcow2' },
    xml: '<appliance/>',
  };
}

describe('channel settings', () => {
  test('a private-use character in the title, description or publisher is refused, naming the setting', () => {
    for (const setting of ['STORM_CHANNEL_TITLE', 'STORM_CHANNEL_DESCRIPTION', 'STORM_CHANNEL_PUBLISHER']) {
      // What feed.ts's placeholders look like: were it let through, fill() would put a checksum there.
      assert.throws(
        () => config({ [setting]: 'Fire \uE0000\uE001 wall' }),
        (e: unknown) => e instanceof ChannelSettingError && e.message.startsWith(`${setting}: character 6 `) && /private-use character U\+E000/.test(e.message) && e.message.includes(`set ${setting} without it`),
        setting,
      );
    }
    assert.throws(() => config({ STORM_CHANNEL_TITLE: 'bell \u0007' }), /^ChannelSettingError: STORM_CHANNEL_TITLE: character 6 .*control character U\+0007/);
    assert.throws(() => config({ STORM_CHANNEL_PUBLISHER: 'plane 16 \u{10FFFD}' }), /STORM_CHANNEL_PUBLISHER: character 10 .*private-use character U\+10FFFD/);
    assert.equal(config({ STORM_CHANNEL_TITLE: '  Ünïcode appliances, 日本 ✓  ' }).title, 'Ünïcode appliances, 日本 ✓');
  });

  test('the publisher: the setting, else the key comment, else the channel host', () => {
    const url = 'https://channel.example.org/storm/';
    const key = { keyId: '0123456789abcdef', comment: 'Example Appliances Ltd' };
    assert.deepEqual(publisherOf(config({ STORM_CHANNEL_URL: url, STORM_CHANNEL_PUBLISHER: ' ACME ' }), key), { name: 'ACME', keyId: key.keyId });
    assert.deepEqual(publisherOf(config({ STORM_CHANNEL_URL: url }), key), { name: 'Example Appliances Ltd', keyId: key.keyId });
    assert.deepEqual(publisherOf(config({ STORM_CHANNEL_URL: url }), { ...key, comment: null }), { name: 'channel.example.org', keyId: key.keyId });
    assert.deepEqual(publisherOf(config({ STORM_CHANNEL_URL: url }), null), { name: 'channel.example.org', keyId: null });
    assert.throws(() => publisherOf(config({}), { ...key, comment: 'x\uE001' }), /^ChannelSettingError: STORM_CHANNEL_PUBLIC_KEY \(the key comment\): character 2 /);
  });
});

describe('feed placeholders', () => {
  test('the feed is filled exactly: a placeholder it did not issue fails the build', async () => {
    const { items, fill } = feedItems([published(definition('webserv', '1.0'), '2026-11-01')], new URL('https://channel.example.org/'));
    const xml = await getRssString({ title: 't', description: 'd', site: 'https://channel.example.org/', xmlns: { storm: 'https://storm.invalid/xmlns/channel/1' }, items });
    assert.match(fill(xml), /<storm:version>1\.0<\/storm:version>/, 'a version stays text');
    assert.throws(() => fill(xml.replace('<title>t</title>', '<title>\uE0000\uE001</title>')), /a placeholder it did not issue/);
    assert.throws(() => fill(xml.replace(/\uE0002\uE001/, '')), /lost 1 of its/);
  });
});

describe('what the catalog says', () => {
  test('download sizes in binary units, and never a number for an image the build did not see', () => {
    assert.equal(formatBytes(0), '0 bytes');
    assert.equal(formatBytes(1023), '1023 bytes');
    assert.equal(formatBytes(1024), '1 KiB');
    assert.equal(formatBytes(1572864), '1.5 MiB');
    assert.equal(formatBytes(100 * 1024 * 1024), '100 MiB');
    assert.equal(formatBytes(12.25 * 1024 ** 3), '12.3 GiB');
    assert.equal(formatBytes(1.234 * 1024 ** 4), '1.23 TiB');
    assert.equal(downloadSize(published(definition('a', '1'), '2026-01-01').download), 'size unknown');
    assert.equal(downloadSize(published(definition('a', '1'), '2026-01-01', 2048).download), '2 KiB');
  });

  test('an appliance is updated when any of its versions was last published', () => {
    const [family] = families([published(definition('a', '2.0'), '2026-03-01'), published(definition('a', '1.1'), '2026-05-01'), published(definition('a', '1.0'), '2026-01-01')]);
    assert.equal(family!.latest.definition.version, '2.0');
    assert.equal(family!.updated.toISOString(), '2026-05-01T12:00:00.000Z', 'a fix to 1.x after 2.0 updates the appliance');
  });

  test('signed by the key when every image storm verifies has a signature; unsigned without a key', () => {
    const key = '0123456789abcdef';
    const def = definition('a', '1');
    assert.deepEqual(signatureCue(def, key), { state: 'signed', keyId: key });
    assert.deepEqual(signatureCue(def, null), { state: 'unsigned' });
    assert.deepEqual(signatureCue({ ...def, image: { ...def.image, sig: null } }, key), { state: 'partly', keyId: key, unsigned: ['appliance layer'] });
    assert.deepEqual(signatureCue({ ...def, base: { ...def.base!, sig: null } }, key), { state: 'partly', keyId: key, unsigned: ['base debian-12'] });
    assert.deepEqual(signatureCue({ ...def, base: null, image: { ...def.image, sig: null } }, key), { state: 'partly', keyId: key, unsigned: ['image'] });
    assert.deepEqual(signatureCue({ ...def, base: null }, key), { state: 'signed', keyId: key }, 'a single layer has one image to sign');
  });

  test('a single-layer appliance’s snippets have no base', () => {
    const solo = definition('solo', '1.0', { base: null, image: { url: 'https://images.example/solo.tgz', sha256: null, sig: null } });
    const hcl = hclSnippet(solo, 'https://channel.example.org/rss.xml');
    assert.doesNotMatch(hcl, /base/);
    assert.match(hcl, /memory_mib = data\.storm_appliance\.solo\.memory_mib\n\n  image \{/);
    assert.doesNotMatch(cdktfSnippet(solo, 'https://channel.example.org/rss.xml'), /base/);
    assert.match(hclSnippet(definition('layered', '1.0'), 'https://channel.example.org/rss.xml'), /\n\n  base \{\n    name   = data\.storm_appliance\.layered\.base_name\n[\s\S]*\n  \}\n\n  image \{/);
  });
});
