// One training-step measurement in a fresh process (so its peak memory is its own):
//   train-child <modelDir> <case JSON (bench/train.ts TrainCase)> <threads> <repeat>
// prints one JSON object: step times (ms, after one warm-up), loss, peak RSS.
import { native } from '../lib/native';
import type { NativeTrainExample } from '../typings/native';
import type { TrainCase } from './train';

async function main() {
  const [dir, caseJson, threadsS, repeatS] = process.argv.slice(2);
  const c = JSON.parse(caseJson) as TrainCase;
  const model = await native().loadModel(dir, { threads: Number(threadsS) });
  const trainer = model.createTrainer({ params: c.loss === 'lm' ? 'all' : 'candidate' });
  const ids = Int32Array.from(c.ids);
  const ex: NativeTrainExample =
    c.loss === 'lm'
      ? { kind: 'lm', ids }
      : { kind: 'focus', ids, loss: c.loss, localStart: c.s!, localSize: c.l!, chunkSize: c.chunk!, promptCap: c.promptCap! };
  const times: number[] = [];
  let loss = NaN;
  for (let r = 0; r <= Number(repeatS); r++) {
    trainer.zeroGrad();
    const t0 = performance.now();
    loss = (await trainer.accumulate([ex]))[0];
    if (r > 0) times.push(performance.now() - t0);
  }
  const maxRssMiB = process.resourceUsage().maxRSS / 1024;
  process.stdout.write(JSON.stringify({ times, loss, maxRssMiB }) + '\n');
  trainer.dispose();
  model.dispose();
}

main().catch((e) => {
  process.stderr.write(String(e?.stack ?? e) + '\n');
  process.exit(1);
});
