// The loss curve of a run as a standalone SVG picture (no dependency): loss
// per step, raw and a moving average, with labelled axes.

export interface CurveOptions {
  title?: string;
  width?: number;
  height?: number;
  /** steps in the moving average (default: about a twentieth of the run, at least 1) */
  smooth?: number;
}

/** Trailing moving average over `k` values (fewer at the start); non-finite values are skipped. */
export function movingAverage(values: readonly number[], k: number): number[] {
  const out: number[] = [];
  let sum = 0;
  let n = 0;
  for (let i = 0; i < values.length; i++) {
    if (Number.isFinite(values[i])) {
      sum += values[i];
      n++;
    }
    const j = i - k;
    if (j >= 0 && Number.isFinite(values[j])) {
      sum -= values[j];
      n--;
    }
    out.push(n > 0 ? sum / n : NaN);
  }
  return out;
}

/** About `count` round tick values covering [lo, hi]. */
export function ticks(lo: number, hi: number, count = 5): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  return out;
}

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

function label(v: number): string {
  const a = Math.abs(v);
  if (a !== 0 && (a >= 1e5 || a < 1e-3)) return v.toExponential(1);
  return String(Number(v.toPrecision(4)));
}

/** losses[i] is the loss of step i + 1. */
export function lossCurveSvg(losses: readonly number[], o: CurveOptions = {}): string {
  const W = o.width ?? 720;
  const H = o.height ?? 420;
  const m = { left: 64, right: 20, top: 36, bottom: 48 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const n = losses.length;
  const smooth = Math.max(1, o.smooth ?? Math.round(n / 20));
  const avg = movingAverage(losses, smooth);
  const finite = losses.filter((v) => Number.isFinite(v));
  let lo = finite.length ? Math.min(...finite) : 0;
  let hi = finite.length ? Math.max(...finite) : 1;
  if (hi - lo < 1e-12) {
    lo -= 0.5;
    hi += 0.5;
  }
  const pad = (hi - lo) * 0.05;
  lo -= pad;
  hi += pad;
  const x0 = 1;
  const x1 = Math.max(2, n);
  const X = (step: number) => m.left + ((step - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => m.top + (1 - (v - lo) / (hi - lo)) * ph;
  const path = (vals: readonly number[]) => {
    const parts: string[] = [];
    let pen = false;
    vals.forEach((v, i) => {
      if (!Number.isFinite(v)) {
        pen = false;
        return;
      }
      parts.push(`${pen ? 'L' : 'M'}${X(i + 1).toFixed(2)},${Y(v).toFixed(2)}`);
      pen = true;
    });
    return parts.join(' ');
  };
  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  s.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  s.push(`<text x="${W / 2}" y="22" text-anchor="middle" font-size="14">${esc(o.title ?? 'training loss')}</text>`);
  // grid, ticks and tick labels
  for (const v of ticks(lo, hi)) {
    const y = Y(v).toFixed(2);
    s.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    s.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${label(v)}</text>`);
  }
  for (const v of ticks(x0, x1).filter((t) => Number.isInteger(t))) {
    const x = X(v).toFixed(2);
    s.push(`<line x1="${x}" x2="${x}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="black"/>`);
    s.push(`<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle">${label(v)}</text>`);
  }
  // axes and their labels
  s.push(`<path d="M${m.left},${m.top} V${m.top + ph} H${m.left + pw}" fill="none" stroke="black"/>`);
  s.push(`<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">step</text>`);
  s.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">loss</text>`);
  if (n === 0) {
    s.push(`<text x="${m.left + pw / 2}" y="${m.top + ph / 2}" text-anchor="middle" fill="#888">no steps yet</text>`);
  } else {
    s.push(`<path d="${path(losses)}" fill="none" stroke="#9ecae1" stroke-width="1"/>`);
    s.push(`<path d="${path(avg)}" fill="none" stroke="#08519c" stroke-width="2"/>`);
    if (n === 1 && Number.isFinite(losses[0])) s.push(`<circle cx="${X(1)}" cy="${Y(losses[0])}" r="3" fill="#08519c"/>`);
  }
  // legend
  const lx = m.left + pw - 190;
  s.push(`<line x1="${lx}" x2="${lx + 24}" y1="${m.top + 10}" y2="${m.top + 10}" stroke="#9ecae1"/>`);
  s.push(`<text x="${lx + 30}" y="${m.top + 10}" dominant-baseline="middle">loss per step</text>`);
  s.push(`<line x1="${lx}" x2="${lx + 24}" y1="${m.top + 26}" y2="${m.top + 26}" stroke="#08519c" stroke-width="2"/>`);
  s.push(`<text x="${lx + 30}" y="${m.top + 26}" dominant-baseline="middle">moving average (${smooth} step${smooth === 1 ? '' : 's'})</text>`);
  s.push('</svg>');
  return s.join('\n') + '\n';
}

export interface Series {
  name: string;
  /** [x, y] points; a non-finite y breaks the line */
  points: readonly (readonly [number, number])[];
}

export interface ChartOptions {
  title: string;
  xLabel: string;
  yLabel: string;
  /** log2 x axis, ticks at the points' x values (default false) */
  logX?: boolean;
  /** y range (default: the data's, padded) */
  yMin?: number;
  yMax?: number;
  /** label of an x value (default: the number) */
  xTick?: (x: number) => string;
  width?: number;
  height?: number;
}

const PALETTE = ['#08519c', '#e6550d', '#31a354', '#756bb1', '#636363', '#d62728'];

/** Several named series as lines with markers and a legend: scaling curves for the README. */
export function lineChartSvg(series: readonly Series[], o: ChartOptions): string {
  const W = o.width ?? 720;
  const H = o.height ?? 420;
  const m = { left: 64, right: 190, top: 36, bottom: 48 };
  const pw = W - m.left - m.right;
  const ph = H - m.top - m.bottom;
  const tx = (x: number) => (o.logX ? Math.log2(x) : x);
  const xs = [...new Set(series.flatMap((s) => s.points.map((p) => p[0])))].sort((a, b) => a - b);
  const ys = series.flatMap((s) => s.points.map((p) => p[1])).filter((v) => Number.isFinite(v));
  let lo = o.yMin ?? (ys.length ? Math.min(...ys) : 0);
  let hi = o.yMax ?? (ys.length ? Math.max(...ys) : 1);
  if (hi - lo < 1e-12) {
    lo -= 0.5;
    hi += 0.5;
  }
  if (o.yMin === undefined) lo -= (hi - lo) * 0.05;
  if (o.yMax === undefined) hi += (hi - lo) * 0.05;
  const x0 = xs.length ? tx(xs[0]) : 0;
  const x1 = xs.length > 1 ? tx(xs[xs.length - 1]) : x0 + 1;
  const X = (x: number) => m.left + ((tx(x) - x0) / (x1 - x0)) * pw;
  const Y = (v: number) => m.top + (1 - (v - lo) / (hi - lo)) * ph;
  const s: string[] = [];
  s.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`);
  s.push(`<rect width="${W}" height="${H}" fill="white"/>`);
  s.push(`<text x="${m.left + pw / 2}" y="22" text-anchor="middle" font-size="14">${esc(o.title)}</text>`);
  for (const v of ticks(lo, hi)) {
    const y = Y(v).toFixed(2);
    s.push(`<line x1="${m.left}" x2="${m.left + pw}" y1="${y}" y2="${y}" stroke="#e5e5e5"/>`);
    s.push(`<text x="${m.left - 6}" y="${y}" text-anchor="end" dominant-baseline="middle">${label(v)}</text>`);
  }
  for (const v of o.logX ? xs : ticks(x0, x1)) {
    const x = X(v).toFixed(2);
    s.push(`<line x1="${x}" x2="${x}" y1="${m.top + ph}" y2="${m.top + ph + 4}" stroke="black"/>`);
    s.push(`<text x="${x}" y="${m.top + ph + 18}" text-anchor="middle">${esc(o.xTick ? o.xTick(v) : label(v))}</text>`);
  }
  s.push(`<path d="M${m.left},${m.top} V${m.top + ph} H${m.left + pw}" fill="none" stroke="black"/>`);
  s.push(`<text x="${m.left + pw / 2}" y="${H - 8}" text-anchor="middle">${esc(o.xLabel)}</text>`);
  s.push(`<text transform="translate(16 ${m.top + ph / 2}) rotate(-90)" text-anchor="middle">${esc(o.yLabel)}</text>`);
  series.forEach((sr, i) => {
    const c = PALETTE[i % PALETTE.length];
    const parts: string[] = [];
    let pen = false;
    for (const [x, y] of sr.points) {
      if (!Number.isFinite(y)) {
        pen = false;
        continue;
      }
      parts.push(`${pen ? 'L' : 'M'}${X(x).toFixed(2)},${Y(y).toFixed(2)}`);
      pen = true;
      s.push(`<circle cx="${X(x).toFixed(2)}" cy="${Y(y).toFixed(2)}" r="3" fill="${c}"/>`);
    }
    if (parts.length) s.push(`<path d="${parts.join(' ')}" fill="none" stroke="${c}" stroke-width="2"/>`);
    const ly = m.top + 10 + i * 18;
    s.push(`<line x1="${W - m.right + 12}" x2="${W - m.right + 36}" y1="${ly}" y2="${ly}" stroke="${c}" stroke-width="2"/>`);
    s.push(`<text x="${W - m.right + 42}" y="${ly}" dominant-baseline="middle">${esc(sr.name)}</text>`);
  });
  s.push('</svg>');
  return s.join('\n') + '\n';
}
