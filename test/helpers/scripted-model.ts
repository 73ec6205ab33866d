// Test helper: a stand-in Model whose sessions "answer" with text chosen from
// their prompt, one token per step, then EOS (id 2). For evaluation tests
// that need a model that is right (or wrong) on purpose.
import type { Model } from '../../lib/model';
import type { Tokenizer } from '../../lib/tokenizer/types';

export interface ScriptOptions {
  /** the answer text for a prompt (encoded after a space, without special tokens) */
  answer: (prompt: string) => string;
  /** a newline is the top choice for the first token (the answer second) */
  newlineFirst?: boolean;
  /** throw when a step feeds a token the script did not propose */
  strictSteps?: boolean;
  /** every prompt seen, decoded */
  prompts?: string[];
}

export function scriptedModel(tok: Tokenizer, o: ScriptOptions): Model {
  const vocab = tok.vocabSize;
  const nl = tok.encode('\n', { addSpecial: false }).at(-1)!;
  return {
    dir: 'scripted',
    tokenizer: tok,
    config: { bosTokenId: 1, eosTokenIds: [2], vocabSize: vocab },
    createSession() {
      let answer: number[] = [];
      let pos = 0;
      const row = () => {
        const l = new Float32Array(vocab);
        l[pos < answer.length ? answer[pos] : 2] = 5;
        if (o.newlineFirst && pos === 0) l[nl] = 10;
        return l;
      };
      return {
        mode: 'native',
        chunks: 0,
        async ingest(ids: number[]) {
          const text = tok.decode(ids, { skipSpecial: true });
          o.prompts?.push(text);
          answer = tok.encode(` ${o.answer(text)}`, { addSpecial: false });
          pos = 0;
          return row();
        },
        async step(id: number) {
          if (o.strictSteps && id !== answer[pos]) throw new Error('stepped a token the script did not propose');
          pos++;
          return row();
        },
        dispose() {},
      };
    },
  } as unknown as Model;
}
