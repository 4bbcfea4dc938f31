// `storm controller init`: the controller's own CA, its server certificate and the admin token,
// in one directory that `storm controller run --dir` reads. The CA key stays there (0600) so
// `init --renew` can issue a new server certificate without changing what clients trust.
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { issueCa, issueServer, loadCa } from '../x509/issue.ts';

export const CONTROLLER_FILES = {
  ca: 'ca.pem',
  caKey: 'ca-key.pem',
  cert: 'server.pem',
  key: 'server-key.pem',
  adminToken: 'admin-token',
} as const;

export interface InitResult {
  dir: string;
  createdCa: boolean;
  hosts: string[];
  notAfter: Date;
}

async function writeSecret(path: string, text: string): Promise<void> {
  await writeFile(path, text, { mode: 0o600 });
  await chmod(path, 0o600);
}

/**
 * Makes (or completes) a controller directory: a CA if there is none, a server certificate for
 * `hosts` (always new, so a changed address only needs init again), an admin token if there is none.
 */
export async function initControllerDir(dir: string, hosts: readonly string[]): Promise<InitResult> {
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const path = (f: keyof typeof CONTROLLER_FILES) => join(dir, CONTROLLER_FILES[f]);
  const createdCa = !existsSync(path('ca'));
  if (createdCa) {
    const ca = issueCa('storm controller CA');
    await writeSecret(path('caKey'), ca.keyPem);
    await writeFile(path('ca'), ca.certPem);
  }
  const ca = loadCa(await readFile(path('ca'), 'utf8'), await readFile(path('caKey'), 'utf8'));
  const server = issueServer(ca, hosts);
  await writeSecret(path('key'), server.keyPem);
  await writeFile(path('cert'), server.certPem);
  if (!existsSync(path('adminToken'))) await writeSecret(path('adminToken'), randomBytes(32).toString('base64url') + '\n');
  return { dir, createdCa, hosts: [...hosts], notAfter: server.notAfter };
}

export interface ControllerDir {
  caPem: string;
  certPem: string;
  keyPem: string;
  adminToken: string;
}

export async function readControllerDir(dir: string): Promise<ControllerDir> {
  const read = async (f: keyof typeof CONTROLLER_FILES) => {
    try {
      return await readFile(join(dir, CONTROLLER_FILES[f]), 'utf8');
    } catch {
      throw new Error(`${join(dir, CONTROLLER_FILES[f])} is missing: run storm controller init --dir ${dir} --host NAME-OR-ADDRESS first`);
    }
  };
  const [caPem, certPem, keyPem, adminToken] = await Promise.all([read('ca'), read('cert'), read('key'), read('adminToken')]);
  return { caPem, certPem, keyPem, adminToken: adminToken.trim() };
}
