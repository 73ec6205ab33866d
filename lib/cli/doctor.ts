// focusllm doctor: which backends this build has and whether they work here.
import os from 'node:os';

import { parseFlags, usage, UsageError, type FlagSpec } from './args';
import type { Command } from './command';
import { buildInfo, native, packageRoot } from '../native';

const SPEC: Record<string, FlagSpec> = {
  backend: { type: 'string', help: 'also say whether this backend (cpu, cuda or auto) is usable; exit 1 when it is not' },
  json: { type: 'bool', help: 'print one JSON object' },
};

export const command: Command = {
  usage: () => usage('doctor', 'Report the native build: backends compiled in, usable devices, CPU features.', SPEC),
  async run(argv) {
    const f = parseFlags(argv, SPEC);
    const want = f.backend === undefined ? undefined : String(f.backend);
    if (want !== undefined && !['cpu', 'cuda', 'auto'].includes(want))
      throw new UsageError(`--backend must be cpu, cuda or auto, got '${want}'`);
    const build = buildInfo();
    const report: Record<string, unknown> = {
      package: packageRoot(),
      node: process.version,
      platform: `${process.platform}-${process.arch}`,
      cores: os.availableParallelism?.() ?? os.cpus().length,
      build,
    };
    let ok = true;
    try {
      const addon = native();
      const b = addon.backends();
      report.addon = { version: addon.version, cpu: addon.cpuDescription(), cuda: b.cuda };
      if (want !== undefined) {
        // What loadModel({ backend }) would run on.
        const usable = want !== 'cuda' || b.cuda.available;
        const runsOn = want === 'auto' ? (b.cuda.available ? 'cuda' : 'cpu') : want;
        report.backend = { requested: want, usable, runsOn: usable ? runsOn : null, ...(usable ? {} : { reason: b.cuda.reason }) };
        ok = usable;
      }
    } catch (e) {
      ok = false;
      report.addon = { error: (e as Error).message };
      if (want !== undefined) report.backend = { requested: want, usable: false, runsOn: null, reason: 'the addon is not loaded' };
    }
    if (f.json) {
      process.stdout.write(JSON.stringify(report, null, 2) + '\n');
      return ok ? 0 : 1;
    }
    const a = report.addon as { version?: string; cpu?: string; cuda?: { compiled: boolean; available: boolean; reason: string }; error?: string };
    const lines = [`focusllm ${a.version ?? '(addon not loaded)'} on node ${process.version}, ${report.platform}, ${report.cores} cores`];
    if (a.error) {
      lines.push(`addon: NOT LOADED - ${a.error}`);
    } else {
      lines.push(`backends compiled in: cpu${a.cuda!.compiled ? ', cuda' : ''}${build?.cudaArchitectures && a.cuda!.compiled ? ` (sm ${build.cudaArchitectures})` : ''}`);
      lines.push(`cpu: ${a.cpu}`);
      lines.push(`cuda: ${a.cuda!.available ? 'usable' : `not usable - ${a.cuda!.reason}`}`);
    }
    const w = report.backend as { requested: string; usable: boolean; runsOn: string | null; reason?: string } | undefined;
    if (w) lines.push(`--backend ${w.requested}: ${w.usable ? `usable (runs on ${w.runsOn})` : `NOT USABLE - ${w.reason}`}`);
    process.stdout.write(lines.join('\n') + '\n');
    return ok ? 0 : 1;
  },
};
