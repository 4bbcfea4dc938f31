// Writes N synthetic, valid appliance definitions (<out>/<name>/<version>/appliance.xml) for
// trying the site at scale:  tsx scripts/generate-appliances.ts 1000 /tmp/appliances [--versions 2]
// Deterministic: the same N gives the same files. Spelled by the provider's serializer, and
// each one checked by the validator before it is written.
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { formatProblems, parseApplianceDefinition, serializeApplianceDefinition } from '../../provider/src/channel/definition.ts';
import type { ApplianceDefinition } from '../../provider/src/channel/types.ts';

const SERVICES = ['webserv', 'smtp', 'imap', 'dns', 'dhcp', 'ldap', 'kerberos', 'firewall', 'nat', 'database', 'cache', 'queue', 'proxy', 'vpn', 'monitoring', 'backup'];
const KINDS = ['Web', 'Mail', 'Directory', 'Database', 'Cache', 'Proxy', 'Monitoring', 'Backup', 'Queue', 'VPN'];
const BASES = ['debian-12', 'alpine-3', 'rocky-9'];

const sha = (s: string) => createHash('sha256').update(s).digest('hex');

export function syntheticAppliance(i: number, versionIndex: number): ApplianceDefinition {
  const name = `appliance-${String(i).padStart(4, '0')}`;
  const version = `1.${versionIndex}.${i % 7}-0`;
  const kind = KINDS[i % KINDS.length]!;
  const base = BASES[i % BASES.length]!;
  const image = `https://images${i % 4}.example.org/storm/${name}-${version}.qcow2`;
  return {
    formatVersion: '1.0',
    name,
    label: `${kind} appliance ${i}`,
    description: `Synthetic ${kind.toLowerCase()} appliance number ${i}, generated to measure the catalog at scale.`,
    version,
    sizeMib: 512 * (1 + (i % 8)),
    image: { url: image, sha256: sha(`${name}-${version}`), sig: `${image}.sig` },
    base: { name: base, url: `https://mirror.example.net/storm/bases/${base}.qcow2`, sha256: sha(base), sig: null },
    boot: null,
    provides: [SERVICES[i % SERVICES.length]!, ...(i % 3 === 0 ? [SERVICES[(i * 7 + 3) % SERVICES.length]!] : [])].filter((s, k, a) => a.indexOf(s) === k),
    webpanel: i % 2 === 0 ? '/admin/' : null,
    hardware: {
      cpus: 1 << (i % 4),
      memoryKib: 131072 << (i % 6),
      ostype: 'linux',
      disks: [
        { name: 'vda', type: 'system', file: 'sys.img', sizeMib: null },
        ...(i % 2 ? [{ name: 'vdb', type: 'user' as const, file: null, sizeMib: 1024 }] : []),
      ],
    },
    dependencies: i > 0 && i % 5 === 0 ? [{ name: `appliance-${String(i - 1).padStart(4, '0')}`, version: null }] : [],
  };
}

async function main(): Promise<void> {
  const { positionals, values } = parseArgs({ allowPositionals: true, options: { versions: { type: 'string', default: '1' } } });
  const [count, out] = positionals;
  const n = Number(count);
  const versions = Number(values.versions);
  if (!Number.isInteger(n) || n < 1 || !out || !Number.isInteger(versions) || versions < 1) {
    console.error('usage: tsx scripts/generate-appliances.ts N OUT_DIR [--versions K]   (N appliances, K versions each)');
    process.exit(2);
  }
  let written = 0;
  for (let i = 0; i < n; i++) {
    for (let v = 0; v < versions; v++) {
      const def = syntheticAppliance(i, v);
      const xml = serializeApplianceDefinition(def);
      const file = path.join(out, def.name, def.version, 'appliance.xml');
      const check = parseApplianceDefinition(xml, file);
      if (!check.ok) throw new Error(`generated an invalid definition:\n${formatProblems(check.problems, file)}`);
      await mkdir(path.dirname(file), { recursive: true });
      await writeFile(file, xml);
      written++;
    }
  }
  console.log(`${written} definitions (${n} appliances × ${versions} version${versions === 1 ? '' : 's'}) in ${out}`);
}

await main();
