// "Use it" snippets for an appliance version: plain HCL and cdktf (TypeScript). Both resolve
// the appliance through the channel (data source storm_appliance, which verifies the feed, the
// definition and the signatures against the provider's trusted_keys) and install it with
// resource storm_appliance. Attribute names follow provider/src/resources/data-appliance.ts.
// A single-layer appliance (no <base>) gets no base block: its image is its own base, and the
// data source's base_* attributes are null for it.
import type { ApplianceDefinition } from './definition.ts';

const ident = (name: string) => name.replace(/[^a-zA-Z0-9_]/g, '_');
const camel = (name: string) => name.replace(/[-_]+([a-z0-9])/g, (_, c: string) => c.toUpperCase());

function needs(def: ApplianceDefinition): string[] {
  return def.dependencies.map((d) => (d.version ? `${d.name} ${d.version}` : d.name));
}

export function hclSnippet(def: ApplianceDefinition, feedUrl: string): string {
  const id = ident(def.name);
  const d = `data.storm_appliance.${id}`;
  const deps = needs(def);
  const boot = def.boot
    ? `

  boot {
    kernel_url    = ${d}.boot.kernel_url
    kernel_sha256 = ${d}.boot.kernel_sha256
    initrd_url    = ${d}.boot.initrd_url
    initrd_sha256 = ${d}.boot.initrd_sha256
    cmdline       = ${d}.boot.cmdline
  }`
    : '';
  const base = def.base
    ? `
  base {
    name   = ${d}.base_name
    url    = ${d}.base_url
    sha256 = ${d}.base_sha256
  }
`
    : '';
  return `data "storm_appliance" "${id}" {
  channel            = "${feedUrl}"
  name               = "${def.name}"
  version_constraint = "${def.version}"
}
${deps.length ? `\n# Needs ${deps.join(', ')}: ${d}.dependencies lists them, in install order.\n` : ''}
resource "storm_appliance" "${id}" {
  server     = storm_appliance_server.blade1.id
  name       = ${d}.name
  version    = ${d}.version
  vcpus      = ${d}.vcpus
  memory_mib = ${d}.memory_mib
${base}
  image {
    url    = ${d}.image_url
    sha256 = ${d}.image_sha256
  }${boot}
}
`;
}

export function cdktfSnippet(def: ApplianceDefinition, feedUrl: string): string {
  const v = camel(def.name);
  const boot = def.boot
    ? `
  boot: {
    kernelUrl: ${v}.boot.kernelUrl,
    kernelSha256: ${v}.boot.kernelSha256,
    initrdUrl: ${v}.boot.initrdUrl,
    initrdSha256: ${v}.boot.initrdSha256,
    cmdline: ${v}.boot.cmdline,
  },`
    : '';
  const base = def.base
    ? `
  base: {
    name: ${v}.baseName,
    url: ${v}.baseUrl,
    sha256: ${v}.baseSha256,
  },`
    : '';
  return `import { Appliance, DataStormAppliance } from '@storm/constructs';

const ${v} = new DataStormAppliance(this, '${def.name}-from-channel', {
  channel: '${feedUrl}',
  name: '${def.name}',
  versionConstraint: '${def.version}',
});

new Appliance(this, '${def.name}', {
  server: blade1.id,
  name: ${v}.name,
  version: ${v}.version,
  vcpus: ${v}.vcpus,
  memoryMib: ${v}.memoryMib,${base}
  image: {
    url: ${v}.imageUrl,
    sha256: ${v}.imageSha256,
  },${boot}
});
`;
}
