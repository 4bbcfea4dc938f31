// Feeds that cannot be rolled back, frozen or swapped, through Terraform: a channel built with
// the catalog site and served over HTTP, read by data "storm_channel" and "storm_appliance" in
// one configuration (data sources only: no server, no libvirt). The cache directory persists
// across the runs, as a user's does: it is where storm remembers what it has seen.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { makeRotation } from '../../provider/src/channel/rotation.ts';
import { generateKeyPair, loadSecretKey } from '../../provider/src/channel/signing.ts';
import { publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { makeTestLayers, type TestLayers } from '../lib/images.ts';
import { TerraformDir, type RunResult } from '../lib/terraform.ts';

let layers: TestLayers;
let channel: TestChannel;
const tf = new TerraformDir();
const cache = mkdtempSync(join(tmpdir(), 'storm-cache-'));
const run = (args: string[]) => tf.run(args, { STORM_CACHE_DIR: cache });
const plan = () => run(['plan', '-no-color', '-detailed-exitcode']);
const sigFile = () => join(channel.root, 'rss.xml.sig');

function hcl(): string {
  return `
provider "storm" {
  trusted_keys = ["${channel.publicKeyLine}"]
}

data "storm_channel" "test" {
  url = "${channel.feedUrl}"
}

data "storm_appliance" "mail" {
  channel = "${channel.feedUrl}"
  name    = "mail"
}

output "channel_verified_by" {
  value = data.storm_channel.test.verified_by
}

output "appliance_verified_by" {
  value = data.storm_appliance.mail.verified_by
}

output "version" {
  value = data.storm_appliance.mail.version
}

output "feed_expires" {
  value = data.storm_channel.test.feed_expires
}
`;
}

/** Terraform wraps diagnostics to the width of a terminal; what they say is compared unwrapped. */
const flat = (text: string) => text.replace(/\s+/g, ' ');

/** A plan that read the channel without an error (0: nothing to change, 2: outputs to write). */
function assertPlanned(r: RunResult, why = ''): void {
  assert.ok(r.exitCode === 0 || r.exitCode === 2, `${why}\n${r.output}`);
}

/** Both data sources read the channel; each refusal must name its own attribute. */
function assertRefusedByBoth(r: RunResult, summary: RegExp): void {
  assert.equal(r.exitCode, 1, r.output);
  assert.match(r.stderr, summary);
  assert.ok(flat(r.stderr).includes(`url = "${channel.feedUrl}"`), `storm_channel's diagnostic names url:\n${r.stderr}`);
  assert.ok(flat(r.stderr).includes(`channel = "${channel.feedUrl}"`), `storm_appliance's diagnostic names channel:\n${r.stderr}`);
}

async function outputs(): Promise<Record<string, unknown>> {
  const r = await run(['output', '-json']);
  return Object.fromEntries(Object.entries(JSON.parse(r.stdout) as Record<string, { value: unknown }>).map(([k, v]) => [k, v.value]));
}

before(async () => {
  layers = makeTestLayers();
  const base = { name: 'testos', ...layers.base };
  channel = await publishTestChannel([
    { name: 'mail', version: '1.0', label: 'Mail', base, image: layers.appliance },
    { name: 'mail', version: '1.1', label: 'Mail', base, image: layers.appliance },
  ]);
  tf.write(hcl());
  await tf.init();
});

after(async () => {
  tf.remove();
  await channel?.remove();
  layers?.remove();
  await rm(cache, { recursive: true, force: true });
});

describe('feeds that cannot be rolled back, frozen or swapped', () => {
  test('a signed feed is read, and what was seen is remembered', async () => {
    const r = await run(['apply', '-auto-approve', '-no-color']);
    assert.equal(r.exitCode, 0, r.output);
    const keyId = channel.publicKeyLine.split(' ')[1];
    const expires = /^expires: (.*)$/m.exec(await readFile(sigFile(), 'utf8'))![1];
    assert.deepEqual(await outputs(), { channel_verified_by: keyId, appliance_verified_by: keyId, version: '1.1', feed_expires: expires });
  });

  test('a replayed older feed is refused once a newer one was seen', async () => {
    const older = await readFile(sigFile(), 'utf8');
    await channel.signFeed(); // the publisher's next build: a newer version
    assertPlanned(await plan());
    await writeFile(sigFile(), older); // a mirror or a man in the middle serves the old one
    const r = await plan();
    assertRefusedByBoth(r, /The channel feed is older than one storm has already seen/);
    assert.match(r.stderr, /rollback/);
    await channel.signFeed();
  });

  test('an expired feed is refused', async () => {
    await channel.signFeed({ lifetimeMs: 1000 });
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const r = await plan();
    assertRefusedByBoth(r, /The channel feed has expired/);
    assert.match(flat(r.stderr), /storm sign --purpose feed/);
    await channel.signFeed();
  });

  test('a feed signed for another channel is refused', async () => {
    const other = new URL('testing/rss.xml', channel.feedUrl).href;
    await channel.signFeed({ channel: other });
    const r = await plan();
    assertRefusedByBoth(r, /The channel feed is signed for another channel/);
    assert.ok(flat(r.stderr).includes(`set channel = "${other}"`) && flat(r.stderr).includes(`set url = "${other}"`), r.stderr);
    await channel.signFeed();
  });

  test('an old-format (v1) feed signature is refused with the re-sign advice', async () => {
    const v2 = await readFile(sigFile(), 'utf8');
    const v1 = v2
      .replace('storm-signature-v2', 'storm-signature-v1')
      .split('\n')
      .filter((l) => !/^(channel|version|expires): /.test(l))
      .join('\n');
    await writeFile(sigFile(), v1);
    const r = await plan();
    assertRefusedByBoth(r, /The channel feed's signature is in storm's old format/);
    assert.match(flat(r.stderr), /storm sign --purpose feed/);
    await channel.signFeed();
  });

  test('when the channel is down, the cached copy is used until its expiry, saying until when, then refused', async () => {
    // 40 s: long enough for one online and one offline plan on a loaded machine; the rest is waited out.
    const signed = await channel.signFeed({ lifetimeMs: 40_000 });
    const expires = /^expires: (.*)$/m.exec(signed)![1]!;
    assertPlanned(await plan(), 'read online, so the copy is cached');
    await channel.close();
    try {
      const offline = await plan();
      assertPlanned(offline);
      assert.ok(flat(offline.output).includes(`The channel is unreachable: using its cached copy until ${expires}`), offline.output);
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Date.parse(expires) - Date.now() + 200)));
      const expired = await plan();
      assert.equal(expired.exitCode, 1, expired.output);
      assert.match(expired.stderr, /The channel is unreachable and its cached copy has expired/);
      assert.match(flat(expired.stderr), /storm serves a channel's cached copy only until the expiry its publisher signed/);
    } finally {
      await channel.reopen();
    }
    await channel.signFeed();
    assertPlanned(await plan());
  });

  test('a key rotation published next to the feed is followed; the retired key is refused afterwards', async () => {
    const next = generateKeyPair('test publisher, next key');
    const rotation = makeRotation(channel.publisherKey, next.publicKeyLine, channel.feedUrl, { reason: 'scheduled rotation' });
    await mkdir(join(channel.root, 'keys'), { recursive: true });
    await writeFile(join(channel.root, 'keys', rotation.fileName), rotation.document);
    await writeFile(join(channel.root, 'keys', `${rotation.fileName}.sig`), rotation.signature);
    await channel.signFeed({ key: loadSecretKey(next.secretKeyPem) });

    // trusted_keys still names only the old key.
    const r = await run(['apply', '-auto-approve', '-no-color']);
    assert.equal(r.exitCode, 0, r.output);
    assert.match(flat(r.output), /The channel's publisher key was rotated: storm followed the rotation/);
    assert.ok(flat(r.output).includes(`Replace ${channel.publisherKey.keyId}'s line in trusted_keys`), r.output);
    const o = await outputs();
    assert.equal(o.channel_verified_by, next.keyId);
    assert.equal(o.appliance_verified_by, next.keyId, 'the images, signed by the old key, still verify');

    // The old key signs a newer feed: the channel retired it.
    await channel.signFeed();
    const refused = await plan();
    assertRefusedByBoth(refused, /The channel feed is signed by a retired key/);
  });
});
