// The construct test apps: small stacks a user would write. The construct tests assert on
// what they synthesize; the cdktn test synthesizes every one of them with CDK Terrain too and
// expects the same configuration. Each app builds into the stack it is given.
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

/** A publisher key (`storm keygen`), for apps that read a channel. */
export const ACME_KEY = 'storm-ed25519 720095bc1d5fc5eb vIDG58tOOyzFlLkYsXYhUvmmuJFJS6zTSjxsiAuq13Y= acme appliances (test fixture)';
export const SHA = { base: 'a'.repeat(64), app: 'b'.repeat(64), kernel: 'c'.repeat(64), initrd: 'd'.repeat(64) };
export const CONTROLLER = { url: 'https://127.0.0.1:8443', token: 'test-token', caPem: '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n' };

const bmc = (port: number) => ({ address: '127.0.0.1', port, username: 'admin', password: 'password' });

/** Two BMC-powered blades (the rack of stacks/hcl/rack). */
export function rack(stack: Construct): ApplianceServer[] {
  return [1, 2].map((n) => new ApplianceServer(stack, `blade-${n}`, { libvirtUri: 'qemu:///system', bmc: bmc(9600 + n), accelerator: 'tcg' }));
}

/**
 * The paper's mail cluster: a mail appliance from a signed channel on two blades, the second
 * handed to the controller, scaled by a group whose name answers round-robin (and MX).
 */
export function mailCluster(stack: Construct) {
  new Storm(stack, 'storm', { controller: CONTROLLER });
  const blade1 = new ApplianceServer(stack, 'blade-1', { libvirtUri: 'qemu:///system', bmc: bmc(9601) });
  const blade2 = new ApplianceServer(stack, 'blade-2', { libvirtUri: 'qemu:///system', bmc: bmc(9602), power: 'controller' });
  const acme = new Channel(stack, 'acme', { url: 'https://appliances.acme.example/rss.xml', trustedKeys: [ACME_KEY] });
  const mail = new LayeredAppliance(stack, 'mail', { source: acme.appliance('mail', { versionConstraint: '~> 1.0' }) }).onServers([blade1, blade2]);
  const corp = new Deployment(stack, 'corp-mail', {
    appliance: mail,
    variables: { relay: 'smtp.example.org' },
    files: [{ path: '/etc/mail/relay.conf', content: 'relay ${relay} for ${member}\n' }],
  });
  const lan = new Network(stack, 'lan', { servers: [blade1, blade2], cidr: '192.168.150.0/24' });
  const mx = new ScalingGroup(stack, 'mx', { deployment: corp, network: lan, min: 1, max: 4, dnsName: 'mail', memoryMib: 512, hostPower: { emptyHoldSeconds: 900 } });
  return { blade1, blade2, acme, mail, corp, lan, mx };
}

/** The paper's Figure 2 appliance, by its images. */
export const webservImages = () =>
  ApplianceSource.fromImages({
    name: 'webserv',
    version: '1.0.0-0',
    base: { name: 'debian-12', url: 'https://images.example.org/debian-12.qcow2', sha256: SHA.base },
    image: { url: 'https://images.example.org/webserv-1.0.0-0.qcow2', sha256: SHA.app },
    boot: { kernelUrl: '/var/lib/storm/vmlinuz', kernelSha256: SHA.kernel, initrdUrl: '/var/lib/storm/initrd.gz', initrdSha256: SHA.initrd },
    memoryMib: 128,
  });

/** The paper's Figure 2 web server, from its images (no channel), with two instances: one placed, one pinned. */
export function webServer(stack: Construct) {
  const [blade1, blade2] = rack(stack) as [ApplianceServer, ApplianceServer];
  const webserv = new LayeredAppliance(stack, 'webserv', { source: webservImages(), servers: [blade1, blade2] });
  const site = new Deployment(stack, 'site', { appliance: webserv }).addFile({ path: '/srv/www/index.html', content: '<h1>${site}</h1>\n' });
  const lan = new Network(stack, 'lan', { servers: [blade1, blade2], cidr: '192.168.151.0/24', hosts: [{ hostname: 'www', ip: '192.168.151.10' }] });
  const www1 = new ApplianceInstance(stack, 'www1', { deployment: site, network: lan, variables: { site: 'www1' } });
  const www2 = new ApplianceInstance(stack, 'www2', { deployment: site, network: lan, server: blade2, state: 'shutoff' });
  return { blade1, blade2, webserv, site, lan, www1, www2 };
}

export const APPS: Readonly<Record<string, (stack: Construct) => unknown>> = { rack, mailCluster, webServer };
