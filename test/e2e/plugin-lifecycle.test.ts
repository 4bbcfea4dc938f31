// The provider's life as real Terraform sees it: started, handshaken, called, stopped. Terraform
// starts it 3-5 times per command, so each stop must be prompt: go-plugin waits for the process
// to exit after Shutdown, and a provider that lingers adds its linger to every command.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { TerraformDir } from '../lib/terraform.ts';

/** Milliseconds from each provider's stdio stream ending (our Shutdown under way) to go-plugin seeing it exit. */
function exitDelays(logFile: string): number[] {
  const at = (line: string) => Date.parse(line.slice(0, 23) + 'Z');
  const lines = readFileSync(logFile, 'utf8').split('\n');
  const ended = lines.filter((l) => l.includes('provider.stdio: received EOF')).map(at);
  const exited = lines.filter((l) => l.includes('provider: plugin process exited')).map(at);
  assert.equal(ended.length, exited.length, 'every provider process ended its stdio stream, then exited');
  return exited.map((t, i) => t - ended[i]!);
}

describe('provider processes under real Terraform', () => {
  const tf = new TerraformDir();
  after(() => tf.remove());

  test('each provider start answers and each stop exits promptly', async () => {
    tf.write(`
resource "storm_appliance_server" "s" {
  name        = "lifecycle"
  libvirt_uri = "qemu:///system"
  pool_path   = "/var/tmp/storm-lifecycle-pool"
}
`);
    await tf.init();
    const delays: number[] = [];
    for (let run = 1; run <= 3; run++) {
      const logFile = join(tf.dir, `validate-${run}.log`);
      const r = await tf.run(['validate', '-no-color'], { TF_LOG: 'DEBUG', TF_LOG_PATH: logFile });
      assert.equal(r.exitCode, 0, r.output);
      delays.push(...exitDelays(logFile));
    }
    assert.ok(delays.length >= 6, `Terraform started the provider ${delays.length} times`);
    // A graceful close that waits out its 500 ms grace period is the failure this guards against.
    assert.ok(Math.max(...delays) < 300, `exit delays after Shutdown: ${delays.join(', ')} ms`);
  });
});
