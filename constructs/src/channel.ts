// A publisher's channel: the feed storm reads appliances from, and the keys that sign it.
// The keys go into the provider's trusted_keys (the provider trusts them for every channel it
// reads); each appliance taken from the channel is one data "storm_appliance", read (and its
// signatures checked) at plan time.
import { Construct } from 'constructs';
import { channelUrlValidator, nameValidator } from '../../provider/src/schema/validators.ts';
import { DataStormAppliance } from './generated/data-storm-appliance/index.ts';
import { DataStormChannel } from './generated/data-storm-channel/index.ts';
import { ApplianceSource } from './appliance-source.ts';
import { keyRules, Storm } from './storm.ts';
import { describe, providerRule, validateProps } from './validation.ts';

export interface ChannelProps {
  /** URL of the channel's feed, e.g. `https://appliances.example.org/rss.xml`. */
  readonly url: string;
  /**
   * The publisher's keys, each the line `storm keygen` printed; added to the provider's trusted keys.
   * @default - the keys given to the stack's Storm
   */
  readonly trustedKeys?: readonly string[];
  /**
   * Use the channel without checking signatures: only for a channel you publish yourself on a network you trust.
   * @default false
   */
  readonly insecureSkipVerify?: boolean;
}

export interface ApplianceFromChannelOptions {
  /**
   * Which versions are acceptable, e.g. `~> 1.2` or `>= 1.0, < 2`; the newest that fits wins.
   * @default - the newest
   */
  readonly versionConstraint?: string;
}

export class Channel extends Construct {
  readonly url: string;
  readonly insecureSkipVerify: boolean;
  private readonly releases = new Map<string, DataStormAppliance>();
  private listing: DataStormChannel | undefined;

  constructor(scope: Construct, id: string, props: ChannelProps) {
    super(scope, id);
    this.url = props.url;
    this.insecureSkipVerify = props.insecureSkipVerify ?? false;
    const storm = Storm.of(this);
    storm.trust(props.trustedKeys ?? []);
    validateProps(this, describe('Channel', id), () => [
      providerRule('url', props.url, channelUrlValidator),
      ...keyRules('trustedKeys', props.trustedKeys ?? []),
      {
        failed: !this.insecureSkipVerify && storm.trustedKeys.length === 0,
        message:
          'no trusted keys: storm checks every channel against the publisher keys it trusts, and neither this Channel nor the stack\'s Storm has any. ' +
          'Pass trustedKeys (the line `storm keygen` printed for the publisher), or insecureSkipVerify: true for a channel of your own.',
      },
    ]);
  }

  /** The feed as storm reads it (title, signing key, every appliance version it lists): a data "storm_channel", made on first use. */
  get feed(): DataStormChannel {
    this.listing ??= new DataStormChannel(this, 'feed', { url: this.url, insecureSkipVerify: this.insecureSkipVerify || undefined });
    return this.listing;
  }

  /** An appliance of this channel, to install with a LayeredAppliance. */
  appliance(name: string, options: ApplianceFromChannelOptions = {}): ApplianceSource {
    return ApplianceSource.fromChannel(this, name, options);
  }

  /** The data source that resolves `name` (one per name and constraint, however often it is asked for). */
  release(name: string, versionConstraint?: string): DataStormAppliance {
    const id = versionConstraint === undefined ? name : `${name} ${versionConstraint}`;
    let release = this.releases.get(id);
    if (!release) {
      release = new DataStormAppliance(this, id, {
        channel: this.url,
        name,
        versionConstraint,
        insecureSkipVerify: this.insecureSkipVerify || undefined,
      });
      validateProps(release, describe('Channel', this.node.id), () => [providerRule(`appliance("${name}")`, name, nameValidator)]);
      this.releases.set(id, release);
    }
    return release;
  }
}
