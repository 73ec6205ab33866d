// focusllm passkey: pass-key retrieval accuracy at several context lengths,
// in focusllm's default protocol or FocusLLM's official one.
import { parseFlags, parseNumber, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, MODEL_FLAGS, modelFromFlags, table } from './common';
import { checkedFocus, ingestText, progressWanted, protocolFromFlags, StatusLine, withSigint, cell } from '../eval/cli';
import { runPasskey, type PasskeyProgress, type PasskeyResult } from '../eval/passkey';
import { runPasskeyOfficial, type PasskeyOfficialResult } from '../eval/passkey-official';
import { SHIPPED_MODEL, shippedModelDir } from '../shipped';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  protocol: {
    type: 'string',
    help: 'default (task first, whole filler sentences, first number of the answer) or official (FocusLLM eval_passkey.py: filler cut by characters, key 1..49999, exactly the answer tokens, exact match)',
    default: 'default',
  },
  lengths: {
    type: 'list',
    help: 'prompt lengths in tokens, e.g. 4k,16k,64k, or multiples of the model window, e.g. 16x (with --chars: filler characters); default 4x,16x,64x',
  },
  chars: { type: 'bool', help: 'official: --lengths are filler characters (n_garbage), not prompt tokens' },
  native: { type: 'bool', help: 'official: run every prompt natively as one causal sequence (the baseline)' },
  'native-window': { type: 'int', help: 'with --native: cut a longer prompt from the left to this window, answer included (e.g. the model\'s max_position_embeddings)' },
  trials: { type: 'int', help: 'trials per length (per depth with --depths)', default: 10 },
  seed: { type: 'int', help: 'seed of the pass keys and depths', default: 42 },
  depths: { type: 'list', help: 'default protocol: fixed depths in [0,1] of the pass-key line (default: random per trial)' },
  'max-new-tokens': { type: 'int', help: 'default protocol: answer tokens at most (default: enough for the pass key)' },
  json: { type: 'bool', help: 'print one JSON object (summary + every trial)' },
  progress: { type: 'bool', help: 'progress line on stderr (default: when stderr is a terminal)' },
  ...FOCUS_FLAGS,
};

function parseLengths(v: string[], chars: boolean, window: number): number[] {
  if (v.length === 0) throw new UsageError('--lengths needs at least one length');
  return v.map((s) => {
    const x = /^\s*(\d+(?:\.\d+)?)x\s*$/i.exec(s);
    if (x && !(window > 0)) throw new UsageError(`--lengths: '${s}' is a multiple of the window, but the model's config.json has no max_position_embeddings`);
    const n = x ? Math.round(Number(x[1]) * window) : parseNumber(s);
    if (chars) {
      if (!Number.isInteger(n) || n < 0) throw new UsageError(`--lengths: '${s}' is not a character count (e.g. 60000 or 60k)`);
    } else if (!Number.isInteger(n) || n < 1) throw new UsageError(`--lengths: '${s}' is not a positive token count (e.g. 4096 or 4k)`);
    return n;
  });
}

function parseDepths(v: string[] | undefined): number[] | undefined {
  if (v === undefined) return undefined;
  if (v.length === 0) throw new UsageError('--depths needs at least one depth');
  return v.map((s) => {
    const d = Number(s);
    if (!/^\s*[0-9.eE+-]+\s*$/.test(s) || !(d >= 0 && d <= 1)) throw new UsageError(`--depths: '${s}' is not a number in [0, 1]`);
    return d;
  });
}

export function passkeyTable(r: PasskeyResult | PasskeyOfficialResult): string {
  const official = 'protocol' in r && r.protocol === 'official';
  const rows = r.lengths.map((l) => [
    official && r.unit === 'chars' ? `${l.length} chars` : l.length,
    l.trials,
    l.correct,
    `${(100 * l.accuracy).toFixed(1)}%`,
    Math.round(l.meanTokens),
    l.meanIngestSeconds,
    l.byDepth.map((d) => `${d.depth}: ${d.correct}/${d.trials}`).join('  '),
  ]);
  const lines = [table(['length', 'trials', 'correct', 'accuracy', 'tokens', 'ingest s', 'by depth'], rows)];
  const miss = r.records.filter((t) => !t.correct).slice(0, 5);
  if (miss.length) {
    lines.push('', 'first misses:');
    lines.push(table(['length', 'depth', 'pass key', 'answer'], miss.map((t) => [t.length, t.depth, t.passkey, cell(t.answer)])));
  }
  lines.push('', `accuracy ${(100 * r.accuracy).toFixed(1)}% (${r.correct}/${r.trials}), seed ${r.seed}, ${r.seconds.toFixed(1)} s`);
  if (official)
    lines.push(
      `protocol official (FocusLLM eval_passkey.py): filler cut by characters, key 1..49999, ${r.native ? 'native (no chunks)' : 'FocusLLM'}, ` +
        'greedy answer of exactly the key\'s tokens, exact match',
    );
  return lines.join('\n');
}

export const command: Command = {
  usage: () =>
    usage(
      'passkey',
      'Pass-key retrieval: a key hidden at a random depth in filler text of each length; accuracy of greedy answers.',
      SPEC,
    ),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    const protocol = protocolFromFlags(f);
    const official = protocol === 'official';
    for (const k of ['chars', 'native'])
      if (f[k] && !official) throw new UsageError(`--${k} needs --protocol official`);
    if (f['native-window'] !== undefined && !f.native) throw new UsageError('--native-window needs --native');
    for (const k of ['depths', 'max-new-tokens'])
      if (f[k] !== undefined && official) throw new UsageError(`--${k} does not apply to --protocol official (random depths; exactly the answer's tokens)`);
    if (f.lengths === undefined && f.chars) throw new UsageError('--chars needs --lengths');
    const depths = parseDepths(f.depths as string[] | undefined);
    const trials = f.trials as number;
    if (trials < 1) throw new UsageError(`--trials must be at least 1, got ${trials}`);
    const maxNew = f['max-new-tokens'] as number | undefined;
    if (maxNew !== undefined && maxNew < 1) throw new UsageError(`--max-new-tokens must be at least 1, got ${maxNew}`);
    const focus = checkedFocus(f);
    const status = new StatusLine(progressWanted(f));
    const model = await modelFromFlags(f);
    if (model.dir === shippedModelDir() && !official)
      process.stderr.write(
        `focusllm: ${SHIPPED_MODEL} learned the official prompt layout (filler, key line, filler, task, question); ` +
          'this default protocol puts the task first, and --protocol official measures what it learned\n',
      );
    try {
      if (!model.tokenizer) throw new Error(`--model ${String(f.model)} has no tokenizer.json: the pass-key prompt is text`);
      const lengths = parseLengths((f.lengths as string[] | undefined) ?? ['4x', '16x', '64x'], Boolean(f.chars), model.config.maxPositionEmbeddings);
      const onProgress = (p: PasskeyProgress) =>
        status.show(
          `passkey ${p.done}/${p.total} (${p.correct} correct) length ${p.length} trial ${p.trial + 1}/${p.trialsTotal}: ` +
            (p.phase === 'ingest' ? ingestText(p.ingest) : p.phase),
        );
      const result = await withSigint<PasskeyResult | PasskeyOfficialResult>((signal) =>
        official
          ? runPasskeyOfficial(model, {
              lengths,
              unit: f.chars ? 'chars' : 'tokens',
              trials,
              seed: f.seed as number,
              native: Boolean(f.native),
              nativeWindow: f['native-window'] as number | undefined,
              focus,
              signal,
              onProgress,
            })
          : runPasskey(model, { lengths, trials, seed: f.seed as number, depths, maxNewTokens: maxNew, focus, signal, onProgress }),
      );
      status.done();
      process.stdout.write((f.json ? JSON.stringify(result) : passkeyTable(result)) + '\n');
      return 0;
    } finally {
      status.done();
      model.dispose();
    }
  },
};
