// Chat templates: the checkpoint's Jinja template rendered by @huggingface/jinja
// with the variables transformers' apply_chat_template passes.
import type { Template as JinjaTemplate } from '@huggingface/jinja' with { 'resolution-mode': 'import' };

import type { ChatMessage } from './types';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const jinja = require('@huggingface/jinja') as {
  Template: typeof JinjaTemplate;
  Environment: new () => { set(name: string, value: unknown): unknown };
  Interpreter: { prototype: InterpreterInternals };
};

/** The parts of @huggingface/jinja's Interpreter a render budget hooks into. */
interface InterpreterInternals {
  global: { variables: Map<string, unknown> };
  run(program: unknown): unknown;
  evaluate(node: { type: string; property?: { type: string } }, env: unknown): { value: unknown };
}

export interface ChatTemplates {
  /** where the templates were read from (for error messages) */
  file: string;
  /** template source by name; the unnamed one is "default" */
  sources: Map<string, string>;
}

/**
 * tokenizer_config.json's chat_template: a string, or a list of
 * { name, template } (the "default" one is used unless a name is given).
 */
export function parseChatTemplates(value: unknown, file: string): ChatTemplates | null {
  if (value === undefined || value === null) return null;
  const sources = new Map<string, string>();
  if (typeof value === 'string') sources.set('default', value);
  else if (Array.isArray(value)) {
    value.forEach((t, i) => {
      const ok = t && typeof t === 'object' && typeof t.name === 'string' && typeof t.template === 'string';
      if (!ok) throw new Error(`${file}: chat_template[${i}] must be { "name": string, "template": string }`);
      sources.set(t.name, t.template);
    });
  } else throw new Error(`${file}: chat_template must be a string or a list of { name, template }`);
  return { file, sources };
}

/** Special token strings a template may use. */
export interface TemplateTokens {
  bos_token?: string;
  eos_token?: string;
  unk_token?: string;
  pad_token?: string;
}

/**
 * What one render may spend. A chat template is code that came with a
 * checkpoint, rendered synchronously: `{% for i in range(10**9) %}` must end
 * in an Error, not in an exhausted heap or a hung process.
 */
export interface RenderLimits {
  /** wall-clock seconds (default 5) */
  seconds: number;
  /** characters of the longest string any expression may make, beyond 8x the input's (default 1 Mi); a list may hold an eighth as many items */
  size: number;
  /** all expressions together may make this many times `size`, a list item counting as 8 characters (default 16) */
  workFactor: number;
}

export const DEFAULT_RENDER_LIMITS: RenderLimits = { seconds: 5, size: 1 << 20, workFactor: 16 };

class RenderLimitError extends Error {}

/** The running render's budget; null outside a render (the hooks then do nothing). */
let budget: { deadline: number; seconds: number; size: number; work: number } | null = null;

/** Charges a string of n characters or a list of n items (8 characters each) to the budget. */
function spend(n: number, list: boolean, what: string): void {
  const b = budget!;
  const limit = list ? Math.floor(b.size / 8) : b.size;
  if (n > limit) throw new RenderLimitError(`${what} of ${n} ${list ? 'items' : 'characters'} is over the limit of ${limit}`);
  b.work -= list ? 8 * n : n;
  if (b.work < 0) throw new RenderLimitError('its expressions made too much text and lists in all (a runaway loop?)');
}

function sizeOf(v: unknown): number {
  if (typeof v === 'string' || Array.isArray(v)) return v.length;
  return v instanceof Map ? v.size : 0;
}

/** range() as @huggingface/jinja has it, but sized before it allocates. */
function boundedRange(start: number, stop?: number, step = 1): number[] {
  if (stop === undefined) {
    stop = start;
    start = 0;
  }
  if (step === 0) throw new Error('range() step must not be zero');
  const count = Math.max(0, Math.ceil((stop - start) / step));
  if (budget && !Number.isNaN(count)) spend(count, true, 'range()');
  const out: number[] = [];
  if (step > 0) for (let i = start; i < stop; i += step) out.push(i);
  else for (let i = start; i > stop; i += step) out.push(i);
  return out;
}

// Hooks on the library's interpreter, inert unless a budget is set: every
// expression checks the clock, and what it makes (strings, lists) is charged
// to the budget. Lookups (a variable, an item) make nothing and are free.
let hooked = false;
function hookInterpreter(): void {
  if (hooked) return;
  hooked = true;
  const proto = jinja.Interpreter.prototype;
  const rangeValue = new jinja.Environment().set('range', boundedRange);
  const run = proto.run;
  proto.run = function (this: InterpreterInternals, program: unknown) {
    if (budget) this.global.variables.set('range', rangeValue);
    return run.call(this, program);
  };
  const evaluate = proto.evaluate;
  proto.evaluate = function (this: InterpreterInternals, node, env) {
    const b = budget;
    if (!b || !node) return evaluate.call(this, node, env);
    // (Every time: a loop with an empty body runs many iterations between two expressions.)
    if (Date.now() > b.deadline) throw new RenderLimitError(`it ran longer than ${b.seconds} s`);
    const v = evaluate.call(this, node, env);
    const lookup = node.type === 'Identifier' || (node.type === 'MemberExpression' && node.property?.type !== 'SliceExpression');
    if (!lookup) {
      const n = sizeOf(v.value);
      if (n > 0) spend(n, typeof v.value !== 'string', typeof v.value === 'string' ? 'a string' : Array.isArray(v.value) ? 'a list' : 'a mapping');
    }
    return v;
  };
}

/** Renders `tpl` under `limits`, `inputChars` being the size of what it is given. */
function renderBounded(tpl: JinjaTemplate, items: Record<string, unknown>, inputChars: number, limits: RenderLimits): string {
  hookInterpreter();
  const size = limits.size + 8 * inputChars;
  budget = { deadline: Date.now() + limits.seconds * 1000, seconds: limits.seconds, size, work: size * limits.workFactor };
  try {
    return tpl.render(items);
  } catch (e) {
    if (e instanceof RenderLimitError) throw new Error(`rendering stopped: ${e.message}`);
    // The heap or the stack ran short inside the library.
    if (e instanceof RangeError) throw new Error(`rendering failed: ${e.message}`);
    throw e;
  } finally {
    budget = null;
  }
}

export class ChatRenderer {
  private readonly compiled = new Map<string, JinjaTemplate>();

  constructor(
    private readonly templates: ChatTemplates | null,
    private readonly tokens: TemplateTokens,
    private readonly limits: RenderLimits = DEFAULT_RENDER_LIMITS,
  ) {}

  get hasDefault(): boolean {
    return this.templates?.sources.has('default') ?? false;
  }

  get names(): string[] {
    return [...(this.templates?.sources.keys() ?? [])];
  }

  render(messages: ChatMessage[], opts: { addGenerationPrompt?: boolean; template?: string } = {}): string {
    if (!this.templates) throw new Error('this tokenizer has no chat template (tokenizer_config.json has no chat_template)');
    const name = opts.template ?? 'default';
    const source = this.templates.sources.get(name);
    const where = `${this.templates.file} chat_template${name === 'default' ? '' : ` "${name}"`}`;
    if (source === undefined)
      throw new Error(`${this.templates.file}: no chat template named "${name}" (it has: ${this.names.join(', ')})`);
    if (!Array.isArray(messages)) throw new Error('applyChatTemplate: messages must be an array of { role, content }');
    messages.forEach((m, i) => {
      if (!m || typeof m !== 'object' || typeof m.role !== 'string' || typeof m.content !== 'string')
        throw new Error(`applyChatTemplate: messages[${i}] must be { role: string, content: string }`);
    });
    let tpl = this.compiled.get(name);
    if (!tpl) {
      try {
        tpl = new jinja.Template(source);
      } catch (e) {
        throw new Error(`${where}: ${(e as Error).message}`);
      }
      this.compiled.set(name, tpl);
    }
    let inputChars = 0;
    for (const m of messages) inputChars += m.role.length + m.content.length;
    for (const v of Object.values(this.tokens)) inputChars += typeof v === 'string' ? v.length : 0;
    try {
      const items = {
        // copies: the template must not see (or change) the caller's objects
        messages: messages.map((m) => ({ ...m })),
        ...this.tokens,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        // raise_exception(message) is built into @huggingface/jinja: it throws Error(message)
      };
      return renderBounded(tpl, items, inputChars, this.limits);
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
  }
}
