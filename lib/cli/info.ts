// focusllm info: what a checkpoint is and what a context will cost.
import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { FOCUS_FLAGS, focusFromFlags, MODEL_FLAGS, modelFromFlags, table } from './common';
import { estimateMemory, formatBytes } from '../memory';
import { native } from '../native';
import { resolveFocusParams } from '../plan';
import { definedOnly, Session } from '../session';

const SPEC: Record<string, FlagSpec> = {
  ...MODEL_FLAGS,
  backend: { type: 'string', help: 'cpu, cuda or auto', default: 'cpu' },
  context: { type: 'int', help: 'context length to size memory for (e.g. 128k)' },
  'max-new-tokens': { type: 'int', help: 'tokens to generate after the context', default: 256 },
  ...FOCUS_FLAGS,
  json: { type: 'bool', help: 'print one JSON object' },
};

export const command: Command = {
  usage: () => usage('info', 'Architecture, parameter count, dtype, candidate projections, and memory for --context.', SPEC),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    if (f.context !== undefined && (f.context as number) < 1) throw new UsageError(`--context must be at least 1, got ${f.context}`);
    if ((f['max-new-tokens'] as number) < 0)
      throw new UsageError(`--max-new-tokens must be at least 0, got ${f['max-new-tokens']}`);
    const focus = focusFromFlags(f);
    const model = await modelFromFlags(f, { tokenizer: true });
    try {
      const c = model.config;
      const i = model.info;
      const b = native().backends();
      const out: Record<string, unknown> = {
        model: model.dir,
        architecture: {
          layers: c.numLayers,
          hidden: c.hiddenSize,
          intermediate: c.intermediateSize,
          heads: c.numHeads,
          kvHeads: c.numKvHeads,
          headDim: c.headDim,
          vocab: c.vocabSize,
          ropeTheta: c.ropeTheta,
          ropeScaling: c.ropeScaling === 'none' ? null : { type: c.ropeScaling, factor: c.ropeFactor },
          tiedEmbeddings: c.tieWordEmbeddings,
          attentionBias: c.attentionBias,
        },
        parameters: i.parameters,
        candidateParameters: i.candidateParameters,
        dtype: i.dtype,
        fileBytes: i.fileBytes,
        candidateProjections: i.candidateProjections,
        candidateMode: i.candidateProjections.length ? 'trained' : 'zero-shot (candidate = base projections)',
        unusedTensors: i.unusedTensors,
        tokenizer: model.tokenizer ? { vocab: model.tokenizer.vocabSize, bos: model.tokenizer.bosId } : null,
        backend: model.backend,
        backendDescription: model.native.backendDescription,
        backendsCompiled: { cpu: true, cuda: b.cuda.compiled },
        cudaUsable: b.cuda.available,
      };
      if (f.context !== undefined) {
        const { cacheType: _c, ...given } = focus;
        const params = resolveFocusParams({ ...model.focusDefaults, ...definedOnly(given) });
        const cacheType = new Session(model, focus).resolvedCacheType();
        const est = estimateMemory(c, {
          context: f.context as number,
          params,
          maxNewTokens: f['max-new-tokens'] as number,
          cacheType,
          actDtype: i.actDtype,
          maxBatchTokens: i.maxBatchTokens,
          stepMode: focus.stepMode,
        });
        out.memory = { context: f.context, cacheType, weightsOnBackend: i.backendWeightBytes, ...est };
      }
      if (f.json) {
        process.stdout.write(JSON.stringify(out, null, 2) + '\n');
        return 0;
      }
      const rows: (string | number)[][] = [
        ['architecture', `LLaMA, ${c.numLayers} layers, hidden ${c.hiddenSize}, ${c.numHeads} heads / ${c.numKvHeads} KV heads (head dim ${c.headDim}), MLP ${c.intermediateSize}, vocab ${c.vocabSize}`],
        ['parameters', `${(i.parameters / 1e6).toFixed(2)}M base + ${(i.candidateParameters / 1e6).toFixed(2)}M candidate`],
        ['dtype', i.dtype],
        ['candidate projections', i.candidateProjections.length ? i.candidateProjections.join(', ') : 'none (zero-shot: base projections)'],
        ...(i.unusedTensors.length
          ? [['unused tensors', `${i.unusedTensors.length}: ${i.unusedTensors.slice(0, 8).join(', ')}${i.unusedTensors.length > 8 ? ', ...' : ''}`]]
          : []),
        ['rope', `theta ${c.ropeTheta}${c.ropeScaling !== 'none' ? `, ${c.ropeScaling} x${c.ropeFactor}` : ''}`],
        ['tokenizer', model.tokenizer ? `vocab ${model.tokenizer.vocabSize}, BOS ${model.tokenizer.bosId}` : 'none (ids only)'],
        ['backend', model.native.backendDescription],
        ['backends compiled in', `cpu${b.cuda.compiled ? ', cuda' : ''}${b.cuda.compiled && !b.cuda.available ? ' (cuda not usable here)' : ''}`],
      ];
      const m = out.memory as (ReturnType<typeof estimateMemory> & { context: number; cacheType: string; weightsOnBackend: number }) | undefined;
      if (m) {
        rows.push(['context', `${m.context} tokens: ${m.mode === 'focus' ? `${m.chunks} chunks` : 'native (below minChunkedLength)'}`]);
        if (m.mode === 'focus') {
          rows.push(['chunk caches', `${formatBytes(m.chunkCaches)} (${m.cacheType}; needed to generate more than one token)`]);
          rows.push(['candidate KVs', formatBytes(m.candidates)]);
        } else {
          rows.push(['KV cache', formatBytes(m.localCache)]);
        }
        rows.push(['activations (peak)', formatBytes(m.activations)]);
        rows.push(['weights on backend', m.weightsOnBackend ? formatBytes(m.weightsOnBackend) : `memory-mapped (${formatBytes(i.fileBytes)} of files)`]);
        rows.push(['total, generating', formatBytes(m.totalKeep)]);
        rows.push(['total, scoring only (keepChunkCaches: false)', formatBytes(m.totalScoring)]);
        rows.push([
          'kept document (ingestDocument)',
          `${formatBytes(m.document.chunkCaches)} in ${m.document.chunks} chunk caches (${m.cacheType}), held while it lives; about the same on disk (doc.save)`,
        ]);
      }
      process.stdout.write(table(['', ''], rows).split('\n').slice(2).join('\n') + '\n');
      return 0;
    } finally {
      model.dispose();
    }
  },
};
