// What the L2 constructs synthesize, read like a user's stack: build, synthesize, look at the
// resources storm will be asked for.
import assert from 'node:assert/strict';
import { existsSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { TerraformOutput, TerraformStack, Testing } from 'cdktf';
import type { Construct } from 'constructs';
import { toBeValidTerraform } from 'cdktf/lib/testing/matchers.js';
import { ApplianceInstance, ApplianceServer, Deployment, LayeredAppliance, Network, ScalingGroup, Storm } from '../src/index.ts';
import { ACME_KEY, APPS, mailCluster, rack, SHA, webServer, webservImages } from './apps.ts';
import { ownTmpdir } from './tmpdir.ts';

ownTmpdir();

type Block = Record<string, unknown>;
interface Synthesized {
  resource?: Record<string, Record<string, Block>>;
  data?: Record<string, Record<string, Block>>;
  provider?: Record<string, Block[]>;
}

const resources = (json: string, type: string): Block[] => Object.values((JSON.parse(json) as Synthesized).resource?.[type] ?? {});
const synthScope = (build: (stack: Construct) => unknown): string => Testing.synthScope((stack) => void build(stack));

describe('ApplianceServer', () => {
  test('its libvirt URI, BMC and power go to storm_appliance_server, named by the construct id', () => {
    const json = synthScope((stack) => new ApplianceServer(stack, 'blade-1', { libvirtUri: 'qemu+ssh://root@blade1/system', bmc: { address: '10.0.0.11', username: 'admin', password: 'secret' }, power: 'off', reservedMemoryMib: 256 }));
    assert.ok(
      Testing.toHaveResourceWithProperties(json, 'storm_appliance_server', {
        name: 'blade-1',
        libvirt_uri: 'qemu+ssh://root@blade1/system',
        ipmi: { address: '10.0.0.11', username: 'admin', password: 'secret' },
        power: 'off',
        reserved_memory_mib: 256,
      }),
      json,
    );
  });

  test('a stack with no Storm gets the provider block with defaults; Storm.of finds it', () => {
    const json = synthScope((stack) => {
      const server = new ApplianceServer(stack, 'blade-1', { libvirtUri: 'qemu:///system' });
      assert.equal(Storm.of(server).node.path, 'stack/storm');
    });
    assert.ok(Testing.toHaveProvider(json, 'storm'), json);
    assert.deepEqual((JSON.parse(json) as Synthesized).provider?.storm, [{}]);
  });
});

describe('Channel and LayeredAppliance', () => {
  test('the channel key becomes the provider trusted key, and the controller its controller block', () => {
    const json = synthScope(mailCluster);
    assert.ok(Testing.toHaveProviderWithProperties(json, 'storm', { trusted_keys: [ACME_KEY], controller: { url: 'https://127.0.0.1:8443', token: 'test-token' } }), json);
  });

  test('one data storm_appliance feeds one storm_appliance per server', () => {
    const json = synthScope(mailCluster);
    const data = Object.entries((JSON.parse(json) as Synthesized).data?.storm_appliance ?? {});
    assert.equal(data.length, 1);
    const [key, read] = data[0]!;
    assert.deepEqual(read, { channel: 'https://appliances.acme.example/rss.xml', name: 'mail', version_constraint: '~> 1.0' });
    const installs = resources(json, 'storm_appliance');
    assert.deepEqual(installs.map((a) => a.server), ['${storm_appliance_server.blade-1_server_E2FF14CC.id}', '${storm_appliance_server.blade-2_server_DC29A10F.id}']);
    for (const a of installs) {
      assert.equal(a.version, `\${data.storm_appliance.${key}.version}`);
      // The base layer only when the definition has one (a single-layer appliance has none).
      assert.deepEqual((a.dynamic as Block).base, {
        for_each: `\${(data.storm_appliance.${key}.base_name == null) ? [] : [1]}`,
        content: { name: `\${data.storm_appliance.${key}.base_name}`, url: `\${data.storm_appliance.${key}.base_url}`, sha256: `\${data.storm_appliance.${key}.base_sha256}` },
      });
      assert.equal(a.memory_mib, `\${data.storm_appliance.${key}.memory_mib}`);
      // Direct kernel boot only when the definition has it: a dynamic block over boot[*].
      assert.deepEqual((a.dynamic as Block).boot, {
        for_each: `\${data.storm_appliance.${key}.boot[*]}`,
        content: { kernel_url: '${boot.value.kernel_url}', kernel_sha256: '${boot.value.kernel_sha256}', initrd_url: '${boot.value.initrd_url}', initrd_sha256: '${boot.value.initrd_sha256}', cmdline: '${boot.value.cmdline}' },
      });
    }
  });

  test('channel.appliance asked twice for the same release reads the channel once', () => {
    const json = synthScope((stack) => {
      const { acme, blade1 } = mailCluster(stack);
      new LayeredAppliance(stack, 'mail-again', { source: acme.appliance('mail', { versionConstraint: '~> 1.0' }), servers: [blade1] });
      new LayeredAppliance(stack, 'mail-newest', { source: acme.appliance('mail'), servers: [blade1] });
    });
    assert.equal(Object.keys((JSON.parse(json) as Synthesized).data?.storm_appliance ?? {}).length, 2);
  });

  test('channel.feed reads the feed itself, once', () => {
    const json = synthScope((stack) => {
      const { acme } = mailCluster(stack);
      assert.equal(acme.feed, acme.feed);
      new TerraformOutput(stack, 'appliances', { value: acme.feed.appliances });
    });
    assert.ok(Testing.toHaveDataSourceWithProperties(json, 'storm_channel', { url: 'https://appliances.acme.example/rss.xml' }), json);
  });

  test('an appliance from images carries its layers, boot and hardware as given', () => {
    const json = synthScope(webServer);
    assert.ok(
      Testing.toHaveResourceWithProperties(json, 'storm_appliance', {
        name: 'webserv',
        version: '1.0.0-0',
        memory_mib: 128,
        base: { name: 'debian-12', sha256: SHA.base },
        image: { sha256: SHA.app },
        boot: { kernel_url: '/var/lib/storm/vmlinuz', initrd_sha256: SHA.initrd },
      }),
      json,
    );
    assert.equal(resources(json, 'storm_appliance').length, 2);
  });

  test('onServers after deployments and instances: they follow the appliance onto the new servers', () => {
    const json = synthScope((stack) => {
      const [blade1, blade2] = rack(stack) as [ApplianceServer, ApplianceServer];
      const blade3 = new ApplianceServer(stack, 'blade-3', { libvirtUri: 'qemu+tls://blade3/system' });
      const web = new LayeredAppliance(stack, 'web', { source: webservImages(), servers: [blade1] });
      const site = new Deployment(stack, 'site', { appliance: web });
      new ApplianceInstance(stack, 'www', { deployment: site });
      web.onServers([blade2, blade3, blade2]);
      assert.deepEqual(site.servers.map((s) => s.name), ['blade-1', 'blade-2', 'blade-3']);
      assert.equal(web.installationOn(blade3)?.node.path, 'stack/web/blade-3');
    });
    assert.equal(resources(json, 'storm_appliance').length, 3);
    const deployments = resources(json, 'storm_deployment');
    assert.deepEqual(deployments.map((d) => d.appliance), ['${storm_appliance.web_blade-1_DB2266D3.id}', '${storm_appliance.web_blade-2_4FF69410.id}', '${storm_appliance.web_blade-3_3CE2743C.id}']);
    assert.equal((resources(json, 'storm_instance')[0]!.deployments as string[]).length, 3);
  });
});

describe('Deployment and ApplianceInstance', () => {
  test('file templates and variables reach storm as written: Terraform is told to leave ${name} alone', () => {
    const json = synthScope(mailCluster);
    assert.ok(
      Testing.toHaveResourceWithProperties(json, 'storm_deployment', {
        name: 'corp-mail',
        variables: { relay: 'smtp.example.org' },
        file: [{ path: '/etc/mail/relay.conf', content: 'relay $${relay} for $${member}\n' }],
      }),
      json,
    );
  });

  test('a reference in a template stays a reference', () => {
    const json = synthScope((stack) => {
      const { site, www1 } = webServer(stack);
      site.addFile({ path: '/etc/peer', content: `peer ${www1.ip} of \${site} at 100%{x}` });
    });
    const [site] = resources(json, 'storm_deployment');
    assert.deepEqual((site!.file as Block[]).map((f) => f.content), ['<h1>$${site}</h1>\n', 'peer ${storm_instance.www1_instance_E15D331A.ip} of $${site} at 100%%{x}']);
  });

  test('an instance lists the deployment on every server; pinned, it names the server; it waits for its network', () => {
    const json = synthScope(webServer);
    const [www1, www2] = resources(json, 'storm_instance');
    assert.deepEqual(www1!.deployments, ['${storm_deployment.site_blade-1_D34F4438.id}', '${storm_deployment.site_blade-2_5C1F568A.id}']);
    assert.equal(www1!.server, undefined);
    assert.equal(www1!.network, 'lan');
    assert.deepEqual(www1!.depends_on, ['storm_network.lan_blade-1_84E2BF2B', 'storm_network.lan_blade-2_A6D0D434']);
    assert.equal(www2!.server, '${storm_appliance_server.blade-2_server_DC29A10F.id}');
    assert.equal(www2!.state, 'shutoff');
  });

  test('a network is made on each of its servers with its host records', () => {
    const json = synthScope((stack) => webServer(stack).lan.addHost('www', '192.168.151.11'));
    const nets = resources(json, 'storm_network');
    assert.equal(nets.length, 2);
    for (const n of nets) {
      assert.equal(n.name, 'lan');
      assert.equal(n.cidr, '192.168.151.0/24');
      assert.deepEqual(n.host, [{ hostname: 'www', ip: '192.168.151.10' }, { hostname: 'www', ip: '192.168.151.11' }]);
    }
  });

  test('cidrs gives each server its own subnet, in the order of servers (servers sharing a segment)', () => {
    const json = synthScope((stack) => {
      const { blade1, blade2 } = webServer(stack);
      new Network(stack, 'split', { servers: [blade1, blade2], cidrs: ['192.168.160.0/24', '192.168.161.0/24'] });
    });
    const nets = resources(json, 'storm_network').filter((n) => n.name === 'split');
    assert.deepEqual(nets.map((n) => [n.server, n.cidr]), [
      ['${storm_appliance_server.blade-1_server_E2FF14CC.id}', '192.168.160.0/24'],
      ['${storm_appliance_server.blade-2_server_DC29A10F.id}', '192.168.161.0/24'],
    ]);
  });
});

describe('ScalingGroup', () => {
  test('its policy, host power and the services of its channel appliance go to storm_scaling_group', () => {
    const json = synthScope(mailCluster);
    assert.ok(
      Testing.toHaveResourceWithProperties(json, 'storm_scaling_group', {
        name: 'mx',
        min: 1,
        max: 4,
        memory_mib: 512,
        network: 'lan',
        dns_name: 'mail',
        host_power: { empty_hold_seconds: 900 },
        deployments: ['${storm_deployment.corp-mail_blade-1_80F4074F.id}', '${storm_deployment.corp-mail_blade-2_57422B42.id}'],
      }),
      json,
    );
    const [group] = resources(json, 'storm_scaling_group');
    assert.match(String(group!.services), /^\$\{data\.storm_appliance\.[^.]+\.provides\}$/);
  });

  test('group.dnsName and group.fqdn say what the members answer to', () => {
    synthScope((stack) => {
      const { mx } = mailCluster(stack);
      assert.equal(mx.dnsName, 'mail');
      assert.equal(mx.fqdn, 'mail.storm.internal');
    });
  });

  test('scaling on a reported load and consolidating placement', () => {
    const json = synthScope((stack) => {
      const { corp, lan } = mailCluster(stack);
      new ScalingGroup(stack, 'queue', { deployment: corp, network: lan, min: 0, max: 2, scaleOn: { metric: 'queue', high: 100, low: 10 }, placement: 'consolidate', services: ['smtp'] });
    });
    assert.ok(Testing.toHaveResourceWithProperties(json, 'storm_scaling_group', { name: 'queue', scale_on: { metric: 'queue', high: 100, low: 10 }, placement: 'consolidate', services: ['smtp'] }), json);
  });
});

describe('the test apps', () => {
  test('are valid Terraform for the provider in the repo mirror (terraform init + validate)', () => {
    assert.ok(existsSync(CLI_CONFIG), `${CLI_CONFIG} is missing: run npm run build first`);
    // terraform (started by Testing) installs storm from the repo-local mirror, as the e2e suites do.
    process.env.TF_CLI_CONFIG_FILE = CLI_CONFIG;
    process.env.CHECKPOINT_DISABLE = '1';
    for (const [name, app] of Object.entries(APPS)) {
      const stack = new TerraformStack(Testing.app(), name);
      app(stack);
      const dir = Testing.fullSynth(stack);
      try {
        if (!Testing.toBeValidTerraform(dir)) assert.fail(`${name}: ${explainInvalid(dir)}`);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    }
  });
});

const CLI_CONFIG = join(fileURLToPath(new URL('../..', import.meta.url)), 'build', 'terraform.rc');

/** toBeValidTerraform answers yes or no; the matcher behind it says why. */
function explainInvalid(dir: string): string {
  return toBeValidTerraform(dir).message;
}
