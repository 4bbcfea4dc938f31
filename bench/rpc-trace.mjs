// Preloaded into storm provider processes by bench/plan.ts (NODE_OPTIONS=--import), never by
// the provider itself: records every gRPC call as the provider's HTTP/2 server sees it, from
// the request headers arriving to the stream closing after the response, through Node's own
// http2 diagnostics channels (no patching, no provider code involved). At exit the process
// appends one JSON line (a TracedProcess, declared in bench/plan.ts) to $STORM_BENCH_RPC_LOG.
// Plain JavaScript on purpose: a .ts preload makes Node load its type stripper into every
// provider process, +15 MiB RSS and +50 ms start, which would then be measured as storm's.
import { subscribe } from 'node:diagnostics_channel';
import { appendFileSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

const file = process.env.STORM_BENCH_RPC_LOG;
if (file) {
  const now = () => performance.timeOrigin + performance.now();
  const open = new WeakMap();
  /** @type {[string, number, number][]} [method path, epoch ms at the request headers, ms until the stream closed] */
  const calls = [];
  subscribe('http2.server.stream.start', ({ stream, headers }) => open.set(stream, [String(headers[':path']), now()]));
  subscribe('http2.server.stream.close', ({ stream }) => {
    const started = open.get(stream);
    if (started) calls.push([started[0], started[1], now() - started[1]]);
  });
  process.on('exit', () => {
    // Streams still open at exit (go-plugin's stdio and broker streams) are not calls.
    const usage = process.resourceUsage();
    const cpuMs = (usage.userCPUTime + usage.systemCPUTime) / 1000;
    const record = { pid: process.pid, startedAt: performance.timeOrigin, exitedAt: now(), maxRssKiB: usage.maxRSS, cpuMs, calls };
    appendFileSync(file, JSON.stringify(record) + '\n');
  });
}
