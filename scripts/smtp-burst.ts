// smtp-burst.ts HOST[:PORT] [TO] [MESSAGES] [SIZE_KIB] [CONNECTIONS] — sends one burst of mail to
// an SMTP server (the mail appliance: README "The mail appliance") and prints its report as JSON.
// Defaults: user@storm.internal, 200 messages of 100 KiB over 4 connections. A thin shell over
// test/lib/smtp-load.ts's sendBurst; send only to hosts of your own (a lab network, loopback).
import { sendBurst } from '../test/lib/smtp-load.ts';

const [target, to = 'user@storm.internal', messages = '200', sizeKib = '100', connections = '4'] = process.argv.slice(2);
const numbers = [messages, sizeKib, connections].map(Number);
if (!target || !to.includes('@') || numbers.some((n) => !Number.isInteger(n) || n < 1)) {
  console.error('usage: node --import tsx scripts/smtp-burst.ts HOST[:PORT] [TO] [MESSAGES] [SIZE_KIB] [CONNECTIONS]');
  process.exit(2);
}
const [host, port = '25'] = target.split(':');
const report = await sendBurst({
  host: host!,
  port: Number(port),
  to,
  from: 'load@loadgen.storm.invalid',
  messages: numbers[0]!,
  sizeBytes: numbers[1]! * 1024,
  connections: numbers[2]!,
  timeoutMs: 120_000,
});
console.log(JSON.stringify(report, null, 2));
process.exit(report.failed === 0 ? 0 : 1);
