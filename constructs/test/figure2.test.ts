// The paper's Figure 2 through the constructs: single-layer appliances (no base), a .tgz image's
// system disk file, swap and user disks, a web panel, instances that keep their user disks.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { TerraformOutput, Testing } from 'cdktf';
import type { Construct } from 'constructs';
import { ApplianceInstance, ApplianceServer, ApplianceSource, Channel, Deployment, LayeredAppliance } from '../src/index.ts';
import { ACME_KEY, SHA } from './apps.ts';
import { ownTmpdir } from './tmpdir.ts';

ownTmpdir();

type Block = Record<string, unknown>;
const blocks = (json: string, type: string): Block[] => Object.values((JSON.parse(json) as { resource?: Record<string, Record<string, Block>> }).resource?.[type] ?? {});
const synthScope = (build: (stack: Construct) => unknown): string => Testing.synthScope((stack) => void build(stack));
const server = (stack: Construct) => new ApplianceServer(stack, 'blade-1', { libvirtUri: 'qemu:///system' });

describe('Figure 2: single-layer appliances, disks, web panel', () => {
  test('from images: no base block, the .tgz\'s file, the disks and the panel reach storm_appliance', () => {
    const json = synthScope((stack) => {
      const webserv = new LayeredAppliance(stack, 'webserv', {
        source: ApplianceSource.fromImages({
          name: 'webserv',
          version: '1.0.0-0',
          image: { url: 'https://images.example.org/webserv.tgz', sha256: SHA.app, file: 'sys.img' },
          disks: [
            { name: 'hda3', type: 'swap', sizeMib: 128 },
            { name: 'hda2', type: 'user', sizeMib: 96 },
          ],
          webpanel: '/upload.php',
        }),
        servers: [server(stack)],
      });
      const site = new Deployment(stack, 'site', { appliance: webserv });
      new ApplianceInstance(stack, 'www1', { deployment: site, keepUserDisks: true });
    });
    const [appliance] = blocks(json, 'storm_appliance');
    assert.ok(appliance);
    assert.equal(appliance.base, undefined, 'a single-layer appliance has no base block');
    assert.deepEqual(appliance.image, { url: 'https://images.example.org/webserv.tgz', sha256: SHA.app, file: 'sys.img' });
    assert.deepEqual(appliance.disks, [
      { name: 'hda3', type: 'swap', size_mib: 128 },
      { name: 'hda2', type: 'user', size_mib: 96 },
    ]);
    assert.equal(appliance.webpanel, '/upload.php');
    assert.ok(Testing.toHaveResourceWithProperties(json, 'storm_instance', { name: 'www1', keep_user_disks: true }), json);
  });

  test('from a channel: disks, panel and system disk file pass through, and the base block only when the definition has one', () => {
    const json = synthScope((stack) => {
      const acme = new Channel(stack, 'acme', { url: 'https://appliances.acme.example/rss.xml', trustedKeys: [ACME_KEY] });
      new LayeredAppliance(stack, 'webserv', { source: acme.appliance('webserv'), servers: [server(stack)] });
    });
    const [appliance] = blocks(json, 'storm_appliance');
    assert.ok(appliance);
    const d = 'data.storm_appliance.acme_webserv_';
    assert.match(String(appliance.disks), new RegExp(`^\\$\\{${d.replaceAll('.', '\\.')}\\w+\\.disks\\}$`));
    assert.match(String(appliance.webpanel), /\.webpanel\}$/);
    assert.match(String((appliance.image as Block).file), /\.system_disk_file\}$/);
    const base = (appliance.dynamic as Record<string, Block>).base!;
    assert.match(String(base.for_each), /^\$\{\(data\.storm_appliance\.acme_webserv_\w+\.base_name == null\) \? \[\] : \[1\]\}$/);
    assert.match(String((base.content as Block).url), /\.base_url\}$/);
    assert.equal(appliance.base, undefined);
  });

  test('an instance exposes its web panel URL', () => {
    const json = synthScope((stack) => {
      const webserv = new LayeredAppliance(stack, 'webserv', {
        source: ApplianceSource.fromImages({ name: 'webserv', version: '1.0', image: { url: '/srv/webserv.qcow2', sha256: SHA.app }, webpanel: '/upload.php' }),
        servers: [server(stack)],
      });
      const www = new ApplianceInstance(stack, 'www1', { deployment: new Deployment(stack, 'site', { appliance: webserv }) });
      new TerraformOutput(stack, 'panel', { value: www.webpanelUrl });
    });
    const outputs = (JSON.parse(json) as { output: Record<string, { value: string }> }).output;
    assert.match(outputs.panel!.value, /^\$\{storm_instance\.www1_instance_\w+\.webpanel_url\}$/);
  });
});
