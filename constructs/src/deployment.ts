// A deployment of an appliance: on every server the appliance is on, a layer over it (empty,
// or a published deployment image) and the files every instance of the deployment gets —
// templates whose `${name}` storm fills from the instance's variables, then these defaults.
import { Lazy } from 'cdktf';
import { Construct } from 'constructs';
import { absolutePath, fileModeValidator, imageUrlValidator, nameValidator, sha256Validator } from '../../provider/src/schema/validators.ts';
import { Deployment as DeploymentResource } from './generated/deployment/index.ts';
import type { ImageSource } from './appliance-source.ts';
import { perServerId, type ApplianceServer } from './appliance-server.ts';
import { fileBlocks, literalVariables, type InstanceFile } from './files.ts';
import type { LayeredAppliance } from './layered-appliance.ts';
import { describe, nameProp, providerRule, validateProps, type PropRule } from './validation.ts';

export interface DeploymentProps {
  /** The appliance it stands on; the deployment is made on each of its servers. */
  readonly appliance: LayeredAppliance;
  /**
   * Deployment name, e.g. `corp-mail`.
   * @default - the construct's id
   */
  readonly name?: string;
  /**
   * Files every instance gets (templates: `${name}` is a variable).
   * @default - none
   */
  readonly files?: readonly InstanceFile[];
  /**
   * Default values for the templates' variables; an instance's own variables win.
   * @default - none
   */
  readonly variables?: Readonly<Record<string, string>>;
  /**
   * A published deployment layer: a qcow2 overlay whose backing file is the appliance image.
   * @default - an empty layer
   */
  readonly image?: ImageSource;
}

/** Checks a list of files as the provider will (absolute paths, octal modes, one block per path). */
export function fileRules(prop: string, files: readonly InstanceFile[]): (PropRule | undefined)[] {
  const seen = new Set<string>();
  return files.flatMap((f, i) => {
    const duplicate = seen.has(f.path);
    seen.add(f.path);
    return [
      providerRule(`${prop}[${i}].path`, f.path, absolutePath()),
      providerRule(`${prop}[${i}].permissions`, f.permissions, fileModeValidator),
      { failed: duplicate, message: `${prop}[${i}].path: ${f.path} appears twice; give each file one entry.` },
    ];
  });
}

export class Deployment extends Construct {
  readonly name: string;
  readonly appliance: LayeredAppliance;
  private readonly files: InstanceFile[];
  private readonly resources = new Map<ApplianceServer, DeploymentResource>();

  constructor(scope: Construct, id: string, props: DeploymentProps) {
    super(scope, id);
    this.name = props.name ?? id;
    this.appliance = props.appliance;
    this.files = [...(props.files ?? [])];
    props.appliance.forEachServer((server, appliance) => {
      this.resources.set(
        server,
        new DeploymentResource(this, perServerId(server), {
          appliance: appliance.id,
          name: this.name,
          variables: literalVariables(props.variables),
          image: props.image && { ...props.image },
          file: fileBlocks(this.files),
        }),
      );
    });
    validateProps(this, describe('Deployment', this.name), () => [
      providerRule(nameProp(props.name), this.name, nameValidator),
      providerRule('image.url', props.image?.url, imageUrlValidator),
      providerRule('image.sha256', props.image?.sha256, sha256Validator),
      ...fileRules('files', this.files),
    ]);
  }

  /** Adds a file every instance gets (instances created afterwards). */
  addFile(file: InstanceFile): this {
    this.files.push(file);
    for (const r of this.resources.values()) r.putFile(fileBlocks(this.files) ?? []);
    return this;
  }

  /** The servers it is on: its appliance's. */
  get servers(): ApplianceServer[] {
    return [...this.resources.keys()];
  }

  /** Its storm_deployment on each server, as instances and scaling groups take them (resolved at synth). */
  get deploymentIds(): string[] {
    return Lazy.listValue({ produce: () => [...this.resources.values()].map((r) => r.id) });
  }

  /** Its storm_deployment on `server`, if the appliance is installed there. */
  resourceOn(server: ApplianceServer): DeploymentResource | undefined {
    return this.resources.get(server);
  }
}
