/**
 * Hand-written SVG plots: line/scatter plots with linear or log axes, and histograms.
 * No DOM, no browser: a plot is a string. Every plot has a title, two axis labels
 * (class "axis-label"), tick labels (class "tick"), and a legend (class "legend") when it has
 * more than one series, so a spec can find them by parsing the XML.
 */

export type Scale = 'linear' | 'log';

export interface Series {
  name: string;
  points: Array<[number, number]>;
  /** 'line' joins the points, 'points' draws markers only, 'both' does both (default). */
  style?: 'line' | 'points' | 'both';
  dashed?: boolean;
  color?: string;
}

export interface RefLine {
  axis: 'x' | 'y';
  value: number;
  label: string;
}

export interface PlotSpec {
  title: string;
  xLabel: string;
  yLabel: string;
  xScale?: Scale;
  yScale?: Scale;
  series: Series[];
  refLines?: RefLine[];
  /** Force the axis ranges (data units). */
  xDomain?: [number, number];
  yDomain?: [number, number];
  width?: number;
  height?: number;
  /** A short note under the title. */
  subtitle?: string;
  /** Where the legend goes (default top-right). */
  legend?: LegendPosition;
}

export type LegendPosition = 'top-right' | 'top-left' | 'bottom-right' | 'bottom-left';

export const PALETTE = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#17becf'];

export function escapeXml(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

const fmt = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(2).replace(/\.?0+$/, ''));

/** Tick label text: plain for moderate magnitudes, 1e-6 style otherwise. */
export function tickLabel(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1e-3 && a < 1e5) {
    return Number.isInteger(v) ? String(v) : String(Number(v.toPrecision(4)));
  }
  const e = Math.floor(Math.log10(a) + 1e-9);
  const mant = v / 10 ** e;
  return Math.abs(mant - 1) < 1e-9 ? `1e${e}` : `${fmt(Number(mant.toPrecision(3)))}e${e}`;
}

/** "Nice" linear ticks covering [lo, hi]. */
export function linearTicks(lo: number, hi: number, target = 6): number[] {
  if (!(hi > lo)) return [lo];
  const raw = (hi - lo) / target;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let t = Math.ceil(lo / step - 1e-9) * step; t <= hi + step * 1e-9; t += step) out.push(Number(t.toPrecision(12)));
  return out;
}

/** Decade ticks (every k-th decade so that there are at most ~8). */
export function logTicks(lo: number, hi: number): number[] {
  const a = Math.floor(Math.log10(lo) + 1e-9);
  const b = Math.ceil(Math.log10(hi) - 1e-9);
  const every = Math.max(1, Math.ceil((b - a) / 8));
  const out: number[] = [];
  for (let e = a; e <= b; e += every) out.push(10 ** e);
  return out;
}

interface Axis {
  lo: number;
  hi: number;
  scale: Scale;
  ticks: number[];
  map(v: number): number;
}

function makeAxis(values: number[], scale: Scale, pxLo: number, pxHi: number, forced?: [number, number]): Axis {
  let vals = values.filter((v) => Number.isFinite(v) && (scale === 'linear' || v > 0));
  if (vals.length === 0) vals = scale === 'log' ? [1, 10] : [0, 1];
  let lo = forced ? forced[0] : Math.min(...vals);
  let hi = forced ? forced[1] : Math.max(...vals);
  let ticks: number[];
  if (scale === 'log') {
    if (!forced) {
      lo = 10 ** Math.floor(Math.log10(lo) + 1e-9);
      hi = 10 ** Math.ceil(Math.log10(hi) - 1e-9);
      if (hi <= lo) hi = lo * 10;
    }
    ticks = logTicks(lo, hi);
    const l = Math.log10(lo);
    const h = Math.log10(hi);
    return { lo, hi, scale, ticks, map: (v) => pxLo + ((Math.log10(v) - l) / (h - l)) * (pxHi - pxLo) };
  }
  if (hi === lo) {
    lo -= 1;
    hi += 1;
  }
  ticks = linearTicks(lo, hi);
  if (!forced) {
    // widen to whole ticks at both ends
    const step = ticks.length > 1 ? ticks[1]! - ticks[0]! : 1;
    if (ticks[0]! > lo) ticks.unshift(Number((ticks[0]! - step).toPrecision(12)));
    if (ticks[ticks.length - 1]! < hi) ticks.push(Number((ticks[ticks.length - 1]! + step).toPrecision(12)));
    lo = ticks[0]!;
    hi = ticks[ticks.length - 1]!;
  }
  ticks = ticks.filter((t) => t >= lo - 1e-12 && t <= hi + 1e-12);
  return { lo, hi, scale, ticks, map: (v) => pxLo + ((v - lo) / (hi - lo)) * (pxHi - pxLo) };
}

const MARGIN = { left: 78, right: 20, top: 48, bottom: 58 };

function frame(spec: { title: string; subtitle?: string; xLabel: string; yLabel: string; width: number; height: number }, x: Axis, y: Axis): string[] {
  const { width: W, height: H } = spec;
  const x0 = MARGIN.left;
  const x1 = W - MARGIN.right;
  const y0 = H - MARGIN.bottom;
  const y1 = MARGIN.top;
  const out: string[] = [];
  out.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  out.push(`<text class="title" x="${W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle) out.push(`<text class="subtitle" x="${W / 2}" y="37" text-anchor="middle" font-size="11" fill="#555">${escapeXml(spec.subtitle)}</text>`);
  // grid and ticks
  for (const t of x.ticks) {
    const px = x.map(t).toFixed(1);
    out.push(`<line class="grid" x1="${px}" y1="${y1}" x2="${px}" y2="${y0}" stroke="#e6e6e6"/>`);
    out.push(`<line x1="${px}" y1="${y0}" x2="${px}" y2="${y0 + 5}" stroke="#333"/>`);
    out.push(`<text class="tick" x="${px}" y="${y0 + 18}" text-anchor="middle" font-size="11">${escapeXml(tickLabel(t))}</text>`);
  }
  for (const t of y.ticks) {
    const py = y.map(t).toFixed(1);
    out.push(`<line class="grid" x1="${x0}" y1="${py}" x2="${x1}" y2="${py}" stroke="#e6e6e6"/>`);
    out.push(`<line x1="${x0 - 5}" y1="${py}" x2="${x0}" y2="${py}" stroke="#333"/>`);
    out.push(`<text class="tick" x="${x0 - 8}" y="${py}" dy="4" text-anchor="end" font-size="11">${escapeXml(tickLabel(t))}</text>`);
  }
  out.push(`<line class="axis x-axis" x1="${x0}" y1="${y0}" x2="${x1}" y2="${y0}" stroke="#333"/>`);
  out.push(`<line class="axis y-axis" x1="${x0}" y1="${y0}" x2="${x0}" y2="${y1}" stroke="#333"/>`);
  out.push(`<text class="axis-label x-label" x="${(x0 + x1) / 2}" y="${H - 14}" text-anchor="middle" font-size="13">${escapeXml(spec.xLabel)}</text>`);
  out.push(
    `<text class="axis-label y-label" x="16" y="${(y0 + y1) / 2}" text-anchor="middle" font-size="13" transform="rotate(-90 16 ${(y0 + y1) / 2})">${escapeXml(spec.yLabel)}</text>`,
  );
  return out;
}

function wrap(W: number, H: number, title: string, body: string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="Helvetica, Arial, sans-serif" role="img" aria-label="${escapeXml(title)}">`,
    `<title>${escapeXml(title)}</title>`,
    ...body.map((l) => `  ${l}`),
    '</svg>',
    '',
  ].join('\n');
}

function legend(
  entries: Array<{ name: string; color: string; dashed?: boolean; kind?: 'line' | 'box' | 'point' }>,
  pos: LegendPosition,
  W: number,
  H: number,
): string[] {
  if (entries.length === 0) return [];
  const w = Math.max(...entries.map((e) => e.name.length)) * 6.4 + 40;
  const h = entries.length * 17 + 8;
  const x = pos.endsWith('right') ? W - MARGIN.right - 8 : MARGIN.left + 8 + w;
  const y = pos.startsWith('top') ? MARGIN.top + 8 : H - MARGIN.bottom - 8 - h;
  const out = [`<g class="legend">`, `<rect x="${x - w}" y="${y}" width="${w}" height="${entries.length * 17 + 8}" fill="#ffffff" fill-opacity="0.85" stroke="#bbb"/>`];
  entries.forEach((e, i) => {
    const cy = y + 14 + i * 17;
    if (e.kind === 'point') out.push(`<circle cx="${x - w + 16}" cy="${cy - 1}" r="3.5" fill="${e.color}"/>`);
    else if (e.kind === 'box') out.push(`<rect x="${x - w + 6}" y="${cy - 6}" width="20" height="10" fill="${e.color}"/>`);
    else out.push(`<line x1="${x - w + 6}" y1="${cy - 1}" x2="${x - w + 26}" y2="${cy - 1}" stroke="${e.color}" stroke-width="2"${e.dashed ? ' stroke-dasharray="5,3"' : ''}/>`);
    out.push(`<text class="legend-entry" x="${x - w + 32}" y="${cy + 3}" font-size="11">${escapeXml(e.name)}</text>`);
  });
  out.push('</g>');
  return out;
}

/** A line/scatter plot. Non-finite points and non-positive values on a log axis are dropped. */
export function linePlot(spec: PlotSpec): string {
  const W = spec.width ?? 720;
  const H = spec.height ?? 440;
  const xs = spec.xScale ?? 'linear';
  const ys = spec.yScale ?? 'linear';
  const ok = (v: number, s: Scale) => Number.isFinite(v) && (s === 'linear' || v > 0);
  const series = spec.series.map((s, i) => ({ ...s, color: s.color ?? PALETTE[i % PALETTE.length]!, points: s.points.filter(([a, b]) => ok(a, xs) && ok(b, ys)) }));
  const allX = series.flatMap((s) => s.points.map((p) => p[0]));
  const allY = series.flatMap((s) => s.points.map((p) => p[1]));
  for (const r of spec.refLines ?? []) (r.axis === 'x' ? allX : allY).push(r.value);
  const x = makeAxis(allX, xs, MARGIN.left, W - MARGIN.right, spec.xDomain);
  const y = makeAxis(allY, ys, H - MARGIN.bottom, MARGIN.top, spec.yDomain);
  const body = frame({ ...spec, width: W, height: H }, x, y);
  const inX = (v: number) => v >= x.lo * (1 - 1e-12) && v <= x.hi * (1 + 1e-12);
  const inY = (v: number) => v >= Math.min(y.lo, y.hi) - Math.abs(y.lo) * 1e-12 && v <= y.hi + Math.abs(y.hi) * 1e-12;
  for (const r of spec.refLines ?? []) {
    if (r.axis === 'y' && inY(r.value)) {
      const py = y.map(r.value).toFixed(1);
      body.push(`<line class="ref-line" x1="${MARGIN.left}" y1="${py}" x2="${W - MARGIN.right}" y2="${py}" stroke="#555" stroke-dasharray="2,3"/>`);
      body.push(`<text class="ref-label" x="${W - MARGIN.right - 4}" y="${py}" dy="-4" text-anchor="end" font-size="11" fill="#555">${escapeXml(r.label)}</text>`);
    } else if (r.axis === 'x' && inX(r.value)) {
      const px = x.map(r.value).toFixed(1);
      body.push(`<line class="ref-line" x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${H - MARGIN.bottom}" stroke="#555" stroke-dasharray="2,3"/>`);
      body.push(`<text class="ref-label" x="${px}" y="${MARGIN.top + 12}" dx="4" font-size="11" fill="#555">${escapeXml(r.label)}</text>`);
    }
  }
  for (const s of series) {
    const pts = s.points.filter(([a, b]) => inX(a) && inY(b)).map(([a, b]) => [x.map(a), y.map(b)] as const);
    const style = s.style ?? 'both';
    body.push(`<g class="series" data-name="${escapeXml(s.name)}">`);
    if (style !== 'points' && pts.length > 1) {
      body.push(
        `<polyline fill="none" stroke="${s.color}" stroke-width="2"${s.dashed ? ' stroke-dasharray="6,4"' : ''} points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"/>`,
      );
    }
    if (style !== 'line') for (const [a, b] of pts) body.push(`<circle cx="${a.toFixed(1)}" cy="${b.toFixed(1)}" r="3" fill="${s.color}"/>`);
    body.push('</g>');
  }
  if (series.length > 1) body.push(...legend(series.map((s) => ({ ...s, kind: s.style === 'points' ? ('point' as const) : ('line' as const) })), spec.legend ?? 'top-right', W, H));
  return wrap(W, H, spec.title, body);
}

export interface HistogramSpec {
  title: string;
  subtitle?: string;
  xLabel: string;
  yLabel: string;
  /** Bin edges (n + 1 values) in the x axis's units; bars are drawn between consecutive edges. */
  edges: number[];
  /** One or more stacked count series of length n. */
  bars: Array<{ name: string; counts: number[]; color?: string }>;
  xScale?: Scale;
  refLines?: RefLine[];
  width?: number;
  height?: number;
}

/** A histogram with (optionally) log-spaced bins and stacked series. */
export function histogram(spec: HistogramSpec): string {
  const W = spec.width ?? 720;
  const H = spec.height ?? 440;
  const n = spec.edges.length - 1;
  const totals = Array.from({ length: n }, (_, i) => spec.bars.reduce((a, b) => a + (b.counts[i] ?? 0), 0));
  const x = makeAxis([spec.edges[0]!, spec.edges[n]!], spec.xScale ?? 'linear', MARGIN.left, W - MARGIN.right, [spec.edges[0]!, spec.edges[n]!]);
  const y = makeAxis([0, Math.max(1, ...totals)], 'linear', H - MARGIN.bottom, MARGIN.top);
  const body = frame({ ...spec, width: W, height: H }, x, y);
  const colors = spec.bars.map((b, i) => b.color ?? PALETTE[i % PALETTE.length]!);
  for (let i = 0; i < n; i++) {
    let base = 0;
    const a = x.map(spec.edges[i]!);
    const b = x.map(spec.edges[i + 1]!);
    spec.bars.forEach((s, k) => {
      const c = s.counts[i] ?? 0;
      if (c <= 0) return;
      const top = y.map(base + c);
      const bottom = y.map(base);
      body.push(
        `<rect class="bar" data-series="${escapeXml(s.name)}" data-count="${c}" x="${(a + 0.5).toFixed(1)}" y="${top.toFixed(1)}" width="${Math.max(0.5, b - a - 1).toFixed(1)}" height="${(bottom - top).toFixed(1)}" fill="${colors[k]}"/>`,
      );
      base += c;
    });
  }
  for (const r of spec.refLines ?? []) {
    if (r.axis !== 'x') continue;
    const px = x.map(r.value).toFixed(1);
    body.push(`<line class="ref-line" x1="${px}" y1="${MARGIN.top}" x2="${px}" y2="${H - MARGIN.bottom}" stroke="#d62728" stroke-width="1.5" stroke-dasharray="4,3"/>`);
    body.push(`<text class="ref-label" x="${px}" y="${MARGIN.top + 12}" dx="4" font-size="11" fill="#d62728">${escapeXml(r.label)}</text>`);
  }
  if (spec.bars.length > 1) body.push(...legend(spec.bars.map((b, i) => ({ name: b.name, color: colors[i]!, kind: 'box' as const })), 'top-left', W, H));
  return wrap(W, H, spec.title, body);
}

// --------------------------------------------------------------------------- grouping diagrams

export interface GroupPanel {
  /** Short name (BN, LN, …) and a line saying what shares statistics. */
  name: string;
  caption: string;
  /** Statistics group of every element of the [N, C, S] tensor, row-major (n, c, s). */
  groupOf: ArrayLike<number>;
}

export interface GroupDiagramSpec {
  title: string;
  subtitle?: string;
  /** Samples, channels, and positions per channel (H·W). */
  N: number;
  C: number;
  S: number;
  panels: GroupPanel[];
}

/**
 * Which values share statistics, one panel per op: the [N, C, S] tensor as N blocks of C rows ×
 * S cells, each cell filled with its group's colour and labelled with the group number. Not an
 * x/y plot: the root carries class "diagram", each panel is a <g class="panel"> with
 * data-groups / data-m, each cell a <rect class="cell"> with data-n, data-c, data-s, data-group,
 * so a spec can read the grouping back out of the picture.
 */
export function groupDiagram(spec: GroupDiagramSpec): string {
  const { N, C, S } = spec;
  const cell = 26;
  const labelW = 250;
  const blockGap = 22;
  const rowLabelW = 26;
  const panelHead = 34;
  const panelGap = 18;
  const blockW = S * cell;
  // wide enough for the blocks and for the subtitle (11 px text: ~6 px a character)
  const W = Math.max(labelW + N * (rowLabelW + blockW) + (N - 1) * blockGap + 20, Math.ceil((spec.subtitle?.length ?? 0) * 6) + 20);
  const panelH = panelHead + C * cell;
  const top = spec.subtitle ? 58 : 44;
  const H = top + spec.panels.length * (panelH + panelGap) + 10;
  const body: string[] = [];
  body.push(`<rect x="0" y="0" width="${W}" height="${H}" fill="#ffffff"/>`);
  body.push(`<text class="title" x="${W / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">${escapeXml(spec.title)}</text>`);
  if (spec.subtitle) body.push(`<text class="subtitle" x="${W / 2}" y="40" text-anchor="middle" font-size="11" fill="#555">${escapeXml(spec.subtitle)}</text>`);
  spec.panels.forEach((p, k) => {
    if (p.groupOf.length !== N * C * S) throw new RangeError(`groupDiagram: panel ${p.name} has ${p.groupOf.length} cells, expected N·C·S = ${N * C * S}`);
    const groups = new Set(Array.from(p.groupOf));
    const m = (N * C * S) / groups.size;
    const y0 = top + k * (panelH + panelGap);
    body.push(`<g class="panel" data-name="${escapeXml(p.name)}" data-groups="${groups.size}" data-m="${Number.isInteger(m) ? m : 'unequal'}">`);
    body.push(`<text class="panel-name" x="10" y="${y0 + panelHead + 16}" font-size="15" font-weight="bold">${escapeXml(p.name)}</text>`);
    body.push(`<text class="panel-caption" x="10" y="${y0 + panelHead + 34}" font-size="11" fill="#333">${escapeXml(`${groups.size} groups × ${Number.isInteger(m) ? m : '?'} values`)}</text>`);
    // the caption wraps at ~40 characters into the label column
    const words = p.caption.split(' ');
    const lines: string[] = [''];
    for (const w of words) {
      if ((lines[lines.length - 1]! + ' ' + w).trim().length > 40) lines.push(w);
      else lines[lines.length - 1] = (lines[lines.length - 1]! + ' ' + w).trim();
    }
    lines.forEach((l, i) => body.push(`<text class="panel-caption" x="10" y="${y0 + panelHead + 50 + i * 13}" font-size="11" fill="#555">${escapeXml(l)}</text>`));
    for (let n = 0; n < N; n++) {
      const bx = labelW + n * (rowLabelW + blockW + blockGap) + rowLabelW;
      body.push(`<text class="block-label" x="${bx + blockW / 2}" y="${y0 + panelHead - 8}" text-anchor="middle" font-size="12">${escapeXml(`sample ${n}`)}</text>`);
      for (let c = 0; c < C; c++) {
        const cy = y0 + panelHead + c * cell;
        body.push(`<text class="row-label" x="${bx - 4}" y="${cy + cell / 2 + 4}" text-anchor="end" font-size="11" fill="#555">c${c}</text>`);
        for (let s = 0; s < S; s++) {
          const g = p.groupOf[(n * C + c) * S + s]!;
          const cx = bx + s * cell;
          const color = PALETTE[g % PALETTE.length]!;
          body.push(`<rect class="cell" data-n="${n}" data-c="${c}" data-s="${s}" data-group="${g}" x="${cx}" y="${cy}" width="${cell - 2}" height="${cell - 2}" fill="${color}" fill-opacity="0.8"/>`);
          body.push(`<text class="cell-label" x="${cx + (cell - 2) / 2}" y="${cy + cell / 2 + 3}" text-anchor="middle" font-size="11" fill="#ffffff" font-weight="bold">${g}</text>`);
        }
      }
    }
    body.push('</g>');
  });
  const svg = wrap(W, H, spec.title, body);
  return svg.replace('<svg xmlns=', '<svg class="diagram" xmlns=');
}
