// npm run lab: a simulated rack for trying storm by hand. Starts N blades (each a real
// libvirtd switched by an ipmi_sim BMC, see test/lib/lab.ts), writes the terraform.tfvars
// for stacks/hcl/rack, and keeps them running until Ctrl-C.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startLab } from '../test/lib/lab.ts';
import { REPO_DIR } from '../test/lib/terraform.ts';

const count = Number(process.argv[2] ?? 2);
if (!Number.isInteger(count) || count < 1 || count > 8) {
  console.error('usage: npm run lab [-- BLADES]   (1 to 8 blades, default 2)');
  process.exit(2);
}

const lab = await startLab({ blades: count, initialPower: 'off' });
const tfvars = join(REPO_DIR, 'stacks', 'hcl', 'rack', 'terraform.tfvars');
const blades = lab.blades
  .map((b) => `  ${b.name} = {\n    libvirt_uri = "${b.libvirtUri}"\n    bmc_address = "${b.bmc.address}"\n    bmc_port    = ${b.bmc.port}\n    bmc_user    = "${b.bmc.username}"\n  }`)
  .join('\n');
writeFileSync(tfvars, `# Written by npm run lab for the simulated rack in ${lab.dir}\nblades = {\n${blades}\n}\nbmc_password = "${lab.blades[0]!.bmc.password}"\n`);

console.log(`storm lab: ${count} blade(s), powered off, in ${lab.dir}`);
for (const b of lab.blades) console.log(`  ${b.name}: BMC ${b.bmc.address}:${b.bmc.port} (${b.bmc.username}/${b.bmc.password}), libvirt ${b.libvirtUri}`);
console.log(`wrote ${tfvars}`);
console.log('Ctrl-C stops the rack.');

const stop = async () => {
  await lab.stop();
  process.exit(0);
};
process.on('SIGINT', stop);
process.on('SIGTERM', stop);
setInterval(() => {}, 1 << 30);
