// `storm schema` is what the constructs' bindings and the docs are generated from: it must be
// exactly what Terraform itself reports for this provider (`terraform providers schema -json`),
// resources and data sources alike.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { execa } from 'execa';
import { REPO_DIR, TerraformDir } from '../lib/terraform.ts';

test('storm schema equals terraform providers schema -json', async () => {
  const tf = new TerraformDir();
  try {
    tf.write('');
    await tf.init();
    const fromTerraform = JSON.parse((await tf.must(['providers', 'schema', '-json'])).stdout) as unknown;
    const fromStorm = JSON.parse((await execa(join(REPO_DIR, 'build', 'bin', 'storm'), ['schema'])).stdout) as unknown;
    assert.deepEqual(fromStorm, fromTerraform);
    const schemas = (fromStorm as { provider_schemas: Record<string, { data_source_schemas: Record<string, unknown> }> }).provider_schemas;
    assert.ok(Object.keys(Object.values(schemas)[0]!.data_source_schemas).length > 0, 'data sources are in it');
  } finally {
    tf.remove();
  }
});
