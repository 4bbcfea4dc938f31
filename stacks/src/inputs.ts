// How the stacks take their inputs. Two kinds, as cdktf users expect:
//  - values (libvirt URIs, BMC addresses and credentials, the channel, the mail domain, image
//    URLs and checksums) are Terraform variables: given at deploy time with `--var name=value`,
//    `TF_VAR_name` or a terraform.tfvars, kept out of the synthesized JSON (secrets are
//    `sensitive`), and the same names as the HCL stacks' variables.
//  - choices that change the shape of the configuration (where the mail appliance comes from,
//    a prefix for storm names) are made when the app is synthesized: cdktf context (cdktf.json's
//    "context") or the environment, the environment winning.
import { TerraformVariable } from 'cdktf';
import type { Construct } from 'constructs';

export type ApplianceSourceKind = 'channel' | 'images';

export interface SynthOptions {
  /** Where the mail appliance comes from: a channel, or local images. Context `mailSource`, env STORM_MAIL_SOURCE. @default 'channel' */
  readonly mailSource: ApplianceSourceKind;
  /** Put before every storm name (servers, networks, appliances' deployments, instances, groups). Context `namePrefix`, env STORM_NAME_PREFIX. @default '' */
  readonly namePrefix: string;
}

/** Reads the synth-time options from the context of `scope` and the environment. */
export function synthOptions(scope: Construct, env: NodeJS.ProcessEnv = process.env): SynthOptions {
  const pick = (key: string, envName: string): string | undefined => env[envName] ?? (scope.node.tryGetContext(key) as string | undefined);
  const mailSource = pick('mailSource', 'STORM_MAIL_SOURCE') ?? 'channel';
  if (mailSource !== 'channel' && mailSource !== 'images') {
    throw new Error(`mailSource (STORM_MAIL_SOURCE) = ${JSON.stringify(mailSource)}: use 'channel' (a channel's feed URL and key) or 'images' (local base and mail layer images).`);
  }
  const namePrefix = pick('namePrefix', 'STORM_NAME_PREFIX') ?? '';
  if (!/^([a-z][a-z0-9-]*)?$/.test(namePrefix)) {
    throw new Error(`namePrefix (STORM_NAME_PREFIX) = ${JSON.stringify(namePrefix)}: use lower case letters, digits and dashes, starting with a letter (e.g. 'lab-').`);
  }
  return { mailSource, namePrefix };
}

/** Declares Terraform variables with the stack's naming: `v.string('mail_domain', 'The domain…', { default: 'x' })`. */
export class Inputs {
  constructor(private readonly scope: Construct) {}

  string(name: string, description: string, options: { default?: string; sensitive?: boolean } = {}): string {
    return new TerraformVariable(this.scope, name, { type: 'string', description, default: options.default, sensitive: options.sensitive }).stringValue;
  }

  number(name: string, description: string, defaultValue?: number): number {
    return new TerraformVariable(this.scope, name, { type: 'number', description, default: defaultValue }).numberValue;
  }
}
