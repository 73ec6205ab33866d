// One FocusLLM measurement in a fresh process (so its peak memory is its own):
//   focus-child <modelDir> <length> <threads> <steps> <backend>
// prints one JSON object.
import { loadModel } from '../lib/model';
import { argmax } from '../lib/sampling';
import { median } from './report';

async function main() {
  const [dir, lengthS, threadsS, stepsS, backend] = process.argv.slice(2);
  const length = Number(lengthS);
  const steps = Number(stepsS);
  const model = await loadModel(dir, { backend: backend as 'cpu' | 'cuda', threads: Number(threadsS), tokenizer: false });
  const V = model.config.vocabSize;
  const ids = [1];
  let s = 12345;
  while (ids.length < length) {
    s = (s * 1103515245 + 12345) >>> 0;
    ids.push(3 + (s % (V - 3)));
  }
  const session = model.createSession({ maxSteps: steps });
  const rssBefore = process.memoryUsage().rss;
  const t0 = performance.now();
  let logits = await session.ingest(ids);
  const ingestMs = performance.now() - t0;
  const stepMs: number[] = [];
  for (let i = 0; i < steps; i++) {
    const t = performance.now();
    logits = await session.step(argmax(logits));
    stepMs.push(performance.now() - t);
  }
  const mem = session.memory;
  const out = {
    length,
    chunks: session.chunks,
    ingest_ms: ingestMs,
    ms_per_1k_tokens: (ingestMs / length) * 1000,
    step_ms: steps ? median(stepMs) : null,
    chunk_cache_bytes: mem.chunkCaches,
    candidate_bytes: mem.candidates,
    cache_type: session.resolvedCacheType(),
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024,
    rss_before_ingest_bytes: rssBefore,
  };
  session.dispose();
  model.dispose();
  process.stdout.write(JSON.stringify(out) + '\n');
}

main().catch((e) => {
  process.stderr.write(String((e as Error).stack ?? e) + '\n');
  process.exit(1);
});
