// Chat templates: the checkpoint's Jinja template rendered by @huggingface/jinja
// with the variables transformers' apply_chat_template passes.
import type { Template as JinjaTemplate } from '@huggingface/jinja' with { 'resolution-mode': 'import' };

import type { ChatMessage } from './types';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const jinja = require('@huggingface/jinja') as { Template: typeof JinjaTemplate };

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

export class ChatRenderer {
  private readonly compiled = new Map<string, JinjaTemplate>();

  constructor(
    private readonly templates: ChatTemplates | null,
    private readonly tokens: TemplateTokens,
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
    try {
      return tpl.render({
        // copies: the template must not see (or change) the caller's objects
        messages: messages.map((m) => ({ ...m })),
        ...this.tokens,
        add_generation_prompt: opts.addGenerationPrompt ?? false,
        // raise_exception(message) is built into @huggingface/jinja: it throws Error(message)
      });
    } catch (e) {
      throw new Error(`${where}: ${(e as Error).message}`);
    }
  }
}
