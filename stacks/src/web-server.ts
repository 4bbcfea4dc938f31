// The paper's Figure 2 appliance: a single-layer web server from a signed channel (its image a
// .tgz holding sys.img), with the swap and user disks its definition asks for and a web panel,
// on one BMC-powered server. Its instance keeps its user disk across replacements.
import { conditional, Op, TerraformOutput, TerraformStack, Token } from 'cdktf';
import type { Construct } from 'constructs';
import { ApplianceInstance, ApplianceServer, Channel, Deployment, LayeredAppliance, Network, Storm, type Accelerator, type InstanceState } from '@storm/constructs';
import { Inputs, synthOptions } from './inputs.ts';

export class WebServerStack extends TerraformStack {
  readonly server: ApplianceServer;
  readonly appliance: LayeredAppliance;
  readonly instance: ApplianceInstance;

  constructor(scope: Construct, id = 'web-server') {
    super(scope, id);
    const { namePrefix } = synthOptions(this);
    const v = new Inputs(this);
    const channelUrl = v.string('channel_url', 'URL of the channel feed (rss.xml) that publishes the web server appliance.');
    const trustedKey = v.string('channel_trusted_key', 'The channel publisher\'s key: the line `storm keygen` printed.');
    new Storm(this, 'storm', { trustedKeys: [trustedKey] });

    this.server = new ApplianceServer(this, 'server', {
      name: `${namePrefix}web-1`,
      libvirtUri: v.string('libvirt_uri', 'libvirt URI of the server, e.g. qemu+tls://blade1.rack.example/system.'),
      bmc: {
        address: v.string('bmc_address', 'Address of the server\'s BMC (IPMI over LAN).'),
        port: v.number('bmc_port', 'UDP port of the BMC.', 623),
        username: v.string('bmc_username', 'BMC user.', { default: 'admin' }),
        password: v.string('bmc_password', 'BMC password.', { sensitive: true }),
      },
      accelerator: v.string('accelerator', 'How guests run: auto, kvm or tcg (tcg where /dev/kvm exists but does not work).', { default: 'auto' }) as Accelerator,
    });
    const channel = new Channel(this, 'channel', { url: channelUrl });
    this.appliance = new LayeredAppliance(this, 'webserv', {
      source: channel.appliance('webserv'), // Figure 2's name
      servers: [this.server],
    });
    const site = new Deployment(this, 'site', {
      name: `${namePrefix}site`,
      appliance: this.appliance,
      files: [{ path: '/srv/www/index.html', content: '<h1>${site}</h1>\n' }],
    });
    const lan = new Network(this, 'lan', {
      name: `${namePrefix}web`,
      servers: [this.server],
      cidr: v.string('network_cidr', 'The storm network the web server is on (IPv4 CIDR).', { default: '192.168.161.0/24' }),
    });
    this.instance = new ApplianceInstance(this, 'www', {
      name: `${namePrefix}www1`,
      deployment: site,
      network: lan,
      variables: { site: v.string('site_name', 'What the web server\'s index page says.', { default: 'www1' }) },
      state: v.string('instance_state', 'running, paused or shutoff.', { default: 'running' }) as InstanceState,
      keepUserDisks: true,
    });

    // "" rather than null until the instance has an address: cdktf-cli 0.21 crashes printing a
    // null output after a deploy ("Cannot convert undefined or null to object").
    const orEmpty = (value: string) => conditional(Op.eq(value, Token.nullValue()), '', value);
    new TerraformOutput(this, 'webpanel_url', { description: 'The web panel (Figure 2\'s <webpanel>) at the instance\'s address; "" until it has one.', value: orEmpty(this.instance.webpanelUrl) });
    new TerraformOutput(this, 'ip', { description: 'The instance\'s address on the storm network; "" until it has one.', value: orEmpty(this.instance.ip) });
    new TerraformOutput(this, 'disks', { description: 'Its swap and user disks.', value: this.instance.resource.disks });
  }
}
