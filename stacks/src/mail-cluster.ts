// The paper's example: a mail appliance (OpenSMTPD in storm's test guest) on two BMC-powered
// servers, scaled by the controller on the guests' CPU, the second server powered by the
// controller's host-power policy, the members answering round-robin (and MX) under the group's
// DNS name on a storm network. The appliance comes from a channel or from local images
// (scripts/build-mail-layer.sh): `mailSource` when synthesizing.
import { Fn, TerraformOutput, TerraformStack } from 'cdktf';
import type { Construct } from 'constructs';
import { ApplianceServer, ApplianceSource, Channel, Deployment, LayeredAppliance, Network, ScalingGroup, Storm, type Accelerator } from '@storm/constructs';
import { Inputs, synthOptions, type SynthOptions } from './inputs.ts';

export class MailClusterStack extends TerraformStack {
  readonly options: SynthOptions;
  readonly servers: ApplianceServer[];
  readonly appliance: LayeredAppliance;
  readonly group: ScalingGroup;

  constructor(scope: Construct, id = 'mail-cluster') {
    super(scope, id);
    this.options = synthOptions(this);
    const prefix = this.options.namePrefix;
    const v = new Inputs(this);

    new Storm(this, 'storm', {
      controller: {
        url: v.string('controller_url', 'URL of the storm controller (storm controller run), e.g. https://ctl.rack.example:8443.'),
        token: v.string('controller_token', 'The controller\'s admin token (the file admin-token that storm controller init wrote).', { sensitive: true }),
        caPem: v.string('controller_ca_pem', 'The controller\'s CA certificate (ca.pem), PEM.'),
      },
    });

    const accelerator = v.string('accelerator', 'How guests run on both servers: auto, kvm or tcg.', { default: 'auto' }) as Accelerator;
    const bmcUsername = v.string('bmc_username', 'BMC user (the same on both servers).', { default: 'admin' });
    const bmcPassword = v.string('bmc_password', 'BMC password (the same on both servers).', { sensitive: true });
    // The first server is always on; the second is the controller's to power on when the first is busy and off when idle.
    this.servers = ([1, 2] as const).map(
      (n) =>
        new ApplianceServer(this, `server-${n}`, {
          name: `${prefix}mail-${n}`,
          libvirtUri: v.string(`server${n}_libvirt_uri`, `libvirt URI of server ${n}.`),
          bmc: {
            address: v.string(`server${n}_bmc_address`, `Address of server ${n}'s BMC (IPMI over LAN).`),
            port: v.number(`server${n}_bmc_port`, `UDP port of server ${n}'s BMC.`, 623),
            username: bmcUsername,
            password: bmcPassword,
          },
          power: n === 1 ? 'on' : 'controller',
          accelerator,
        }),
    );

    const source =
      this.options.mailSource === 'channel'
        ? new Channel(this, 'channel', {
            url: v.string('channel_url', 'URL of the channel feed (rss.xml) that publishes the mail appliance.'),
            trustedKeys: [v.string('channel_trusted_key', 'The channel publisher\'s key: the line `storm keygen` printed.')],
          }).appliance('mail')
        : ApplianceSource.fromImages({
            name: 'mail',
            version: v.string('mail_version', 'Version of the mail appliance built locally.', { default: '1.0' }),
            base: {
              name: v.string('base_name', 'Name of the base-OS layer.', { default: 'storm-test-base' }),
              url: v.string('base_url', 'The base layer: build/guest/layers/base.qcow2 (an absolute path or URL).'),
              sha256: v.string('base_sha256', 'sha256sum of the base layer.'),
            },
            image: {
              url: v.string('mail_image_url', 'The mail layer: build/guest/layers/mail.qcow2 (scripts/build-mail-layer.sh).'),
              sha256: v.string('mail_image_sha256', 'sha256sum of the mail layer.'),
            },
            boot: {
              kernelUrl: v.string('kernel_url', 'The test guest\'s kernel: build/guest/vmlinuz.'),
              kernelSha256: v.string('kernel_sha256', 'Its sha256 (build/guest/guest.env).'),
              initrdUrl: v.string('initrd_url', 'The test guest\'s initramfs: build/guest/initrd.gz.'),
              initrdSha256: v.string('initrd_sha256', 'Its sha256 (build/guest/guest.env).'),
            },
            memoryMib: 256,
            provides: ['smtp'],
          });
    this.appliance = new LayeredAppliance(this, 'mail', { source, servers: this.servers });

    // The MTA accepts mail for the domains in /etc/smtpd/domains (README, "The mail appliance").
    const deployment = new Deployment(this, 'corp-mail', {
      name: `${prefix}corp-mail`,
      appliance: this.appliance,
      files: [{ path: '/etc/smtpd/domains', content: `${v.string('mail_domain', 'The mail domain the cluster accepts mail for.', { default: 'storm.internal' })}\n` }],
    });
    const cidr = v.string('network_cidr', 'The storm network the members are on (IPv4 CIDR); the group\'s DNS name is on it.', { default: '192.168.160.0/24' });
    const cidr2 = v.string('server2_network_cidr', 'The network\'s subnet on server 2 when the servers share a segment (two lab blades on one machine); empty: network_cidr.', { default: '' });
    const lan = new Network(this, 'lan', {
      name: `${prefix}mail`,
      servers: this.servers,
      cidrs: [cidr, Fn.coalesce([cidr2, cidr])],
    });
    this.group = new ScalingGroup(this, 'mx', {
      name: `${prefix}mx`,
      deployment,
      network: lan,
      min: v.number('min_members', 'Members kept whatever the load.', 1),
      max: v.number('max_members', 'Members never exceeded.', 4),
      dnsName: 'mail',
      // The paper's policy (another member past 90 % guest CPU, one less under the low mark), in
      // proportional steps both ways unless scale_out_target / scale_in_target are 0.
      guestCpuHigh: v.number('guest_cpu_high', 'Add a member when the members\' mean CPU holds at or above this (the paper\'s 90 %).', 0.9),
      guestCpuLow: v.number('guest_cpu_low', 'Remove one when it holds below this (scale_in_target also removes what fewer members would carry).', 0.3),
      windowSeconds: v.number('window_seconds', 'How long the load must hold, in seconds.', 30),
      cooldownOutSeconds: v.number('cooldown_out_seconds', 'Seconds after a scale-out before the next.', 60),
      cooldownInSeconds: v.number('cooldown_in_seconds', 'Seconds after any change before a scale-in.', 300),
      scaleOutTarget: v.number('scale_out_target', 'A scale-out adds members until their mean would be this share of the high mark; 0 adds one at a time (the paper\'s rule).', 0.8),
      scaleInTarget: v.number('scale_in_target', 'A scale-in removes the members fewer would not miss, keeping their mean at most this share of the high mark; 0 removes one at a time below the low mark.', 0.7),
      // Power the second server on when the powered ones pass 90 %, off when it has been empty a while.
      hostPower: {
        hostCpuHigh: v.number('host_cpu_high', 'Power server 2 on when every powered server is at least this busy (the paper\'s 90 %).', 0.9),
        emptyHoldSeconds: v.number('empty_hold_seconds', 'Seconds server 2 must have run nothing before it is powered off.', 600),
      },
    });

    new TerraformOutput(this, 'mx_fqdn', { description: 'The name that resolves round-robin (A and MX) to the running members, on the storm network.', value: this.group.fqdn });
    new TerraformOutput(this, 'members', { description: 'The members the controller runs now.', value: this.group.members });
  }
}
