// Bad props are refused when the app is synthesized, before terraform runs, with a message
// under the construct's path that names the prop and says what to change.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { App, TerraformStack, TerraformVariable, Testing } from 'cdktf';
import type { Construct } from 'constructs';
import {
  ApplianceInstance,
  ApplianceServer,
  ApplianceSource,
  Channel,
  Deployment,
  LayeredAppliance,
  Network,
  ScalingGroup,
  Storm,
} from '../src/index.ts';
import { ACME_KEY, CONTROLLER, mailCluster, SHA, webServer, webservImages } from './apps.ts';
import { ownTmpdir } from './tmpdir.ts';

ownTmpdir();

/** The error synthesis reports for a stack, or undefined when it synthesizes. */
function synthError(build: (stack: Construct) => unknown): string | undefined {
  const stack = new TerraformStack(Testing.app(), 'stack');
  build(stack);
  try {
    Testing.synth(stack, true);
    return undefined;
  } catch (err) {
    return (err as Error).message;
  }
}

const server = (stack: Construct, id: string, props: Partial<ConstructorParameters<typeof ApplianceServer>[2]> = {}) =>
  new ApplianceServer(stack, id, { libvirtUri: 'qemu:///system', ...props });
const bmc = { address: '127.0.0.1', username: 'admin', password: 'password' };

/** [what is wrong, the stack, what the message must say] */
const CASES: [string, (stack: Construct) => unknown, RegExp][] = [
  ['a server id that is not a storm name', (s) => server(s, 'Blade_1'), /\[stack\/Blade_1\] ApplianceServer "Blade_1": name \(not given, so the construct id\): "Blade_1" is not a valid name: use 1–63 lowercase letters/],
  ['a libvirt URI that is not one', (s) => server(s, 'blade-1', { libvirtUri: 'http://blade1/' }), /ApplianceServer "blade-1": libvirtUri: "http:\/\/blade1\/" is not a libvirt URI for a QEMU host: use `qemu:\/\/\/system`/],
  ['a relative pool path', (s) => server(s, 'blade-1', { poolPath: 'storm' }), /poolPath: "storm" is not an absolute path/],
  ['power off without a BMC', (s) => server(s, 'blade-1', { power: 'off' }), /power = 'off' needs bmc: .*Add bmc: \{ address, username, password \}, or leave power at 'on'/],
  ['power to the controller without a controller', (s) => server(s, 'blade-1', { power: 'controller', bmc }), /power = 'controller' .* the stack's Storm has no controller: pass controller to new Storm/],
  ['two servers with one name', (s) => [server(s, 'a', { name: 'blade' }), server(s, 'b', { name: 'blade' })], /\[stack\/a\] ApplianceServer "blade": name "blade" is also the name of stack\/b: give each server its own name/],
  ['a channel with no key to check it by', (s) => new Channel(s, 'acme', { url: 'https://acme.example/rss.xml' }), /Channel "acme": no trusted keys: .*Pass trustedKeys .*or insecureSkipVerify: true/],
  ['a trusted key that is not a key line', (s) => new Channel(s, 'acme', { url: 'https://acme.example/rss.xml', trustedKeys: [ACME_KEY, 'ssh-ed25519 AAAA'] }), /Channel "acme": trustedKeys\[1\]: .*Use the line `storm keygen` printed/],
  ['a Storm key that is not a key line', (s) => new Storm(s, 'storm', { trustedKeys: ['storm-ed25519 0000000000000000 AAAA'] }), /Storm "stack\/storm": trustedKeys\[0\]: /],
  ['a channel URL that is not one', (s) => new Channel(s, 'acme', { url: 'acme.example', insecureSkipVerify: true }), /Channel "acme": url: "acme.example" is not a channel feed URL/],
  ['an appliance name from a channel that is not a name', (s) => new LayeredAppliance(s, 'mail', { source: new Channel(s, 'acme', { url: 'https://acme.example/rss.xml', trustedKeys: [ACME_KEY] }).appliance('Mail Server'), servers: [server(s, 'blade-1')] }), /Channel "acme": appliance\("Mail Server"\): "Mail Server" is not a valid name/],
  ['an appliance on no server', (s) => new LayeredAppliance(s, 'web', { source: webservImages() }), /LayeredAppliance "web": it is on no server: pass servers, or call web\.onServers\(\[\.\.\.\]\)/],
  ['an appliance on a server that is off', (s) => new LayeredAppliance(s, 'web', { source: webservImages(), servers: [server(s, 'blade-1', { power: 'off', bmc })] }), /LayeredAppliance "web": server "blade-1" has power = 'off', so nothing can be installed on it/],
  [
    'images with a bad checksum and version',
    (s) =>
      new LayeredAppliance(s, 'web', {
        source: ApplianceSource.fromImages({ name: 'web', version: '1.0/beta', base: { name: 'debian', url: '/b.qcow2', sha256: SHA.base }, image: { url: '/a.qcow2', sha256: 'ABC' } }),
        servers: [server(s, 'blade-1')],
      }),
    /source version: "1\.0\/beta" is not a version: .*\n.*source image\.sha256: "ABC" is not a sha256: write the 64 lowercase hex digits/,
  ],
  ['a deployment file with a relative path', (s) => new Deployment(s, 'motd', { appliance: webServer(s).webserv, files: [{ path: 'etc/motd', content: 'hi' }] }), /Deployment "motd": files\[0\]\.path: "etc\/motd" is not an absolute path/],
  ['a file given twice', (s) => webServer(s).site.addFile({ path: '/srv/www/index.html', content: 'again' }), /Deployment "site": files\[1\]\.path: \/srv\/www\/index\.html appears twice; give each file one entry/],
  ['a file mode that is not octal', (s) => new Deployment(s, 'site2', { appliance: webServer(s).webserv, files: [{ path: '/etc/motd', content: 'hi', permissions: 'rw-r--r--' }] }), /files\[0\]\.permissions: "rw-r--r--" is not an octal mode like "0644"/],
  [
    'an instance pinned to a server its deployment is not on',
    (s) => new ApplianceInstance(s, 'www3', { deployment: webServer(s).site, server: server(s, 'blade-3') }),
    /ApplianceInstance "www3": server "blade-3" is not one that deployment "site" is on \(blade-1, blade-2\): pin one of those, or install appliance "webserv" there with onServers/,
  ],
  [
    'an instance on a network that is not on every server it may be placed on',
    (s) => {
      const { blade1, site } = webServer(s);
      new ApplianceInstance(s, 'www3', { deployment: site, network: new Network(s, 'dmz', { servers: [blade1], cidr: '192.168.152.0/24' }) });
    },
    /ApplianceInstance "www3": network "dmz" is not on server "blade-2", where placement may put the instance: add that server to the network's servers/,
  ],
  ['a network on no server', (s) => new Network(s, 'lan', { servers: [], cidr: '192.168.150.0/24' }), /Network "lan": servers is empty/],
  ['a network with neither cidr nor cidrs', (s) => new Network(s, 'lan', { servers: [server(s, 'blade-1')] }), /Network "lan": neither cidr nor cidrs is set: give cidr .* or cidrs/],
  ['a network with both cidr and cidrs', (s) => new Network(s, 'lan', { servers: [server(s, 'blade-1')], cidr: '192.168.150.0/24', cidrs: ['192.168.151.0/24'] }), /Network "lan": both cidr and cidrs are set/],
  ['a network with a cidr short for its servers', (s) => new Network(s, 'lan', { servers: [server(s, 'blade-1'), server(s, 'blade-2')], cidrs: ['192.168.150.0/24'] }), /Network "lan": cidrs has 1 entries for 2 servers: give one \/24 per server/],
  ['a group whose min is above its max', (s) => new ScalingGroup(s, 'mx2', { deployment: mailCluster(s).corp, min: 5, max: 2 }), /ScalingGroup "mx2": min = 5 is above max = 2: .*Lower min or raise max/],
  ['a group whose scale-in target is not below its scale-out target', (s) => new ScalingGroup(s, 'mx3', { deployment: mailCluster(s).corp, min: 1, max: 2, scaleInTarget: 0.8 }), /scaleInTarget = 0\.8 is not below scaleOutTarget = 0\.8: .*or 0 for the low mark alone/],
  ['a group whose low mark is not below its high mark', (s) => new ScalingGroup(s, 'mx2', { deployment: mailCluster(s).corp, min: 1, max: 2, guestCpuHigh: 0.2 }), /guestCpuLow = 0\.3 is not below guestCpuHigh = 0\.2: .*Keep guestCpuLow well below guestCpuHigh/],
  ['a reported load whose low is not below its high', (s) => new ScalingGroup(s, 'mx2', { deployment: mailCluster(s).corp, min: 1, max: 2, scaleOn: { metric: 'queue', high: 5, low: 5 } }), /scaleOn\.low = 5 is not below scaleOn\.high = 5/],
  ['a group id that is not a group name', (s) => new ScalingGroup(s, 'MailGroup', { deployment: mailCluster(s).corp, min: 1, max: 2 }), /ScalingGroup "MailGroup": name \(not given, so the construct id\): "MailGroup" is not a group name/],
  [
    'a group without a controller',
    (s) => new ScalingGroup(s, 'web', { deployment: webServer(s).site, min: 1, max: 2 }),
    /ScalingGroup "web": the storm controller runs scaling groups, and the stack's Storm has no controller: pass controller to new Storm/,
  ],
  [
    'host power with no server handed to the controller',
    (s) => {
      new Storm(s, 'storm', { controller: CONTROLLER });
      new ScalingGroup(s, 'web', { deployment: webServer(s).site, min: 1, max: 2, hostPower: {} });
    },
    /ScalingGroup "web": hostPower has no server to switch: none of deployment "site"'s servers \(blade-1, blade-2\) has power = 'controller'/,
  ],
];

describe('bad construct props give synth-time errors naming the prop', () => {
  for (const [what, build, expected] of CASES) {
    test(what, () => {
      const message = synthError(build);
      assert.ok(message !== undefined, 'synthesized without an error');
      assert.match(message, expected);
    });
  }
});

describe('validation', () => {
  test('the test stacks have no problems to report', () => {
    for (const build of [mailCluster, webServer]) assert.equal(synthError(build), undefined);
  });

  test('every problem of a stack is reported at once, each under its construct', () => {
    const message = synthError((s) => {
      server(s, 'Blade_1');
      new Network(s, 'lan', { servers: [], cidr: '192.168.150.0/24' });
    });
    assert.match(message ?? '', /\[stack\/Blade_1\] .*\n\s*\[stack\/lan\] /);
  });

  test('values Terraform decides later are left to the provider', () => {
    assert.equal(
      synthError((s) => {
        const max = new TerraformVariable(s, 'max', { type: 'number' });
        const { corp } = mailCluster(s);
        new ScalingGroup(s, 'mx2', { deployment: corp, min: 5, max: max.numberValue });
        new ApplianceServer(s, 'blade-3', { libvirtUri: new TerraformVariable(s, 'uri', { type: 'string' }).stringValue });
      }),
      undefined,
    );
  });

  test('app.synth() refuses the stack too, before writing it', () => {
    const outdir = mkdtempSync(join(tmpdir(), 'storm-synth-'));
    try {
      const app = new App({ outdir });
      server(new TerraformStack(app, 'rack'), 'blade-1', { power: 'off' });
      assert.throws(() => app.synth(), /\[rack\/blade-1\] ApplianceServer "blade-1": power = 'off' needs bmc/);
    } finally {
      rmSync(outdir, { recursive: true, force: true });
    }
  });

  test('a Storm made after storm constructs made a default one is refused at once, saying the order', () => {
    const stack = new TerraformStack(Testing.app(), 'stack');
    server(stack, 'blade-1');
    for (const id of ['storm', 'config']) {
      assert.throws(() => new Storm(stack, id, { controller: CONTROLLER }), /this stack already has a Storm at stack\/storm .*Create new Storm\(stack, \.\.\.\) before any other storm construct/);
    }
  });
});
