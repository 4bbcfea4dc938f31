// Appliances from a signed channel: publish one with the catalog site (signed images and
// feed, served on loopback), then install from it with terraform through data sources. A
// tampered image, a tampered feed, a wrong key and an unsigned feed are refused with clear
// errors and leave nothing behind; a channel that is down is served from the cache.
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { appendFile, copyFile, rename } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { applianceFromChannelHcl, publishTestChannel, type TestChannel } from '../lib/channel.ts';
import { makeTestLayers, type TestLayers } from '../lib/images.ts';
import { TerraformDir, resources, virsh } from '../lib/terraform.ts';

const URI = 'qemu:///system';
let layers: TestLayers;
let channel: TestChannel;
const tf = new TerraformDir();
let cache = mkdtempSync(join(tmpdir(), 'storm-cache-'));
const run = (args: string[]) => tf.run(args, { STORM_CACHE_DIR: cache });

function hcl(trustedKey: string): string {
  return `
provider "storm" {
  trusted_keys = ["${trustedKey}"]
}

resource "storm_appliance_server" "local" {
  name        = "local"
  libvirt_uri = "${URI}"
  pool_path   = "/var/tmp/storm-channel-pool"
}

data "storm_channel" "test" {
  url = "${channel.feedUrl}"
}

${applianceFromChannelHcl(channel.feedUrl, 'relay', 'storm_appliance_server.local.id')}
output "install_order" {
  value = [for d in data.storm_appliance.relay.dependencies : "\${d.name} \${d.version}"]
}

output "listed" {
  value = [for a in data.storm_channel.test.appliances : "\${a.name} \${a.version}"]
}

output "verified_by" {
  value = data.storm_appliance.relay.verified_by
}
`;
}

async function appVolumes(): Promise<string[]> {
  return (await virsh(URI, 'vol-list', 'storm')).stdout.split('\n').map((l) => l.trim().split(/\s+/)[0] ?? '').filter((v) => v.startsWith('app-'));
}

before(async () => {
  layers = makeTestLayers();
  const base = { name: 'testos', ...layers.base };
  channel = await publishTestChannel([
    { name: 'mail', version: '1.0', label: 'Mail', base, image: layers.appliance },
    { name: 'mail', version: '1.1', label: 'Mail', base, image: layers.appliance },
    { name: 'relay', version: '2.0', label: 'Relay', base, image: layers.deployment, dependencies: ['mail:1.0'] },
  ]);
  tf.write(hcl(channel.publicKeyLine));
  await tf.init();
});

after(async () => {
  await run(['destroy', '-auto-approve', '-no-color']);
  tf.remove();
  await channel.remove();
  layers.remove();
});

describe('appliances from a signed channel', () => {
  test('apply installs an appliance resolved from the channel, dependencies listed in install order', async () => {
    const r = await run(['apply', '-auto-approve', '-no-color']);
    assert.equal(r.exitCode, 0, r.output);
    const out = JSON.parse((await run(['output', '-json'])).stdout) as Record<string, { value: unknown }>;
    assert.deepEqual(out.install_order!.value, ['mail 1.0'], 'relay needs mail 1.0 exactly, not the newer 1.1');
    assert.deepEqual((out.listed!.value as string[]).sort(), ['mail 1.0', 'mail 1.1', 'relay 2.0']);
    assert.equal(out.verified_by!.value, channel.publicKeyLine.split(' ')[1], 'the feed was verified with the trusted key');
    assert.deepEqual(await appVolumes(), ['app-relay-2.0', 'app-relay-2.0.json']);
  });

  test('a tampered image is refused by its checksum and nothing is left behind', async () => {
    const served = channel.servedImage('deployment.qcow2');
    await copyFile(served, `${served}.orig`);
    await appendFile(served, Buffer.from('tampered'));
    cache = mkdtempSync(join(tmpdir(), 'storm-cache-')); // nothing cached: the image is downloaded again
    const r = await run(['apply', '-auto-approve', '-no-color', '-replace=storm_appliance.relay']);
    assert.equal(r.exitCode, 1, r.output);
    assert.match(r.stderr, /The appliance image does not match its sha256/);
    assert.deepEqual(await appVolumes(), [], 'no half-installed layer');
    await rename(`${served}.orig`, served);
    const again = await run(['apply', '-auto-approve', '-no-color']);
    assert.equal(again.exitCode, 0, again.output);
  });

  test('a feed changed after signing is refused', async () => {
    const feed = join(channel.root, 'rss.xml');
    await copyFile(feed, `${feed}.orig`);
    await appendFile(feed, '<!-- an extra line -->\n');
    try {
      const r = await run(['plan', '-no-color']);
      assert.equal(r.exitCode, 1, r.output);
      assert.match(r.stderr, /The channel feed was changed after it was signed/);
    } finally {
      await rename(`${feed}.orig`, feed);
    }
  });

  test('a feed signed by a key the provider does not trust is refused', async () => {
    tf.write(hcl(channel.otherPublicKeyLine));
    try {
      const r = await run(['plan', '-no-color']);
      assert.equal(r.exitCode, 1, r.output);
      assert.match(r.stderr, /signed by a key you do not trust/);
      assert.match(r.stderr, /trusted_keys/);
    } finally {
      tf.write(hcl(channel.publicKeyLine));
    }
  });

  test('an unsigned feed is refused unless the data source opts out', async () => {
    const sig = join(channel.root, 'rss.xml.sig');
    await rename(sig, `${sig}.away`);
    try {
      const r = await run(['plan', '-no-color']);
      assert.equal(r.exitCode, 1, r.output);
      assert.match(r.stderr, /The channel feed is not signed/);
      assert.match(r.stderr, /insecure_skip_verify/);
    } finally {
      await rename(`${sig}.away`, sig);
    }
  });

  test('a channel that is down is served from the cache, with a warning', async () => {
    await channel.close();
    const r = await run(['plan', '-no-color', '-detailed-exitcode']);
    assert.equal(r.exitCode, 0, r.output);
    assert.match(r.output, /The channel is unreachable: using its cached copy until \d{4}-\d\d-\d\dT/);
    assert.equal(resources(await tf.state()).filter((x) => x.address === 'storm_appliance.relay').length, 1, 'the installed appliance is still in state');
  });
});
